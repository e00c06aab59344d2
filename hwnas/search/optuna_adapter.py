"""Optuna as a strategy: any Optuna sampler drives the space's op-first genome through ask/tell.

Taught in: notebooks/07_pareto.

The genome is asked define-by-run, Optuna's own style, with conditional
parameters: ``lookback`` and ``depth``, then per layer ``i < depth`` the op
``op_i``, then only that op's parameters, each named by op and layer
(``conv_kernel_size_0``, ``dilated_conv_dilation_2``, ``attention_heads_1``, ...),
then ``skip_i``; ``head`` last. Every parameter name keeps one fixed list of
choices (Optuna does not allow a categorical to change its choices), so an op
that cannot follow the layers before it (a pooling step on a sequence already
too short) is repaired deterministically to the next op in the space's order
that fits, and its parameters to the fitting candidate that matches most of
them. The objectives are the proxy score (maximised) and the LUT latency
(minimised), plus memory when a memory budget is given; an infeasible candidate
is told as a failed trial, and under the hard constraint the budget excess is
Optuna's constraint (``Trial.set_constraint``, feasible when <= 0, which
NSGA-II and TPE read).

Two strategies are registered here: ``"optuna"`` (any sampler, NSGA-II by
default) and ``"tpe"``, Optuna's multi-objective TPE (Ozaki et al., "Multiobjective
tree-structured Parzen estimator", JAIR 2022) with ``multivariate`` and ``group``
for the conditional genome and ``constant_liar`` for the batches the loop asks:
the peer hwnas's own strategies are measured against.

Optuna's study is not JSON: :meth:`OptunaStrategy.state_dict` records the ask
and tell events and :meth:`~OptunaStrategy.load_state_dict` replays them into a
fresh study with the same seeded sampler, which asks the same trials again.
Optuna is an optional extra, imported only when this strategy is used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import optuna  # this module is the Optuna adapter; get_strategy imports it only on demand

from ..architecture import OpType
from ..checks import require_int
from .base import Constraint, Metrics, SearchProblem, Strategy, register_strategy, trained
from .store import architecture_key

if TYPE_CHECKING:
    from ..architecture import Architecture

__all__ = ["SAMPLERS", "OptunaStrategy", "TPEStrategy", "tpe_sampler"]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _plain(value: Any) -> Any:
    """A parameter value as an Optuna categorical choice (an enum by its value)."""
    return getattr(value, "value", value)

SAMPLERS = ("nsga2", "tpe", "random")


def tpe_sampler(seed: int) -> optuna.samplers.TPESampler:
    """Optuna's (multi-objective) TPE for the conditional genome: ``multivariate`` and ``group``
    (conditional parameters modelled jointly within the groups that occur together), ``constant_liar``
    (a batch of trials asked before any is told).

    Taught in: notebooks/07_pareto.
    """
    with warnings.catch_warnings():  # group and multivariate are flagged experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)


def _make_sampler(name: str, seed: int, population_size: int) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed)
    if name == "tpe":
        return tpe_sampler(seed)
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
        # per op, the parameters its candidates vary in, with their values in candidate order
        self.op_parameters: dict[Any, dict[str, list[Any]]] = {}
        for choice in space.candidates():
            values = self.op_parameters.setdefault(choice.op, {})
            for name in space.PARAMETERS:
                value = _plain(getattr(choice, name))
                values.setdefault(name, [])
                if value not in values[name]:
                    values[name].append(value)
        for values in self.op_parameters.values():
            for name in [n for n, v in values.items() if len(v) < 2]:
                del values[name]
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

    # ---- genome, define-by-run
    def suggest(self, trial: optuna.trial.BaseTrial) -> Architecture:
        """The architecture a trial suggests, op first, each layer's parameters conditional on its op.

        An op that does not fit where it stands is repaired to the next op (in the space's
        order) that does, its parameters to the fitting candidate that matches most of them.
        """
        from ..architecture import HeadType
        from ..space import Genome

        space = self.problem.space
        lookback = int(trial.suggest_categorical("lookback", list(space.lookbacks)))
        depth = int(trial.suggest_categorical("depth", list(space.depths)))
        channels, length = space.stem_width, lookback
        blocks, skips = [], []
        for i in range(depth):
            choices = space.op_choices(channels, length)
            op = space.ops.index(OpType(trial.suggest_categorical(f"op_{i}", [o.value for o in space.ops])))
            fitting = [o for o in space.ops[op:] + space.ops[:op] if o in choices][0]
            wanted = {name: trial.suggest_categorical(f"{fitting.value}_{name}_{i}", values)
                      for name, values in self.op_parameters[fitting].items()}
            candidates = space.candidates()
            index = max(choices[fitting], key=lambda k: sum(
                _plain(getattr(candidates[k], n)) == v for n, v in wanted.items()))
            skip = bool(trial.suggest_categorical(f"skip_{i}", list(space.skip_choices)))
            blocks.append(index)
            skips.append(skip)
            layer = candidates[index].layer(channels, skip)
            channels, length = layer.out_channels, layer.output_length(length)
        head = HeadType(trial.suggest_categorical("head", [h.value for h in space.head_types]))
        return space.decode(Genome(lookback, tuple(blocks), tuple(skips), head))

    # ---- ask / tell
    def _ask(self, n: int) -> list[Architecture]:
        self.events.append(["ask", n])
        out = []
        for _ in range(n):
            trial = self.study.ask()
            arch = self.suggest(trial)
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


@register_strategy("tpe")
class TPEStrategy(OptunaStrategy):
    """Optuna's multi-objective TPE over the conditional genome (:func:`tpe_sampler`): the peer.

    The same adapter as ``"optuna"`` with ``sampler="tpe"``; registered under its own name so
    that benchmarks and the shared strategy tests run it beside hwnas's strategies.

    Taught in: notebooks/07_pareto.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0) -> None:
        super().__init__(problem, seed=seed, sampler="tpe")

    def __repr__(self) -> str:
        return f"TPEStrategy(seed={self.seed})"
