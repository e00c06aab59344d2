"""pymoo's NSGA-II as a strategy: a fixed-length integer encoding of the genome, through pymoo's ask/tell.

Taught in: notebooks/07_pareto.

The encoding has ``3 + 3 * max(depths)`` integer variables: the lookback, the
depth and the head (indices into the space's choices), then per position the
op, a variant and the skip. Positions beyond the depth are ignored. An op that
cannot follow the layers before it is repaired to the next op (in the space's
order) that fits, and the variant picks among that op's candidates that fit
(modulo their number), so every vector decodes to a feasible architecture.
NSGA-II (Deb et al., "A fast and elitist multiobjective genetic algorithm:
NSGA-II", IEEE TEC 2002) runs with pymoo's integer recipe: random integer
sampling, SBX crossover and polynomial mutation rounded to integers, duplicates
eliminated (Blank & Deb, "pymoo: Multi-objective optimization in Python", IEEE
Access 2020). The objectives are the normalised ``-score`` and ``LAT / T`` (and
memory); under the hard constraint the budget excess is pymoo's inequality
constraint (feasible when <= 0).

pymoo's algorithm is not JSON: the state is the objective rows told so far, and
:meth:`PymooStrategy.load_state_dict` replays them into a fresh, identically
seeded algorithm, which asks the same populations again. pymoo is an optional
extra, imported only when this strategy is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from ..checks import require_int
from .base import Constraint, Metrics, SearchProblem, Strategy, register_strategy, trained
from .store import architecture_key

if TYPE_CHECKING:
    from ..architecture import Architecture

__all__ = ["FAILED_OBJECTIVE", "PymooStrategy"]

#: The normalised objective value told for a candidate that was not trained (worse than any trained one).
FAILED_OBJECTIVE = 1e3


@register_strategy("pymoo")
class PymooStrategy(Strategy):
    """pymoo's NSGA-II (``population_size`` 20) over the integer encoding, asked and told a population at a time.

    Taught in: notebooks/07_pareto.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0, population_size: int = 20) -> None:
        super().__init__(problem, seed=seed)
        self.population_size = require_int(population_size, "population_size", 2)
        space = problem.space
        self.variants = max(sum(c.op == op for c in space.candidates()) for op in space.ops)
        upper = [len(space.lookbacks) - 1, len(space.depths) - 1, len(space.head_types) - 1]
        for _ in range(max(space.depths)):
            upper += [len(space.ops) - 1, self.variants - 1, len(space.skip_choices) - 1]
        self.upper = np.array(upper)
        self._reset()

    def _reset(self) -> None:
        m = len(self.problem.objective_names)
        hard = self.problem.constraint == Constraint.HARD
        self.pymoo_problem = Problem(n_var=len(self.upper), n_obj=m, n_ieq_constr=m - 1 if hard else 0,
                                     xl=np.zeros(len(self.upper)), xu=self.upper, vtype=int)
        self.algorithm = NSGA2(pop_size=self.population_size, sampling=IntegerRandomSampling(),
                               crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
                               mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
                               eliminate_duplicates=True, seed=self.seed)
        self.algorithm.setup(self.pymoo_problem, termination=("n_eval", 10**9))
        self.population: Any = None
        self.archs: list[Architecture] = []
        self.handed = 0
        self.rows: list[list[float]] = []  # the current population's told rows
        self.told: list[list[float]] = []  # every told row, in order (the state)

    def decode(self, x: np.ndarray) -> Architecture:
        """The architecture of an integer vector (ops repaired to the next that fits)."""
        from ..space import Genome

        space = self.problem.space
        x = np.asarray(np.rint(x), dtype=int)
        lookback = int(space.lookbacks[x[0]])
        depth = int(space.depths[x[1]])
        channels, length = space.stem_width, lookback
        blocks, skips = [], []
        for i in range(depth):
            op, variant, skip = (int(v) for v in x[3 + 3 * i: 6 + 3 * i])
            choices = space.op_choices(channels, length)
            fitting = [o for o in space.ops[op:] + space.ops[:op] if o in choices][0]
            index = choices[fitting][variant % len(choices[fitting])]
            use_skip = bool(space.skip_choices[skip])
            blocks.append(index)
            skips.append(use_skip)
            layer = space.candidates()[index].layer(channels, use_skip)
            channels, length = layer.out_channels, layer.output_length(length)
        return space.decode(Genome(lookback, tuple(blocks), tuple(skips), space.head_types[x[2]]))

    def ask(self, n: int = 1) -> list[Architecture]:
        """Up to ``n`` members of the current population not yet handed out (a new one when all are told)."""
        if self.population is None:
            self.population = self.algorithm.ask()
            self.archs = [self.decode(x) for x in self.population.get("X")]
            self.handed, self.rows = 0, []
        out = self.archs[self.handed:self.handed + n]
        self.handed += len(out)
        return out

    def _row(self, metrics: Metrics) -> list[float]:
        problem = self.problem
        m = len(problem.objective_names)
        if not trained(metrics):
            return [FAILED_OBJECTIVE] * m + [0.0] * (m - 1)
        return problem.objectives(metrics, normalised=True) + problem.budget_excess(metrics)

    def _receive(self, row: list[float]) -> None:
        self.rows.append(row)
        self.told.append(row)
        if len(self.rows) == len(self.archs):
            m = len(self.problem.objective_names)
            values = np.array(self.rows, dtype=float)
            self.population.set("F", values[:, :m])
            if self.problem.constraint == Constraint.HARD:
                self.population.set("G", values[:, m:])
            self.algorithm.tell(infills=self.population)
            self.population = None

    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """Record the next handed-out member's objectives; a full population goes to NSGA-II."""
        if self.population is None or len(self.rows) >= self.handed:
            raise ValueError("tell: this architecture was not asked (or was told already)")
        if architecture_key(arch) != architecture_key(self.archs[len(self.rows)]):
            raise ValueError("tell: results must come in the order they were asked")
        self._receive(self._row(metrics))

    def state_dict(self) -> dict[str, Any]:
        """Every objective row told so far (replayed by :meth:`load_state_dict`)."""
        return {"told": [list(r) for r in self.told]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A fresh algorithm with the same seed, then every told row again, population by population."""
        self._reset()
        for row in state["told"]:
            if self.population is None:
                self.ask(0)
            self.handed = len(self.rows) + 1
            self._receive([float(v) for v in row])

    def __repr__(self) -> str:
        return f"PymooStrategy(NSGA-II, population={self.population_size}, seed={self.seed})"
