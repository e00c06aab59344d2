"""Every registered strategy through the behaviour all strategies share (as Optuna tests its samplers).

Deterministic under a seed, a hard latency budget respected on the front, the
same result through a process pool and through a dask ``LocalCluster``, and a
search killed mid-way (a real subprocess, SIGKILL) that resumes from the store,
trains nothing twice and ends exactly like an uninterrupted run.

The task is tiny (synthetic candles, 64 training windows) and the profile the
analytical ZU9EG FPGA model (instant, deterministic; it rejects attention, so
infeasible candidates are exercised too).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hwnas
from hwnas.architecture import UNGATED_OPS
from hwnas.search import EvaluationStore, Evaluator, available_strategies, search
from hwnas.search.evaluator import Trainer, TrainResult
from hwnas.search.store import architecture_key

#: Options that make each strategy's run tiny (engineers of later strategies add their entry).
TINY_OPTIONS: dict[str, dict[str, Any]] = {
    "random": {},
    "evolution": {"population_size": 4, "sample_size": 2},
    "optuna": {"population_size": 4},
    "tpe": {},
    "pymoo": {"population_size": 4},
    "surrogate": {"population_size": 4, "sample_size": 2},
    "mnasnet": {"batch_size": 4},
    "fbnet": {"latency_weights": [0.0, 1.0], "samples": 2, "epochs": 2, "warmup_epochs": 1,
              "max_windows": 64, "theta_batch_size": 16},
    "scaling": {"warmup": 3},
    "prefilter": {"proxy": "synflow", "pool_factor": 2},
}

N_EVALS = 8
BATCH = 4


def tiny_setup() -> tuple[Any, hwnas.SearchSpace, hwnas.HardwareProfile, float]:
    """The tiny task, space, profile and a latency budget (the median of the space)."""
    frame = hwnas.synthetic_klines(1200, seed=0)
    task = hwnas.make_proxy_task(frame, lookback=32, source="synthetic test candles",
                                 max_train_windows=64, batch_size=64, eval_stride=8)
    space = hwnas.SearchSpace.default(input_features=task.num_features, widths=(16,), kernel_sizes=(3,),
                                      lookbacks=(32,), depths=(2, 3), ops=UNGATED_OPS)
    profile = hwnas.fpga_profile(hwnas.ZU9EG)
    rng = np.random.default_rng(0)
    latencies = [profile.predict_latency(space.sample(rng)) for _ in range(100)]
    budget = float(np.median([x for x in latencies if np.isfinite(x)]))
    return task, space, profile, budget


def run(name: str, setup: tuple, **kwargs: Any) -> hwnas.search.SearchResult:
    task, space, profile, budget = setup
    kwargs.setdefault("batch_size", BATCH)
    return search(space, profile, budget, N_EVALS, strategy=name, task=task, seed=3, progress=False,
                  strategy_options=TINY_OPTIONS.get(name, {}), **kwargs)


#: Every registered strategy, none skipped: a strategy whose module is missing fails its tests.
STRATEGIES = available_strategies()


def test_every_strategy_module_imports() -> None:
    for name in STRATEGIES:
        assert hwnas.search.get_strategy(name).name == name


@pytest.fixture(scope="module")
def setup() -> tuple:
    return tiny_setup()


@pytest.fixture(scope="module")
def reference(setup: tuple) -> dict[str, hwnas.search.SearchResult]:
    """One in-process run per strategy, computed once and compared with everything else."""
    return {}


def _reference(name: str, setup: tuple, cache: dict) -> hwnas.search.SearchResult:
    if name not in cache:
        cache[name] = run(name, setup)
    return cache[name]


@pytest.mark.parametrize("name", STRATEGIES)
def test_deterministic_under_seed(name: str, setup: tuple, reference: dict) -> None:
    first = _reference(name, setup, reference)
    again = run(name, setup)
    assert 1 <= len(first.history) <= N_EVALS  # a strategy may finish early
    assert again.signature() == first.signature()
    assert [a for a, _ in again] == [a for a, _ in first]
    task, space, profile, budget = setup
    different = search(space, profile, budget, N_EVALS, strategy=name, task=task, seed=11, progress=False,
                       strategy_options=TINY_OPTIONS.get(name, {}), batch_size=BATCH)
    assert different.signature() != first.signature()


@pytest.mark.parametrize("name", STRATEGIES)
def test_hard_latency_budget_respected(name: str, setup: tuple) -> None:
    result = run(name, setup, constraint="hard")
    budget = setup[3]
    assert len(result) >= 1
    for _arch, metrics in result:
        assert metrics.feasible and metrics.latency_us <= budget
    over = [s for s in result.history if s.metrics.feasible and s.metrics.latency_us > budget]
    front = {architecture_key(a) for a, _ in result}
    assert not front & {architecture_key(s.arch) for s in over}


@pytest.mark.parametrize("name", STRATEGIES)
def test_process_pool_gives_the_same_search(name: str, setup: tuple, reference: dict) -> None:
    with ProcessPoolExecutor(2) as pool:
        pooled = run(name, setup, executor=pool)
    assert pooled.signature() == _reference(name, setup, reference).signature()


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    client = distributed.Client(cluster)
    try:
        yield client.get_executor()
    finally:
        client.close()
        cluster.close()


@pytest.mark.parametrize("name", STRATEGIES)
def test_dask_cluster_gives_the_same_search(name: str, setup: tuple, reference: dict,
                                            dask_executor: Any) -> None:
    result = run(name, setup, executor=dask_executor)
    assert result.signature() == _reference(name, setup, reference).signature()


class CountingTrainer(Trainer):
    """Records the key of every architecture it trains."""

    trained: list[str] = []

    def __call__(self, arch: hwnas.Architecture) -> TrainResult:
        CountingTrainer.trained.append(architecture_key(arch))
        return super().__call__(arch)


def child_main(name: str, store: str) -> None:
    """The search a resume test kills: a slowed-down evaluator so the kill lands mid-way."""
    class SlowTrainer(Trainer):
        def __call__(self, arch: hwnas.Architecture) -> TrainResult:
            time.sleep(0.3)
            return super().__call__(arch)

    setup = tiny_setup()
    evaluator = Evaluator(setup[0], setup[2])
    evaluator.trainer = SlowTrainer(setup[0])
    run(name, setup, store=store, evaluator=evaluator)


def _rows(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("name", STRATEGIES)
def test_killed_search_resumes_without_training_twice(name: str, setup: tuple, reference: dict,
                                                      tmp_path: Path) -> None:
    store = tmp_path / "evals.sqlite"
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import test_strategies as t; t.child_main({name!r}, {str(store)!r})")
    env = dict(os.environ, PYTHONHASHSEED="0")
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 120
    while _rows(store) < BATCH + 1 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.poll() is None, "the search finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = {architecture_key(a) for a, _ in EvaluationStore(store, *Evaluator(setup[0], setup[2])
                                                               .fingerprints(), 0).items()}
    assert 0 < len(before)
    CountingTrainer.trained = []
    evaluator = Evaluator(setup[0], setup[2])
    evaluator.trainer = CountingTrainer(setup[0])
    resumed = run(name, setup, store=str(store), evaluator=evaluator)
    assert not set(CountingTrainer.trained) & before  # nothing trained twice
    assert len(CountingTrainer.trained) == len(set(CountingTrainer.trained))
    assert resumed.signature() == _reference(name, setup, reference).signature()


def test_rejection_sampling_keeps_random_within_the_hard_budget(setup: tuple) -> None:
    result = run("random", setup, constraint="hard")
    problem = hwnas.search.SearchProblem(setup[1], setup[2], setup[3], N_EVALS, constraint="hard")
    assert all(problem.within_budget(problem.predict(s.arch)) for s in result.history)
