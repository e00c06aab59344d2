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
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypeVar

from ..checks import require_choice, require_float, require_int, require_optional_int

if TYPE_CHECKING:
    from ..hardware import HardwareProfile
    from ..proxy import ProxyTask
    from ..space import Architecture, SearchSpace

#: Reward given to an architecture the target cannot run (over the memory budget,
#: an unsupported op): below every feasible reward, since a feasible reward is
#: ``max(score, 0) * factor >= 0``. Such an architecture is never trained.
INFEASIBLE_REWARD = -1.0

CONSTRAINTS = ("soft", "hard")


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
    def from_dict(cls, data: dict[str, Any]) -> "Metrics":
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


@dataclass(frozen=True, eq=False)
class SearchProblem:
    """Everything a strategy may know about the search it serves.

    ``latency_budget_us`` is the SLA ``T``; ``constraint`` is ``"soft"``
    (MnasNet's reward ``ACC * (LAT/T)^w`` with ``w``) or ``"hard"`` (``w = 0``
    while ``LAT <= T``, ``-1`` above); ``memory_budget_bytes`` adds the memory
    term and a third objective. ``task`` is given to strategies that train
    themselves (FBNet's supernet); the others only see :class:`Metrics`.

    Taught in: notebooks/07_pareto.
    """

    space: "SearchSpace"
    profile: "HardwareProfile"
    latency_budget_us: float
    num_iterations: int
    memory_budget_bytes: int | None = None
    task: "ProxyTask | None" = None
    constraint: str = "soft"
    w: float = -0.07
    memory_w: float = -0.07
    precision: str | None = None  # None: the profile's precision
    batch: int = 1

    def __post_init__(self) -> None:
        require_float(self.latency_budget_us, "latency_budget", minimum=0.0, strict_minimum=True)
        require_int(self.num_iterations, "num_iterations", 1)
        require_optional_int(self.memory_budget_bytes, "memory_budget", 1)
        require_choice(self.constraint, "constraint", CONSTRAINTS)
        require_float(self.w, "w", maximum=0.0)
        require_float(self.memory_w, "memory_w", maximum=0.0)
        require_int(self.batch, "batch", 1)

    @property
    def target_precision(self) -> str:
        """The precision memory is counted at: ``precision`` or the profile's."""
        return self.precision or self.profile.precision

    def reward(self, metrics: Metrics) -> float:
        """The scalar a single-objective strategy maximises (see :func:`hwnas.pareto.mnas_reward`).

        ``ACC = max(score, 0)`` (a correlation below zero is no better than a
        constant forecast), times the latency factor, times the memory factor
        when a memory budget is set; :data:`INFEASIBLE_REWARD` for an
        infeasible or diverged candidate.
        """
        from ..pareto import mnas_reward

        if not metrics.feasible or not math.isfinite(metrics.score):
            return INFEASIBLE_REWARD
        accuracy = max(metrics.score, 0.0)
        return float(mnas_reward(
            accuracy, metrics.latency_us, self.latency_budget_us, w=self.w,
            hard=self.constraint == "hard",
            memory=metrics.memory_bytes if self.memory_budget_bytes else None,
            memory_target=self.memory_budget_bytes, memory_w=self.memory_w,
        ))

    def objectives(self, metrics: Metrics) -> list[float]:
        """The minimised objective vector: ``-score``, latency, and memory when budgeted.

        The one place where the maximised proxy score is negated.
        """
        values = [-metrics.score, metrics.latency_us]
        if self.memory_budget_bytes:
            values.append(float(metrics.memory_bytes))
        return values

    def within_budget(self, metrics: Metrics) -> bool:
        """Feasible on the target, and under the latency (and memory) budget."""
        if not metrics.feasible or metrics.latency_us > self.latency_budget_us:
            return False
        return not (self.memory_budget_bytes and metrics.memory_bytes > self.memory_budget_bytes)


class Strategy(abc.ABC):
    """Base class of the search strategies (random, evolution, optuna, mnasnet, scaling, fbnet).

    Subclasses take ``problem`` and keyword-only, typed options including
    ``seed``; every random choice comes from generators seeded with it.

    Taught in: notebooks/07_pareto.
    """

    name: ClassVar[str] = ""

    def __init__(self, problem: SearchProblem, *, seed: int = 0) -> None:
        self.problem = problem
        self.seed = require_int(seed, "seed", 0)

    @abc.abstractmethod
    def ask(self, n: int = 1) -> list["Architecture"]:
        """Up to ``n`` architectures to evaluate next; ``[]`` when the strategy is finished.

        A strategy may return fewer than ``n`` (a batch policy finishing its
        batch); the loop tells every result before asking again.
        """

    @abc.abstractmethod
    def tell(self, arch: "Architecture", metrics: Metrics) -> None:
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
    "mnasnet": "hwnas.search.mnasnet",
    "scaling": "hwnas.search.scaling",
    "fbnet": "hwnas.search.fbnet",
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
