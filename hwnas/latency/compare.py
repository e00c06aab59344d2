"""The course's claim, measured: a lookup table beats a FLOPs fit, same models, same passes.

One function for the chapters and the benchmarks: :func:`compare_with_flops` builds
the table of a space and times ``archs`` twice *inside the same shuffled passes*
(the fastest-call estimator, the runtime's per-call cost taken off every entry, the
per-model overhead calibrated on other models), then scores the table and a
cross-fitted FLOPs fit on the first timing and the second timing against the first
(the noise floor). Load slows the table's entries and the models alike, so the
comparison holds on a busy machine where absolute numbers do not.

Taught in: notebooks/04_latency_lut (eager PyTorch), notebooks/11_deployment (ONNX Runtime).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..architecture import Architecture
from ..cost import count_flops
from ..hardware import DeviceType, HardwareProfile
from ..numerics import spearman
from ..runtime import Runtime
from ..space import SearchSpace
from .fidelity import FidelityReport, validate
from .lut import SERVER_MEMORY_BUDGET, LUTBuild, build_lut_detailed
from .spec import TimingSpec


def within(pred: Sequence[float] | np.ndarray, meas: Sequence[float] | np.ndarray, tol: float = 0.10) -> float:
    """Share of ``pred`` within ``±tol`` (a fraction) of ``meas`` (acc10 at ``tol=0.10``).

    Taught in: notebooks/04_latency_lut.
    """
    p = np.asarray(pred, dtype=float)
    m = np.asarray(meas, dtype=float)
    if p.shape != m.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"pred and meas must be non-empty 1-D arrays of one length, got {p.shape} and {m.shape}")
    if not np.all(m > 0):
        raise ValueError("meas must be positive (a latency in µs)")
    if not tol > 0:
        raise ValueError(f"tol must be > 0 (a fraction such as 0.10), got {tol!r}")
    return float(np.mean(np.abs(p - m) <= tol * m))


def spread_archs(space: SearchSpace, n: int, seed: int = 0, pool: int = 8) -> list[Architecture]:
    """``n`` architectures of ``space`` spread over its FLOPs range.

    Draws ``pool * n`` architectures (seeded), sorts them by FLOPs and keeps ``n``
    at evenly spaced ranks, so a few models cover small to large: neighbours differ
    by more than a loaded machine's noise, and a ranking can be judged.

    Taught in: notebooks/04_latency_lut.
    """
    if not isinstance(n, int) or n < 4:
        raise ValueError(f"n must be an int >= 4 (the FLOPs fit is cross-fitted), got {n!r}")
    if not isinstance(pool, int) or pool < 1:
        raise ValueError(f"pool must be an int >= 1, got {pool!r}")
    rng = np.random.default_rng(seed)
    drawn = [space.sample(rng) for _ in range(pool * n)]
    drawn.sort(key=lambda a: (count_flops(a), a.to_json()))
    picks = np.round(np.linspace(0, len(drawn) - 1, n)).astype(int)
    return [drawn[i] for i in picks]


@dataclass
class Comparison:
    """The table against a FLOPs fit on the same models, timed in the same passes.

    ``report`` scores both predictors on the first timing of each model;
    ``repeat_us`` is the second timing of the same models in the same passes, the
    noise floor no predictor can beat.

    Taught in: notebooks/04_latency_lut.
    """

    build: LUTBuild
    profile: HardwareProfile
    report: FidelityReport
    repeat_us: np.ndarray

    @property
    def repeat_acc10(self) -> float:
        """Share of models whose second timing is within ±10% of the first."""
        return within(self.repeat_us, self.report.measured_us)

    @property
    def repeat_spearman(self) -> float:
        """Spearman of the second timing with the first."""
        return spearman(self.repeat_us, self.report.measured_us)

    @property
    def table_wins(self) -> bool:
        """The course's claim: the table beats the FLOPs fit on acc10 and on Spearman."""
        r = self.report
        return r.acc10 > r.baseline_acc10 and r.spearman > r.baseline_spearman

    def figures(self) -> dict[str, Any]:
        """Headline numbers (the report's, the noise floor, the conditions that matter)."""
        c = self.build.conditions
        return {
            **self.report.figures(),
            "repeat_acc10": self.repeat_acc10,
            "repeat_spearman": self.repeat_spearman,
            "table_wins": self.table_wins,
            "runtime": c.get("runtime"),
            "seconds": round(self.build.seconds + float(c.get("validation_seconds", 0.0)), 1),
            "load_avg_1min": [c.get("load_avg_1min_start"), c.get("load_avg_1min_end")],
        }

    def summary(self) -> str:
        """The report's table, then the noise floor and the verdict."""
        c = self.build.conditions
        return "\n".join([
            self.report.summary(),
            f"{'repeatability':22}{self.repeat_acc10:>12.1%}  (second timing within ±10% of the first; "
            f"Spearman {self.repeat_spearman:.3f})",
            f"same {self.report.n} models, same {self.build.timing.passes} shuffled passes, fastest call, "
            f"{c.get('runtime')}, load {c.get('load_avg_1min_start')} -> {c.get('load_avg_1min_end')}: "
            f"table {'BEATS' if self.table_wins else 'does NOT beat'} the FLOPs fit on acc10 and Spearman",
        ])


def compare_with_flops(
    space: SearchSpace,
    archs: Sequence[Architecture],
    *,
    runtime: str | Runtime = "eager",
    threads: int = 1,
    batch: int = 1,
    timing: TimingSpec = TimingSpec.TABLE,
    calibration: int = 16,
    name: str | None = None,
    device_type: DeviceType | str = DeviceType.CPU,
    memory_budget_bytes: int = SERVER_MEMORY_BUDGET,
    progress: bool = False,
) -> Comparison:
    """Build ``space``'s table in ``runtime`` and score it against a FLOPs fit on ``archs``.

    The method of ``benchmarks/bench_latency.py`` and ``bench_deploy.py``:
    :func:`build_lut_detailed` times every entry, ``calibration`` models and each
    of ``archs`` twice in ``timing.passes`` shuffled passes; the profile holds the
    estimator of ``timing`` (the fastest call by default). :func:`validate` scores
    the table and the cross-fitted FLOPs fit (each model predicted by the fit on
    the others, never on itself) on the first timing.

    Taught in: notebooks/04_latency_lut.
    """
    archs = list(archs)
    if len(archs) < 4:
        raise ValueError(f"archs must hold at least 4 architectures (the FLOPs fit is cross-fitted), got {len(archs)}")
    build = build_lut_detailed(space, threads, batch, progress, timing=timing, calibration=calibration,
                               validation=archs + archs, runtime=runtime)
    profile = build.profile(name, device_type=device_type, memory_budget_bytes=memory_budget_bytes)
    first = build.validation_timings[: len(archs)]
    second = build.validation_timings[len(archs):]
    report = validate(profile, archs, timings=first, runtime=runtime, timing=timing)
    repeat = np.array([t.estimate(timing.estimator) for t in second])
    return Comparison(build, profile, report, repeat)


__all__ = ["Comparison", "compare_with_flops", "spread_archs", "within"]
