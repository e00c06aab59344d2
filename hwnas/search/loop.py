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
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks import require_int
from .base import Metrics, SearchProblem, Strategy, get_strategy
from .evaluator import Evaluator, TrainResult
from .result import Evaluation, SearchResult, SearchRun
from .store import EvaluationStore, architecture_key

if TYPE_CHECKING:
    from ..architecture import Architecture
    from ..hardware import HardwareProfile
    from ..proxy.task import ProxyTask
    from ..space import SearchSpace

__all__ = ["default_task", "minimize", "restore_history", "run_key", "search"]

# --------------------------------------------------------------------------- the loop


def default_task(space: SearchSpace, progress: bool = True) -> tuple[ProxyTask, str]:
    """The default proxy task on BTCUSDT 15-minute klines (recorded, cached, live or synthetic)
    and the data's provenance line.

    Taught in: notebooks/07_pareto.
    """
    from ..data.loader import load_klines
    from ..proxy.task import make_proxy_task

    data = load_klines("BTCUSDT", "15")
    if progress:
        print(data.summary(), file=sys.stderr)
    task = make_proxy_task(data.frame, lookback=max(space.lookbacks), interval=data.interval,
                           source=data.description)
    return task, f"{data.source}: {data.description}"


def _check_task(task: ProxyTask, space: SearchSpace) -> None:
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
            "latency_budget_us": problem.latency_budget_us, "memory": problem.memory_budget_bytes,
            "n": problem.num_iterations, "constraint": problem.constraint, "w": problem.w,
            "memory_w": problem.memory_w, "task": task_key, "profile": profile_key,
            "eval_seed": evaluator.seed}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=repr).encode()).hexdigest()


class _Progress:
    """Progress on stderr: a tqdm bar on a terminal; off one (a log file, a pipe) one plain line per
    round, so a log holds no carriage returns (evaluations, the best feasible score, the hypervolume)."""

    def __init__(self, total: int, enabled: bool, done: int) -> None:
        self.bar: Any = None
        self.enabled, self.total, self.done = enabled, total, done
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc="search", unit="eval", file=sys.stderr)

    def update(self, n: int, best: float, hv: float) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix_str(f"best {best:+.4f} hv {hv:.4f}")
        elif self.enabled:
            print(f"search: {self.done}/{self.total} evaluations, best {best:+.4f}, hv {hv:.4f}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _evaluate_round(archs: list[Architecture], keys: list[str], evaluator: Evaluator,
                    store: EvaluationStore, executor: Executor | None) -> tuple[dict[str, Metrics], set[str]]:
    """Metrics of every architecture of a round (by key) and the keys taken from the store."""
    results: dict[str, Metrics] = {}
    cached: set[str] = set()
    pending: dict[str, tuple[Architecture, Metrics]] = {}
    waiting: dict[str, tuple[Architecture, Metrics]] = {}
    for arch, key in zip(archs, keys):
        if key in results or key in pending:
            continue
        stored = store.get(arch, key)
        if stored is not None:
            results[key] = stored
            cached.add(key)
            continue
        hardware = evaluator.hardware_metrics(arch)
        if not hardware.feasible:  # never trained: recorded with its reasons
            results[key] = hardware
            store.put(arch, hardware, key)
        elif store.claim(arch, key):
            pending[key] = (arch, hardware)
        else:  # another search on this store is training it now: take its result when it lands
            waiting[key] = (arch, hardware)

    def finish(key: str, trained: TrainResult) -> None:
        arch, hardware = pending[key]
        results[key] = Evaluator.combine(hardware, trained)
        store.put(arch, results[key], key)

    for key, result in evaluator.train_all([(key, arch) for key, (arch, _) in pending.items()], store,
                                           executor):
        finish(key, result)
    while waiting:  # shared work: poll the store, train whatever a dead claimant left
        for key, (arch, _) in list(waiting.items()):
            stored = store.get(arch, key)
            if stored is not None:
                results[key] = stored
                cached.add(key)
                del waiting[key]
            elif store.claim(arch, key):
                pending[key] = waiting.pop(key)
                for _, result in evaluator.train_all([(key, arch)], store, None):
                    finish(key, result)
        if waiting:
            time.sleep(0.2)
    return results, cached


def minimize(
    problem: SearchProblem,
    strategy: str | Strategy = "evolution",
    *,
    seed: int = 0,
    executor: Executor | None = None,
    store: str | Path | EvaluationStore | None = None,
    batch_size: int = 8,
    strategy_options: dict[str, Any] | None = None,
    evaluator: Evaluator | None = None,
    progress: bool = True,
    with_test_scores: bool = True,
    eval_seed: int = 0,
) -> SearchResult:
    """Run ``strategy`` on ``problem`` until ``problem.num_iterations`` evaluations: the one search loop.

    pymoo's ``minimize(problem, algorithm, termination)``: the problem says what
    is searched (:class:`SearchProblem`), the strategy how, ``num_iterations``
    how long. ``strategy`` is a registered name (see
    :func:`~hwnas.search.available_strategies`) built with ``problem``, ``seed``
    and ``strategy_options``, or a :class:`Strategy`. ``problem.task`` defaults
    to the proxy task on BTCUSDT 15-minute klines (its source is printed and
    recorded). Candidates are evaluated at ``problem.batch`` and
    ``problem.precision`` and trained with ``eval_seed`` (the same for every
    candidate and every search seed, so searches share a store); an
    ``evaluator`` given instead must agree with the problem. ``store`` is a
    SQLite path or an :class:`EvaluationStore`; with it a search never trains
    an architecture twice and resumes after a kill. Strategies never see test
    scores; ``with_test_scores=False`` drops them from the result too.

    Taught in: notebooks/07_pareto.
    """
    if not isinstance(problem, SearchProblem):
        raise TypeError(f"problem must be a SearchProblem, got {type(problem).__name__}")
    batch_size = require_int(batch_size, "batch_size", 1)
    require_int(seed, "seed", 0)
    task = evaluator.task if evaluator is not None else problem.task
    source = task.source if task is not None else ""
    if task is None:
        task, source = default_task(problem.space, progress)
    _check_task(task, problem.space)
    problem = replace(problem, task=task)
    if evaluator is None:
        evaluator = Evaluator(task, problem.profile, precision=problem.precision, seed=eval_seed,
                              batch=problem.batch)
    elif (evaluator.batch, evaluator.target_precision) != (problem.batch, problem.target_precision):
        raise ValueError(f"evaluator evaluates at batch {evaluator.batch}, precision "
                         f"{evaluator.target_precision!r} but the problem at batch {problem.batch}, precision "
                         f"{problem.target_precision!r}; build the evaluator from the problem")
    options = dict(strategy_options or {})
    if isinstance(strategy, Strategy):
        algorithm = strategy
    elif isinstance(strategy, str):
        algorithm = get_strategy(strategy)(problem, seed=seed, **options)
    else:
        raise TypeError(f"strategy must be a name or a Strategy, got {type(strategy).__name__}")
    task_key, profile_key = evaluator.fingerprints()
    owned = not isinstance(store, EvaluationStore)
    db = store if isinstance(store, EvaluationStore) else EvaluationStore(
        ":memory:" if store is None else store, task_key, profile_key, evaluator.seed)
    if (db.task_key, db.profile_key, db.seed) != (task_key, profile_key, evaluator.seed):
        raise ValueError("store was opened for another task, profile or seed than this search's evaluator")
    from ..proxy.task import PRIMARY_METRIC

    run = SearchRun(strategy=algorithm.name or type(algorithm).__name__, seed=algorithm.seed,
                    eval_seed=evaluator.seed, batch_size=batch_size, strategy_options=repr(options),
                    task_source=source, target=task.target, primary_metric=PRIMARY_METRIC[task.target])
    try:
        history, restored = _loop(algorithm, problem, evaluator, db, executor, batch_size, progress, run,
                                  run_key(algorithm, options, problem, batch_size, evaluator, task_key,
                                          profile_key))
        run = replace(run, restored=restored)
    finally:
        if owned:
            db.close()
    if not with_test_scores:
        history = [replace(s, metrics=replace(s.metrics, test_scores={})) for s in history]
    return SearchResult(history, problem, run)


def search(
    search_space: SearchSpace,
    hardware: HardwareProfile,
    latency_budget: float,
    num_iterations: int,
    *,
    strategy: str | Strategy = "evolution",
    task: ProxyTask | None = None,
    seed: int = 0,
    executor: Executor | None = None,
    store: str | Path | EvaluationStore | None = None,
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
    batch: int | None = None,
) -> SearchResult:
    """Search ``search_space`` for architectures scoring high and running fast on ``hardware``.

    The convenience form of :func:`minimize`: it builds the
    :class:`SearchProblem` (``latency_budget`` is the SLA ``T`` in µs per call
    of ``batch`` windows, stored as ``latency_budget_us``; ``memory_budget`` in
    bytes; ``constraint`` ``"soft"``, MnasNet's reward with exponent ``w``, or
    ``"hard"``, only candidates within the budgets on the front; ``batch``
    default the ``evaluator``'s, else 1) and calls :func:`minimize` with the
    rest. ``num_iterations`` counts evaluations (store hits included).

    Taught in: notebooks/07_pareto.
    """
    from ..checks import require_type
    from ..hardware import HardwareProfile

    require_type(hardware, "hardware", HardwareProfile, " (e.g. hwnas.profile_cpu(space) or HardwareProfile.load)")
    if batch is None:
        batch = evaluator.batch if evaluator is not None else 1
    if precision is None and evaluator is not None:
        precision = evaluator.precision
    problem = SearchProblem(search_space, hardware, latency_budget, num_iterations,
                            memory_budget_bytes=memory_budget, task=task, constraint=constraint, w=w,
                            precision=precision, batch=batch)
    return minimize(problem, strategy, seed=seed, executor=executor, store=store, batch_size=batch_size,
                    strategy_options=strategy_options, evaluator=evaluator, progress=progress,
                    with_test_scores=with_test_scores, eval_seed=eval_seed)


def _saved_steps(saved: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of a saved run state, each with its architecture key."""
    steps = []
    for step in saved["history"]:
        if "key" not in step:  # saved by the first version of the loop, which kept the whole architecture
            from ..architecture import Architecture

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
          executor: Executor | None, batch_size: int, progress: bool, run: SearchRun,
          run_key: str) -> tuple[list[Evaluation], int]:
    """Ask, evaluate, store, tell until ``num_iterations`` evaluations or the strategy stops; return the
    history and how many of its steps were restored from a saved run of the same search."""
    history: list[Evaluation] = []
    saved_steps: list[dict[str, Any]] = []  # the history as saved, grown by one entry per step
    elapsed = 0.0
    saved = store.load_run(run_key)
    if saved is not None:  # resume: the strategy where it stood, the history from the store
        strategy.load_state_dict(saved["strategy"])
        elapsed = float(saved["elapsed"])
        saved_steps = _saved_steps(saved)
        history = restore_history(store, saved)
    restored = len(history)
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
            if bar.enabled:
                partial = SearchResult(history, problem, run)
                top = partial.best()
                best = top.metrics.score if top is not None else math.nan
                bar.update(len(archs), best, partial.hypervolume())
    finally:
        bar.close()
    return history, restored
