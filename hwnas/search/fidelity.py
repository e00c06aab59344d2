"""Multi-fidelity evaluation: every candidate gets the cheap proxy, the promising ones more epochs and seeds.

Taught in: notebooks/07_pareto.

Successive halving in the asynchronous form of ASHA (Li et al. 2020, "A System
for Massively Parallel Hyperparameter Tuning", MLSys), with the promotion rule
of Optuna's ``SuccessiveHalvingPruner`` (the reference a user will know):

* **rungs**: rung ``r`` trains ``epochs[r]`` epochs with ``seeds[r]`` training
  seeds (``seed, seed + 1, ...``); the default ladder is 1 epoch x 1 seed (the
  1-epoch proxy), 3 x 2, 9 x 3, i.e. ``min_epochs * eta ** r`` epochs;
* **promotion**: a candidate's rung score is its mean validation score over the
  rung's seeds; it climbs to rung ``r + 1`` when that score is within the top
  ``max(1, n // eta)`` of the ``n`` candidates that have reached rung ``r`` so far
  (itself and every earlier one in the store), the rule of
  :func:`promotable`. A candidate is judged when it is evaluated, never later;
* **one search round at a time**: the candidates of one round are trained at
  rung 0, then judged together, the promoted ones trained at rung 1, judged, and
  so on; so the judgement never depends on which training finished first, and
  the same seed gives the same search with any executor;
* **the store** keeps every (candidate, fidelity = epochs, training seed) run in
  its ``trainings`` table: none is trained twice, and a search killed mid-round
  re-runs the round from what is stored, with the same result;
* **the score** a strategy, :class:`~hwnas.search.base.SearchProblem` and
  :class:`~hwnas.search.base.Metrics` see is the highest rung reached: the mean
  validation score over its seeds (test scores likewise). Candidates at
  different rungs are compared on those scores as they stand: only candidates
  already in the top of every lower rung reach a higher one, and a longer
  training usually scores higher, so the front is drawn from the promoted
  candidates. ``metrics.scores`` says which rung (``"rung"``, ``"epochs"``,
  ``"seeds"``) and ``metrics.seconds`` is the training time of every rung.

Each rung trains from scratch (not from the lower rung's weights), so a run is
exactly the pipeline's training at that many epochs and seeds.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..checks import require_int
from .evaluator import Evaluator, Trainer, TrainResult, pack_task, task_fingerprint

if TYPE_CHECKING:
    from ..architecture import Architecture
    from .base import Metrics
    from .store import EvaluationStore

__all__ = ["DEFAULT_RUNGS", "MultiFidelityEvaluator", "Rung", "promotable", "rung_ladder"]


@dataclass(frozen=True)
class Rung:
    """One fidelity: train ``epochs`` epochs with ``seeds`` training seeds.

    Taught in: notebooks/07_pareto.
    """

    epochs: int
    seeds: int

    def __post_init__(self) -> None:
        require_int(self.epochs, "epochs", 1)
        require_int(self.seeds, "seeds", 1)

    @property
    def cost(self) -> int:
        """Epochs trained by one candidate at this rung (epochs x seeds)."""
        return self.epochs * self.seeds


def rung_ladder(min_epochs: int = 1, eta: int = 3, rungs: int = 3,
                seeds: Sequence[int] = (1, 2, 3)) -> tuple[Rung, ...]:
    """Rung ``r``: ``min_epochs * eta ** r`` epochs with ``seeds[r]`` seeds (``rungs`` of them).

    Taught in: notebooks/07_pareto.
    """
    require_int(min_epochs, "min_epochs", 1)
    require_int(eta, "eta", 2)
    require_int(rungs, "rungs", 1)
    if len(seeds) < rungs:
        raise ValueError(f"seeds must give a seed count for each of the {rungs} rungs, got {list(seeds)}")
    return tuple(Rung(min_epochs * eta ** r, int(seeds[r])) for r in range(rungs))


DEFAULT_RUNGS = rung_ladder()
"""1 epoch x 1 seed (the 1-epoch proxy), 3 epochs x 2 seeds, 9 epochs x 3 seeds."""


def promotable(value: float, population: Sequence[float], eta: int) -> bool:
    """Does ``value`` climb a rung? Yes when it is within the top ``max(1, n // eta)`` of the ``n``
    finite scores of ``population`` (which holds ``value`` itself); a NaN never climbs.

    Optuna's ``SuccessiveHalvingPruner`` rule (with fewer than ``eta`` candidates only the best
    climbs); ties at the threshold all climb.

    Taught in: notebooks/07_pareto.
    """
    require_int(eta, "eta", 2)
    if not math.isfinite(value):
        return False
    finite = sorted((float(v) for v in population if math.isfinite(v)), reverse=True)
    if not finite:
        return False
    keep = max(1, len(finite) // eta)
    return value >= finite[keep - 1]


def _result(trained: TrainResult) -> dict[str, Any]:
    return {"score": trained.score, "scores": trained.scores, "test_scores": trained.test_scores,
            "seconds": trained.seconds}


def _from_result(data: dict[str, Any]) -> TrainResult:
    def floats(values: dict[str, Any]) -> dict[str, float]:
        return {k: math.nan if v is None else float(v) for k, v in values.items()}

    score = data.get("score")
    return TrainResult(math.nan if score is None else float(score), floats(data.get("scores", {})),
                       floats(data.get("test_scores", {})), float(data.get("seconds", 0.0)))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _mean_dicts(dicts: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = sorted(set().union(*dicts)) if dicts else []
    return {k: _mean([d[k] for d in dicts if k in d]) for k in keys}


@dataclass(eq=False)
class MultiFidelityEvaluator(Evaluator):
    """An :class:`Evaluator` that trains by successive halving over ``rungs`` (module docstring).

    ``MultiFidelityEvaluator(task, profile, rungs=DEFAULT_RUNGS, eta=3)``; give it to
    :func:`~hwnas.search.minimize` (``evaluator=``) with any strategy. ``seed`` is the
    first training seed of every rung. The store's evaluation rows are keyed by a task
    fingerprint that includes the ladder, so plain and multi-fidelity searches share a
    store without mixing; the training runs are keyed by the plain task and the epochs,
    so two ladders share the runs they have in common.

    Taught in: notebooks/07_pareto.
    """

    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
    eta: int = 3
    _train_key: str | None = field(default=None, init=False, repr=False)
    _local: EvaluationStore | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.eta = require_int(self.eta, "eta", 2)
        rungs = tuple(self.rungs)
        if not rungs or not all(isinstance(r, Rung) for r in rungs):
            raise ValueError(f"rungs must be a non-empty sequence of Rung, got {self.rungs!r}")
        if any(b.cost <= a.cost for a, b in zip(rungs, rungs[1:])):
            raise ValueError(f"rungs must cost more (epochs x seeds) at each step, got {rungs!r}")
        self.rungs = rungs

    # ---- keys
    def train_key(self) -> str:
        """The fingerprint training runs are stored under: the task with its epochs set aside."""
        if self._train_key is None:
            self._train_key = task_fingerprint(replace(self.task, epochs=1))
        return self._train_key

    def fingerprints(self) -> tuple[str, str]:
        """``(task + ladder, profile)``: the evaluation rows' key parts."""
        if self._fingerprints is None:
            task_key, profile_key = super().fingerprints()
            ladder = json.dumps({"task": task_key, "eta": self.eta,
                                 "rungs": [[r.epochs, r.seeds] for r in self.rungs]}, sort_keys=True)
            self._fingerprints = (hashlib.sha256(ladder.encode()).hexdigest(), profile_key)
        return self._fingerprints

    def seeds(self, rung: Rung) -> list[int]:
        """The training seeds of ``rung``."""
        return [self.seed + i for i in range(rung.seeds)]

    def unit_trainer(self, epochs: int, seed: int, remote: bool) -> Trainer:
        """The trainer of one training run (``remote``: with the packed task, to ship to an executor)."""
        if remote:
            if self._packed is None:
                self._packed = pack_task(self.task)
            return Trainer(self._packed, seed, epochs, self.fixed_point, self.fixed_point_width)
        return Trainer(self.task, seed, epochs, self.fixed_point, self.fixed_point_width)

    def __call__(self, arch: Architecture) -> Metrics:
        """Evaluate ``arch`` here, judged against the candidates this evaluator evaluated before
        (kept in an in-memory store; the search loop uses its own store instead)."""
        from .store import EvaluationStore, architecture_key

        start = time.perf_counter()
        hardware = self.hardware_metrics(arch)
        if not hardware.feasible:
            return replace(hardware, seconds=time.perf_counter() - start)
        if self._local is None:
            self._local = EvaluationStore(":memory:", *self.fingerprints(), self.seed)
        [(_, trained)] = list(self.train_all([(architecture_key(arch), arch)], self._local, None))
        return self.combine(hardware, trained)

    # ---- training
    def _train_units(self, units: list[tuple[str, Architecture, int]], epochs: int, store: EvaluationStore,
                     executor: Executor | None) -> dict[tuple[str, int], TrainResult]:
        """Each ``(key, arch, seed)`` trained for ``epochs`` once: from the store when there, else
        claimed, trained and stored at once (another process's claim is waited for)."""
        done: dict[tuple[str, int], TrainResult] = {}
        todo: list[tuple[str, Architecture, int]] = []
        waiting: list[tuple[str, Architecture, int]] = []
        task_key = self.train_key()
        for key, arch, seed in units:
            if (key, seed) in done or any((k, s) == (key, seed) for k, _, s in todo + waiting):
                continue
            stored = store.get_training(key, task_key, epochs, seed)
            if stored is not None:
                done[(key, seed)] = _from_result(stored)
            elif store.claim_training(key, task_key, epochs, seed):
                todo.append((key, arch, seed))
            else:
                waiting.append((key, arch, seed))

        def finish(key: str, seed: int, trained: TrainResult) -> None:
            store.put_training(key, task_key, epochs, seed, _result(trained))
            done[(key, seed)] = trained

        if executor is None:
            for key, arch, seed in todo:
                finish(key, seed, self.unit_trainer(epochs, seed, False)(arch))
        elif todo:
            futures = {executor.submit(self.unit_trainer(epochs, seed, True), arch): (key, seed)
                       for key, arch, seed in todo}
            for future in as_completed(futures):
                finish(*futures[future], future.result())
        while waiting:
            for unit in list(waiting):
                key, arch, seed = unit
                stored = store.get_training(key, task_key, epochs, seed)
                if stored is not None:
                    done[(key, seed)] = _from_result(stored)
                    waiting.remove(unit)
                elif store.claim_training(key, task_key, epochs, seed):
                    finish(key, seed, self.unit_trainer(epochs, seed, False)(arch))
                    waiting.remove(unit)
            if waiting:
                time.sleep(0.2)
        return done

    def train_all(self, items: Sequence[tuple[str, Architecture]], store: EvaluationStore,
                  executor: Executor | None) -> Iterator[tuple[str, TrainResult]]:
        """Successive halving over one round's candidates; each key's result at its highest rung."""
        reached: dict[str, tuple[int, list[TrainResult]]] = {}
        seconds: dict[str, float] = {key: 0.0 for key, _ in items}
        active = list(dict(items).items())
        for r, rung in enumerate(self.rungs):
            seeds = self.seeds(rung)
            done = self._train_units([(key, arch, s) for key, arch in active for s in seeds], rung.epochs,
                                     store, executor)
            for key, _ in active:
                runs = [done[(key, s)] for s in seeds]
                reached[key] = (r, runs)
                seconds[key] += sum(run.seconds for run in runs)
            if r == len(self.rungs) - 1:
                break
            population = store.rung_scores(self.train_key(), rung.epochs, seeds)
            values = list(population.values())
            active = [(key, arch) for key, arch in active
                      if promotable(_mean([run.score for run in reached[key][1]]), values, self.eta)]
            if not active:
                break
        for key, _ in items:
            r, runs = reached[key]
            rung = self.rungs[r]
            scores = {**_mean_dicts([run.scores for run in runs]),
                      "rung": float(r), "epochs": float(rung.epochs), "seeds": float(rung.seeds)}
            yield key, TrainResult(_mean([run.score for run in runs]), scores,
                                   _mean_dicts([run.test_scores for run in runs]), seconds[key])
