"""The plan per hardware target: its space, strategy, latency budget, batch and the rule behind them.

Taught in: notebooks/12_capstone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..hardware import DeviceType

__all__ = ["PLANS", "QUICK_SPACE", "TARGET_NAMES", "TargetPlan", "scoring_width"]

TARGET_NAMES: tuple[DeviceType, ...] = (DeviceType.CPU, DeviceType.GPU, DeviceType.FPGA)
"""The targets a pipeline serves (the phone-class ``DeviceType.MOBILE`` runs as the CPU plan)."""
QUICK_SPACE: dict[str, Any] = {"lookbacks": (32,), "depths": (2, 3)}
"""Overrides of the named space for ``quick`` runs (tests, the chapter's reduced budget)."""


@dataclass(frozen=True)
class TargetPlan:
    """How one target is searched: its space, strategy, budgets, batch and the rule behind them.

    Taught in: notebooks/12_capstone.
    """

    target: str
    space: str
    strategy: str
    latency_budget_us: float
    memory_budget: int | None
    batch: int
    rule: str
    fixed_point: str = "float"
    """How candidates are scored (:class:`hwnas.proxy.fixed_point.FixedPointMode`): ``float``, or at
    the target's fixed point (:func:`scoring_width` bits) with quantisation-aware training (``qat``) or
    the hls4ml emulation (``ptq``). The FPGA plan uses ``qat`` in every run, quick ones included, so
    the search scores the precision the part computes in (the reference's §3.1 asks an FPGA search to
    account for fixed point). What it buys, measured by ``benchmarks/bench_toolchains.py --only hls``
    (``results/toolchains_hls.txt``, section 2): over 30 random FPGA architectures (26 distinct
    models) QAT's validation scores rank the deployed hls4ml 8-bit model's slightly closer than
    float's, but the bootstrap interval of the difference includes zero (a ranking gain is not
    established), and QAT's score level is the closer to the deployed model's; QAT costs about 2.5-3x
    a float candidate, PTQ a g++ compile (30-60 s on the loaded course machine) per candidate. In a
    quick run (tests, the capstone chapter) the FBNet supernet and the fixed stages dominate, so QAT
    adds only seconds there."""

    def scoring(self, width: int | None = None) -> str:
        """How this plan's candidates are scored, in words (the run summary's line)."""
        if self.fixed_point == "float":
            return "float (FP32 training and scoring)"
        how = {"qat": "quantisation-aware training", "ptq": "the hls4ml emulation after float training"}
        bits = "fixed point" if width is None else f"{width}-bit fixed point"
        return f"{bits}, {how.get(self.fixed_point, self.fixed_point)} ({self.fixed_point})"


def scoring_width(profile: Any, default: int = 8) -> int:
    """The fixed-point width candidates are scored at: the FPGA spec's ``bits`` recorded in an
    analytical FPGA profile's conditions (:func:`hwnas.targets.profiles.fpga_profile`), else ``default``.

    Taught in: notebooks/12_capstone.
    """
    params = dict(getattr(profile, "conditions", {}) or {}).get("parameters")
    bits = params.get("bits") if isinstance(params, dict) else None
    return int(bits) if isinstance(bits, int) and bits >= 2 else default


PLANS: dict[str, TargetPlan] = {
    "cpu": TargetPlan("cpu", "mobile", "evolution", 40.0, 10 * 1024 * 1024, 1,
                      "retail app: one thread, the 10 MB app limit (reference §3.3), the table and "
                      "the SLA measured in ExecuTorch with XNNPACK, what the app ships (ONNX Runtime "
                      "in quick runs: hwnas.pipeline.deploy.cpu_runtime); 40 µs per call at p99, the "
                      "LSTM baseline's fastest call in ONNX Runtime on the course machine: the "
                      "searched model's slow calls are no slower than the LSTM's fast ones"),
    "gpu": TargetPlan("gpu", "gpu", "scaling", 150.0, None, 256,
                      "batch inference: 256 windows per call (portfolio, risk), widths in multiples "
                      "of 16 for tensor cores (reference §3.2); 150 µs per batch on the A100 model"),
    "fpga": TargetPlan("fpga", "fpga", "fbnet", 20.0, None, 1,
                       "market making: the 20 µs model share of a 50 µs decision (reference §4.1); "
                       "small kernels, ReLU, fixed skips, INT8, DSP and BRAM limits (§3.1); candidates "
                       "scored at the deployed fixed point (quantisation-aware training at the part's bits)",
                       fixed_point="qat"),
}
"""The default plan per target (every field can be overridden in :func:`run_pipeline`). The
strategies are the ones the earlier chapters found suited to each target: regularised
evolution for the measured CPU table (notebooks/07_pareto: it reaches random search's final
hypervolume in a fraction of the evaluations), compound scaling for the GPU's batch
inference (notebooks/09_efficientnet_scaling: widths kept at tensor-core multiples), FBNet
for the FPGA (notebooks/10_fbnet: one supernet run, its latency loss exact to the cycle
model, which prices every candidate)."""
