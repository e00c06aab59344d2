"""The ONNX graph of a torch module, in memory: what export writes and ONNX Runtime runs.

Taught in: notebooks/11_deployment.

Both :mod:`hwnas.deploy.export` (which writes the file after checking it in ONNX
Runtime) and :mod:`hwnas.deploy.runtimes` (which serves a module from its graph)
start from these bytes, so they live here, below both.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["OPSET", "onnx_bytes"]

OPSET = 17
"""The ONNX opset of every exported model (ONNX Runtime 1.31 runs opsets up to 23)."""


def _input_names(count: int) -> list[str]:
    """``["x"]`` for one input, ``["x0", "x1", ...]`` for several."""
    return ["x"] if count == 1 else [f"x{i}" for i in range(count)]


def _output_rank(module: nn.Module, args: tuple[torch.Tensor, ...]) -> int:
    """Number of dimensions of ``module(*args)``."""
    with torch.no_grad():
        return int(module(*args).dim())


def onnx_bytes(module: nn.Module, inputs: Sequence[torch.Tensor], *, dynamic_batch: bool = True,
               dynamic_length: bool = False, opset: int = OPSET) -> bytes:
    """The ONNX model of ``module`` traced on ``inputs`` (TorchScript-based exporter, in memory).

    ``dynamic_batch`` leaves the first dimension of every input and of the
    output free, ``dynamic_length`` the last dimension of every input and of the
    output (for a layer, whose output is a sequence); otherwise the shapes of
    ``inputs`` are fixed in the graph.

    Taught in: notebooks/11_deployment.
    """
    module.eval()
    args = tuple(inputs)
    names = _input_names(len(args))
    axes: dict[str, dict[int, str]] | None = None
    if dynamic_batch or dynamic_length:
        axes = {name: {} for name in [*names, "y"]}
        for name in axes:
            if dynamic_batch:
                axes[name][0] = "batch"
            if dynamic_length and (name != "y" or _output_rank(module, args) == 3):
                axes[name][2] = "length" if name != "y" else "out_length"
    buffer = io.BytesIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tracing runs the model once: small ops, no thread pool wanted
    try:
        with warnings.catch_warnings():
            # the legacy-exporter notice and the tracer's note on the input shape check
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, buffer, dynamo=False, opset_version=opset,  # type: ignore[arg-type]
                              input_names=names, output_names=["y"], dynamic_axes=axes)
    finally:
        torch.set_num_threads(threads)
    return buffer.getvalue()
