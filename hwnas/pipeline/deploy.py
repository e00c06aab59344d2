"""What the pipeline deploys: the precisions per target, the one kept, and side-by-side latencies.

Taught in: notebooks/12_capstone.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from ..architecture import Architecture
    from ..latency.spec import TimingSpec
    from ..proxy.task import ProxyTask

__all__ = ["PRECISIONS_BY_TARGET", "QUANT_MIN_SPEEDUP", "QUANT_MAX_SCORE_LOSS", "cpu_runtime", "deploy_precisions",
           "has_executorch", "has_onnxruntime", "side_by_side_latency"]

QUANT_MIN_SPEEDUP = 1.05
"""A lower precision replaces FP32 on the CPU only when at least this much faster in ONNX Runtime."""
QUANT_MAX_SCORE_LOSS = 0.01
"""... and its validation score is at most this much lower."""


def has_onnxruntime() -> bool:
    """Whether ONNX Runtime is installed (``pip install hwnas[deploy]``).

    Taught in: notebooks/12_capstone.
    """
    return importlib.util.find_spec("onnxruntime") is not None


def has_executorch() -> bool:
    """Whether ExecuTorch is installed (``pip install hwnas[mobile]``).

    Taught in: notebooks/12_capstone.
    """
    return importlib.util.find_spec("executorch") is not None


def cpu_runtime(quick: bool = False) -> tuple[str, str]:
    """The runtime the CPU (phone-class) plan measures its table and SLA in, and why.

    ExecuTorch with XNNPACK, what a phone app ships, when it is installed and the run
    is not ``quick``; a quick run (tests, the capstone chapter) uses ONNX Runtime:
    ExecuTorch lowers every distinct layer of the table in about 1-2 s on a quiet
    core (481 of them in the mobile space, several times slower under load), which
    a two-minute chapter cannot afford (``benchmarks/bench_toolchains.py`` measures
    the ExecuTorch table). Without either, eager PyTorch.

    Taught in: notebooks/12_capstone.
    """
    if has_executorch() and not quick:
        return "executorch", "ExecuTorch with XNNPACK, the phone's runtime"
    why = ("a quick run: ExecuTorch lowers each distinct layer in 1-2 s, too slow for it"
           if has_executorch() else "ExecuTorch is not installed")
    if has_onnxruntime():
        return "onnxruntime", f"ONNX Runtime ({why})"
    return "eager", f"eager PyTorch ({why}; ONNX Runtime is not installed either)"


def side_by_side_latency(modules: Mapping[str, tuple[nn.Module, Any]],
                         timing: TimingSpec | None = None) -> dict[str, dict[str, float]]:
    """Fastest call (µs) of each ``name: (module, input)`` in eager PyTorch and ONNX Runtime.

    One thread, every callable timed round-robin in the same passes
    (:func:`hwnas.latency.time_round_robin`), so ratios between them are measured
    side by side, as ``timing`` says (default :attr:`TimingSpec.COMPARE`). Keys
    ``eager_us`` and ``ort_us`` (the latter only when ONNX Runtime is installed).

    Taught in: notebooks/12_capstone.
    """
    from ..latency.spec import TimingSpec
    from ..latency.timing import time_round_robin
    from ..runtime import get_runtime

    runtimes = ["eager"] + (["onnxruntime"] if has_onnxruntime() else [])
    callables = {(name, rt): get_runtime(rt, 1).prepare(module, (x,))
                 for rt in runtimes for name, (module, x) in modules.items()}
    timings = time_round_robin(callables, threads=1, timing=timing or TimingSpec.COMPARE)
    out: dict[str, dict[str, float]] = {name: {} for name in modules}
    for (name, rt), measured in timings.items():
        out[name]["eager_us" if rt == "eager" else "ort_us"] = float(measured.min_us)
    return out


PRECISIONS_BY_TARGET = {"cpu": ("fp32 onnx", "fp16 onnx", "int8 onnx (QDQ)"),
                        "gpu": ("fp32 onnx", "fp16 onnx"),
                        "fpga": ("fp32 onnx", "int8 fixed point (sim)")}
"""The precisions tried per target (names of :data:`hwnas.deploy.quantize.PRECISIONS`)."""


def deploy_precisions(target: str, model: nn.Module, arch: Architecture, task: ProxyTask, fp32: bytes,
              seed: int, timing: TimingSpec) -> tuple[list[dict[str, Any]], str, bytes | None]:
    """Each precision's validation/test score (and CPU latency); the one deployed and its ONNX bytes.

    CPU: INT8 (QDQ) or FP16 replaces FP32 when at least :data:`QUANT_MIN_SPEEDUP`
    faster in ONNX Runtime at a validation score at most :data:`QUANT_MAX_SCORE_LOSS`
    lower; GPU: FP16, FPGA: INT8 fixed point (the precisions their profiles assume).

    Taught in: notebooks/12_capstone.
    """
    from ..deploy.quantize import calibration_windows, precision_graphs, score_precisions

    windows = calibration_windows(task, arch.lookback, 256, seed)
    precisions = PRECISIONS_BY_TARGET[target]
    graphs = precision_graphs(fp32, windows, precisions)  # converted once: scored, then deployed
    results = score_precisions(model, arch, task, windows, precisions=precisions, graphs=graphs,
                               seed=seed, timing=timing)
    rows: list[dict[str, Any]] = [{"precision": r.name, "val": r.val_score, "test": r.test_score,
                                   "ort_us": r.latency_us, "size_bytes": r.size_bytes} for r in results]
    if target == "gpu":  # the GPU profile assumes FP16 tensor cores
        return rows, "fp16 onnx", graphs["fp16 onnx"]
    if target == "fpga":  # the FPGA profile assumes an INT8 datapath
        return rows, "int8 fixed point (sim)", None
    fp32_row = rows[0]
    helps = [r for r in rows[1:] if fp32_row["ort_us"] / r["ort_us"] >= QUANT_MIN_SPEEDUP
             and r["val"] >= fp32_row["val"] - QUANT_MAX_SCORE_LOSS]
    best = str(min(helps, key=lambda r: float(r["ort_us"]))["precision"]) if helps else "fp32 onnx"
    return rows, best, graphs[best]
