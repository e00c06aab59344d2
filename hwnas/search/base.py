"""The contract every search strategy keeps: ``Metrics``, ``SearchProblem``, ``Strategy``.

Taught in: notebooks/07_pareto.

A strategy is a small class with ``ask(n)`` (up to ``n`` architectures to try
next), ``tell(arch, metrics)`` (what one of them scored), and
``state_dict()``/``load_state_dict()`` (so a killed search resumes its strategy
too). :func:`hwnas.search.search` is only the loop that asks, evaluates through
an executor, stores every result in SQLite, and tells, always in the order it
asked, so the same seed gives the same search whatever the executor. This is
the shape of Optuna's samplers and pymoo's ask/tell algorithms.

Strategies register themselves by name with :func:`register_strategy`;
``hwnas.search(..., strategy="evolution")`` builds ``get_strategy("evolution")
(problem, seed=seed, **strategy_options)``.
"""

from __future__ import annotations

import abc
import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..checks import require_choice, require_float, require_int, require_optional_int

if TYPE_CHECKING:
    import numpy as np

    from ..architecture import Architecture
    from ..hardware import HardwareProfile
    from ..proxy.task import ProxyTask
    from ..space import SearchSpace

__all__ = ["CONSTRAINTS", "INFEASIBLE_REWARD", "Constraint", "Metrics", "SearchProblem", "Strategy",
           "available_strategies",
           "get_strategy", "hardware_metrics", "nan_to_none", "profile_from_dict", "register_strategy",
           "space_from_dict", "space_to_dict", "trained"]

#: Reward given to an architecture the target cannot run (over the memory budget,
#: an unsupported op): below every feasible reward, since a feasible reward is
#: ``max(score, 0) * factor >= 0``. Such an architecture is never trained.
INFEASIBLE_REWARD = -1.0

class Constraint(StrEnum):
    """How the latency (and memory) budget binds: ``soft`` (MnasNet's reward, ``w < 0``
    past the budget) or ``hard`` (only candidates within the budgets count).

    Taught in: notebooks/07_pareto.
    """

    SOFT = "soft"
    HARD = "hard"


CONSTRAINTS = tuple(c.value for c in Constraint)


@dataclass(frozen=True)
class Metrics:
    """What one evaluation of a candidate found.

    ``score`` is the proxy task's primary metric on the **validation** split
    (higher is better); ``latency_us`` the hardware profile's prediction;
    ``memory_bytes`` parameters plus peak activations at the target's precision.
    ``feasible`` is False when ``reasons`` (from ``profile.check``) is not empty;
    an infeasible candidate is not trained and its ``score`` is NaN.
    ``scores`` holds the other validation metrics, ``test_scores`` the test
    split's, filled only when asked for (never read by a strategy);
    ``seconds`` is the wall time of the evaluation.

    Taught in: notebooks/07_pareto.
    """

    score: float
    latency_us: float
    memory_bytes: int
    flops: int
    params: int
    feasible: bool = True
    reasons: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    test_scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (NaN stored as None)."""
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return nan_to_none(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        """Inverse of :meth:`to_dict`."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Metrics: unknown field(s) {sorted(unknown)}; allowed {sorted(known)}")
        values = dict(data)
        values["score"] = math.nan if values.get("score") is None else float(values["score"])
        if values.get("latency_us") is None:  # an op the target cannot run: stored as null
            values["latency_us"] = math.inf
        values["reasons"] = tuple(values.get("reasons", ()))
        for name in ("scores", "test_scores"):
            values[name] = {k: (math.nan if v is None else float(v))
                            for k, v in dict(values.get(name, {})).items()}
        return cls(**values)


def nan_to_none(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity) replaced by None, recursively,
    so that it is strict JSON.

    Taught in: notebooks/07_pareto.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    return value


def hardware_metrics(profile: HardwareProfile, arch: Architecture, precision: str, batch: int) -> Metrics:
    """Latency, memory, FLOPs, parameters and feasibility of ``arch`` at ``batch``; ``score`` NaN (not trained).

    Taught in: notebooks/07_pareto.
    """
    from ..cost import count_flops, count_params, memory_footprint

    reasons = tuple(profile.check(arch, batch))
    return Metrics(
        score=math.nan,
        latency_us=float(profile.predict_latency(arch, batch)),
        memory_bytes=int(memory_footprint(arch, precision, batch).total_bytes),
        flops=int(count_flops(arch, batch)),
        params=int(count_params(arch)),
        feasible=not reasons,
        reasons=reasons,
    )


def trained(metrics: Metrics) -> bool:
    """Was this candidate trained to a finite score (feasible on the target, not diverged)?

    Taught in: notebooks/07_pareto.
    """
    return metrics.feasible and math.isfinite(metrics.score)


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """A search space's fields as plain JSON types (enums by value).

    Taught in: notebooks/07_pareto.
    """
    from dataclasses import fields

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value.value if hasattr(value, "value") else value

    return {f.name: plain(getattr(space, f.name)) for f in fields(space) if f.init}


def space_from_dict(data: dict[str, Any]) -> SearchSpace:
    """Inverse of :func:`space_to_dict`.

    Taught in: notebooks/07_pareto.
    """
    from ..space import SearchSpace

    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return SearchSpace(**values)


def profile_from_dict(data: dict[str, Any]) -> HardwareProfile:
    """A saved profile: an analytical model's (``is_model``) rebuilt with its model, else the table.

    Taught in: notebooks/07_pareto.
    """
    from ..hardware import HardwareProfile

    if isinstance(data, dict) and data.get("is_model"):
        from ..targets.profiles import AnalyticalProfile

        return AnalyticalProfile.from_dict(data)
    return HardwareProfile.from_dict(data)


@dataclass(frozen=True, eq=False)
class SearchProblem:
    """What is searched: the one carrier of space, profile, budgets, batch, constraint, precision, objectives.

    ``latency_budget_us`` is the SLA ``T`` (µs, per call of ``batch`` windows);
    ``constraint`` is ``"soft"`` (MnasNet's reward ``ACC * (LAT/T)^w`` with
    ``w``) or ``"hard"`` (``w = 0`` while ``LAT <= T``, ``-1`` above);
    ``memory_budget_bytes`` adds the memory term and a third objective.
    ``task`` is given to strategies that train themselves (FBNet's supernet);
    the others only see :class:`Metrics`. :meth:`within_budget` and
    :meth:`objectives` are the only places that answer "within the budgets?"
    and "what is minimised?": the loop, the result, its front and
    hypervolume, the pipeline's choice and every strategy ask them.

    Taught in: notebooks/07_pareto.
    """

    space: SearchSpace
    profile: HardwareProfile
    latency_budget_us: float
    num_iterations: int
    memory_budget_bytes: int | None = None
    task: ProxyTask | None = None
    constraint: str = "soft"
    w: float = -0.07
    memory_w: float = -0.07
    precision: str | None = None  # None: the profile's precision
    batch: int = 1

    def __post_init__(self) -> None:
        value = self.latency_budget_us
        if isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(self, "latency_budget_us", float(value))
        require_float(self.latency_budget_us, "latency_budget_us", minimum=0.0, strict_minimum=True)
        require_int(self.num_iterations, "num_iterations", 1)
        require_optional_int(self.memory_budget_bytes, "memory_budget_bytes", 1)
        require_choice(self.constraint, "constraint", CONSTRAINTS)
        require_float(self.w, "w", maximum=0.0)
        require_float(self.memory_w, "memory_w", maximum=0.0)
        require_int(self.batch, "batch", 1)

    @property
    def target_precision(self) -> str:
        """The precision memory is counted at: ``precision`` or the profile's."""
        return self.precision or self.profile.precision

    # ---- the two questions
    @property
    def objective_names(self) -> tuple[str, ...]:
        """Names of :meth:`objectives`' entries, every one minimised."""
        return ("-score", "latency_us") + (("memory_bytes",) if self.memory_budget_bytes else ())

    def objectives(self, metrics: Metrics, normalised: bool = False) -> list[float]:
        """The minimised objective vector: ``-score``, latency, and memory when budgeted.

        The one place where the maximised proxy score is negated. ``normalised``
        divides latency (and memory) by its budget, so 1 is the budget.
        """
        values = [-metrics.score, metrics.latency_us]
        scale = [1.0, self.latency_budget_us]
        if self.memory_budget_bytes:
            values.append(float(metrics.memory_bytes))
            scale.append(float(self.memory_budget_bytes))
        return [v / s for v, s in zip(values, scale)] if normalised else values

    def objective_array(self, metrics: Sequence[Metrics], normalised: bool = False) -> np.ndarray:
        """:meth:`objectives` of each of ``metrics``, one row each (shape ``(n, m)``)."""
        import numpy as np

        rows = [self.objectives(m, normalised) for m in metrics]
        return np.array(rows, dtype=float).reshape(len(rows), len(self.objective_names))

    def reference(self, baseline_score: float | None = None) -> np.ndarray:
        """``(0, 1[, 1])`` in normalised objectives: a score above 0 and within the budgets; with
        ``baseline_score`` (persistence's validation score) the trader's reference
        ``(-baseline_score, 1[, 1])`` of :func:`hwnas.pareto.trader_reference`."""
        from ..pareto import trader_reference

        return trader_reference(0.0 if baseline_score is None else baseline_score, len(self.objective_names))

    def within_budget(self, metrics: Metrics) -> bool:
        """Feasible on the target, and under the latency (and memory) budget."""
        if not metrics.feasible or metrics.latency_us > self.latency_budget_us:
            return False
        return not (self.memory_budget_bytes and metrics.memory_bytes > self.memory_budget_bytes)

    # ---- derived from the two
    def budget_excess(self, metrics: Metrics) -> list[float]:
        """How far over each budget, relative (``LAT/T - 1``[, ``MEM/M - 1``]); ``<= 0`` within it."""
        return [v - 1.0 for v in self.objectives(metrics, normalised=True)[1:]]

    def selectable(self, metrics: Metrics) -> bool:
        """May this evaluation be on the front? Trained; within budget too under the hard constraint."""
        return trained(metrics) and (self.constraint != Constraint.HARD or self.within_budget(metrics))

    def predict(self, arch: Architecture) -> Metrics:
        """``arch``'s metrics from the profile alone at this problem's batch and precision (not trained)."""
        return hardware_metrics(self.profile, arch, self.target_precision, self.batch)

    def reward(self, metrics: Metrics) -> float:
        """The scalar a single-objective strategy maximises (see :func:`hwnas.pareto.mnas_reward`).

        ``ACC = max(score, 0)`` (a correlation below zero is no better than a
        constant forecast), times the latency factor, times the memory factor
        when a memory budget is set; :data:`INFEASIBLE_REWARD` for an
        infeasible or diverged candidate.
        """
        from ..pareto import mnas_reward

        if not trained(metrics):
            return INFEASIBLE_REWARD
        accuracy = max(metrics.score, 0.0)
        return float(mnas_reward(
            accuracy, metrics.latency_us, self.latency_budget_us, w=self.w,
            hard=self.constraint == Constraint.HARD,
            memory=metrics.memory_bytes if self.memory_budget_bytes else None,
            memory_target=self.memory_budget_bytes, memory_w=self.memory_w,
        ))

    # ---- JSON (without the task: a result records where its data came from instead)
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: the space's fields, the profile's saved form, budgets and settings."""
        return {"space": space_to_dict(self.space), "profile": self.profile.to_dict(),
                "latency_budget_us": self.latency_budget_us, "num_iterations": self.num_iterations,
                "memory_budget_bytes": self.memory_budget_bytes, "constraint": self.constraint,
                "w": self.w, "memory_w": self.memory_w, "precision": self.precision, "batch": self.batch}

    @classmethod
    def from_dict(cls, data: dict[str, Any], task: ProxyTask | None = None) -> SearchProblem:
        """Inverse of :meth:`to_dict` (an analytical model's profile comes back as one)."""
        values = dict(data)
        profile = profile_from_dict(values.pop("profile"))
        return cls(space_from_dict(values.pop("space")), profile, task=task, **values)


class Strategy(abc.ABC):
    """Base class of the search strategies (random, evolution, surrogate, optuna, tpe, pymoo, mnasnet, scaling, fbnet).

    Subclasses take ``problem`` and keyword-only, typed options including
    ``seed``; every random choice comes from generators seeded with it.

    Taught in: notebooks/07_pareto.
    """

    name: ClassVar[str] = ""

    def __init__(self, problem: SearchProblem, *, seed: int = 0) -> None:
        self.problem = problem
        self.seed = require_int(seed, "seed", 0)

    @abc.abstractmethod
    def ask(self, n: int = 1) -> list[Architecture]:
        """Up to ``n`` architectures to evaluate next; ``[]`` when the strategy is finished.

        A strategy may return fewer than ``n`` (a batch policy finishing its
        batch); the loop tells every result before asking again.
        """

    @abc.abstractmethod
    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """Record what ``arch`` (one that :meth:`ask` returned) scored."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this strategy stands (JSON-able)."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"


S = TypeVar("S", bound=type[Strategy])

_STRATEGIES: dict[str, type[Strategy]] = {}
# Strategies registered by importing their module (kept lazy: torch-heavy ones load on demand).
_STRATEGY_MODULES: dict[str, str] = {
    "random": "hwnas.search.random_search",
    "evolution": "hwnas.search.evolution",
    "optuna": "hwnas.search.optuna_adapter",
    "tpe": "hwnas.search.optuna_adapter",
    "pymoo": "hwnas.search.pymoo_adapter",
    "surrogate": "hwnas.search.surrogate",
    "mnasnet": "hwnas.search.mnasnet",
    "scaling": "hwnas.search.scaling",
    "fbnet": "hwnas.search.fbnet",
    "prefilter": "hwnas.search.prefilter",
}


def register_strategy(name: str) -> Callable[[S], S]:
    """Class decorator: make ``hwnas.search(..., strategy=name)`` use this class.

    Taught in: notebooks/07_pareto.
    """

    def decorate(cls: S) -> S:
        cls.name = name
        _STRATEGIES[name] = cls
        return cls

    return decorate


def available_strategies() -> list[str]:
    """Every strategy name :func:`get_strategy` accepts.

    Taught in: notebooks/07_pareto.
    """
    return sorted(set(_STRATEGIES) | set(_STRATEGY_MODULES))


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered under ``name`` (importing its module if needed).

    Taught in: notebooks/07_pareto.
    """
    if name not in _STRATEGIES and name in _STRATEGY_MODULES:
        try:
            importlib.import_module(_STRATEGY_MODULES[name])
        except ImportError as exc:
            raise ValueError(f"strategy {name!r} needs a package that is not installed ({exc})") from None
    if name not in _STRATEGIES:
        raise ValueError(f"strategy {name!r} unknown; choose one of {available_strategies()}")
    return _STRATEGIES[name]
