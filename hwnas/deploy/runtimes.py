"""ONNX Runtime as a :class:`hwnas.runtime.Runtime`: the runtime a model is served from.

Taught in: notebooks/11_deployment.

:class:`OnnxRuntime` exports a torch module to ONNX in memory
(:func:`hwnas.deploy.onnx_graph.onnx_bytes`, the TorchScript-based exporter at
opset :data:`hwnas.deploy.onnx_graph.OPSET`), builds an ``InferenceSession`` on the
CPU execution provider with ``intra_op_num_threads=threads``,
``inter_op_num_threads=1``, sequential execution and every graph optimisation
on, and returns a zero-argument callable that runs the session on numpy
inputs made once, before any timing. Importing this module registers the
runtime as ``"onnxruntime"`` (:func:`hwnas.runtime.get_runtime` imports it on
demand).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from ..checks import require_int
from ..runtime import register_runtime
from .onnx_graph import onnx_bytes

__all__ = ["OnnxRuntime", "OrtModule", "session_options", "make_session", "session_inputs", "session_callable"]


def session_options(threads: int = 1) -> ort.SessionOptions:
    """Session options of every hwnas ONNX Runtime session: fixed threads, sequential, optimised.

    Taught in: notebooks/11_deployment.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = require_int(threads, "threads", 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no warnings about unused initialisers
    return options


def make_session(model: bytes | str | Path, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for ONNX bytes or an ``.onnx`` file.

    Taught in: notebooks/11_deployment.
    """
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, session_options(threads), providers=["CPUExecutionProvider"])


def session_inputs(session: ort.InferenceSession, batch: int = 1, seed: int = 0) -> list[np.ndarray]:
    """Seeded standard-normal inputs matching a session's inputs, dynamic dims set to ``batch``.

    Taught in: notebooks/11_deployment.
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for meta in session.get_inputs():
        shape = [dim if isinstance(dim, int) else batch for dim in meta.shape]
        dtype = np.float16 if meta.type == "tensor(float16)" else np.float32
        arrays.append(rng.standard_normal(shape).astype(dtype))
    return arrays


def _as_arrays(inputs: Sequence[Any]) -> list[np.ndarray]:
    """Contiguous numpy copies of torch tensors (arrays pass through)."""
    out = []
    for value in inputs:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        out.append(np.ascontiguousarray(value))
    return out


def session_callable(session: ort.InferenceSession, inputs: Sequence[Any]) -> Callable[[], Any]:
    """A zero-argument callable running ``session`` on ``inputs`` (made into arrays now, once).

    Taught in: notebooks/11_deployment.
    """
    names = [meta.name for meta in session.get_inputs()]
    arrays = _as_arrays(inputs)
    if len(arrays) != len(names):
        raise ValueError(f"inputs: the model takes {len(names)} input(s) {names}, got {len(arrays)}")
    feed = dict(zip(names, arrays))
    outputs = [meta.name for meta in session.get_outputs()]
    # The binding's own run: the public ``session.run`` re-validates the feed on every
    # call (about 3 µs here), which a served model checked once does not pay.
    inner = getattr(session, "_sess", None)
    if inner is None:  # pragma: no cover - another onnxruntime layout
        return lambda: session.run(outputs, feed)
    options = ort.RunOptions()
    run = inner.run
    return lambda: run(outputs, feed, options)


def _fingerprint(module: nn.Module, inputs: Sequence[torch.Tensor]) -> tuple[Any, ...] | None:
    """A key equal for the same layer at different sequence lengths; None when not reusable.

    Only hwnas's convolution, fully connected and pooling layers qualify: their
    traced graphs hold no length. Attention (its reshapes) and the heads (the
    last step's index, the flattened width) are traced with the length fixed,
    so they are exported for each shape. The key holds the module's structure,
    every weight's bytes, and the inputs' batch and channels.
    """
    from ..model import Layer, SelfAttention

    if not isinstance(module, Layer) or any(isinstance(m, SelfAttention) for m in module.modules()):
        return None
    if not all(isinstance(x, torch.Tensor) and x.dim() == 3 for x in inputs):
        return None
    weights = tuple((name, tuple(t.shape), hash(t.detach().cpu().numpy().tobytes()))
                    for name, t in module.state_dict().items())
    return (repr(module), weights, tuple((x.shape[0], x.shape[1], str(x.dtype)) for x in inputs))


class OnnxRuntime:
    """ONNX Runtime on the CPU, ``threads`` intra-op threads (see the module docstring).

    Taught in: notebooks/11_deployment.
    """

    name = "onnxruntime"

    def __init__(self, threads: int = 1, *, dynamic_batch: bool = False, cache_size: int = 4096) -> None:
        self.threads = require_int(threads, "threads", 1)
        self.dynamic_batch = bool(dynamic_batch)
        self.cache_size = require_int(cache_size, "cache_size", 0)
        self._graphs: dict[tuple[Any, ...], bytes] = {}

    def version(self) -> str:
        """``"onnxruntime 1.31.1"``."""
        return f"onnxruntime {ort.__version__}"

    def graph(self, module: nn.Module, inputs: Sequence[torch.Tensor]) -> bytes:
        """The ONNX graph of ``module`` for ``inputs``, exported once per distinct layer.

        A lookup table times the same layer (same module, same weights) at several
        sequence lengths; the graph of a module without a length-dependent
        parameter is exported once with the length dimension free and reused
        (up to ``cache_size`` graphs), which divides the export work of a table
        by the number of lengths. Everything else is exported for its shapes.
        """
        key = _fingerprint(module, inputs)
        if key is None or self.cache_size == 0:
            return onnx_bytes(module, inputs, dynamic_batch=self.dynamic_batch)
        if key not in self._graphs:
            if len(self._graphs) >= self.cache_size:
                self._graphs.pop(next(iter(self._graphs)))
            self._graphs[key] = onnx_bytes(module, inputs, dynamic_batch=self.dynamic_batch, dynamic_length=True)
        return self._graphs[key]

    def session(self, module: nn.Module, inputs: Sequence[torch.Tensor]) -> ort.InferenceSession:
        """Export ``module`` for ``inputs`` (see :meth:`graph`) and open a session on it."""
        return make_session(self.graph(module, inputs), self.threads)

    def prepare(self, module: Any, inputs: Sequence[Any]) -> Callable[[], Any]:
        """Export, open a session, and return a callable running it on ``inputs``."""
        tensors = tuple(torch.as_tensor(v) for v in inputs)
        return session_callable(self.session(module, tensors), tensors)

    def prepare_onnx(self, model: bytes | str | Path, batch: int = 1, seed: int = 0) -> Callable[[], Any]:
        """A callable running an exported model (bytes or file) on seeded inputs of ``batch``."""
        session = make_session(model, self.threads)
        return session_callable(session, session_inputs(session, batch, seed))

    def null_callable(self, shape: Sequence[int] = (1, 32, 32)) -> Callable[[], Any]:
        """A callable running an identity graph: the runtime's fixed cost of one call.

        Every table entry timed in this runtime contains this cost once, a whole
        model also only once; subtract it from the entries before summing them.
        """
        x = torch.zeros(tuple(shape))
        return self.prepare(nn.Identity(), (x,))

    def __repr__(self) -> str:
        return f"OnnxRuntime(threads={self.threads})"


class OrtModule(nn.Module):
    """A torch-looking wrapper of an ONNX Runtime session: ``forward(x)`` runs the session.

    Lets code written for torch modules (the proxy task's prediction helpers,
    the export checks) score an exported or quantised model unchanged. The
    session's outputs come back as float32 tensors; a float16 model gets its
    inputs cast to float16.

    Taught in: notebooks/11_deployment.
    """

    def __init__(self, model: bytes | str | Path, threads: int = 1) -> None:
        super().__init__()
        self.session = make_session(model, threads)
        meta = self.session.get_inputs()
        self.input_names = [m.name for m in meta]
        self.input_dtypes = [np.float16 if m.type == "tensor(float16)" else np.float32 for m in meta]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        feed = {name: np.ascontiguousarray(x.detach().cpu().numpy().astype(dtype))
                for name, x, dtype in zip(self.input_names, inputs, self.input_dtypes)}
        out = self.session.run(None, feed)[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


register_runtime("onnxruntime", OnnxRuntime)
