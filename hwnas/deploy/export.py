"""Export a model to ONNX or ``torch.export`` and check the file against eager PyTorch.

Taught in: notebooks/11_deployment.

ONNX files are made by torch's TorchScript-based exporter (``dynamo=False``,
opset :data:`OPSET`): about 0.05 s per model of the default space here, where
the dynamo exporter took about 2 s. TorchScript itself is deprecated in favour
of ``torch.export``, which is the second format (``.pt2`` files written by
``torch.export.save``); the third is ExecuTorch's ``.pte`` program, lowered to
XNNPACK (:mod:`hwnas.deploy.executorch`), what a phone app ships. Either way the
serialised bytes are loaded back and run
on real windows beside the eager model *before* anything is written; only a
model that agrees within ``atol + rtol * |eager|`` is written, atomically.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..architecture import Architecture
from ..checks import require_choice, require_float
from ..fileio import write_bytes_atomic
from ..model import build_model, example_input
from .onnx_graph import OPSET, onnx_bytes
from .runtimes import OrtModule

__all__ = ["EXPORTERS", "FORMATS", "SUFFIXES", "ExportResult", "export", "torch_export_bytes",
           "format_for_path", "load_exported"]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote and how well the reloaded file matched eager PyTorch.

    ``max_abs_error`` is the largest ``|reloaded - eager|`` over the checked
    windows and outputs; ``max_rel_error`` the same divided by the largest
    ``|eager|`` output (NaN when not checked). The check passed when every output
    was within ``atol + rtol * |eager|``.

    Taught in: notebooks/11_deployment.
    """

    path: str
    format: str
    exporter: str
    opset: int | None
    size_bytes: int
    export_seconds: float
    checked_windows: int
    max_abs_error: float
    max_rel_error: float
    atol: float
    rtol: float

    def summary(self) -> str:
        """One line for a chapter or the command line."""
        check = (f"checked on {self.checked_windows} windows: max |error| {self.max_abs_error:.2e} "
                 f"(rel {self.max_rel_error:.2e}; atol {self.atol:g}, rtol {self.rtol:g})"
                 if self.checked_windows else "not checked")
        return (f"{self.path}: {self.format} ({self.exporter}), {self.size_bytes:,} B, "
                f"exported in {self.export_seconds:.2f} s; {check}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def torch_export_bytes(module: nn.Module, inputs: Sequence[torch.Tensor]) -> bytes:
    """The ``torch.export`` program of ``module`` (batch dimension dynamic), serialised.

    Taught in: notebooks/11_deployment.
    """
    module.eval()
    args = tuple(inputs)
    dims = tuple({0: torch.export.Dim.DYNAMIC} for _ in args)
    program = torch.export.export(module, args, dynamic_shapes=dims)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def _pte_bytes(module: nn.Module, inputs: Sequence[torch.Tensor]) -> bytes:
    """The ExecuTorch ``.pte`` of ``module``, XNNPACK-delegated, batch dynamic (imported on demand)."""
    from .executorch import pte_bytes

    return pte_bytes(module, inputs, dynamic_batch=True)


def _pte_module(source: bytes | str | os.PathLike[str]) -> nn.Module:
    from .executorch import PteModule

    return PteModule(source)


@dataclass(frozen=True)
class _Exporter:
    """How one format is written (``bytes_of(module, inputs)``), run back and described."""

    suffix: str
    exporter: str
    bytes_of: Callable[[nn.Module, Sequence[torch.Tensor]], bytes]
    reload: Callable[[Any], nn.Module]


EXPORTERS: dict[str, _Exporter] = {
    "onnx": _Exporter(".onnx", "torch.onnx.export (TorchScript-based, dynamo=False)",
                      lambda m, x: onnx_bytes(m, x), lambda src: OrtModule(src)),
    "torch.export": _Exporter(".pt2", "torch.export", torch_export_bytes,
                              lambda src: torch.export.load(io.BytesIO(src) if isinstance(src, bytes)
                                                            else str(src)).module()),
    "pte": _Exporter(".pte", "torch.export -> executorch.exir (XnnpackPartitioner) -> .pte", _pte_bytes,
                     _pte_module),
}
"""Format name -> how it is exported and loaded back (a new format is one entry here)."""
FORMATS: tuple[str, ...] = tuple(EXPORTERS)
SUFFIXES: dict[str, str] = {name: e.suffix for name, e in EXPORTERS.items()}
"""Format name -> the file suffix that implies it (``--out model.pte`` means ``pte``)."""


def format_for_path(path: str | os.PathLike[str], where: str = "path") -> str:
    """The format a file's suffix implies; ValueError naming ``where`` and the known suffixes.

    Taught in: notebooks/11_deployment.
    """
    suffix = Path(path).suffix
    for name, known in SUFFIXES.items():
        if suffix == known:
            return name
    listed = ", ".join(f"{s} ({n})" for n, s in SUFFIXES.items())
    raise ValueError(f"{where} {str(path)!r} must end in one of {listed}")


def _reload(data: bytes, format: str) -> nn.Module:
    """A module running serialised ``data`` in its format's runtime."""
    return EXPORTERS[format].reload(data)


def load_exported(path: str | os.PathLike[str], threads: int = 1) -> nn.Module:
    """A module running an exported file: ``.onnx`` in ONNX Runtime, ``.pt2`` via ``torch.export.load``,
    ``.pte`` in ExecuTorch.

    Taught in: notebooks/11_deployment.
    """
    target = Path(path)
    format = format_for_path(target)
    if not target.is_file():
        raise ValueError(f"path {str(target)!r} is not a file")
    if format == "onnx":
        return OrtModule(target, threads)
    return EXPORTERS[format].reload(target)


def _max_errors(got: torch.Tensor, want: torch.Tensor) -> tuple[float, float, np.ndarray]:
    """Max absolute error, max error relative to the largest output, and the arrays' gaps."""
    a, b = got.detach().double().numpy(), want.detach().double().numpy()
    if a.shape != b.shape:
        raise ValueError(f"reloaded model gives shape {a.shape}, eager {b.shape}")
    gap = np.abs(a - b)
    scale = float(np.abs(b).max()) if b.size else 0.0
    worst = float(gap.max()) if gap.size else 0.0
    return worst, worst / scale if scale > 0 else 0.0, gap


def _model_and_example(model_or_arch: Any, example: Any, seed: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module to export and the inputs to trace it on."""
    if isinstance(model_or_arch, Architecture):
        module: nn.Module = build_model(model_or_arch, seed=seed)
    elif isinstance(model_or_arch, nn.Module):
        module = model_or_arch
    else:
        raise ValueError(f"model_or_arch must be an Architecture or a torch.nn.Module, "
                         f"got {type(model_or_arch).__name__}")
    if example is None:
        example = example_input(module, 2, seed)
    inputs = tuple(example) if isinstance(example, (tuple, list)) else (example,)
    return module.eval(), tuple(torch.as_tensor(x, dtype=torch.float32) for x in inputs)


def export(model_or_arch: Architecture | nn.Module, path: str | os.PathLike[str], *,
           format: str = "onnx", example: torch.Tensor | Sequence[torch.Tensor] | None = None,
           check: bool = True, check_inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
           atol: float = 1e-5, rtol: float = 1e-5, seed: int = 0) -> ExportResult:
    """Export a model (or a fresh ``build_model(arch, seed)``) to ``path`` and check it.

    ``format`` is ``"onnx"`` (dynamic batch, opset :data:`OPSET`),
    ``"torch.export"`` (``.pt2``) or ``"pte"`` (ExecuTorch, XNNPACK-delegated,
    batch dynamic up to :data:`hwnas.deploy.executorch.MAX_BATCH`). ``example`` is what the model is traced on
    (by default two seeded random windows of the architecture's shape). With
    ``check`` the serialised model is loaded back and run on ``check_inputs``
    (real windows, ideally; default ``example``) beside the eager model, and a
    ``ValueError`` is raised, with nothing written, if any output differs by
    more than ``atol + rtol * |eager|``. The file is written atomically.

    Taught in: notebooks/11_deployment.
    """
    format = require_choice(format, "format", FORMATS)
    atol = require_float(atol, "atol", minimum=0.0)
    rtol = require_float(rtol, "rtol", minimum=0.0)
    module, inputs = _model_and_example(model_or_arch, example, seed)
    start = time.perf_counter()
    data = EXPORTERS[format].bytes_of(module, inputs)
    seconds = time.perf_counter() - start
    worst, relative, windows = float("nan"), float("nan"), 0
    if check:
        probe = inputs if check_inputs is None else (
            tuple(check_inputs) if isinstance(check_inputs, (tuple, list)) else (check_inputs,))
        probe = tuple(torch.as_tensor(x, dtype=torch.float32).contiguous() for x in probe)
        with torch.inference_mode():
            want = module(*probe)
            got = _reload(data, format)(*probe)
        worst, relative, gap = _max_errors(got, want)
        allowed = atol + rtol * np.abs(want.double().numpy())
        if np.any(gap > allowed):
            raise ValueError(f"export check failed: max |reloaded - eager| = {worst:.3e} exceeds "
                             f"atol {atol:g} + rtol {rtol:g} x |eager|; nothing written to {path}")
        windows = int(probe[0].shape[0])
    target = write_bytes_atomic(path, data)
    return ExportResult(
        path=str(target), format=format,
        exporter=EXPORTERS[format].exporter,
        opset=OPSET if format == "onnx" else None, size_bytes=len(data), export_seconds=seconds,
        checked_windows=windows, max_abs_error=worst, max_rel_error=relative, atol=atol, rtol=rtol,
    )
