"""Multi-fidelity evaluation: the promotion rule, no training run twice, resume after SIGKILL, old stores."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT

import hwnas
from hwnas.search import EvaluationStore, MultiFidelityEvaluator, Rung, architecture_key, minimize, promotable
from hwnas.search.evaluator import Trainer, TrainResult

# The stub and the search the subprocess test runs, shared verbatim with it.
STUB = textwrap.dedent('''
    import hashlib, os, signal
    import numpy as np
    import hwnas
    from hwnas.architecture import UNGATED_OPS, OpType
    from hwnas.search import MultiFidelityEvaluator, Rung, SearchProblem, architecture_key, minimize
    from hwnas.search.evaluator import Trainer, TrainResult

    LOG: list = []

    class StubUnit(Trainer):
        """A training run of known score: a hash of (architecture, epochs, seed); logs each call."""

        def __call__(self, arch):
            key = architecture_key(arch)
            path = os.environ.get("MF_LOG")
            if path:
                with open(path) as f:
                    calls = sum(1 for _ in f)
                if os.environ.get("MF_KILL_AT") and calls == int(os.environ["MF_KILL_AT"]):
                    os.kill(os.getpid(), signal.SIGKILL)
            base = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16 ** 8
            noise = int(hashlib.sha256(f"{key}{self.epochs}{self.seed}".encode()).hexdigest()[:8], 16) / 16 ** 8
            score = base + 0.05 * (self.epochs or 1) + 0.1 * noise
            LOG.append((key, self.epochs, self.seed))
            if path:
                with open(path, "a") as f:
                    f.write(f"{key} {self.epochs} {self.seed}\\n")
            return TrainResult(score, {"pearson": score}, {"pearson": score / 2}, 0.001)

    class StubEvaluator(MultiFidelityEvaluator):
        def unit_trainer(self, epochs, seed, remote):
            return StubUnit(self.task, seed, epochs)

    RUNGS = (Rung(1, 1), Rung(3, 2), Rung(9, 3))

    def tiny():
        frame = hwnas.synthetic_klines(1200, seed=0)
        task = hwnas.make_proxy_task(frame, lookback=32, source="synthetic test candles",
                                     max_train_windows=64, batch_size=64, eval_stride=8)
        ops = UNGATED_OPS  # the FPGA's cycle model refuses the gated ops
        space = hwnas.SearchSpace.default(input_features=task.num_features, widths=(16, 32), kernel_sizes=(3,),
                                          lookbacks=(32,), depths=(2, 3), ops=ops)
        profile = hwnas.fpga_profile(hwnas.ZU9EG)
        return task, space, profile

    def run(store, n=24, seed=1, strategy="random"):
        task, space, profile = tiny()
        problem = SearchProblem(space, profile, 1e9, n, task=task)
        evaluator = StubEvaluator(task, profile, rungs=RUNGS, eta=3)
        return minimize(problem, strategy, seed=seed, store=store, evaluator=evaluator, batch_size=6,
                        progress=False)
''')
namespace: dict[str, Any] = {}
exec(compile(STUB, "mf_stub", "exec"), namespace)  # noqa: S102 - the same code the subprocess runs


def units(log: list[tuple[str, int, int]]) -> set[tuple[str, int, int]]:
    return set(log)


# --------------------------------------------------------------------------- the rule


def test_promotion_rule_on_a_hand_example() -> None:
    population = [0.9, 0.5, 0.3, 0.1, 0.7, 0.2]  # 6 at the rung, eta 3: the top 2 climb (0.9 and 0.7)
    assert [promotable(v, population, 3) for v in population] == [True, False, False, False, True, False]
    assert [promotable(v, [0.4, 0.6], 3) for v in (0.4, 0.6)] == [False, True]  # fewer than eta: the best
    assert promotable(0.5, [0.5, 0.5, 0.5], 3)  # a tie at the threshold climbs
    assert not promotable(math.nan, [math.nan, 0.1], 3)
    assert promotable(0.1, [math.nan, 0.1], 3)  # NaNs (diverged runs) are not counted
    with pytest.raises(ValueError, match="eta"):
        promotable(0.1, [0.1], 1)


def test_one_round_climbs_the_ladder_by_hand() -> None:
    """Six candidates in one round, eta 3: 6 at rung 0, the top 2 at rung 1, the top 1 of those at rung 2."""
    namespace["LOG"].clear()
    task, space, profile = namespace["tiny"]()
    evaluator = namespace["StubEvaluator"](task, profile, rungs=(Rung(1, 1), Rung(3, 1), Rung(9, 1)), eta=3)
    import numpy as np

    rng = np.random.default_rng(0)
    archs = {}
    while len(archs) < 6:
        arch = space.sample(rng)
        archs[architecture_key(arch)] = arch
    stub = namespace["StubUnit"](task, 0, 1)
    rung0 = {key: stub(arch).score for key, arch in archs.items()}
    namespace["LOG"].clear()
    store = EvaluationStore(":memory:", *evaluator.fingerprints(), 0)
    results = dict(evaluator.train_all(list(archs.items()), store, None))
    order = sorted(rung0, key=rung0.__getitem__, reverse=True)
    top2 = order[:2]
    stub3 = namespace["StubUnit"](task, 0, 3)
    best_at_3 = max(top2, key=lambda k: stub3(archs[k]).score)
    assert {k: int(r.scores["rung"]) for k, r in results.items()} == {
        k: 2 if k == best_at_3 else 1 if k in top2 else 0 for k in archs}
    assert len(namespace["LOG"]) == 6 + 2 + 1 + 2  # plus the two probe calls of stub3 above
    assert results[best_at_3].scores["epochs"] == 9
    assert store.count_trainings() == 9
    assert results[order[-1]].score == pytest.approx(rung0[order[-1]])  # rung 0's score as it stood


# --------------------------------------------------------------------------- never twice


def test_never_trains_a_candidate_fidelity_seed_twice(tmp_path: Path) -> None:
    namespace["LOG"].clear()
    store = tmp_path / "evals.sqlite"
    first = namespace["run"](store)
    log = list(namespace["LOG"])
    assert len(log) == len(units(log)) > 24  # some candidates climbed, none trained twice
    rungs = [int(s.metrics.scores["rung"]) for s in first.history if s.metrics.feasible]
    reached = [sum(r >= k for r in rungs) for k in range(3)]  # candidates that reached rung k or higher
    assert max(rungs) == 2 and reached[0] > reached[1] >= reached[2] >= 1
    again = namespace["run"](store)  # the same search again: all from the store
    assert len(namespace["LOG"]) == len(log)
    assert [s.metrics.score for s in again.history] == [s.metrics.score for s in first.history]
    namespace["run"](store, seed=2, strategy="evolution")  # another search on the store: shares the runs
    log = list(namespace["LOG"])
    assert len(log) == len(units(log))
    with EvaluationStore(store, "x", "y") as db:
        assert db.count_trainings() == len(log)


def test_score_is_the_highest_rung_mean_over_its_seeds(tmp_path: Path) -> None:
    namespace["LOG"].clear()
    result = namespace["run"](tmp_path / "e.sqlite", n=12)
    stub = namespace["StubUnit"]
    task = namespace["tiny"]()[0]
    for step in result.history:
        if not step.metrics.feasible:
            continue
        rung = namespace["RUNGS"][int(step.metrics.scores["rung"])]
        expected = sum(stub(task, s, rung.epochs)(step.arch).score for s in range(rung.seeds)) / rung.seeds
        assert step.metrics.score == pytest.approx(expected)
        assert step.metrics.scores["seeds"] == rung.seeds


# --------------------------------------------------------------------------- resume after a kill


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "mf_run.py"
    script.write_text(STUB + textwrap.dedent('''
        import json, sys
        result = run(sys.argv[1])
        print(json.dumps([[architecture_key(s.arch), s.metrics.score] for s in result.history]))
    '''))
    return script


def test_resumes_after_sigkill_without_training_twice(tmp_path: Path) -> None:
    script = _script(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT), HWNAS_OFFLINE="1")
    clean_log, killed_log = tmp_path / "clean.log", tmp_path / "killed.log"
    clean_log.touch()
    killed_log.touch()
    clean = subprocess.run([sys.executable, str(script), str(tmp_path / "clean.sqlite")], capture_output=True,
                           text=True, env={**env, "MF_LOG": str(clean_log)}, timeout=300)
    assert clean.returncode == 0, clean.stderr
    n_clean = len(clean_log.read_text().splitlines())
    kill_at = n_clean // 2 + 3  # mid-run, inside a round
    store = str(tmp_path / "killed.sqlite")
    killed = subprocess.run([sys.executable, str(script), store], capture_output=True, text=True,
                            env={**env, "MF_LOG": str(killed_log), "MF_KILL_AT": str(kill_at)}, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert len(killed_log.read_text().splitlines()) == kill_at
    resumed = subprocess.run([sys.executable, str(script), store], capture_output=True, text=True,
                             env={**env, "MF_LOG": str(killed_log)}, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    lines = killed_log.read_text().splitlines()
    assert len(lines) == len(set(lines)) == n_clean  # every run trained once, across the kill
    assert set(lines) == set(clean_log.read_text().splitlines())
    assert json.loads(resumed.stdout) == json.loads(clean.stdout)  # the same search, the same scores


# --------------------------------------------------------------------------- store, real training


def test_a_store_from_before_the_trainings_table_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE evaluations (arch_key TEXT NOT NULL, task_key TEXT NOT NULL, profile_key TEXT NOT NULL,
            seed INTEGER NOT NULL, hwnas TEXT NOT NULL, architecture TEXT NOT NULL, metrics TEXT NOT NULL,
            created REAL NOT NULL, PRIMARY KEY (arch_key, task_key, profile_key, seed, hwnas));
        CREATE TABLE runs (run_key TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
    """)
    db.commit()
    db.close()
    with EvaluationStore(path, "t", "p") as store:
        assert store.count_trainings() == 0
        store.put_training("a", "t", 3, 0, {"score": 0.5, "scores": {}, "test_scores": {}, "seconds": 1.0})
        assert store.get_training("a", "t", 3, 0)["score"] == 0.5
        assert store.get_training("a", "t", 1, 0) is None
        assert store.rung_scores("t", 3, [0]) == {"a": 0.5}
        assert store.rung_scores("t", 3, [0, 1]) == {}  # not every seed of the rung: not in its population


def test_real_training_at_each_fidelity(tmp_path: Path) -> None:
    """The real trainer at 2 epochs equals training the task with epochs=2; the search runs unchanged."""
    from dataclasses import replace

    from hwnas.proxy.training import evaluate_splits

    task, space, profile = namespace["tiny"]()
    import numpy as np

    arch = space.sample(np.random.default_rng(0))
    direct = evaluate_splits(arch, replace(task, epochs=2), 0, splits=("val",))["val"].score
    assert Trainer(task, 0, 2)(arch).score == pytest.approx(direct, abs=1e-9)
    evaluator = MultiFidelityEvaluator(task, profile, rungs=(Rung(1, 1), Rung(2, 1)), eta=2)
    problem = hwnas.search.SearchProblem(space, profile, 1e9, 6, task=task)
    result = minimize(problem, "random", evaluator=evaluator, store=tmp_path / "r.sqlite", batch_size=6,
                      progress=False)
    feasible = [s for s in result.history if s.metrics.feasible]
    assert len(feasible) >= 2 and all(math.isfinite(s.metrics.score) for s in feasible)
    climbed = sum(int(s.metrics.scores["rung"]) for s in feasible)  # one round, eta 2: half climb
    assert climbed == max(1, len(feasible) // 2)  # eta 2: half climb


def test_bad_ladder_is_refused() -> None:
    task, _, profile = namespace["tiny"]()
    with pytest.raises(ValueError, match="rungs"):
        MultiFidelityEvaluator(task, profile, rungs=(Rung(3, 1), Rung(1, 1)))
    with pytest.raises(ValueError, match="eta"):
        MultiFidelityEvaluator(task, profile, eta=1)
    assert isinstance(TrainResult(0.0, {}, {}, 0.0), TrainResult)
