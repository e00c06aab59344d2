"""What a search found: every :class:`Evaluation`, the :class:`SearchProblem`, the :class:`SearchRun`,
and the front (:class:`SearchResult`, of :class:`FrontMember`), with its JSON.

Taught in: notebooks/07_pareto.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..architecture import Architecture
from .base import Metrics, SearchProblem, trained
from .store import architecture_key

if TYPE_CHECKING:
    from ..proxy.task import ProxyTask

__all__ = ["RESULT_FORMAT", "RESULT_VERSION", "Evaluation", "FrontMember", "SearchResult", "SearchRun"]

RESULT_FORMAT = "hwnas-search-result"
RESULT_VERSION = 2


@dataclass(frozen=True)
class Evaluation:
    """One step of a search: the candidate, what it scored, whether the store already had it,
    and the seconds since the search started when it was told.

    Taught in: notebooks/07_pareto.
    """

    index: int
    arch: Architecture
    metrics: Metrics
    cached: bool
    wall_time: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"index": self.index, "arch": self.arch.to_dict(), "metrics": self.metrics.to_dict(),
                "cached": self.cached, "wall_time": self.wall_time}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """Inverse of :meth:`to_dict`."""
        from ..architecture import Architecture

        return cls(int(data["index"]), Architecture.from_dict(data["arch"]),
                   Metrics.from_dict(data["metrics"]), bool(data["cached"]), float(data["wall_time"]))


@dataclass(frozen=True)
class SearchRun:
    """How a search was run (the problem says what was searched): strategy, seeds, rounds, data.

    Taught in: notebooks/07_pareto.
    """

    strategy: str
    seed: int = 0
    eval_seed: int = 0
    batch_size: int = 8
    strategy_options: str = "{}"
    task_source: str = ""
    target: str = ""
    primary_metric: str = ""
    restored: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchRun:
        """Inverse of :meth:`to_dict` (ValueError naming an unknown field)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"SearchRun: unknown field(s) {sorted(unknown)}; allowed {sorted(known)}")
        return cls(**data)


class FrontMember(tuple[Architecture, Metrics]):
    """One front member: the pair ``(arch, metrics)``, marked :attr:`within_budget` or over it.

    Taught in: notebooks/07_pareto.
    """

    within_budget: bool

    def __new__(cls, arch: Architecture, metrics: Metrics, within_budget: bool) -> FrontMember:
        member = super().__new__(cls, (arch, metrics))
        member.within_budget = bool(within_budget)
        return member

    def __getnewargs__(self) -> tuple[Architecture, Metrics, bool]:  # type: ignore[override]
        return self[0], self[1], self.within_budget

    @property
    def arch(self) -> Architecture:
        """The architecture."""
        return self[0]

    @property
    def metrics(self) -> Metrics:
        """What it scored."""
        return self[1]

    @property
    def over_budget(self) -> bool:
        """Over the latency or memory budget (a soft-constraint front may hold such members)."""
        return not self.within_budget

    def __repr__(self) -> str:
        mark = "" if self.within_budget else ", OVER BUDGET"
        return f"FrontMember({self[0].label()}, score {self[1].score:+.4f}, {self[1].latency_us:,.1f} us{mark})"


class SearchResult(list[FrontMember]):
    """The Pareto set a search found: ``[(arch, metrics), ...]``, best score first.

    The front is over the :attr:`problem`'s objectives (score up, latency down,
    memory down when budgeted) of the trained evaluations; under the hard
    constraint only those within the budgets count. Under the soft constraint
    members may be over budget: each is a :class:`FrontMember` marked
    ``within_budget`` or not, and :meth:`best` prefers the within-budget ones.
    ``history`` holds every evaluation in order; ``problem`` what was searched
    (its task is not saved); ``run`` how (strategy, seeds, data source).
    Test-split scores are in each front member's ``metrics.test_scores`` (the
    search never saw them).

    Taught in: notebooks/07_pareto.
    """

    def __init__(self, history: Iterable[Evaluation], problem: SearchProblem, run: SearchRun) -> None:
        if not isinstance(problem, SearchProblem):
            raise TypeError(f"problem must be a SearchProblem, got {type(problem).__name__}")
        self.history = list(history)
        self.problem = problem
        self.run = run
        super().__init__(self._front())

    def _front(self) -> list[FrontMember]:
        from ..pareto import pareto_front

        unique: dict[str, tuple[Architecture, Metrics]] = {}
        for step in self.history:
            if self.problem.selectable(step.metrics):
                unique.setdefault(architecture_key(step.arch), (step.arch, step.metrics))
        members = list(unique.values())
        if not members:
            return []
        front = [members[i] for i in pareto_front(self.problem.objective_array([m for _, m in members]))]
        front.sort(key=lambda item: (-item[1].score, item[1].latency_us))
        return [FrontMember(a, m, self.problem.within_budget(m)) for a, m in front]

    # ---- numbers
    @property
    def within_budget(self) -> list[FrontMember]:
        """The front members within the budgets (all of them under the hard constraint)."""
        return [member for member in self if member.within_budget]

    def objectives(self, normalised: bool = True) -> np.ndarray:
        """The front's minimised objectives; ``normalised`` divides latency (memory) by its budget."""
        return self.problem.objective_array([m for _, m in self], normalised)

    def default_reference(self) -> np.ndarray:
        """``(0, 1[, 1])`` in normalised objectives: a score above 0 and within the budgets."""
        return self.problem.reference()

    def hypervolume(self, reference: Any = None, *, normalised: bool = True) -> float:
        """Hypervolume of the front (0 when no member is better than ``reference``).

        By default in normalised objectives (``-score``, ``LAT / T``[, ``MEM / M``])
        against :meth:`default_reference`, so the value lies in ``[0, 1]`` for a
        correlation score and only members within the budgets add to it.
        """
        return _hypervolume_of(self.objectives(normalised), reference if reference is not None
                               else self.default_reference())

    def hypervolume_curve(self, reference: Any = None, *, normalised: bool = True) -> np.ndarray:
        """The front's hypervolume after each evaluation of :attr:`history`."""
        from ..pareto import pareto_front

        ref = np.asarray(reference if reference is not None else self.default_reference(), float)
        curve = np.zeros(len(self.history))
        points = np.zeros((0, len(ref)))
        value = 0.0
        for i, step in enumerate(self.history):
            if self.problem.selectable(step.metrics):
                point = self.problem.objective_array([step.metrics], normalised)
                if np.all(point < ref):
                    points = np.vstack([points, point])
                    value = _hypervolume_of(points, ref)
                    points = points[pareto_front(points)]
            curve[i] = value
        return curve

    def attainment_curve(self) -> np.ndarray:
        """The best validation score within the budgets after each evaluation (NaN before the first).

        Taught in: notebooks/07_pareto.
        """
        curve = np.full(len(self.history), np.nan)
        best = -np.inf
        for i, step in enumerate(self.history):
            if trained(step.metrics) and self.problem.within_budget(step.metrics):
                best = max(best, step.metrics.score)
            curve[i] = best if np.isfinite(best) else np.nan
        return curve

    def best_within_budget_score(self) -> float:
        """The best validation score of an evaluation within the budgets (NaN when none is)."""
        curve = self.attainment_curve()
        return float(curve[-1]) if len(curve) else float("nan")

    def best(self) -> FrontMember | None:
        """The best-scoring front member within the budgets; when none is, the best-scoring one,
        marked ``within_budget=False`` (None for an empty front)."""
        inside = self.within_budget
        return inside[0] if inside else (self[0] if self else None)

    def signature(self) -> list[tuple[str, dict[str, Any]]]:
        """What must agree between two runs of the same search: each step's architecture
        key and metrics without the timings (for determinism checks)."""
        return [(architecture_key(s.arch), {k: v for k, v in s.metrics.to_dict().items() if k != "seconds"})
                for s in self.history]

    # ---- text
    def summary(self) -> str:
        """A few lines: what was searched, how, and the front as a table (over-budget members marked)."""
        problem, run = self.problem, self.run
        fresh = self.history[run.restored:]  # the steps this call ran (the others: a saved run resumed)
        trained_now = sum(1 for s in fresh if not s.cached and s.metrics.feasible)
        from_store = sum(s.cached for s in fresh)
        resumed = f", {run.restored} restored from a saved run of this search" if run.restored else ""
        lines = [
            f"search: {run.strategy} (seed {run.seed}), {len(self.history)} evaluations "
            f"({trained_now} trained now, {from_store} from the store{resumed}), "
            f"{problem.constraint} constraint, latency budget {problem.latency_budget_us:,.0f} us"
            + (f" per batch of {problem.batch}" if problem.batch > 1 else "")
            + (f", memory budget {problem.memory_budget_bytes:,} B" if problem.memory_budget_bytes else ""),
            f"latency: {_latency_basis(problem)}; task: {run.task_source}",
            f"front: {len(self)} architectures ({len(self.within_budget)} within budget), hypervolume "
            f"{self.hypervolume():.4f} (normalised, reference {self.default_reference().tolist()})",
        ]
        if len(self.history) < problem.num_iterations:
            lines.append(f"the strategy stopped after {len(self.history)} of the {problem.num_iterations} "
                         f"evaluations asked for: it had no more candidates"
                         + (" (fbnet evaluates only the architectures its trained supernets derive: the "
                            "argmax and a few samples per supernet; --evals caps them)"
                            if run.strategy == "fbnet" else ""))
        if self and not self.within_budget:
            fastest = min(m.latency_us for _, m in self)
            lines.append(f"NOTHING MET THE BUDGET: every front member is over it (fastest "
                         f"{fastest:,.1f} us against {problem.latency_budget_us:,.1f} us); best() returns "
                         f"an over-budget model")
        elif not self:
            lines.append("NOTHING MET THE BUDGET: no trained candidate is on the front")
        lines.append(f"{'score':>8} {'test':>8} {'latency us':>11} {'memory B':>10} {'params':>8}  "
                     f"{'budget':<6}  architecture")
        for member in self:
            arch, m = member
            test = m.test_scores.get(run.primary_metric, math.nan)
            lines.append(f"{m.score:>+8.4f} {test:>+8.4f} {m.latency_us:>11,.1f} {m.memory_bytes:>10,} "
                         f"{m.params:>8,}  {'ok' if member.within_budget else 'OVER':<6}  {arch.label()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"SearchResult({self.run.strategy}, {len(self.history)} evaluations, front of {len(self)} "
                f"({len(self.within_budget)} within budget), hypervolume {self.hypervolume():.4f})")

    # ---- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: the problem, the run, the whole history, and the front for readers
        (each member's key and ``within_budget``; recomputed on loading)."""
        return {"format": RESULT_FORMAT, "version": RESULT_VERSION, "problem": self.problem.to_dict(),
                "run": self.run.to_dict(), "history": [s.to_dict() for s in self.history],
                "front": [{"key": architecture_key(a), "label": a.label(), "within_budget": member.within_budget,
                           "metrics": m.to_dict()} for member in self for a, m in [member]]}

    def to_json(self, indent: int | None = None) -> str:
        """The result as strict JSON."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str, task: ProxyTask | None = None) -> SearchResult:
        """Inverse of :meth:`to_json` (ValueError for another format); ``task`` goes to the problem."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise ValueError(f"not a search result: format is {found!r}")
        if data.get("version") != RESULT_VERSION:
            raise ValueError(f"search result version {data.get('version')!r} unsupported; expected {RESULT_VERSION}")
        return cls([Evaluation.from_dict(s) for s in data["history"]],
                   SearchProblem.from_dict(data["problem"], task=task), SearchRun.from_dict(data["run"]))

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` atomically."""
        from ..fileio import write_text_atomic

        return write_text_atomic(path, self.to_json(indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path, task: ProxyTask | None = None) -> SearchResult:
        """Read a result :meth:`save` wrote (ValueError naming the path when it cannot be read)."""
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ValueError(f"path {str(path)!r}: {err.strerror or err}") from None
        return cls.from_json(text, task)


def _latency_basis(problem: SearchProblem) -> str:
    """What the latency column is: predicted by which profile, modelled or a table measured in
    which runtime with which estimator, at which precision."""
    profile = problem.profile
    conditions = dict(profile.conditions)
    if profile.is_model:
        how = "modelled (an analytical model, not a measurement)"
    else:
        estimator = (conditions.get("timing") or {}).get("estimator", "min")
        how = (f"predicted from a table measured in {conditions.get('runtime', 'eager')} "
               f"(estimator {estimator})")
    return f"{how} by {profile.label}, precision {problem.target_precision}"


def _hypervolume_of(points: np.ndarray, reference: Any) -> float:
    from ..pareto import hypervolume

    ref = np.asarray(reference, float)
    inside = points[np.all(points < ref, axis=1)] if len(points) else points
    return hypervolume(inside, ref) if len(inside) else 0.0
