"""Fidelity: how well a profile predicts whole models, beside a FLOPs-only baseline.

Taught in: notebooks/04_latency_lut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..architecture import Architecture
from ..cost import count_flops
from ..hardware import HardwareProfile
from ..numerics import spearman
from ..runtime import Runtime, get_runtime
from .lut import model_callable
from .spec import TimingSpec
from .timing import Item, Timing, measure_conditions, run_passes


def _acc(pred: np.ndarray, meas: np.ndarray, tol: float) -> float:
    return float(np.mean(np.abs(pred - meas) <= tol * meas))


def _mape(pred: np.ndarray, meas: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - meas) / meas))


def flops_baseline(flops: np.ndarray, measured: np.ndarray,
                   folds: int = 2) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Out-of-sample predictions of the affine model ``a + b * FLOPs``.

    Cross-fitted: the architectures are split into ``folds`` interleaved parts;
    each part is predicted by the least-squares fit on the others (so no
    prediction sees its own measurement). Returns the predictions and the
    ``(a_us, b_us_per_flop)`` of each fold.

    Taught in: notebooks/04_latency_lut.
    """
    flops = np.asarray(flops, dtype=float)
    measured = np.asarray(measured, dtype=float)
    n = len(flops)
    pred = np.empty(n)
    fits = []
    index = np.arange(n)
    if n < 2 * folds:
        folds = 1
    for f in range(folds):
        test = index % folds == f
        train = ~test if folds > 1 else test
        design = np.column_stack([np.ones(train.sum()), flops[train]])
        (a, b), *_ = np.linalg.lstsq(design, measured[train], rcond=None)
        pred[test] = a + b * flops[test]
        fits.append((float(a), float(b)))
    return pred, fits


@dataclass
class FidelityReport:
    """How well a profile predicts whole-model latency, beside a FLOPs-only baseline.

    Arrays are per architecture, in the order given to :func:`validate`.
    ``baseline_us`` is the affine FLOPs model ``a + b * FLOPs``, cross-fitted on
    the same measurements (each half predicted by the fit on the other half).

    Taught in: notebooks/04_latency_lut.
    """

    profile: str
    measured_us: np.ndarray
    predicted_us: np.ndarray
    flops: np.ndarray
    baseline_us: np.ndarray
    measured_p90_us: np.ndarray
    conditions: dict[str, Any]
    baseline_fits: list[tuple[float, float]]

    @property
    def n(self) -> int:
        """Number of architectures."""
        return len(self.measured_us)

    def acc(self, tol: float = 0.10, baseline: bool = False) -> float:
        """Share of predictions within ``±tol`` of the measurement."""
        return _acc(self.baseline_us if baseline else self.predicted_us, self.measured_us, tol)

    @property
    def acc10(self) -> float:
        """Share of LUT predictions within ±10% (nn-Meter's metric)."""
        return self.acc(0.10)

    @property
    def spearman(self) -> float:
        """Spearman rank correlation of LUT predictions with measurements."""
        return spearman(self.predicted_us, self.measured_us)

    @property
    def mape(self) -> float:
        """Mean absolute percentage error of the LUT predictions (a fraction)."""
        return _mape(self.predicted_us, self.measured_us)

    @property
    def bias(self) -> float:
        """Median of predicted / measured - 1 (negative: the table under-predicts)."""
        return float(np.median(self.predicted_us / self.measured_us) - 1)

    @property
    def baseline_acc10(self) -> float:
        """acc10 of the FLOPs baseline."""
        return self.acc(0.10, baseline=True)

    @property
    def baseline_spearman(self) -> float:
        """Spearman of FLOPs with measurements (any increasing FLOPs model ranks alike)."""
        return spearman(self.flops, self.measured_us)

    @property
    def baseline_mape(self) -> float:
        """MAPE of the FLOPs baseline."""
        return _mape(self.baseline_us, self.measured_us)

    def figures(self) -> dict[str, float]:
        """The headline numbers as a dict."""
        return {
            "n_archs": self.n,
            "lut_acc10": self.acc10,
            "lut_acc5": self.acc(0.05),
            "lut_spearman": self.spearman,
            "lut_mape": self.mape,
            "lut_median_ratio": 1 + self.bias,
            "flops_acc10": self.baseline_acc10,
            "flops_acc5": self.acc(0.05, baseline=True),
            "flops_spearman": self.baseline_spearman,
            "flops_mape": self.baseline_mape,
            "flops_median_ratio": float(np.median(self.baseline_us / self.measured_us)),
            "measured_median_us": float(np.median(self.measured_us)),
        }

    def summary(self) -> str:
        """A small table: LUT and FLOPs-baseline figures side by side."""
        f = self.figures()
        lines = [
            f"fidelity of {self.profile} on {self.n} architectures "
            f"(threads {self.conditions.get('threads')}, batch {self.conditions.get('batch')}, "
            f"median measured {f['measured_median_us']:.1f} µs)",
            f"{'':22}{'LUT sum':>12}{'FLOPs (a+b·F)':>16}",
            f"{'acc10 (±10%)':22}{f['lut_acc10']:>12.1%}{f['flops_acc10']:>16.1%}",
            f"{'acc5 (±5%)':22}{f['lut_acc5']:>12.1%}{f['flops_acc5']:>16.1%}",
            f"{'Spearman rho':22}{f['lut_spearman']:>12.3f}{f['flops_spearman']:>16.3f}",
            f"{'MAPE':22}{f['lut_mape']:>12.1%}{f['flops_mape']:>16.1%}",
            f"{'median pred/meas':22}{f['lut_median_ratio']:>12.3f}{f['flops_median_ratio']:>16.3f}",
            "FLOPs baseline: affine least squares, cross-fitted on interleaved halves (out of sample)",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (figures, per-arch arrays, conditions)."""
        return {
            "profile": self.profile,
            "figures": self.figures(),
            "measured_us": self.measured_us.tolist(),
            "predicted_us": self.predicted_us.tolist(),
            "baseline_us": self.baseline_us.tolist(),
            "measured_p90_us": self.measured_p90_us.tolist(),
            "flops": self.flops.tolist(),
            "baseline_fits": self.baseline_fits,
            "conditions": self.conditions,
        }


def measure_models(
    archs: Sequence[Architecture],
    threads: int = 1,
    batch: int = 1,
    *,
    timing: TimingSpec = TimingSpec.MODELS,
    progress: bool = False,
    runtime: str | Runtime = "eager",
) -> list[Timing]:
    """End-to-end :class:`Timing` of each architecture's model, run in ``runtime``.

    The same harness as the table (:func:`~hwnas.latency.run_passes`):
    ``timing.passes`` shuffled passes of round-robin groups, about
    ``timing.target_ms`` of timed calls per model in all. ``timing.seed`` seeds
    the models' weights; the passes are shuffled with ``timing.seed + 1``, so the
    models do not follow the table's order.

    Taught in: notebooks/04_latency_lut.
    """
    rt = get_runtime(runtime, threads)
    items: list[Item] = [(i, model_callable(arch, batch, timing.seed, rt)) for i, arch in enumerate(archs)]
    samples, _ = run_passes(items, timing=timing.replace(seed=timing.seed + 1), threads=threads,
                            progress=progress, desc=f"timing {len(archs):,} whole models, {timing.passes} passes")
    return [Timing.from_bursts(samples[i], threads, batch) for i in range(len(archs))]


def validate(
    profile: HardwareProfile,
    archs: Sequence[Architecture],
    threads: int | None = None,
    batch: int = 1,
    *,
    timing: TimingSpec | None = None,
    timings: Sequence[Timing] | None = None,
    progress: bool = False,
    runtime: str | Runtime = "eager",
) -> FidelityReport:
    """Measure each model end to end and compare with ``profile.predict_latency``.

    ``threads`` defaults to the thread count the profile was measured with;
    ``timing`` to :attr:`TimingSpec.MODELS` with the estimator the profile's
    table used (pass a spec to choose another estimator or timing); the models
    are timed with the same harness as the table (:func:`measure_models`). Pass ``timings`` (from
    :func:`measure_models`, one per arch) to reuse measurements, e.g. to compare
    several profiles against one set of measurements. ``runtime`` runs the
    models (it should be the one the profile was measured in).

    Taught in: notebooks/04_latency_lut.
    """
    if not archs:
        raise ValueError("validate needs at least one architecture")
    given = timings is not None
    threads = int(threads if threads is not None else profile.conditions.get("threads", 1))
    spec = timing or TimingSpec.MODELS.replace(estimator=TimingSpec.from_conditions(profile.conditions).estimator)
    rt = get_runtime(runtime, threads)
    predicted = np.array([profile.predict_latency(a, batch) for a in archs])
    if timings is None:
        timings = measure_models(archs, threads, batch, timing=spec, progress=progress, runtime=rt)
    elif len(timings) != len(archs):
        raise ValueError(f"timings has {len(timings)} entries for {len(archs)} architectures")
    measured = np.array([t.estimate(spec.estimator) for t in timings])
    flops = np.array([count_flops(a, batch) for a in archs], dtype=float)
    baseline, fits = flops_baseline(flops, measured)
    conditions = measure_conditions(threads, batch, rt)
    conditions.update(spec.record(), timings_given=given)
    return FidelityReport(
        profile=profile.label,
        measured_us=measured,
        predicted_us=predicted,
        flops=flops,
        baseline_us=baseline,
        measured_p90_us=np.array([t.p90_us for t in timings]),
        conditions=conditions,
        baseline_fits=fits,
    )


__all__ = ["FidelityReport", "flops_baseline", "measure_models", "validate"]
