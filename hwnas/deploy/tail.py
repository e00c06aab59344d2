"""The tail factor: how much slower a machine's p99 call is than its fastest, measured.

Taught in: notebooks/12_capstone.

A latency table is built from fastest calls (notebooks/04_latency_lut): the fastest
call is what repeats from run to run, so it is what a table can predict. An SLA is
judged at the 99th percentile (notebooks/11_deployment), and on a real machine the
two differ by a factor the table cannot know: timer interrupts, caches and branch
predictors cold after a context switch, frequency changes, other tenants. On the
course's 2-vCPU VM, quiet, the p99 of ONNX Runtime calls at one thread was about
2.2x the fastest call for models from 6 to 55 µs (1.7-3.2x model to model).

:func:`measure_tail` times a few calibration models in the deployed runtime, one
:func:`~hwnas.deploy.sla.timed_calls` run each, and keeps the worst ratio
``k = p99 / fastest``, each model's p99 being the median of its bursts' p99s (one
episode of interference during the calibration should not set the budget of the
whole search). The ratio need not be the same for a 5 µs and a 50 µs model, so
:func:`near_budget_models` picks calibration models of the size the search will
choose from: those the table prices below the budget. A search that holds the
table's latency within ``budget / k`` chooses a model whose p99 should fit
``budget``; the SLA report on the deployed file says whether it did, and on a
shared machine an episode of interference during the report can still push it
over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checks import require_float, require_int
from ..hardware import current_conditions
from ..latency.spec import TimingSpec
from ..latency.timing import load_average
from .sla import burst_quantiles, deployable_callable, timed_calls

if TYPE_CHECKING:
    from ..architecture import Architecture
    from ..hardware import HardwareProfile
    from ..space import SearchSpace

__all__ = ["TailCalibration", "measure_tail", "near_budget_models"]


@dataclass(frozen=True)
class TailCalibration:
    """Fastest call and ``percentile``-th percentile of each calibration model, and their worst ratio.

    Taught in: notebooks/12_capstone.
    """

    percentile: float
    labels: tuple[str, ...]
    fastest_us: tuple[float, ...]
    tail_us: tuple[float, ...]
    conditions: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.labels or not len(self.labels) == len(self.fastest_us) == len(self.tail_us):
            raise ValueError("labels, fastest_us and tail_us must be equally long and not empty")
        if min(self.fastest_us) <= 0:
            raise ValueError(f"fastest_us must be positive, got {min(self.fastest_us)}")

    @property
    def ratios(self) -> tuple[float, ...]:
        """Each model's percentile over its fastest call."""
        return tuple(t / f for t, f in zip(self.tail_us, self.fastest_us))

    @property
    def factor(self) -> float:
        """The worst ratio (at least 1): the search divides the SLA budget by it."""
        return max(1.0, max(self.ratios))

    def search_budget_us(self, budget_us: float) -> float:
        """The table latency (fastest call) that leaves room for the tail within ``budget_us``."""
        return require_float(budget_us, "budget_us", minimum=0.0, strict_minimum=True) / self.factor

    def summary(self) -> str:
        """One line: the factor and each model's fastest call and percentile."""
        models = ", ".join(f"{f:.1f} -> {t:.1f} µs" for f, t in zip(self.fastest_us, self.tail_us))
        return (f"p{self.percentile:g} / fastest call: {self.factor:.2f}x (worst of {len(self.labels)} "
                f"calibration models: {models}; {self.conditions.get('runtime', '?')}, "
                f"{self.conditions.get('threads', '?')} thread(s), load average "
                f"{self.conditions.get('load_avg_1min')})")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"percentile": self.percentile, "factor": self.factor, "labels": list(self.labels),
                "fastest_us": list(self.fastest_us), "tail_us": list(self.tail_us),
                "ratios": list(self.ratios), "conditions": dict(self.conditions)}


def near_budget_models(space: SearchSpace, profile: HardwareProfile, budget_us: float, *, models: int = 3,
                       batch: int = 1, draws: int = 256, seed: int = 0) -> list[Architecture]:
    """``models`` architectures of ``space`` spread over the table latencies below ``budget_us``.

    Draws ``draws`` architectures with ``seed``, keeps the distinct ones the
    table prices within ``budget_us`` (the fastest ``models`` when fewer are),
    and takes ``models`` of them evenly spaced by predicted latency, the
    fastest and the slowest included.

    Taught in: notebooks/12_capstone.
    """
    models = require_int(models, "models", 1)
    budget_us = require_float(budget_us, "budget_us", minimum=0.0, strict_minimum=True)
    rng = np.random.default_rng(require_int(seed, "seed", 0))
    priced: dict[str, tuple[float, Architecture]] = {}
    for _ in range(require_int(draws, "draws", models)):
        arch = space.sample(rng)
        priced.setdefault(arch.label(), (float(profile.predict_latency(arch, batch)), arch))
    ranked = sorted(priced.values(), key=lambda pair: pair[0])
    within = [pair for pair in ranked if pair[0] <= budget_us]
    pool = within if len(within) >= models else ranked[:models]
    picks = np.unique(np.linspace(0, len(pool) - 1, num=min(models, len(pool))).round().astype(int))
    return [pool[i][1] for i in picks]


def _calibration_models(space: SearchSpace | Sequence[Architecture], models: int,
                        seed: int) -> list[Architecture]:
    """``models`` architectures drawn from ``space`` with ``seed`` (or the given ones)."""
    from ..architecture import Architecture
    from ..space import SearchSpace

    if isinstance(space, SearchSpace):
        rng = np.random.default_rng(seed)
        return [space.sample(rng) for _ in range(models)]
    archs = list(space) if isinstance(space, (list, tuple)) else []
    if not archs or not all(isinstance(a, Architecture) for a in archs):
        raise ValueError("space must be a SearchSpace or a non-empty list of Architecture")
    return archs


def measure_tail(space: SearchSpace | Sequence[Architecture], *, runtime: Any = "onnxruntime",
                 threads: int = 1, batch: int = 1, models: int = 3, repeats: int = 3000, bursts: int = 3,
                 percentile: float = 99.0, seed: int = 0,
                 timing: TimingSpec = TimingSpec.SLA) -> TailCalibration:
    """Measure the ``percentile`` / fastest-call factor on ``models`` calibration architectures.

    ``space`` is a :class:`~hwnas.space.SearchSpace` (``models`` architectures are
    drawn from it with ``seed``) or a list of architectures. Each is built with
    ``build_model(arch, seed)``, prepared in ``runtime`` with ``threads`` and
    timed ``repeats`` times in ``bursts``, as :func:`~hwnas.deploy.sla.sla_report`
    times a deployed model. A model's tail is the median over its bursts of the
    burst's ``percentile``, so that one episode of interference during the
    calibration does not set the budget of the whole search. ``repeats`` and
    ``bursts`` are the percentile's sample design and ``timing`` the warm-up, as
    in :func:`~hwnas.deploy.sla.timed_calls`; ``seed`` draws and builds the models.

    Taught in: notebooks/12_capstone.
    """
    models = require_int(models, "models", 1)
    threads = require_int(threads, "threads", 1)
    batch = require_int(batch, "batch", 1)
    repeats = require_int(repeats, "repeats", 100)
    bursts = require_int(bursts, "bursts", 1, repeats)
    percentile = require_float(percentile, "percentile", minimum=50.0, maximum=100.0)
    archs = _calibration_models(space, models, require_int(seed, "seed", 0))
    labels, fastest, tail = [], [], []
    runtime_name, version = "?", "?"
    for arch in archs:
        target = deployable_callable(arch, runtime=runtime, threads=threads, batch=batch, seed=seed)
        samples = timed_calls(target.fn, repeats, bursts, timing=timing, threads=threads, batch=batch)
        labels.append(arch.label())
        fastest.append(float(min(samples)))
        tail.append(float(np.median(burst_quantiles(samples, bursts, percentile))))
        runtime_name, version = target.runtime, target.runtime_version
    conditions = dict(current_conditions(), runtime=runtime_name, runtime_version=version, threads=threads,
                      batch=batch, repeats=repeats, bursts=bursts, seed=seed, **timing.record(),
                      load_avg_1min=load_average())
    return TailCalibration(percentile, tuple(labels), tuple(fastest), tuple(tail), conditions)
