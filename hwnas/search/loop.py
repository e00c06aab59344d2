"""The search loop: ask a strategy, evaluate through an executor, store, tell; and its result.

Taught in: notebooks/07_pareto.

``search`` asks the strategy for ``batch_size`` candidates, evaluates the ones
the store does not hold yet (concurrently when an ``executor`` is given: a
``ProcessPoolExecutor``, or a dask cluster's ``Client(...).get_executor()``),
records every result in the store, and tells the strategy in the order it
asked. Because ``batch_size`` does not depend on the executor and results are
told in ask order, the same seed gives the same search with any executor and
any completion order. After each round the strategy's state is saved in the
store, so a killed search started again with the same store resumes where it
stood and trains nothing twice.

On a cluster::

    from distributed import Client
    client = Client("tcp://scheduler:8786")          # the dask scheduler's address
    result = hwnas.search(space, profile, 2_000.0, 500, executor=client.get_executor(),
                          store="evals.sqlite")

The workers need hwnas installed; what travels with each candidate is the
architecture and a packed task of a few MB (see :func:`hwnas.search.evaluator.pack_task`).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ..checks import require_int
from .base import Metrics, SearchProblem, Strategy, get_strategy
from .evaluator import Evaluator, TrainResult
from .store import EvaluationStore, architecture_key

if TYPE_CHECKING:
    from ..hardware import HardwareProfile
    from ..proxy import ProxyTask
    from ..space import Architecture, SearchSpace

__all__ = ["Evaluation", "SearchResult", "default_task", "restore_history", "run_key", "search"]

RESULT_FORMAT = "hwnas-search-result"
RESULT_VERSION = 1


@dataclass(frozen=True)
class Evaluation:
    """One step of a search: the candidate, what it scored, whether the store already had it,
    and the seconds since the search started when it was told.

    Taught in: notebooks/07_pareto.
    """

    index: int
    arch: "Architecture"
    metrics: Metrics
    cached: bool
    wall_time: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"index": self.index, "arch": self.arch.to_dict(), "metrics": self.metrics.to_dict(),
                "cached": self.cached, "wall_time": self.wall_time}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Evaluation":
        """Inverse of :meth:`to_dict`."""
        from ..space import Architecture

        return cls(int(data["index"]), Architecture.from_dict(data["arch"]),
                   Metrics.from_dict(data["metrics"]), bool(data["cached"]), float(data["wall_time"]))


def _selectable(info: dict[str, Any], metrics: Metrics) -> bool:
    """May this evaluation be on the front? Trained and finite; within budget for the hard constraint."""
    if not metrics.feasible or not math.isfinite(metrics.score):
        return False
    if info["constraint"] != "hard":
        return True
    memory_budget = info.get("memory_budget_bytes")
    return metrics.latency_us <= info["latency_budget_us"] and not (
        memory_budget and metrics.memory_bytes > memory_budget)


def _objectives(info: dict[str, Any], metrics: Sequence[Metrics], normalised: bool) -> np.ndarray:
    """The minimised objectives (``-score``, latency, memory when budgeted), optionally over the budgets."""
    memory_budget = info.get("memory_budget_bytes")
    scale = [1.0, info["latency_budget_us"] if normalised else 1.0]
    if memory_budget:
        scale.append(memory_budget if normalised else 1.0)
    rows = [[-m.score, m.latency_us] + ([float(m.memory_bytes)] if memory_budget else [])
            for m in metrics]
    return np.array(rows, dtype=float).reshape(len(rows), len(scale)) / np.array(scale)


class SearchResult(list[tuple["Architecture", Metrics]]):
    """The Pareto set a search found: ``[(arch, metrics), ...]``, best score first.

    The front is over score (up), latency (down) and memory (down, when a memory
    budget is given) of the trained evaluations; under the hard constraint only
    those within the budgets count. ``history`` holds every evaluation in order;
    ``info`` the settings needed to redo a figure (budgets, strategy, seed, task
    source). Test-split scores are in each front member's ``metrics.test_scores``
    (the search never saw them).

    Taught in: notebooks/07_pareto.
    """

    def __init__(self, history: Iterable[Evaluation], info: dict[str, Any]) -> None:
        self.history = list(history)
        self.info = dict(info)
        super().__init__(self._front())

    def _front(self) -> list[tuple["Architecture", Metrics]]:
        from ..pareto import pareto_front

        unique: dict[str, tuple["Architecture", Metrics]] = {}
        for step in self.history:
            if _selectable(self.info, step.metrics):
                unique.setdefault(architecture_key(step.arch), (step.arch, step.metrics))
        members = list(unique.values())
        if not members:
            return []
        front = [members[i] for i in pareto_front(_objectives(self.info, [m for _, m in members], False))]
        return sorted(front, key=lambda item: (-item[1].score, item[1].latency_us))

    # ---- numbers
    def objectives(self, normalised: bool = True) -> np.ndarray:
        """The front's minimised objectives; ``normalised`` divides latency (memory) by its budget."""
        return _objectives(self.info, [m for _, m in self], normalised)

    def default_reference(self) -> np.ndarray:
        """``(0, 1[, 1])`` in normalised objectives: a score above 0 and within the budgets."""
        return np.array([0.0, 1.0] + ([1.0] if self.info.get("memory_budget_bytes") else []))

    def hypervolume(self, reference: Any = None, *, normalised: bool = True) -> float:
        """Hypervolume of the front (0 when no member is better than ``reference``).

        By default in normalised objectives (``-score``, ``LAT / T``[, ``MEM / M``])
        against :meth:`default_reference`, so the value lies in ``[0, 1]`` for a
        correlation score.
        """
        return _hypervolume_of(self.objectives(normalised), reference if reference is not None
                               else self.default_reference())

    def hypervolume_curve(self, reference: Any = None, *, normalised: bool = True) -> np.ndarray:
        """The front's hypervolume after each evaluation of :attr:`history`."""
        ref = np.asarray(reference if reference is not None else self.default_reference(), float)
        curve = np.zeros(len(self.history))
        points = np.zeros((0, len(ref)))
        value = 0.0
        for i, step in enumerate(self.history):
            if _selectable(self.info, step.metrics):
                point = _objectives(self.info, [step.metrics], normalised)
                if np.all(point < ref):
                    points = np.vstack([points, point])
                    value = _hypervolume_of(points, ref)
                    from ..pareto import pareto_front

                    points = points[pareto_front(points)]
            curve[i] = value
        return curve

    def best(self) -> tuple["Architecture", Metrics] | None:
        """The front member with the best score (None for an empty front)."""
        return self[0] if self else None

    def signature(self) -> list[tuple[str, dict[str, Any]]]:
        """What must agree between two runs of the same search: each step's architecture
        key and metrics without the timings (for determinism checks)."""
        return [(architecture_key(s.arch), {k: v for k, v in s.metrics.to_dict().items() if k != "seconds"})
                for s in self.history]

    # ---- text
    def summary(self) -> str:
        """A few lines: what was searched, how, and the front as a table."""
        info = self.info
        trained = sum(1 for s in self.history if not s.cached and s.metrics.feasible)
        lines = [
            f"search: {info.get('strategy')} (seed {info.get('seed')}), {len(self.history)} evaluations "
            f"({trained} trained, {sum(s.cached for s in self.history)} from the store), "
            f"{info.get('constraint')} constraint, latency budget {info['latency_budget_us']:,.0f} us"
            + (f", memory budget {info['memory_budget_bytes']:,} B" if info.get("memory_budget_bytes") else ""),
            f"profile: {info.get('profile')}; task: {info.get('task_source')}",
            f"front: {len(self)} architectures, hypervolume {self.hypervolume():.4f} "
            f"(normalised, reference {self.default_reference().tolist()})",
            f"{'score':>8} {'test':>8} {'latency us':>11} {'memory B':>10} {'params':>8}  architecture",
        ]
        primary = info.get("primary_metric", "")
        for arch, m in self:
            test = m.test_scores.get(primary, math.nan)
            lines.append(f"{m.score:>+8.4f} {test:>+8.4f} {m.latency_us:>11,.1f} {m.memory_bytes:>10,} "
                         f"{m.params:>8,}  {arch.label()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"SearchResult({self.info.get('strategy')}, {len(self.history)} evaluations, "
                f"front of {len(self)}, hypervolume {self.hypervolume():.4f})")

    # ---- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: the settings and the whole history (the front is recomputed)."""
        return {"format": RESULT_FORMAT, "version": RESULT_VERSION, "info": self.info,
                "history": [s.to_dict() for s in self.history]}

    def to_json(self, indent: int | None = None) -> str:
        """The result as strict JSON."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "SearchResult":
        """Inverse of :meth:`to_json` (ValueError for another format)."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
            raise ValueError(f"not a search result: format is {data.get('format') if isinstance(data, dict) else None!r}")
        if data.get("version") != RESULT_VERSION:
            raise ValueError(f"search result version {data.get('version')!r} unsupported; expected {RESULT_VERSION}")
        return cls([Evaluation.from_dict(s) for s in data["history"]], data["info"])

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` atomically."""
        from ..fileio import write_text_atomic

        return write_text_atomic(path, self.to_json(indent=1) + "\n")


def _hypervolume_of(points: np.ndarray, reference: Any) -> float:
    from ..pareto import hypervolume

    ref = np.asarray(reference, float)
    inside = points[np.all(points < ref, axis=1)] if len(points) else points
    return hypervolume(inside, ref) if len(inside) else 0.0


# --------------------------------------------------------------------------- the loop


def default_task(space: "SearchSpace", progress: bool = True) -> tuple["ProxyTask", str]:
    """The default proxy task on BTCUSDT 15-minute klines (recorded, cached, live or synthetic)
    and the data's provenance line.

    Taught in: notebooks/07_pareto.
    """
    from ..data import load_klines
    from ..proxy import make_proxy_task

    data = load_klines("BTCUSDT", "15")
    if progress:
        print(data.summary(), file=sys.stderr)
    task = make_proxy_task(data.frame, lookback=max(space.lookbacks), interval=data.interval,
                           source=data.description)
    return task, f"{data.source}: {data.description}"


def _check_task(task: "ProxyTask", space: "SearchSpace") -> None:
    if task.num_features != space.input_features:
        raise ValueError(f"search_space has input_features={space.input_features} but the task has "
                         f"{task.num_features} features; build the space with "
                         f"input_features={task.num_features}")
    if max(space.lookbacks) > task.lookback:
        raise ValueError(f"search_space lookbacks go up to {max(space.lookbacks)} but the task's windows "
                         f"hold {task.lookback} steps; build the task with lookback >= {max(space.lookbacks)}")


def run_key(strategy: Strategy, options: dict[str, Any], problem: SearchProblem, batch_size: int,
             evaluator: Evaluator, task_key: str, profile_key: str) -> str:
    """What identifies one search, so its saved state is found again (and only by it).

    Taught in: notebooks/07_pareto.
    """
    spec = {"strategy": strategy.name or type(strategy).__name__, "options": options,
            "seed": strategy.seed, "batch_size": batch_size, "space": repr(problem.space),
            "budget": problem.latency_budget_us, "memory": problem.memory_budget_bytes,
            "n": problem.num_iterations, "constraint": problem.constraint, "w": problem.w,
            "memory_w": problem.memory_w, "task": task_key, "profile": profile_key,
            "eval_seed": evaluator.seed}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=repr).encode()).hexdigest()


class _Progress:
    """A tqdm bar (to stderr) showing evaluations, the best feasible score and the hypervolume."""

    def __init__(self, total: int, enabled: bool, done: int) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc="search", unit="eval", file=sys.stderr)

    def update(self, n: int, best: float, hv: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix_str(f"best {best:+.4f} hv {hv:.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _evaluate_round(archs: list["Architecture"], keys: list[str], evaluator: Evaluator,
                    store: EvaluationStore, executor: Executor | None) -> tuple[dict[str, Metrics], set[str]]:
    """Metrics of every architecture of a round (by key) and the keys taken from the store."""
    results: dict[str, Metrics] = {}
    cached: set[str] = set()
    pending: dict[str, tuple["Architecture", Metrics]] = {}
    for arch, key in zip(archs, keys):
        if key in results or key in pending:
            continue
        stored = store.get(arch, key)
        if stored is not None:
            results[key] = stored
            cached.add(key)
            continue
        hardware = evaluator.hardware_metrics(arch)
        if hardware.feasible:
            pending[key] = (arch, hardware)
        else:  # never trained: recorded with its reasons
            results[key] = hardware
            store.put(arch, hardware, key)

    def finish(key: str, trained: TrainResult) -> None:
        arch, hardware = pending[key]
        results[key] = Evaluator.combine(hardware, trained)
        store.put(arch, results[key], key)

    if executor is None:
        for key, (arch, _) in pending.items():
            finish(key, evaluator.trainer(arch))
    elif pending:
        trainer = evaluator.remote_trainer()
        futures = {executor.submit(trainer, arch): key for key, (arch, _) in pending.items()}
        for future in as_completed(futures):
            finish(futures[future], future.result())
    return results, cached


def search(
    search_space: "SearchSpace",
    hardware: "HardwareProfile",
    latency_budget: float,
    num_iterations: int,
    *,
    strategy: str | Strategy = "evolution",
    task: "ProxyTask | None" = None,
    seed: int = 0,
    executor: Executor | None = None,
    store: "str | Path | EvaluationStore | None" = None,
    memory_budget: int | None = None,
    constraint: str = "soft",
    w: float = -0.07,
    batch_size: int = 8,
    strategy_options: dict[str, Any] | None = None,
    evaluator: Evaluator | None = None,
    progress: bool = True,
    with_test_scores: bool = True,
    eval_seed: int = 0,
    precision: str | None = None,
) -> SearchResult:
    """Search ``search_space`` for architectures scoring high and running fast on ``hardware``.

    ``latency_budget`` is the SLA ``T`` in µs; ``num_iterations`` counts
    evaluations (store hits included); the search stops early when the strategy
    has nothing more to ask. ``strategy`` is a registered name (see
    :func:`~hwnas.search.available_strategies`) built with ``seed`` and
    ``strategy_options``, or a :class:`Strategy`. ``task`` defaults to the proxy
    task on BTCUSDT 15-minute klines (its source is printed and recorded).
    Candidates are trained with ``eval_seed`` (the same for every candidate and
    every search seed, so searches share a store). ``store`` is a SQLite path or
    an :class:`EvaluationStore`; with it a search never trains an architecture
    twice and resumes after a kill. ``constraint`` ``"soft"`` uses MnasNet's
    reward with exponent ``w``; ``"hard"`` keeps only candidates within the
    budgets on the front. Strategies never see test scores;
    ``with_test_scores=False`` drops them from the result too.

    Taught in: notebooks/07_pareto.
    """
    batch_size = require_int(batch_size, "batch_size", 1)
    require_int(seed, "seed", 0)
    problem = SearchProblem(search_space, hardware, float(latency_budget) if isinstance(
        latency_budget, (int, float)) and not isinstance(latency_budget, bool) else latency_budget,
        num_iterations, memory_budget_bytes=memory_budget, constraint=constraint, w=w,
        precision=precision)
    if evaluator is not None:
        task = evaluator.task
    source = task.source if task is not None else ""
    if task is None:
        task, source = default_task(search_space, progress)
    _check_task(task, search_space)
    problem = replace(problem, task=task)
    if evaluator is None:
        evaluator = Evaluator(task, hardware, precision=precision, seed=eval_seed)
    options = dict(strategy_options or {})
    if isinstance(strategy, Strategy):
        algorithm = strategy
    elif isinstance(strategy, str):
        algorithm = get_strategy(strategy)(problem, seed=seed, **options)
    else:
        raise ValueError(f"strategy must be a name or a Strategy, got {type(strategy).__name__}")
    task_key, profile_key = evaluator.fingerprints()
    owned = not isinstance(store, EvaluationStore)
    db = store if isinstance(store, EvaluationStore) else EvaluationStore(
        ":memory:" if store is None else store, task_key, profile_key, evaluator.seed)
    if (db.task_key, db.profile_key, db.seed) != (task_key, profile_key, evaluator.seed):
        raise ValueError("store was opened for another task, profile or seed than this search's evaluator")
    from ..proxy import PRIMARY_METRIC

    info = {"strategy": algorithm.name or type(algorithm).__name__, "seed": algorithm.seed,
            "eval_seed": evaluator.seed, "num_iterations": num_iterations, "batch_size": batch_size,
            "latency_budget_us": problem.latency_budget_us, "memory_budget_bytes": memory_budget,
            "constraint": constraint, "w": w, "memory_w": problem.memory_w,
            "precision": evaluator.target_precision, "space": search_space.name,
            "profile": hardware.label, "task_source": source, "target": task.target,
            "primary_metric": PRIMARY_METRIC[task.target], "strategy_options": repr(options)}
    try:
        history = _loop(algorithm, problem, evaluator, db, executor, batch_size, progress, info,
                        run_key(algorithm, options, problem, batch_size, evaluator, task_key, profile_key))
    finally:
        if owned:
            db.close()
    if not with_test_scores:
        history = [replace(s, metrics=replace(s.metrics, test_scores={})) for s in history]
    return SearchResult(history, info)


def _saved_steps(saved: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of a saved run state, each with its architecture key."""
    steps = []
    for step in saved["history"]:
        if "key" not in step:  # saved by the first version of the loop, which kept the whole architecture
            from ..space import Architecture

            step = {**step, "key": architecture_key(Architecture.from_dict(step["arch"]))}
        steps.append(step)
    return steps


def restore_history(store: EvaluationStore, saved: dict[str, Any]) -> list[Evaluation]:
    """The evaluations of a saved run state (:meth:`EvaluationStore.load_run`), read from the store.

    Taught in: notebooks/07_pareto.
    """
    history: list[Evaluation] = []
    for step in _saved_steps(saved):
        found = store.get_key(step["key"])
        if found is None:
            raise ValueError(f"store {store.path!r} lost an evaluation of a saved search")
        history.append(Evaluation(len(history), found[0], found[1], bool(step["cached"]),
                                  float(step["wall_time"])))
    return history


def _loop(strategy: Strategy, problem: SearchProblem, evaluator: Evaluator, store: EvaluationStore,
          executor: Executor | None, batch_size: int, progress: bool, info: dict[str, Any],
          run_key: str) -> list[Evaluation]:
    """Ask, evaluate, store, tell until ``num_iterations`` evaluations or the strategy stops."""
    history: list[Evaluation] = []
    saved_steps: list[dict[str, Any]] = []  # the history as saved, grown by one entry per step
    elapsed = 0.0
    saved = store.load_run(run_key)
    if saved is not None:  # resume: the strategy where it stood, the history from the store
        strategy.load_state_dict(saved["strategy"])
        elapsed = float(saved["elapsed"])
        saved_steps = _saved_steps(saved)
        history = restore_history(store, saved)
    start = time.perf_counter() - elapsed
    bar = _Progress(problem.num_iterations, progress, len(history))
    try:
        while len(history) < problem.num_iterations:
            n = min(batch_size, problem.num_iterations - len(history))
            archs = strategy.ask(n)[:n]
            if not archs:
                break
            keys = [architecture_key(arch) for arch in archs]
            results, cached = _evaluate_round(archs, keys, evaluator, store, executor)
            seen: set[str] = set()
            for arch, key in zip(archs, keys):
                metrics = results[key]
                strategy.tell(arch, replace(metrics, test_scores={}))
                step = Evaluation(len(history), arch, metrics, key in cached or key in seen,
                                  time.perf_counter() - start)
                history.append(step)
                saved_steps.append({"key": key, "cached": step.cached, "wall_time": step.wall_time})
                seen.add(key)
            store.save_run(run_key, {"strategy": strategy.state_dict(), "elapsed": time.perf_counter() - start,
                                     "history": saved_steps})
            if bar.bar is not None:
                partial = SearchResult(history, info)
                best = partial[0][1].score if partial else math.nan
                bar.update(len(archs), best, partial.hypervolume())
    finally:
        bar.close()
    return history
