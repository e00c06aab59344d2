"""The evaluation store: every evaluated candidate in SQLite, so nothing is trained twice.

Taught in: notebooks/07_pareto.

One row per (sha256 of the canonical architecture JSON, task fingerprint,
profile fingerprint, evaluation seed, hwnas version) with the :class:`Metrics` as JSON (no
pickle). A ``meta`` table records the schema version and the hwnas version that
created the file; a file of another schema raises, and rows of another task,
profile, seed or hwnas version are never read (their key differs). A ``runs`` table keeps each
search's strategy state after every round, so a killed search resumes where it
stood. WAL mode and a busy timeout, plus retries on ``SQLITE_BUSY``, make it
safe for several processes writing at once.

Multi-fidelity evaluation (:mod:`hwnas.search.fidelity`) adds a ``trainings``
table: one row per (architecture, training task, fidelity = epochs, training
seed, hwnas version) holding that one training run's validation and test
scores, and ``training_claims`` beside it. Both are created when a store opens,
so a store written before they existed opens as it is and gains them (the
schema version stays 1: nothing an older row holds changes meaning).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .base import Metrics

if TYPE_CHECKING:
    from ..architecture import Architecture

__all__ = ["CLAIM_EXPIRY_S", "SCHEMA_VERSION", "EvaluationStore", "architecture_key"]

SCHEMA_VERSION = 1
CLAIM_EXPIRY_S = 3600.0
"""A claim by a process on another host is taken over after this many seconds (its death is unseen)."""
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    arch_key TEXT NOT NULL, task_key TEXT NOT NULL, profile_key TEXT NOT NULL, seed INTEGER NOT NULL,
    hwnas TEXT NOT NULL, architecture TEXT NOT NULL, metrics TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (arch_key, task_key, profile_key, seed, hwnas)
);
CREATE TABLE IF NOT EXISTS trainings (
    arch_key TEXT NOT NULL, task_key TEXT NOT NULL, fidelity INTEGER NOT NULL, seed INTEGER NOT NULL,
    hwnas TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (arch_key, task_key, fidelity, seed, hwnas)
);
CREATE TABLE IF NOT EXISTS training_claims (
    arch_key TEXT NOT NULL, task_key TEXT NOT NULL, fidelity INTEGER NOT NULL, seed INTEGER NOT NULL,
    hwnas TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (arch_key, task_key, fidelity, seed, hwnas)
);
CREATE TABLE IF NOT EXISTS runs (run_key TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    arch_key TEXT NOT NULL, task_key TEXT NOT NULL, profile_key TEXT NOT NULL, seed INTEGER NOT NULL,
    hwnas TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (arch_key, task_key, profile_key, seed, hwnas)
);
"""


def architecture_key(arch: Architecture) -> str:
    """sha256 of the canonical JSON of ``arch`` (sorted keys, no spaces).

    Taught in: notebooks/07_pareto.
    """
    text = json.dumps(arch.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


#: The key columns of each claim table (the rest: host, pid, created) and the table its results land in.
_CLAIM_KEYS = {"claims": (("arch_key", "task_key", "profile_key", "seed", "hwnas"), "evaluations"),
               "training_claims": (("arch_key", "task_key", "fidelity", "seed", "hwnas"), "trainings")}


def _stale_claim(host: str, pid: int, created: float) -> bool:
    """Whether a claim's process is gone: dead on this host, or older than :data:`CLAIM_EXPIRY_S`."""
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    return time.time() - created > CLAIM_EXPIRY_S


def _version() -> str:
    from .. import __version__

    return str(__version__)


class EvaluationStore:
    """SQLite file of evaluations for one (task, profile, seed), shared by any number of searches.

    ``EvaluationStore(path, task_key, profile_key, seed)``; ``":memory:"`` keeps
    it in memory. :meth:`get`/:meth:`put` read and write one architecture's
    metrics; :meth:`load_run`/:meth:`save_run` a search's resumable state.

    Taught in: notebooks/07_pareto.
    """

    def __init__(self, path: str | os.PathLike[str], task_key: str, profile_key: str, seed: int = 0, *,
                 timeout: float = 60.0, retries: int = 20) -> None:
        self.path = str(path)
        self.task_key, self.profile_key, self.seed = task_key, profile_key, int(seed)
        self.retries = retries
        self.version = _version()
        if self.path != ":memory:" and not Path(self.path).parent.is_dir():
            raise ValueError(f"store {self.path!r}: folder {str(Path(self.path).parent)!r} does not exist")
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise ValueError(f"store {self.path!r} cannot be opened: {exc}") from None
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        try:
            self._retry(lambda: self._db.execute("PRAGMA journal_mode = WAL"))
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ValueError(f"store {self.path!r} is not an hwnas evaluation store ({exc})") from None
        self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across a killed process
        self._retry(self._init_schema)

    # ---- plumbing
    def _retry(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying while another writer holds the lock (SQLITE_BUSY)."""
        for attempt in range(self.retries):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(min(0.05 * 2 ** attempt, 2.0))
        return action()

    def _init_schema(self) -> None:
        try:
            self._db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        except sqlite3.DatabaseError as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            raise ValueError(f"store {self.path!r} is not an hwnas evaluation store ({exc})") from None
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            with self._db:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('hwnas', ?)", (_version(),))
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != str(SCHEMA_VERSION):
            raise ValueError(f"store {self.path!r} has schema version {meta.get('schema')!r}; this hwnas "
                             f"({_version()}) reads version {SCHEMA_VERSION}: use a new store file")
        self.created_by = meta.get("hwnas", "")

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> EvaluationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EvaluationStore({self.path!r}, {len(self)} evaluations of this task/profile/seed)"

    # ---- evaluations
    def _key(self, arch: Architecture, key: str | None) -> tuple[str, str, str, int, str]:
        return key or architecture_key(arch), self.task_key, self.profile_key, self.seed, self.version

    def get(self, arch: Architecture, key: str | None = None) -> Metrics | None:
        """The stored metrics of ``arch`` (whose :func:`architecture_key` is ``key``, when known)
        for this task, profile and seed, or None."""
        row = self._retry(lambda: self._db.execute(
            "SELECT metrics FROM evaluations WHERE arch_key=? AND task_key=? AND profile_key=? AND seed=? AND hwnas=?",
            self._key(arch, key)).fetchone())
        return None if row is None else Metrics.from_dict(json.loads(row[0]))

    def get_key(self, arch_key: str) -> tuple[Architecture, Metrics] | None:
        """The stored architecture and metrics under its :func:`architecture_key`, or None."""
        from ..architecture import Architecture

        row = self._retry(lambda: self._db.execute(
            "SELECT architecture, metrics FROM evaluations WHERE arch_key=? AND task_key=? AND profile_key=? "
            "AND seed=? AND hwnas=?", (arch_key, self.task_key, self.profile_key, self.seed, self.version)
        ).fetchone())
        return None if row is None else (Architecture.from_json(row[0]), Metrics.from_dict(json.loads(row[1])))

    def put(self, arch: Architecture, metrics: Metrics, key: str | None = None) -> None:
        """Record the metrics of ``arch`` (a row already there is kept: evaluations are deterministic)."""
        values = (*self._key(arch, key), arch.to_json(), json.dumps(metrics.to_dict(), allow_nan=False),
                  time.time())

        def write() -> None:
            with self._db:
                self._db.execute("INSERT OR IGNORE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
                self._drop_claim("claims", values[:5])

        self._retry(write)

    def __contains__(self, arch: object) -> bool:
        from ..architecture import Architecture

        return isinstance(arch, Architecture) and self.get(arch) is not None

    def __len__(self) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM evaluations WHERE task_key=? AND profile_key=? AND seed=? AND hwnas=?",
            (self.task_key, self.profile_key, self.seed, self.version)).fetchone()
        return int(row[0])

    def items(self) -> Iterator[tuple[Architecture, Metrics]]:
        """Every stored (architecture, metrics) of this task, profile and seed, oldest first."""
        from ..architecture import Architecture

        rows = self._db.execute(
            "SELECT architecture, metrics FROM evaluations WHERE task_key=? AND profile_key=? AND seed=? "
            "AND hwnas=? ORDER BY created, rowid",
            (self.task_key, self.profile_key, self.seed, self.version)).fetchall()
        for arch_text, metrics_text in rows:
            yield Architecture.from_json(arch_text), Metrics.from_dict(json.loads(metrics_text))

    # ---- claims: concurrent searches on one store train each candidate once
    def claim(self, arch: Architecture, key: str | None = None) -> bool:
        """Claim ``arch`` for training: True when this process may train it (no live process on this
        host holds it, nor one elsewhere for less than :data:`CLAIM_EXPIRY_S`), False when another one is
        training it now (wait for its :meth:`get`). Released by :meth:`put`."""
        return self._take_claim("claims", self._key(arch, key))

    def _take_claim(self, table: str, values: tuple[str, str, str | int, int, str]) -> bool:
        """Claim the row ``values`` of the claim table ``table`` for this process: False when its result is
        already stored or a live process holds it. One immediate transaction, so two processes never both
        take it, nor one after the other has stored the result (check, then claim, atomically)."""
        columns, results = _CLAIM_KEYS[table]
        where = " AND ".join(f"{column}=?" for column in columns)
        me = (socket.gethostname(), os.getpid())

        def take() -> bool:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                done = self._db.execute(f"SELECT 1 FROM {results} WHERE {where}", values).fetchone()
                row = self._db.execute(f"SELECT host, pid, created FROM {table} WHERE {where}", values).fetchone()
                free = done is None and (row is None or (row[0], row[1]) == me
                                         or _stale_claim(row[0], int(row[1]), float(row[2])))
                if free:
                    self._db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                     (*values, *me, time.time()))
                self._db.execute("COMMIT")
                return free
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

        return self._retry(take)

    def _drop_claim(self, table: str, values: tuple[str, str, str | int, int, str]) -> None:
        """Release the row ``values`` of the claim table ``table`` (inside the caller's transaction)."""
        where = " AND ".join(f"{column}=?" for column in _CLAIM_KEYS[table][0])
        self._db.execute(f"DELETE FROM {table} WHERE {where}", values)

    # ---- trainings: one (architecture, fidelity, seed) training run each (multi-fidelity evaluation)
    def get_training(self, arch_key: str, task_key: str, fidelity: int, seed: int) -> dict[str, Any] | None:
        """The stored result of training ``arch_key`` on the task ``task_key`` for ``fidelity`` epochs with
        ``seed`` (a dict of ``score``, ``scores``, ``test_scores``, ``seconds``), or None."""
        row = self._retry(lambda: self._db.execute(
            "SELECT result FROM trainings WHERE arch_key=? AND task_key=? AND fidelity=? AND seed=? AND hwnas=?",
            (arch_key, task_key, int(fidelity), int(seed), self.version)).fetchone())
        return None if row is None else dict(json.loads(row[0]))

    def put_training(self, arch_key: str, task_key: str, fidelity: int, seed: int,
                     result: dict[str, Any]) -> None:
        """Record one training run (a row already there is kept: training is deterministic) and release
        its claim."""
        from .base import nan_to_none

        values = (arch_key, task_key, int(fidelity), int(seed), self.version)
        text = json.dumps(nan_to_none(result), allow_nan=False)

        def write() -> None:
            with self._db:
                self._db.execute("INSERT OR IGNORE INTO trainings VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (*values, text, time.time()))
                self._drop_claim("training_claims", values)

        self._retry(write)

    def claim_training(self, arch_key: str, task_key: str, fidelity: int, seed: int) -> bool:
        """Claim one training run, as :meth:`claim` does an evaluation: True when this process may train
        it, False while a live process holds it. Released by :meth:`put_training`."""
        return self._take_claim("training_claims", (arch_key, task_key, int(fidelity), int(seed), self.version))

    def rung_scores(self, task_key: str, fidelity: int, seeds: Sequence[int]) -> dict[str, float]:
        """Mean validation score per architecture key over ``seeds``, at ``fidelity`` epochs on
        ``task_key``: every architecture trained there with all of ``seeds`` (a rung's population)."""
        wanted = {int(s) for s in seeds}
        rows = self._retry(lambda: self._db.execute(
            "SELECT arch_key, seed, result FROM trainings WHERE task_key=? AND fidelity=? AND hwnas=?",
            (task_key, int(fidelity), self.version)).fetchall())
        found: dict[str, dict[int, float]] = {}
        for arch_key, seed, text in rows:
            if int(seed) in wanted:
                score = json.loads(text).get("score")
                found.setdefault(arch_key, {})[int(seed)] = math.nan if score is None else float(score)
        return {key: sum(by_seed.values()) / len(by_seed) for key, by_seed in found.items()
                if set(by_seed) == wanted}

    def count_trainings(self) -> int:
        """How many training runs this file holds (every task, fidelity and seed)."""
        return int(self._db.execute("SELECT COUNT(*) FROM trainings").fetchone()[0])

    # ---- resumable runs
    def load_run(self, run_key: str) -> dict[str, Any] | None:
        """The last saved state of the search ``run_key``, or None."""
        row = self._retry(lambda: self._db.execute(
            "SELECT state FROM runs WHERE run_key=?", (run_key,)).fetchone())
        return None if row is None else dict(json.loads(row[0]))

    def save_run(self, run_key: str, state: dict[str, Any]) -> None:
        """Save the state of the search ``run_key`` (replacing the previous one)."""
        text = json.dumps(state, allow_nan=False)

        def write() -> None:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", (run_key, text, time.time()))

        self._retry(write)
