"""Analytical profiles: the GPU and FPGA models wrapped as HardwareProfiles, JSON round trip.

Taught in: notebooks/05_hardware_targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from ..architecture import Architecture
from ..checks import require_enum
from ..cost import Precision
from ..hardware import DeviceType, HardwareProfile
from .fpga import (
    FPGA_ASSUMPTIONS,
    FPGA_MODEL_ID,
    ZU9EG,
    FpgaSpec,
    fpga_cycle_model,
    fpga_resource_check,
    fpga_unsupported,
)
from .gpu import A100_40GB, GPU_ASSUMPTIONS, GPU_MODEL_ID, TENSOR_CORE_ALIGNMENT, GpuSpec, gpu_roofline_model


@dataclass(repr=False)  # keep HardwareProfile's short repr
class AnalyticalProfile(HardwareProfile):
    """A :class:`~hwnas.hardware.HardwareProfile` of an analytical model.

    Adds ``resource_check`` (architecture-level reasons such as the DSP slices of
    an FPGA design) to :meth:`check`, and rebuilds its model from ``conditions``
    when loaded with ``AnalyticalProfile.load`` (``HardwareProfile.load`` gives
    the table only).

    Taught in: notebooks/05_hardware_targets.
    """

    resource_check: Callable[[Architecture, int], list[str]] | None = field(default=None, repr=False)

    def check(self, arch: Architecture, batch: int = 1) -> list[str]:
        """Reasons ``arch`` is infeasible: memory, unsupported ops, then resources."""
        reasons = super().check(arch, batch)
        if self.resource_check is not None:
            reasons += self.resource_check(arch, batch)
        return reasons

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalyticalProfile:
        """Rebuild from JSON; the model callables too when ``conditions`` name a known model."""
        base = HardwareProfile.from_dict(data)
        model_id = base.conditions.get("model")
        params = base.conditions.get("parameters")
        if model_id == GPU_MODEL_ID and isinstance(params, dict):
            fresh = gpu_profile(_spec_from(GpuSpec, params), precision=base.precision, measure=False)
        elif model_id == FPGA_MODEL_ID and isinstance(params, dict):
            fresh = fpga_profile(_spec_from(FpgaSpec, params))
        else:
            return cls(**{f.name: getattr(base, f.name) for f in fields(HardwareProfile)})
        fresh.latency_table = base.latency_table
        fresh.name, fresh.conditions = base.name, base.conditions
        assert isinstance(fresh, AnalyticalProfile)  # both model constructors build one
        return fresh


def _spec_from(kind: type, params: dict[str, Any]) -> Any:
    """A GpuSpec/FpgaSpec from saved parameters (ValueError naming unknown fields)."""
    known = {f.name for f in fields(kind)}
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"{kind.__name__}: unknown parameter(s) {sorted(unknown)}")
    return kind(**params)


def gpu_profile(
    spec: GpuSpec = A100_40GB,
    precision: Precision | str = Precision.FP16,
    *,
    measure: bool | None = None,
    repeats: int = 50,
) -> HardwareProfile:
    """A GPU target: measured on this machine's CUDA device, or the roofline model.

    ``measure=None`` measures when ``torch.cuda.is_available()``, else models
    ``spec``; ``measure=False`` always models (what the chapter does, so its
    numbers are the same everywhere); ``measure=True`` requires CUDA.

    The model profile is named ``"<card> roofline model"``, has ``is_model=True``,
    ``parallel_branches=True`` (CUDA streams), the card's memory as its budget,
    and every parameter with its source in ``conditions``.

    Taught in: notebooks/05_hardware_targets.
    """
    precision = require_enum(Precision, precision, "precision")
    if measure is None:
        measure = torch.cuda.is_available()
    if measure:
        from .cuda import CUDA_TIMING, measured_gpu_profile  # never run on the course machines

        return measured_gpu_profile(spec, precision, CUDA_TIMING.replace(min_reps=repeats, max_reps=repeats))
    alignment = TENSOR_CORE_ALIGNMENT[precision]
    conditions = {
        "model": GPU_MODEL_ID,
        "kind": "analytical roofline model, not a measurement",
        "device": spec.name,
        "precision": precision,
        "tensor_core_alignment": alignment if alignment else "tensor cores not used at fp32",
        "parameters": asdict(spec),
        "sources": {"datasheet": spec.source, **GPU_ASSUMPTIONS},
    }
    return AnalyticalProfile(
        name=f"{spec.name} {precision} roofline model",
        device_type=DeviceType.GPU,
        latency_table={},
        memory_budget_bytes=spec.memory_bytes,
        peak_flops=spec.peak(precision, tensor_cores=precision != Precision.FP32),
        parallel_branches=True,
        precision=precision,
        conditions=conditions,
        is_model=True,
        latency_model=gpu_roofline_model(spec, precision),
    )


def fpga_profile(spec: FpgaSpec = ZU9EG) -> HardwareProfile:
    """An FPGA target: the INT8 dataflow cycle model of ``spec``.

    Named ``"<part> cycle model"``, ``is_model=True``, ``precision="int8"``,
    ``parallel_branches=True`` (the shortcut is a FIFO or a parallel engine),
    block RAM as the memory budget; ``unsupported`` rejects attention and
    :meth:`AnalyticalProfile.check` adds the DSP and BRAM checks.

    Taught in: notebooks/05_hardware_targets.
    """
    from ..checks import require_type

    require_type(spec, "spec", FpgaSpec, " (e.g. hwnas.ZU9EG), the fpga part")
    conditions = {
        "model": FPGA_MODEL_ID,
        "kind": "analytical cycle model, not a measurement",
        "device": spec.name,
        "precision": Precision.INT8,
        "clock_mhz": spec.clock_hz / 1e6,
        "parameters": asdict(spec),
        "sources": {"product table": spec.source, **FPGA_ASSUMPTIONS},
    }
    return AnalyticalProfile(
        name=f"{spec.name} int8 cycle model",
        device_type=DeviceType.FPGA,
        latency_table={},
        memory_budget_bytes=spec.bram_bytes,
        peak_flops=spec.peak_flops,
        parallel_branches=True,
        precision=Precision.INT8,
        conditions=conditions,
        is_model=True,
        latency_model=fpga_cycle_model(spec),
        unsupported=fpga_unsupported,
        resource_check=fpga_resource_check(spec),
    )


__all__ = ["AnalyticalProfile", "fpga_profile", "gpu_profile"]
