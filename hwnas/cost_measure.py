"""Measured cost: what torch itself counts, to check the formulas of :mod:`hwnas.cost`.

Taught in: notebooks/02_flops (FLOPs) and notebooks/03_memory (activation peak).
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections import Counter
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry


class _LiveTensorBytes(TorchDispatchMode):
    """Track bytes of tensor storages created inside the mode; remember the peak."""

    def __init__(self, preexisting: list[torch.Tensor]) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, int] = {}  # storage data_ptr -> live tensors viewing it
        self._sizes: dict[int, int] = {}
        for tensor in preexisting:  # views of these allocate nothing new
            key = tensor.untyped_storage().data_ptr()
            self._refs[key] = self._refs.get(key, 0) + 1
            self._sizes[key] = 0

    def _release(self, key: int) -> None:
        self._refs[key] -= 1
        if self._refs[key] == 0:
            self.live -= self._sizes.pop(key)
            del self._refs[key]

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key == 0:
            return
        if key not in self._refs:
            self._refs[key] = 0
            self._sizes[key] = storage.nbytes()
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self._refs[key] += 1
        weakref.finalize(tensor, self._release, key)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for item in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(item, torch.Tensor):
                self._track(item)
        return out


@contextlib.contextmanager
def countable_ops() -> Iterator[None]:
    """Run torch's reference kernels, whose matrix products ``FlopCounterMode`` sees.

    On the CPU torch runs an LSTM as one oneDNN kernel (``mkldnn_rnn_layer``) that the
    counter has no formula for (it counts 0); with oneDNN off the same layer runs as
    per-step matrix products, which it counts. Other layers count the same either way.

    Taught in: notebooks/02_flops.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note on TF32 for Intel GPUs when the flag is set
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def measure_flops(module: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of ``module(x)`` as ``torch.utils.flop_counter.FlopCounterMode`` counts them
    (under :func:`countable_ops`, so an LSTM's matrix products are seen).

    Taught in: notebooks/02_flops.
    """
    with countable_ops(), FlopCounterMode(display=False) as counter, torch.inference_mode():
        module(x)
    return int(counter.get_total_flops())


class OperatorLog(TorchDispatchMode):
    """Record each low-level (aten) operator a forward pass dispatches.

    ``values[name]`` is the number of values the operator wrote (views, which
    share their input's storage, write nothing and are left out); ``counted``
    holds the operators that ``FlopCounterMode`` counts FLOPs for. Use under
    ``torch.no_grad()`` (inference mode hides some operators).

    Taught in: notebooks/02_flops.
    """

    def __init__(self) -> None:
        super().__init__()
        self.values: Counter[str] = Counter()
        self.counted: set[str] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        first = out[0] if isinstance(out, (tuple, list)) else out
        inputs = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
        if isinstance(first, torch.Tensor) and first.untyped_storage().data_ptr() not in inputs:
            name = func.overloadpacket.__name__
            self.values[name] += first.numel()
            if func.overloadpacket in flop_registry:
                self.counted.add(name)
        return out


def measure_activation_peak(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Measured peak bytes of activations during ``model(x)`` in eager PyTorch.

    Every tensor storage the forward pass allocates is counted from its creation
    to its release (weights are not counted); the input ``x`` is added, as the
    schedule model counts it too.

    Taught in: notebooks/03_memory.
    """
    tracker = _LiveTensorBytes([x, *model.parameters(), *model.buffers()])
    with torch.inference_mode(), tracker:
        out = model(x)
    del out
    return tracker.peak + x.untyped_storage().nbytes()


__all__ = ["OperatorLog", "countable_ops", "measure_activation_peak", "measure_flops"]
