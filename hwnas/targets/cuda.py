"""Measuring a real CUDA device with CUDA events: never run on the course machines.

Taught in: notebooks/05_hardware_targets.
"""

from __future__ import annotations

import torch

from ..hardware import OVERHEAD_OP, DeviceType, HardwareProfile, OpSpec
from .gpu import GpuSpec


# --------------------------------------------------------------------------- CUDA measurement
# UNTESTED HERE: the course machines have no GPU. hwnas.latency's harness times
# on the CPU only, so this path times each key on the current CUDA device with
# CUDA events (same modules as the CPU tables: hwnas.latency.op_module), lazily
# the first time a key is asked for and memoised, so predict_latency works for
# any architecture and tabulate(space) fills a table to save.


def _cuda_time_us(op: OpSpec, precision: str, repeats: int) -> float:
    """Median µs of ``repeats`` CUDA-event-timed runs of ``op`` (after warm-up)."""
    if op.op == OVERHEAD_OP:
        raise NotImplementedError("no per-inference overhead entry for a measured GPU")
    dtype = {"fp32": torch.float32, "fp16": torch.float16}.get(precision)
    if dtype is None:
        raise ValueError(f"measured GPU profiles support precision fp32 or fp16, got {precision!r}")
    from ..latency import op_module  # the same modules the CPU tables time

    device = torch.device("cuda")
    module, inputs = op_module(op)
    module = module.to(device=device, dtype=dtype).eval()
    args = tuple(t.to(device=device, dtype=dtype) for t in inputs)
    times = []
    with torch.inference_mode():
        for _ in range(10):
            module(*args)
        torch.cuda.synchronize()
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            module(*args)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) * 1e3)  # ms -> µs
    times.sort()
    return times[len(times) // 2]


def measured_gpu_profile(spec: GpuSpec, precision: str, repeats: int) -> HardwareProfile:
    """A measured profile of the current CUDA device (untested on the course machines).

    torch cannot query a card's peak FLOP/s, so ``spec``'s figure stands in for it.

    Taught in: notebooks/05_hardware_targets.
    """
    if not torch.cuda.is_available():
        raise ValueError("gpu_profile(measure=True) needs a CUDA device, and torch sees none; "
                         "use measure=False for the analytical roofline model")
    cache: dict[OpSpec, float] = {}

    def measured(op: OpSpec) -> float:
        if op not in cache:
            cache[op] = _cuda_time_us(op, precision, repeats)
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
                    "cuda": torch.version.cuda, "repeats": repeats,
                    "peak_flops_from": f"{spec.name} datasheet (not measured)",
                    "method": "median of CUDA-event timings per key, after 10 warm-up runs"},
        is_model=False,
        latency_model=measured,
    )


__all__ = ["measured_gpu_profile"]
