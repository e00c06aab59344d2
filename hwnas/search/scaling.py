"""EfficientNet compound scaling for trading models: depth, width and lookback scaled together.

Taught in: notebooks/09_efficientnet_scaling.

EfficientNet (Tan and Le, 2019) scales a base network with one coefficient
``phi``: depth ``d = alpha^phi``, width ``w = beta^phi``, resolution
``r = gamma^phi``. For a trading model the three dimensions are the temporal
layers, the channels and the lookback window. The constraint on
``(alpha, beta, gamma)`` is derived from this library's cost model
(:mod:`hwnas.cost`), term by term (:func:`flops_terms`): a 1-D convolution
costs ``2 L K C_in C_out``, so repeating layers, widening both channel counts
and lengthening the window multiply its FLOPs by ``d * w^2 * r``, and
``alpha * beta^2 * gamma = 2`` doubles FLOPs per unit of ``phi`` (images have
``r^2``, hence EfficientNet's ``gamma^2``); attention's scores cost
``4 n^2 d`` and grow as ``d * w * r^2`` (``alpha * beta * gamma^2 = 2``).

How a base is scaled (:func:`compound_scale`):

* depth: the ``N`` compute layers after the stem (pooling layers are kept as
  they are) become ``ceil(d N)`` layers (at least ``min_depth``), block ``i``
  repeated ``floor((i+1) T / N) - floor(i T / N)`` times so the repeats are
  spread evenly (scaling down drops blocks the same way). A repeat has
  ``in = out`` channels and stride 1, as EfficientNet repeats a block within a stage;
* width: every channel count the base chooses (the stem and every layer that
  sets a width) times ``w``, rounded to the nearest multiple of
  ``width_multiple`` (and of every attention layer's head count), never below
  it: 8 for FP16 tensor cores on a GPU, 1 on CPU and FPGA (:func:`width_multiple_for`);
* lookback: ``round(r L)``, at most ``max_lookback`` (what the proxy task's
  windows hold) and at least what the layers need (kernel spans, pooling down
  to ``min_length`` steps).

Scaled widths, lookbacks and depths fall outside a search space's table, so a
measured CPU profile has no entries for them: :func:`hwnas.latency.extend_profile` times the
missing keys (analytical GPU and FPGA profiles answer any key themselves).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..architecture import Architecture
from ..checks import require_choice, require_float, require_int, require_positive
from .base import Metrics, SearchProblem, Strategy, register_strategy, trained
from .scaling_rule import (
    CONSTRAINT_EXPONENTS,
    compound_scale,
    constraint_grid,
    constraint_kind,
    width_multiple_for,
)

if TYPE_CHECKING:
    from ..hardware import HardwareProfile
    from ..proxy.task import ProxyTask

__all__ = ["PHI_LADDER", "FamilyMember", "GridPoint", "ScalingResult", "ScalingStrategy", "metrics_of",
           "scaling_grid"]

#: The ``phi`` values a family is chosen from, in quarter steps (budgets pick the largest that fits).
PHI_LADDER: tuple[float, ...] = tuple(round(-4.0 + 0.25 * i, 2) for i in range(49))

Evaluator = Callable[[Architecture, "HardwareProfile"], Metrics]


# --------------------------------------------------------------------------- latency of scaled models


def _measure_missing(profile: HardwareProfile, archs: Iterable[Architecture], batch: int) -> None:
    """Add to ``profile`` (in place) the keys of ``archs`` at ``batch`` it lacks, timed briefly now
    (:func:`hwnas.latency.extend_profile` at :attr:`~hwnas.latency.TimingSpec.QUICK`: a scaled
    family's keys are measured during a search)."""
    from ..latency.coverage import extend_profile
    from ..latency.spec import TimingSpec

    extend_profile(profile, archs, batch, timing=TimingSpec.QUICK, in_place=True)


def metrics_of(arch: Architecture, task: ProxyTask, profile: HardwareProfile, seed: int = 0,
               precision: str | None = None) -> Metrics:
    """Train ``arch`` on the proxy task and measure it on ``profile``: one :class:`Metrics`.

    An infeasible ``arch`` is not trained (score NaN, with ``profile.check``'s reasons).

    Taught in: notebooks/09_efficientnet_scaling.
    """
    from ..cost import count_flops, count_params, memory_footprint
    from ..proxy.training import evaluate

    start = time.perf_counter()
    reasons = tuple(profile.check(arch))
    score, scores = math.nan, {}
    if not reasons:
        result = evaluate(arch, task, seed)
        score, scores = result.score, dict(result.metrics)
    return Metrics(score=score, latency_us=profile.predict_latency(arch),
                   memory_bytes=memory_footprint(arch, precision or profile.precision).total_bytes,
                   flops=count_flops(arch), params=count_params(arch), feasible=not reasons,
                   reasons=reasons, scores=scores, seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------- the grid and the family


@dataclass(frozen=True)
class GridPoint:
    """One ``(alpha, beta, gamma)`` on the constraint, its model at ``phi`` and what it scored.

    Taught in: notebooks/09_efficientnet_scaling.
    """

    alpha: float
    beta: float
    gamma: float
    arch: Architecture
    metrics: Metrics


@dataclass(frozen=True)
class FamilyMember:
    """One model of the scaled family: its ``phi``, the budget it was chosen for (if any), its metrics.

    Taught in: notebooks/09_efficientnet_scaling.
    """

    phi: float
    arch: Architecture
    metrics: Metrics
    budget_us: float | None = None


@dataclass
class ScalingResult:
    """What :func:`scaling_grid` found: the grid, the chosen coefficients and the family.

    Taught in: notebooks/09_efficientnet_scaling.
    """

    base: Architecture
    kind: str
    width_multiple: int
    grid: list[GridPoint]
    best: tuple[float, float, float]
    family: list[FamilyMember]
    profile: HardwareProfile
    evaluations: int = 0

    def table(self) -> list[dict[str, Any]]:
        """The grid as rows (alpha, beta, gamma, score, latency, MFLOPs), for a chapter to print."""
        return [{"alpha": p.alpha, "beta": p.beta, "gamma": round(p.gamma, 4), "score": p.metrics.score,
                 "latency_us": p.metrics.latency_us, "mflops": p.metrics.flops / 1e6}
                for p in self.grid]


def _family_phis(base: Architecture, coeffs: Sequence[float], profile: HardwareProfile,
                 budgets: Sequence[float], scale: Callable[..., Architecture],
                 ladder: Sequence[float], batch: int = 1, chunk: int = 4) -> list[tuple[float, float]]:
    """For each budget (tight to loose) the largest ladder ``phi`` whose predicted latency at
    ``batch`` (the budgets' batch: per call of ``batch`` windows) fits it.

    The ladder is walked upwards in chunks, measuring missing keys chunk by
    chunk, and left once a whole chunk is slower than the loosest budget.
    """
    latency: list[tuple[float, float]] = []
    options: list[tuple[float, Architecture]] = []
    for phi in sorted(ladder):
        try:
            options.append((float(phi), scale(base, float(phi), *coeffs)))
        except ValueError:
            continue
    for start in range(0, len(options), chunk):
        part = options[start:start + chunk]
        _measure_missing(profile, [a for _, a in part], batch)
        lats = [(phi, profile.predict_latency(arch, batch)) for phi, arch in part]
        latency.extend(lats)
        if all(lat > max(budgets) for _, lat in lats):
            break
    chosen: list[tuple[float, float]] = []
    for budget in sorted(budgets):
        fits = [phi for phi, lat in latency if lat <= budget]
        if fits and max(fits) not in [p for p, _ in chosen]:
            chosen.append((max(fits), float(budget)))
    return chosen


def _private_copy(profile: HardwareProfile) -> HardwareProfile:
    """A copy whose table and conditions can be extended without touching ``profile``."""
    return replace(profile, latency_table=dict(profile.latency_table), conditions=dict(profile.conditions))


def _memo_evaluator(evaluate: Evaluator, profile: HardwareProfile
                    ) -> tuple[Callable[[Architecture], Metrics], dict[str, Metrics]]:
    """``evaluate`` called once per distinct architecture (rounding maps grid points together)."""
    seen: dict[str, Metrics] = {}

    def run(arch: Architecture) -> Metrics:
        key = arch.to_json()
        if key not in seen:
            seen[key] = evaluate(arch, profile)
        return seen[key]

    return run, seen


def scaling_grid(base: Architecture, task: ProxyTask, profile: HardwareProfile, *, phi: float = 1.0,
                 step: float = 0.1, phis: Sequence[float] = (-1.0, 0.0, 1.0, 2.0, 3.0),
                 budgets_us: Sequence[float] | None = None, kind: str | None = None,
                 width_multiple: int | None = None, seed: int = 0,
                 evaluator: Evaluator | None = None) -> ScalingResult:
    """EfficientNet's two steps: the grid over ``(alpha, beta, gamma)`` at ``phi``, then a ``phi`` sweep.

    1. Every point of :func:`constraint_grid` (the constraint of ``kind``, by
       default :func:`constraint_kind` of ``base``; points whose lookback would
       exceed ``task.lookback`` left out) scales ``base`` to ``phi`` and is
       scored on the proxy task (validation split); the best feasible score wins.
    2. With the winner, the family: ``phis`` as given, or, with ``budgets_us``
       (tight to loose), for each budget the largest ``phi`` on a ladder of
       quarter steps whose predicted latency fits it.

    One evaluation per distinct architecture: ``evaluator(arch, profile)``,
    default :func:`metrics_of` with ``task`` and ``seed``. A measured
    ``profile`` is extended with the keys the scaled models need, in a copy
    (passed to the evaluator and kept in the result).

    Taught in: notebooks/09_efficientnet_scaling.
    """
    kind = require_choice(kind, "kind", CONSTRAINT_EXPONENTS) if kind is not None else constraint_kind(base)
    multiple = width_multiple_for(profile) if width_multiple is None else require_int(
        width_multiple, "width_multiple", 1, 1024)
    phi = require_float(phi, "phi", minimum=0.0, strict_minimum=True, maximum=20.0)
    if base.lookback > task.lookback:
        raise ValueError(f"base.lookback {base.lookback} exceeds the task's windows ({task.lookback})")

    def scale(arch: Architecture, p: float, a: float, b: float, g: float) -> Architecture:
        return compound_scale(arch, p, a, b, g, width_multiple=multiple, max_lookback=task.lookback)

    profile = _private_copy(profile)
    run, seen = _memo_evaluator(evaluator or (lambda a, p: metrics_of(a, task, p, seed)), profile)
    max_gamma = (task.lookback / base.lookback) ** (1 / phi)
    coefficients = constraint_grid(kind, step=step, max_gamma=max_gamma)
    archs = [scale(base, phi, *c) for c in coefficients]
    _measure_missing(profile, archs, 1)
    grid = [GridPoint(*c, arch=arch, metrics=run(arch)) for c, arch in zip(coefficients, archs)]
    feasible = [p for p in grid if p.metrics.feasible and math.isfinite(p.metrics.score)]
    if not feasible:
        raise ValueError("no grid point is feasible on the profile; scale a smaller base")
    winner = max(feasible, key=lambda p: p.metrics.score)
    best = (winner.alpha, winner.beta, winner.gamma)
    if budgets_us is not None:
        plan: list[tuple[float, float | None]] = list(_family_phis(
            base, best, profile, [require_positive(b, "budgets_us") for b in budgets_us], scale, PHI_LADDER))
    else:
        plan = [(require_float(p, "phis", minimum=-20.0, maximum=20.0), None) for p in phis]
    members = [(p, scale(base, p, *best), b) for p, b in plan]
    _measure_missing(profile, [a for _, a, _ in members], 1)
    family = [FamilyMember(p, arch, run(arch), b) for p, arch, b in members]
    return ScalingResult(base, kind, multiple, grid, best, family, profile, len(seen))


# --------------------------------------------------------------------------- as a search strategy


def _arch_key(arch: Architecture) -> str:
    return arch.to_json()


def _spread(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items of ``items`` spread evenly from the first to the last (all when ``n >= len``)."""
    if n >= len(items):
        return list(items)
    return [items[int(round(i * (len(items) - 1) / max(n - 1, 1)))] for i in range(n)]


@register_strategy("scaling")
class ScalingStrategy(Strategy):
    """EfficientNet compound scaling as a strategy: base, grid at ``phi = 1``, then families across budgets.

    The plan, every model one evaluation through ``ask``/``tell``:

    1. the base: ``base`` if given; else the default base of the space, the
       best-scoring feasible model under half the budget (room to scale up) of
       ``warmup`` random samples (the fastest feasible one when none is that
       fast), as EfficientNet-B0 came out of a search at a small budget;
    2. the grid: :func:`constraint_grid` at ``phi = 1`` (``step`` chosen so the
       grid takes at most about half the evaluations left, unless given),
       points spread evenly when still too many;
    3. the family of the best grid point by ``problem.reward``: budgets
       ``T * 2^k`` for ``k`` from -3 to 0 (tight up to the SLA ``T``), for
       each the largest ``phi`` (quarter steps) whose predicted latency fits;
    4. evaluations left over go to the families of the next-best grid
       points, then to random models of the space, so that the strategy uses
       exactly ``num_iterations`` (as every strategy does); then ``ask`` returns ``[]``.

    Scaled models have keys a measured profile lacks: they are measured and
    added to ``problem.profile``'s table in place (:func:`hwnas.latency.extend_profile`) so
    the loop's evaluator finds them. That changes the profile object's
    fingerprint: give a search a copy when the same profile object serves
    other searches. Analytical profiles need nothing. Widths are rounded to
    :func:`width_multiple_for` the profile unless ``width_multiple`` is given.

    Taught in: notebooks/09_efficientnet_scaling.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0, base: Architecture | None = None,
                 warmup: int | None = None, step: float | None = None, kind: str | None = None,
                 width_multiple: int | None = None) -> None:
        super().__init__(problem, seed=seed)
        if base is not None and not isinstance(base, Architecture):
            raise ValueError(f"base must be an Architecture or None, got {type(base).__name__}")
        default_warmup = 0 if base is not None else max(1, min(8, problem.num_iterations // 4))
        self.warmup = default_warmup if warmup is None else require_int(warmup, "warmup", 0 if base else 1)
        self.step = None if step is None else require_float(step, "step", minimum=0.01, maximum=1.0)
        self.kind = None if kind is None else require_choice(kind, "kind", CONSTRAINT_EXPONENTS)
        self.width_multiple = width_multiple_for(problem.profile) if width_multiple is None else require_int(
            width_multiple, "width_multiple", 1, 1024)
        task = problem.task
        self.max_lookback = task.lookback if task is not None else max(problem.space.lookbacks)
        self.phase = "base" if base is not None else "warmup"
        self.base = base
        rng = np.random.default_rng(self.seed)
        self.pending: list[Architecture] = [] if base is not None else [
            problem.space.sample(rng) for _ in range(self.warmup)]
        self.warmup_archs = list(self.pending)
        self.results: dict[str, Metrics] = {}
        self.told = 0
        self.grid: list[tuple[float, float, float, Architecture]] = []
        self.ranked: list[int] = []  # grid indices whose family is planned, best first
        self.family: list[tuple[int, float, float, Architecture]] = []  # (grid index, phi, budget, arch)

    @property
    def best(self) -> tuple[float, float, float] | None:
        """The coefficients of the best grid point (None before the grid is scored)."""
        if not self.ranked:
            return None
        alpha, beta, gamma, _ = self.grid[self.ranked[0]]
        return alpha, beta, gamma

    # ---- the plan
    def _scale(self, phi: float, coeffs: Sequence[float]) -> Architecture:
        assert self.base is not None
        return compound_scale(self.base, phi, coeffs[0], coeffs[1], coeffs[2],
                              width_multiple=self.width_multiple, max_lookback=self.max_lookback)

    def _left(self) -> int:
        return max(1, self.problem.num_iterations - self.told)

    def _choose_base(self) -> Architecture:
        told = [(a, self.results[_arch_key(a)]) for a in self.warmup_archs if _arch_key(a) in self.results]
        ok = [(a, m) for a, m in told if trained(m)]
        half = replace(self.problem, latency_budget_us=self.problem.latency_budget_us / 2)
        small = [(a, m) for a, m in ok if half.within_budget(m)]
        if small:
            return max(small, key=lambda am: am[1].score)[0]
        if ok:
            return min(ok, key=lambda am: am[1].latency_us)[0]
        return self.warmup_archs[0]

    def _plan_grid(self) -> list[Architecture]:
        assert self.base is not None
        kind = self.kind or constraint_kind(self.base)
        max_gamma = self.max_lookback / self.base.lookback
        share = max(1, self._left() // 2)
        points: list[tuple[float, float, float]] = []
        for step in [self.step] if self.step is not None else [0.05, 0.1, 0.2, 0.5]:
            points = constraint_grid(kind, step=step, max_gamma=max_gamma)
            if len(points) <= share:
                break
        self.grid = [(a, b, g, self._scale(1.0, (a, b, g))) for a, b, g in _spread(points, share)]
        return [arch for *_, arch in self.grid]

    def _plan_family(self) -> list[Architecture] | None:
        """The family of the best grid point not yet scaled (None when none is left)."""
        scored = [i for i, (*_, arch) in enumerate(self.grid) if _arch_key(arch) in self.results]
        order = sorted(scored, key=lambda i: -self.problem.reward(self.results[_arch_key(self.grid[i][3])]))
        left = [i for i in order if i not in self.ranked]
        if not left:
            return None
        index = left[0]
        self.ranked.append(index)
        coeffs = self.grid[index][:3]
        n = self._left()
        budgets = self.problem.latency_budget_us * 2.0 ** np.linspace(-3.0, 0.0, max(n, 2))
        assert self.base is not None
        plan = _family_phis(self.base, coeffs, self.problem.profile, list(budgets[-n:]),
                            lambda arch, phi, a, b, g: self._scale(phi, (a, b, g)), PHI_LADDER,
                            batch=self.problem.batch)
        members = [(index, phi, budget, self._scale(phi, coeffs)) for phi, budget in plan]
        self.family.extend(members)
        return [arch for *_, arch in members]

    def _plan_fill(self) -> list[Architecture]:
        rng = np.random.default_rng([self.seed, self.told])
        return [self.problem.space.sample(rng) for _ in range(self.problem.num_iterations - self.told)]

    def _advance(self) -> None:
        if self.phase in ("base", "warmup"):
            self.base = self.base or self._choose_base()
            self.phase, planned = "grid", self._plan_grid()
        elif self.phase in ("grid", "family"):
            self.phase, planned = "family", []
            while not any(_arch_key(a) not in self.results for a in planned):
                more = self._plan_family()
                if more is None:
                    self.phase, planned = "fill", self._plan_fill()
                    break
                planned = more
        else:
            self.phase, planned = "done", []
        self._queue(planned)

    def _queue(self, planned: Iterable[Architecture]) -> None:
        """Plan ``planned`` (new models only), measuring latency keys a measured profile lacks."""
        fresh = {_arch_key(a): a for a in planned if _arch_key(a) not in self.results}
        _measure_missing(self.problem.profile, fresh.values(), self.problem.batch)
        self.pending = list(fresh.values()) if self.phase != "fill" else list(planned)

    # ---- ask / tell
    def ask(self, n: int = 1) -> list[Architecture]:
        """The next models of the plan (at most ``n``); ``[]`` once ``num_iterations`` are told."""
        n = require_int(n, "n", 1)
        while not self.pending and self.phase != "done":
            if self.told >= self.problem.num_iterations:
                self.phase = "done"
                break
            self._advance()
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """Record one result."""
        self.results[_arch_key(arch)] = metrics
        self.told += 1

    # ---- state
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: phase, base, plan and every result told."""
        return {
            "phase": self.phase,
            "base": None if self.base is None else self.base.to_dict(),
            "pending": [a.to_dict() for a in self.pending],
            "warmup_archs": [a.to_dict() for a in self.warmup_archs],
            "results": {k: m.to_dict() for k, m in self.results.items()},
            "told": self.told,
            "grid": [[a, b, g, arch.to_dict()] for a, b, g, arch in self.grid],
            "ranked": list(self.ranked),
            "family": [[i, phi, budget, arch.to_dict()] for i, phi, budget, arch in self.family],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (measuring the keys the pending models need, if any)."""
        state = json.loads(json.dumps(state))
        arch = Architecture.from_dict
        self.phase = require_choice(state["phase"], "phase", ("base", "warmup", "grid", "family", "fill", "done"))
        self.base = None if state["base"] is None else arch(state["base"])
        self.warmup_archs = [arch(a) for a in state["warmup_archs"]]
        self.results = {k: Metrics.from_dict(m) for k, m in state["results"].items()}
        self.told = require_int(state["told"], "told", 0)
        self.grid = [(float(a), float(b), float(g), arch(d)) for a, b, g, d in state["grid"]]
        self.ranked = [int(i) for i in state["ranked"]]
        self.family = [(int(i), float(p), float(b), arch(d)) for i, p, b, d in state["family"]]
        pending = [arch(a) for a in state["pending"]]
        _measure_missing(self.problem.profile, pending, self.problem.batch)
        self.pending = pending
