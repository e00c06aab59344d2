"""Optuna as a strategy: any Optuna sampler drives the space's genome through ask/tell.

Taught in: notebooks/07_pareto.

The genome is a fixed set of categorical parameters (``lookback``, ``depth``,
``block_i`` and ``skip_i`` for every position up to the deepest depth, ``head``);
positions beyond the sampled depth are ignored. A block that cannot follow the
layers before it (a pooling step on a sequence already too short) is repaired
deterministically to the next candidate index that fits. The objectives are the
proxy score (maximised) and the LUT latency (minimised), plus memory when a
memory budget is given; an infeasible candidate is told as a failed trial, and
under the hard constraint the budget excess is Optuna's constraint
(``Trial.set_constraint``, feasible when <= 0, which NSGA-II and TPE read).

Optuna's study is not JSON: :meth:`OptunaStrategy.state_dict` records the ask
and tell events and :meth:`~OptunaStrategy.load_state_dict` replays them into a
fresh study with the same seeded sampler, which asks the same trials again.
Optuna is an optional extra, imported only when this strategy is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import optuna  # this module is the Optuna adapter; get_strategy imports it only on demand

from ..checks import require_int
from .base import Constraint, Metrics, SearchProblem, Strategy, register_strategy, trained
from .store import architecture_key

if TYPE_CHECKING:
    from ..architecture import Architecture
    from ..space import Genome

__all__ = ["SAMPLERS", "OptunaStrategy"]

optuna.logging.set_verbosity(optuna.logging.WARNING)

SAMPLERS = ("nsga2", "tpe", "random")


def _make_sampler(name: str, seed: int, population_size: int) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


@register_strategy("optuna")
class OptunaStrategy(Strategy):
    """An Optuna study over the genome (default ``NSGAIISampler``, objectives score up, latency down).

    ``sampler`` is one of :data:`SAMPLERS` or a callable ``seed -> BaseSampler``
    (it must build the same sampler for the same seed, so a resumed search asks
    the same trials). ``population_size`` is NSGA-II's (20 by default, the
    evolution strategy's population, for budgets of hundreds; Optuna's default
    of 50 leaves 6 generations in 300 evaluations).

    Taught in: notebooks/07_pareto.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0,
                 sampler: str | Callable[[int], Any] = "nsga2", population_size: int = 20) -> None:
        super().__init__(problem, seed=seed)
        if not callable(sampler) and sampler not in SAMPLERS:
            raise ValueError(f"sampler {sampler!r} is not allowed; choose one of {', '.join(SAMPLERS)} "
                             f"or pass a callable seed -> optuna sampler")
        self.sampler = sampler
        self.population_size = require_int(population_size, "population_size", 2)
        space = problem.space
        width = len(space.candidates())
        dist = optuna.distributions.CategoricalDistribution
        self.distributions: dict[str, Any] = {
            "lookback": dist(list(space.lookbacks)), "depth": dist(list(space.depths)),
            "head": dist([h.value for h in space.head_types])}
        for i in range(max(space.depths)):
            self.distributions[f"block_{i}"] = dist(list(range(width)))
            self.distributions[f"skip_{i}"] = dist(list(space.skip_choices))
        self._reset()

    def _reset(self) -> None:
        # every objective of the problem is minimised (the score negated there, once)
        directions = [optuna.study.StudyDirection.MINIMIZE] * len(self.problem.objective_names)
        sampler = (self.sampler(self.seed) if callable(self.sampler)
                   else _make_sampler(self.sampler, self.seed, self.population_size))
        self.study = optuna.create_study(directions=directions, sampler=sampler)
        self.events: list[list[Any]] = []
        self.trials: dict[int, Any] = {}
        self.pending: dict[str, list[int]] = {}

    # ---- genome
    def _genome(self, params: dict[str, Any]) -> Genome:
        from ..architecture import HeadType
        from ..space import Genome

        depth = int(params["depth"])
        return Genome(int(params["lookback"]), tuple(int(params[f"block_{i}"]) for i in range(depth)),
                      tuple(bool(params[f"skip_{i}"]) for i in range(depth)), HeadType(params["head"]))

    def decode(self, params: dict[str, Any]) -> Architecture:
        """The architecture of a trial's parameters, blocks repaired to the next one that fits."""
        from ..space import Genome

        space = self.problem.space
        genome = self._genome(params)
        width = len(space.candidates())
        blocks = list(genome.blocks)
        for i in range(len(blocks)):
            for step in range(width):
                trial_blocks = blocks[:i] + [(genome.blocks[i] + step) % width]
                try:
                    space.decode(Genome(genome.lookback, tuple(trial_blocks), genome.skips[:i + 1],
                                        genome.head))
                except ValueError:
                    continue
                blocks[i] = trial_blocks[i]
                break
        return space.decode(Genome(genome.lookback, tuple(blocks), genome.skips, genome.head))

    # ---- ask / tell
    def _ask(self, n: int) -> list[Architecture]:
        self.events.append(["ask", n])
        out = []
        for _ in range(n):
            trial = self.study.ask(self.distributions)
            arch = self.decode(trial.params)
            self.trials[trial.number] = trial
            self.pending.setdefault(architecture_key(arch), []).append(trial.number)
            out.append(arch)
        return out

    def ask(self, n: int = 1) -> list[Architecture]:
        """``n`` new trials of the study, decoded."""
        return self._ask(n)

    def _values(self, metrics: Metrics) -> tuple[list[float] | None, list[float]]:
        problem = self.problem
        excess = problem.budget_excess(metrics)
        if not trained(metrics):
            return None, [0.0 for _ in excess]  # a failed trial: Optuna never reads its constraints
        return problem.objectives(metrics), excess

    def _tell(self, number: int, values: list[float] | None, excess: list[float]) -> None:
        trial = self.trials.pop(number)
        if self.problem.constraint == Constraint.HARD:
            for name, value in zip(("latency", "memory"), excess):
                trial.set_constraint(name, value)
        if values is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, values)

    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """Tell the oldest pending trial that decoded to ``arch``."""
        queue = self.pending.get(architecture_key(arch))
        if not queue:
            raise ValueError("tell: this architecture was not asked (or was told already)")
        number = queue.pop(0)
        values, excess = self._values(metrics)
        self.events.append(["tell", number, values, excess])
        self._tell(number, values, excess)

    def state_dict(self) -> dict[str, Any]:
        """The ask and tell events so far (replayed by :meth:`load_state_dict`)."""
        return {"events": [list(e) for e in self.events]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A fresh study, then every recorded ask and tell again, in order."""
        self._reset()
        for event in state["events"]:
            if event[0] == "ask":
                self._ask(int(event[1]))
            else:
                _, number, values, excess = event
                for queue in self.pending.values():
                    if number in queue:
                        queue.remove(number)
                self.events.append(["tell", number, values, excess])
                self._tell(int(number), values, list(excess))

    def __repr__(self) -> str:
        name = self.sampler if isinstance(self.sampler, str) else getattr(self.sampler, "__name__", "custom")
        return f"OptunaStrategy(sampler={name}, seed={self.seed})"
