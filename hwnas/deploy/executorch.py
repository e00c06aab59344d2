"""ExecuTorch with XNNPACK: the runtime a phone app ships, as a :class:`hwnas.runtime.Runtime`.

Taught in: notebooks/11_deployment.

A retail app on a phone does not run ONNX Runtime on an x86 server: it runs
PyTorch's on-device runtime, ExecuTorch, whose XNNPACK backend executes the
convolutions and matrix products (the ExecuTorch docs, "XNNPACK Backend"). A
model reaches it in three steps: ``torch.export.export`` captures the graph,
``executorch.exir.to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])``
hands every subgraph XNNPACK supports to it (the *delegated* ops) and leaves the
rest to ExecuTorch's portable kernels, and ``.to_executorch()`` serialises the
program to a ``.pte`` file, which ``executorch.runtime.Runtime`` loads and runs.

* :func:`pte_bytes`: the ``.pte`` of a module (FP32), :func:`int8_pte_bytes` the same after
  XNNPACK's post-training quantiser (PT2E ``XNNPACKQuantizer``, per-channel symmetric
  INT8 weights, calibrated on real windows);
* :func:`delegation_table` / :func:`space_delegation`: which op types XNNPACK runs and
  which fall back to the portable kernels, counted per op type;
* :class:`ExecuTorchRuntime` (registered as ``"executorch"``): the timing runtime;
  :class:`PteModule` runs a ``.pte`` like a torch module (the export check, the SLA report).

Lowering is slow: about 1-2 s per module on the course machine (``torch.export``'s
decompositions run three times per program), so a lookup table lowers each distinct
layer once with its length dimension dynamic (up to :data:`DYNAMIC_MAX_LENGTH`) and
reuses the program for every length, as :class:`~hwnas.deploy.runtimes.OnnxRuntime`
reuses its graphs. A third of each lowering was torch.export listing every
CompositeImplicitAutograd operator of the process anew (three times per program);
:func:`lower` lists them once per set of registered operators (:func:`_cia_ops_memo`),
which leaves the ``.pte`` bytes unchanged. Putting many layers in one multi-method
program saves nothing (the decompositions run per method), so keys are not batched.
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checks import require_int
from ..runtime import register_runtime

__all__ = ["DYNAMIC_MAX_LENGTH", "MAX_BATCH", "PLUMBING_OPS", "DelegationRow", "ExecuTorchRuntime",
           "PteModule", "delegation_table", "executorch_version", "int8_pte_bytes", "lower",
           "pte_bytes", "set_threads", "space_delegation"]

DYNAMIC_MAX_LENGTH = 256
"""The longest input a table's shared (length-dynamic) layer program accepts; XNNPACK plans its
memory for this bound. Longer inputs get a program of their own."""
MAX_BATCH = 256
"""The bound given to an exported ``.pte``'s dynamic batch dimension. ExecuTorch plans the input
memory for the batch it settles on (15 windows for the models tried here, whatever this bound), so
:class:`PteModule` runs a larger batch in chunks of its ``max_batch``."""
PLUMBING_OPS = frozenset({"getitem", "alloc"})
"""Graph nodes of a lowered program that run no kernel (tuple indexing, the memory planner's output
allocation): left out of :func:`delegation_table`."""


@contextmanager
def _quiet() -> Iterator[None]:
    """ExecuTorch's and torch.export's deprecation warnings off (they say nothing about the model)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _native_log_off() -> Iterator[None]:
    """The process's stderr (file descriptor 2 and ``sys.stderr``) silenced for a moment: ExecuTorch's C++
    runtime logs its CPU probe (``cpuinfo_utils.cpp``) and each thread-pool reset there, which
    would bury a command line's one-line errors."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    python_stderr = sys.stderr
    try:
        os.dup2(null, 2)
        sys.stderr = io.StringIO()  # the bindings may write through Python's stderr instead
        yield
    finally:
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def executorch_version() -> str:
    """``"executorch 1.5.1+cpu"``.

    Taught in: notebooks/11_deployment.
    """
    from executorch.version import __version__

    return f"executorch {__version__}"


_PROGRAMS_LOADED = False
"""Whether this process has loaded an ExecuTorch program (after which its thread pool is fixed)."""


def set_threads(threads: int) -> None:
    """Size ExecuTorch's shared thread pool (XNNPACK's ``pthreadpool``) to ``threads``.

    The pool is one per process and every loaded program's XNNPACK runtime holds
    it: resizing it (``_unsafe_reset_threadpool``, the binding ExecuTorch's own
    tests use) after a program was loaded leaves those runtimes pointing at a
    freed pool (the process aborts), so the size is set before the first load and
    a later, different size is a ValueError. hwnas loads every program through
    here, at 1 thread unless told otherwise.

    Taught in: notebooks/11_deployment.
    """
    threads = require_int(threads, "threads", 1)
    with _native_log_off():
        from executorch.extension.pybindings import portable_lib

        current = portable_lib._threadpool_get_thread_count()
    if current == threads:
        return
    if _PROGRAMS_LOADED:
        raise ValueError(f"threads {threads}: ExecuTorch's thread pool (one per process) already runs "
                         f"loaded programs on {current} thread(s) and cannot be resized; use "
                         f"threads={current} or a new process")
    with _native_log_off():
        portable_lib._unsafe_reset_threadpool(threads)


_CIA_OPS: dict[tuple[Any, ...], frozenset[Any]] = {}
"""The CompositeImplicitAutograd operators torch.export may preserve, per set of registered operators."""


@contextmanager
def _cia_ops_memo() -> Iterator[None]:
    """torch.export's list of CompositeImplicitAutograd operators computed once per set of registered
    operators while lowering (torch lists them anew three times per program, a third of a layer's
    lowering; it cannot cache them itself because new operators may be registered at any time, so the
    memo is keyed on the registered operators and only lives inside this context). Without the private
    functions it wraps (another torch), nothing changes."""
    try:
        import torch.export.decomp_utils as decomp_utils
        import torch.export.exported_program as exported_program

        original = exported_program._collect_all_valid_cia_ops
        registrations = torch._C._dispatch_get_registrations_for_dispatch_key
    except (ImportError, AttributeError):
        yield
        return

    def memo() -> Any:
        try:
            key = (tuple(torch.ops._dir), len(registrations("CompositeImplicitAutograd")))
        except (AttributeError, RuntimeError, TypeError):  # another torch: no memo
            return original()
        if key not in _CIA_OPS:
            _CIA_OPS[key] = frozenset(original())
        return _CIA_OPS[key]

    patched = [m for m in (exported_program, decomp_utils) if hasattr(m, "_collect_all_valid_cia_ops")]
    saved = [m._collect_all_valid_cia_ops for m in patched]
    for m in patched:
        m._collect_all_valid_cia_ops = memo  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for m, f in zip(patched, saved, strict=True):
            m._collect_all_valid_cia_ops = f  # type: ignore[attr-defined]


def _partitioners() -> list[Any]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return [XnnpackPartitioner()]


def _dynamic_shapes(args: tuple[torch.Tensor, ...], batch: bool, length: bool) -> tuple[dict[int, Any], ...] | None:
    """``torch.export`` dynamic shapes: batch (dim 0) up to :data:`MAX_BATCH`, length (dim 2) up to
    :data:`DYNAMIC_MAX_LENGTH`, the same symbol for every input."""
    if not (batch or length):
        return None
    dims: dict[int, Any] = {}
    if batch:
        dims[0] = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    if length:
        dims[2] = torch.export.Dim("length", min=2, max=DYNAMIC_MAX_LENGTH)
    return tuple(dict(dims) for _ in args)


def lower(module: nn.Module, inputs: Sequence[torch.Tensor], *, dynamic_batch: bool = False,
          dynamic_length: bool = False) -> Any:
    """``module`` exported on ``inputs`` and lowered with the XNNPACK partitioner: the
    ``EdgeProgramManager`` (``.to_executorch().buffer`` is the ``.pte``; its graph holds the
    delegation). Dynamic dimensions as in :func:`pte_bytes`.

    Taught in: notebooks/11_deployment.
    """
    from executorch.exir import to_edge_transform_and_lower

    module.eval()
    args = tuple(inputs)
    with _quiet(), _cia_ops_memo():
        program = torch.export.export(module, args, dynamic_shapes=_dynamic_shapes(args, dynamic_batch,
                                                                                      dynamic_length))
        return to_edge_transform_and_lower(program, partitioner=_partitioners())


def pte_bytes(module: nn.Module, inputs: Sequence[torch.Tensor], *, dynamic_batch: bool = False,
              dynamic_length: bool = False) -> bytes:
    """The ``.pte`` program of ``module`` traced on ``inputs``, XNNPACK-delegated, FP32.

    ``dynamic_batch`` leaves the first dimension free up to :data:`MAX_BATCH`,
    ``dynamic_length`` the last (a layer's sequence) up to :data:`DYNAMIC_MAX_LENGTH`;
    otherwise the shapes of ``inputs`` are fixed.

    Taught in: notebooks/11_deployment.
    """
    edge = lower(module, inputs, dynamic_batch=dynamic_batch, dynamic_length=dynamic_length)
    with _quiet():
        return bytes(edge.to_executorch().buffer)


def int8_pte_bytes(module: nn.Module, example: torch.Tensor, calibration: Any, *,
                   per_channel: bool = True) -> bytes:
    """The ``.pte`` of ``module`` quantised to INT8 by XNNPACK's own quantiser, batch 1.

    PT2E post-training quantisation: ``XNNPACKQuantizer`` with the symmetric
    configuration (per-channel weights when ``per_channel``), observers run on each
    window of ``calibration`` (an ``(n, features, lookback)`` array, e.g.
    :func:`hwnas.deploy.quantize.calibration_windows`), then converted and lowered,
    so XNNPACK runs the quantised convolutions and products in INT8.

    Taught in: notebooks/11_deployment.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    windows = torch.as_tensor(calibration, dtype=torch.float32)
    if windows.dim() != 3 or windows.shape[0] < 1:
        raise ValueError(f"calibration must be an (n, features, lookback) array with n >= 1, "
                         f"got shape {tuple(windows.shape)}")
    args = (torch.as_tensor(example, dtype=torch.float32)[:1],)
    module.eval()
    with _quiet():
        captured = torch.export.export(module, args).module()
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))
        prepared = prepare_pt2e(captured, quantizer)
        with torch.no_grad():
            for i in range(windows.shape[0]):
                prepared(windows[i:i + 1])
        converted = convert_pt2e(prepared)
        program = torch.export.export(converted, args)
        edge = to_edge_transform_and_lower(program, partitioner=_partitioners())
        return bytes(edge.to_executorch().buffer)


@dataclass(frozen=True)
class DelegationRow:
    """One op type of a lowered program: how many nodes XNNPACK runs and how many fall back.

    ``op`` is ExecuTorch's name (``aten_convolution_default``); ``delegated`` counts
    its nodes inside XNNPACK subgraphs, ``portable`` those left to the portable
    kernels; ``runs_in`` says ``"XNNPACK"``, ``"portable"`` or ``"both"``.

    Taught in: notebooks/11_deployment.
    """

    op: str
    delegated: int
    portable: int

    @property
    def runs_in(self) -> str:
        """Where this op type runs: XNNPACK, the portable kernels, or both."""
        if self.portable == 0:
            return "XNNPACK"
        return "portable" if self.delegated == 0 else "both"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (with ``runs_in``)."""
        return {**asdict(self), "runs_in": self.runs_in}


def _rows(edge: Any) -> list[DelegationRow]:
    """Per op type of a lowered program's graph: delegated and portable node counts."""
    from executorch.devtools.backend_debug import get_delegation_info

    frame = get_delegation_info(edge.exported_program().graph_module).get_operator_delegation_dataframe()
    rows = []
    for record in frame.to_dict("records"):
        name = str(record["op_type"])
        if name == "Total" or name in PLUMBING_OPS:
            continue
        rows.append(DelegationRow(name, int(record["occurrences_in_delegated_graphs"]),
                                  int(record["occurrences_in_non_delegated_graphs"])))
    return rows


def delegation_table(model: Any, example: Any = None) -> list[DelegationRow]:
    """Which op types of ``model`` XNNPACK runs and which fall back to the portable kernels.

    ``model``: an Architecture (built with seed 0), a torch module with ``example``
    inputs (or an ``.arch``), or an already lowered program (:func:`lower`). Read
    from the lowered graph's delegation info (``executorch.devtools.backend_debug``);
    plumbing nodes (:data:`PLUMBING_OPS`) are left out. Sorted by op name.

    Taught in: notebooks/11_deployment.
    """
    from ..architecture import Architecture
    from ..model import build_model, example_input

    if hasattr(model, "exported_program"):
        return sorted(_rows(model), key=lambda r: r.op)
    module = build_model(model, seed=0) if isinstance(model, Architecture) else model
    if not isinstance(module, nn.Module):
        raise ValueError(f"model must be an Architecture, a torch.nn.Module or a lowered program, "
                         f"got {type(model).__name__}")
    if example is None:
        example = example_input(module)
    inputs = tuple(example) if isinstance(example, (tuple, list)) else (example,)
    return sorted(_rows(lower(module, inputs)), key=lambda r: r.op)


def space_delegation(space: Any) -> list[DelegationRow]:
    """:func:`delegation_table` summed over one coverage model per head type of ``space``
    (:func:`hwnas.deploy.coverage.coverage_architecture`: every op of the space, both skip kinds).

    Taught in: notebooks/11_deployment.
    """
    from dataclasses import replace

    from .coverage import coverage_architecture

    base = coverage_architecture(space)
    totals: dict[str, list[int]] = {}
    for head in space.head_types:
        for row in delegation_table(replace(base, head=head)):
            counts = totals.setdefault(row.op, [0, 0])
            counts[0] += row.delegated
            counts[1] += row.portable
    return [DelegationRow(op, d, p) for op, (d, p) in sorted(totals.items())]


class _Loaded:
    """A loaded program's ``forward`` method, holding the program: a method whose program is
    freed reads freed memory (a segmentation fault), so the two live and die together."""

    def __init__(self, data: bytes | str | os.PathLike[str], threads: int = 1) -> None:
        from executorch.runtime import Runtime

        global _PROGRAMS_LOADED
        set_threads(threads)
        _PROGRAMS_LOADED = True
        source = data if isinstance(data, bytes) else Path(data)
        with _quiet():
            self.program = Runtime.get().load_program(source)
            self.method = self.program.load_method("forward")
        self.metadata = self.method.metadata

    def execute(self, inputs: Sequence[torch.Tensor]) -> Sequence[Any]:
        """``forward(*inputs)``: the list of outputs."""
        return self.method.execute(inputs)


def _load_method(data: bytes | str | os.PathLike[str], threads: int = 1) -> _Loaded:
    """The ``forward`` method of a fresh program loaded from ``.pte`` bytes or a file (with its program),
    the thread pool sized ``threads`` first (:func:`set_threads`)."""
    return _Loaded(data, threads)


def _method_inputs(method: Any, batch: int, seed: int) -> list[torch.Tensor]:
    """Seeded standard-normal inputs of a loaded method's input shapes (batch set to ``batch``)."""
    meta = method.metadata
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(meta.num_inputs()):
        shape = list(meta.input_tensor_meta(i).sizes())
        if shape:
            shape[0] = batch
        out.append(torch.randn(*shape, generator=gen))
    return out


class PteModule(nn.Module):
    """A torch-looking wrapper of a ``.pte`` program: ``forward(*x)`` runs it in ExecuTorch.

    Lets the export check and the proxy task's helpers score a lowered model
    unchanged (the output comes back as a float32 tensor).

    Taught in: notebooks/11_deployment.
    """

    def __init__(self, program: bytes | str | os.PathLike[str], threads: int = 1) -> None:
        super().__init__()
        self.method = _load_method(program, threads)
        sizes = self.method.metadata.input_tensor_meta(0).sizes()
        self.max_batch = int(sizes[0]) if len(sizes) else 1

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run the program; a batch larger than its planned input (``max_batch``) runs in chunks."""
        args = [x.detach().to(torch.float32).contiguous() for x in inputs]
        n, step = int(args[0].shape[0]), max(self.max_batch, 1)
        outs = [self.method.execute([a[i:i + step] for a in args])[0] for i in range(0, n, step)]
        return torch.cat(outs).to(torch.float32)


class ExecuTorchRuntime:
    """ExecuTorch with the XNNPACK backend on this CPU, ``threads`` threads in its pool
    (one pool per process: see :func:`set_threads`).

    :meth:`prepare` lowers the module for the inputs' shapes (see the module
    docstring for the reuse of one length-dynamic program per table layer),
    loads it into a program of its own and returns a callable running
    ``Method.execute`` on the inputs made once. :meth:`null_callable` is the
    runtime's fixed cost of a call (a one-element ReLU, delegated), which the
    table harness takes off each entry (:func:`hwnas.latency.lut.per_call_callable`).

    Taught in: notebooks/11_deployment.
    """

    name = "executorch"

    def __init__(self, threads: int = 1, *, cache_size: int = 4096) -> None:
        self.threads = require_int(threads, "threads", 1)
        set_threads(self.threads)  # a size the process's loaded programs cannot take is refused here
        self.cache_size = require_int(cache_size, "cache_size", 0)
        self._programs: dict[tuple[Any, ...], bytes] = {}

    def version(self) -> str:
        """``"executorch 1.5.1+cpu (XNNPACK)"``."""
        return f"{executorch_version()} (XNNPACK)"

    def program(self, module: nn.Module, inputs: Sequence[torch.Tensor]) -> bytes:
        """The ``.pte`` of ``module`` for ``inputs``, lowered once per distinct table layer.

        A layer without a length-dependent parameter (hwnas's convolution, fully
        connected and pooling layers; the fingerprint of
        :class:`~hwnas.deploy.runtimes.OnnxRuntime`) is lowered once with its length
        dynamic and the bytes reused for every length up to :data:`DYNAMIC_MAX_LENGTH`
        (up to ``cache_size`` programs); everything else is lowered for its shapes, once
        per module structure, weights and shapes (a table's validation models timed twice).
        """
        if self.cache_size == 0:
            return pte_bytes(module, inputs)
        try:
            from .runtimes import _fingerprint  # ONNX Runtime's layer key (hwnas[deploy])
        except ImportError:  # ExecuTorch alone (hwnas[mobile]): every shape lowered on its own
            key = None
        else:
            key = _fingerprint(module, inputs)
        fits = all(x.dim() == 3 and 2 <= x.shape[2] <= DYNAMIC_MAX_LENGTH for x in inputs)
        dynamic = key is not None and fits
        if key is None or not dynamic:  # the same module (same weights) at the same shapes: one program
            key = ("static", repr(module), tuple((n, tuple(t.shape), hash(t.detach().cpu().numpy().tobytes()))
                                                 for n, t in module.state_dict().items()),
                   tuple(tuple(x.shape) for x in inputs))
        if key not in self._programs:
            if len(self._programs) >= self.cache_size:
                self._programs.pop(next(iter(self._programs)))
            try:
                self._programs[key] = pte_bytes(module, inputs, dynamic_length=dynamic)
            except Exception:  # noqa: BLE001 - a layer torch.export cannot keep dynamic: its own program
                if not dynamic:
                    raise
                return pte_bytes(module, inputs)
        return self._programs[key]

    def _callable(self, method: Any, inputs: Sequence[torch.Tensor]) -> Callable[[], Any]:
        args = [torch.as_tensor(x).detach().contiguous() for x in inputs]
        execute = method.method.execute  # the callable holds ``method`` (and its program) alive

        def run() -> Any:
            return execute(args)

        run.loaded = method  # type: ignore[attr-defined]
        return run

    def prepare(self, module: Any, inputs: Sequence[Any]) -> Callable[[], Any]:
        """Lower (see :meth:`program`), load, and return a callable running it on ``inputs``."""
        tensors = tuple(torch.as_tensor(v, dtype=torch.float32) for v in inputs)
        return self._callable(_load_method(self.program(module, tensors), self.threads), tensors)

    def prepare_pte(self, program: bytes | str | os.PathLike[str], batch: int = 1,
                    seed: int = 0) -> Callable[[], Any]:
        """A callable running a ``.pte`` (bytes or file) on seeded inputs of ``batch``."""
        method = _load_method(program, self.threads)
        return self._callable(method, _method_inputs(method, batch, seed))

    def null_callable(self, shape: Sequence[int] = (1, 1, 1)) -> Callable[[], Any]:
        """A callable running a one-element delegated ReLU: the runtime's fixed cost of one call.

        Every isolated table entry pays it once (the method call, the XNNPACK
        delegate's dispatch, the output copy), a whole model also only once.
        """
        return self.prepare(nn.ReLU(), (torch.zeros(tuple(shape)),))

    def __repr__(self) -> str:
        return f"ExecuTorchRuntime(threads={self.threads})"


register_runtime("executorch", ExecuTorchRuntime)
