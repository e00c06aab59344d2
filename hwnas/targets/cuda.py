"""Measuring a real CUDA device with CUDA events: never run on the course machines.

Taught in: notebooks/05_hardware_targets.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ..cost import Precision
from ..hardware import DeviceType, HardwareProfile
from ..latency.ops import op_module
from ..latency.spec import Estimator, TimingSpec
from ..latency.timing import Timing
from ..opspec import OVERHEAD_OP, OpSpec
from .gpu import GpuSpec

CUDA_TIMING = TimingSpec(passes=1, target_ms=5.0, min_reps=50, max_reps=50, warmup=10, warmup_ms=0.0,
                         estimator=Estimator.MEDIAN)
"""A key on a GPU: 50 CUDA-event timings after 10 warm-up runs, their median (events time the
kernels, not the host, so the fastest call has no special standing there)."""


# --------------------------------------------------------------------------- CUDA measurement
# UNTESTED HERE: the course machines have no GPU. hwnas.latency's harness times
# on the CPU only, so this path times each key on the current CUDA device with
# CUDA events (same modules as the CPU tables: hwnas.latency.op_module), lazily
# the first time a key is asked for and memoised, so predict_latency works for
# any architecture and tabulate(space) fills a table to save.


def _event_times_us(module: nn.Module, args: tuple[torch.Tensor, ...], reps: int) -> list[float]:
    """``reps`` CUDA-event timings (µs) of ``module(*args)``, each synchronised."""
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        module(*args)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e3)  # ms -> µs
    return times


def _cuda_time_us(op: OpSpec, precision: str, timing: TimingSpec) -> float:
    """``timing.estimator`` of CUDA-event timings of ``op`` as ``timing`` says.

    At least ``timing.warmup`` runs and ``timing.warmup_ms`` of warm-up, then
    ``timing.reps_for`` the warm-up's median runs in ``timing.passes`` bursts.
    """
    if op.op == OVERHEAD_OP:
        raise NotImplementedError("no per-inference overhead entry for a measured GPU")
    dtypes: dict[str, torch.dtype] = {Precision.FP32: torch.float32, Precision.FP16: torch.float16}
    dtype = dtypes.get(precision)
    if dtype is None:
        raise ValueError(f"measured GPU profiles support precision fp32 or fp16, got {precision!r}")
    device = torch.device("cuda")
    module, inputs = op_module(op, seed=timing.seed)  # the same modules the CPU tables time
    module = module.to(device=device, dtype=dtype).eval()
    args = tuple(t.to(device=device, dtype=dtype) for t in inputs)
    with torch.inference_mode():
        warm: list[float] = []
        start = time.perf_counter()
        while len(warm) < max(timing.warmup, 1) or (time.perf_counter() - start) * 1e3 < timing.warmup_ms:
            warm.extend(_event_times_us(module, args, 1))
        reps = timing.reps_for(float(np.median(warm[len(warm) // 2:])))
        sizes = [len(chunk) for chunk in np.array_split(np.arange(reps), min(timing.passes, reps))]
        bursts = [_event_times_us(module, args, size) for size in sizes]
    return Timing.from_bursts(bursts, threads=1, batch=op.batch).estimate(timing.estimator)


def measured_gpu_profile(spec: GpuSpec, precision: str, timing: TimingSpec = CUDA_TIMING) -> HardwareProfile:
    """A measured profile of the current CUDA device (untested on the course machines).

    Each key is timed with CUDA events as ``timing`` says (:data:`CUDA_TIMING` by
    default), lazily. torch cannot query a card's peak FLOP/s, so ``spec``'s
    figure stands in for it.

    Taught in: notebooks/05_hardware_targets.
    """
    if not torch.cuda.is_available():
        raise ValueError("gpu_profile(measure=True) needs a CUDA device, and torch sees none; "
                         "use measure=False for the analytical roofline model")
    cache: dict[OpSpec, float] = {}

    def measured(op: OpSpec) -> float:
        if op not in cache:
            cache[op] = _cuda_time_us(op, precision, timing)
        return cache[op]

    props = torch.cuda.get_device_properties(0)
    return HardwareProfile(
        name=f"{props.name} {precision} (CUDA events)",
        device_type=DeviceType.GPU,
        latency_table={},
        memory_budget_bytes=int(props.total_memory),
        peak_flops=spec.peak(precision, tensor_cores=precision != "fp32"),
        parallel_branches=True,
        precision=precision,
        conditions={"device": props.name, "torch_version": torch.__version__,
                    "cuda": torch.version.cuda, **timing.record(),
                    "peak_flops_from": f"{spec.name} datasheet (not measured)",
                    "method": f"CUDA-event timings per key: {timing.describe()}"},
        is_model=False,
        latency_model=measured,
    )


__all__ = ["CUDA_TIMING", "measured_gpu_profile"]
