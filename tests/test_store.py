"""The SQLite evaluation store: keys, schema and version checks, concurrent writers, run state."""

from __future__ import annotations

import math
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import hwnas
from hwnas.search import EvaluationStore, Metrics, architecture_key
from hwnas.search import store as store_module

SPACE = hwnas.SearchSpace.default(input_features=10)


def archs(n: int, seed: int = 0) -> list[hwnas.Architecture]:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def metrics(score: float = 0.25, **kw: object) -> Metrics:
    base = dict(score=score, latency_us=123.5, memory_bytes=4096, flops=1000, params=300,
                scores={"pearson": score, "qlike": float("nan")}, test_scores={"pearson": 0.1}, seconds=0.5)
    base.update(kw)
    return Metrics(**base)  # type: ignore[arg-type]


def test_put_get_round_trip_including_nan_and_infinite_latency(tmp_path: Path) -> None:
    a, b = archs(2)
    with EvaluationStore(tmp_path / "s.sqlite", "task", "profile", 0) as store:
        assert store.get(a) is None and a not in store
        store.put(a, metrics())
        infeasible = metrics(float("nan"), latency_us=math.inf, feasible=False, reasons=("attention",))
        store.put(b, infeasible)
        got = store.get(a)
        assert got is not None and got.score == 0.25 and got.test_scores == {"pearson": 0.1}
        assert math.isnan(got.scores["qlike"])
        back = store.get(b)
        assert back is not None and math.isnan(back.score) and back.latency_us == math.inf
        assert back.reasons == ("attention",) and not back.feasible
        assert len(store) == 2 and [x for x, _ in store.items()] == [a, b]
        store.put(a, metrics(0.9))  # a second write of the same key keeps the first
        assert store.get(a).score == 0.25  # type: ignore[union-attr]
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert "pickle" not in db.execute("SELECT metrics FROM evaluations").fetchone()[0]


def test_other_task_profile_seed_or_version_is_never_mixed_in(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.sqlite"
    (a,) = archs(1)
    with EvaluationStore(path, "task", "profile", 0) as store:
        store.put(a, metrics())
    for key in (("other", "profile", 0), ("task", "other", 0), ("task", "profile", 1)):
        with EvaluationStore(path, *key) as other:
            assert other.get(a) is None and len(other) == 0
    monkeypatch.setattr(store_module, "_version", lambda: "99.0")
    with EvaluationStore(path, "task", "profile", 0) as newer:
        assert newer.get(a) is None and newer.created_by != "99.0"


def test_another_schema_or_a_foreign_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    EvaluationStore(path, "t", "p").close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='999' WHERE key='schema'")
    with pytest.raises(ValueError, match="schema version '999'"):
        EvaluationStore(path, "t", "p")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="not an hwnas evaluation store"):
        EvaluationStore(junk, "t", "p")
    with pytest.raises(ValueError, match="does not exist"):
        EvaluationStore(tmp_path / "missing" / "s.sqlite", "t", "p")


def _writer(path: str, seed: int) -> int:
    with EvaluationStore(path, "task", "profile", 0, retries=50) as store:
        for arch in archs(40, seed):
            store.put(arch, metrics(seed / 10))
            store.save_run(f"run-{seed}", {"n": seed})
    return seed


def test_concurrent_writers_from_a_process_pool(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")
    EvaluationStore(path, "task", "profile").close()
    with ProcessPoolExecutor(2) as pool:
        assert sorted(pool.map(_writer, [path] * 2, [1, 2])) == [1, 2]
    expected = {architecture_key(a) for seed in (1, 2) for a in archs(40, seed)}
    with EvaluationStore(path, "task", "profile") as store:
        assert {architecture_key(a) for a, _ in store.items()} == expected
        assert store.load_run("run-1") == {"n": 1} and store.load_run("run-2") == {"n": 2}


def test_run_state_round_trip(tmp_path: Path) -> None:
    with EvaluationStore(tmp_path / "s.sqlite", "t", "p") as store:
        assert store.load_run("k") is None
        store.save_run("k", {"rng": {"state": 2 ** 100}, "history": [1, 2]})
        store.save_run("k", {"rng": {"state": 7}, "history": [1, 2, 3]})
        assert store.load_run("k") == {"rng": {"state": 7}, "history": [1, 2, 3]}
        with pytest.raises(ValueError):
            store.save_run("bad", {"x": float("nan")})


def test_architecture_key_is_canonical() -> None:
    a, b = archs(2)
    assert architecture_key(a) == architecture_key(hwnas.Architecture.from_json(a.to_json(indent=2)))
    assert architecture_key(a) != architecture_key(b)
    assert len(architecture_key(a)) == 64


# ---------------------------------------------------------------- claims


def test_a_stored_result_cannot_be_claimed_again(tmp_path: Path) -> None:
    """A process that looked before the result landed and claims after must not train it a second time."""
    arch = archs(1)[0]
    with EvaluationStore(tmp_path / "s.sqlite", "t", "p") as store:
        assert store.claim(arch)
        store.put(arch, metrics())
        assert not store.claim(arch)
        assert store.claim_training("k", "t", 3, 0)
        store.put_training("k", "t", 3, 0, {"score": 0.5})
        assert not store.claim_training("k", "t", 3, 0)
        assert store.claim_training("k", "t", 3, 1)  # another seed is another unit


def _claim_when_told(path: str, barrier: object) -> bool:
    with EvaluationStore(path, "t", "p") as store:
        barrier.wait()  # type: ignore[attr-defined]
        return store.claim_training("k", "t", 1, 0)


def test_racing_processes_take_one_claim_between_them(tmp_path: Path) -> None:
    import multiprocessing

    path = str(tmp_path / "s.sqlite")
    EvaluationStore(path, "t", "p").close()
    manager = multiprocessing.Manager()
    barrier = manager.Barrier(6)
    with ProcessPoolExecutor(6) as pool:
        won = list(pool.map(_claim_when_told, [path] * 6, [barrier] * 6))
    assert sum(won) == 1
