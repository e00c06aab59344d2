"""Runtimes: what actually executes a model, so that latency is measured where it is paid.

Taught in: notebooks/04_latency_lut (eager PyTorch) and notebooks/11_deployment
(ONNX Runtime).

A latency table is only as good as its match with the runtime the model is
deployed on: the same network runs several times faster in ONNX Runtime than in
eager PyTorch at batch 1, and the order of two models can flip. Every timing in
hwnas therefore goes through a :class:`Runtime`, which turns a module and its
example inputs into a zero-argument callable that runs one inference; the
timing harness, the lookup-table builder, :func:`hwnas.validate` and the SLA
report all time those callables.

Runtimes are registered by name (:func:`register_runtime`, :func:`get_runtime`),
so a profile records which runtime it was measured in and the command line can
take ``--runtime NAME``. ``"eager"`` is built in; ``"onnxruntime"`` (the server)
and ``"executorch"`` (ExecuTorch with XNNPACK, the phone) are registered by
:mod:`hwnas.deploy` when their optional dependencies are installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

_RUNTIMES: dict[str, Callable[..., Runtime]] = {}
# Runtimes whose module registers them on import (kept light: imported only when asked for).
_PROVIDERS: dict[str, str] = {"onnxruntime": "hwnas.deploy.runtimes", "executorch": "hwnas.deploy.executorch"}


__all__ = ["EagerRuntime", "Runtime", "available_runtimes", "get_runtime", "register_runtime"]


@runtime_checkable
class Runtime(Protocol):
    """Turns a torch module and example inputs into a callable running one inference.

    ``name`` and ``version`` go into the recorded conditions of every profile
    and report measured with it; ``threads`` is the intra-op thread count the
    runtime uses (eager PyTorch's is set by the harness instead).

    Taught in: notebooks/11_deployment.
    """

    name: str
    threads: int

    def version(self) -> str:
        """The runtime's version string, e.g. ``"torch 2.13.0"``."""
        ...

    def prepare(self, module: Any, inputs: Sequence[Any]) -> Callable[[], Any]:
        """A zero-argument callable that runs ``module(*inputs)`` in this runtime."""
        ...


class EagerRuntime:
    """Eager PyTorch under ``torch.inference_mode``: what the chapters 04-06 measure.

    Taught in: notebooks/04_latency_lut.
    """

    name = "eager"

    def __init__(self, threads: int = 1) -> None:
        from .checks import require_int

        self.threads = require_int(threads, "threads", 1)

    def version(self) -> str:
        import torch

        return f"torch {torch.__version__}"

    def prepare(self, module: Any, inputs: Sequence[Any]) -> Callable[[], Any]:
        module.eval()
        args = tuple(inputs)
        return lambda: module(*args)

    def __repr__(self) -> str:
        return f"EagerRuntime(threads={self.threads})"


def register_runtime(name: str, factory: Callable[..., Runtime]) -> None:
    """Make ``get_runtime(name, threads=...)`` build runtimes with ``factory``.

    Taught in: notebooks/11_deployment.
    """
    _RUNTIMES[name] = factory


def available_runtimes() -> list[str]:
    """Names :func:`get_runtime` accepts (providers not yet imported included).

    Taught in: notebooks/11_deployment.
    """
    return sorted(set(_RUNTIMES) | set(_PROVIDERS))


def get_runtime(runtime: str | Runtime = "eager", threads: int = 1) -> Runtime:
    """A runtime by name (``"eager"``, ``"onnxruntime"``, ``"executorch"``), or the instance passed in.

    Taught in: notebooks/11_deployment.
    """
    if not isinstance(runtime, str):
        return runtime
    if runtime not in _RUNTIMES and runtime in _PROVIDERS:
        try:
            importlib.import_module(_PROVIDERS[runtime])
        except ImportError as exc:
            extra = "mobile" if runtime == "executorch" else "deploy"
            raise ValueError(f"runtime {runtime!r} needs packages that are not installed ({exc}); "
                             f"install them with `pip install hwnas[{extra}]`") from None
    if runtime not in _RUNTIMES:
        raise ValueError(f"runtime {runtime!r} unknown; choose one of {available_runtimes()}")
    return _RUNTIMES[runtime](threads=threads)


register_runtime("eager", EagerRuntime)
