"""Evaluating a candidate: the proxy score, the LUT latency, memory, FLOPs and feasibility.

Taught in: notebooks/07_pareto.

:class:`Evaluator` turns an :class:`~hwnas.space.Architecture` into
:class:`~hwnas.search.base.Metrics`. The hardware side (``profile.check``,
``predict_latency``, memory at the target precision, FLOPs, parameters) takes
microseconds and runs where the loop runs; only the training travels to an
executor, as a small picklable :class:`Trainer`. An infeasible architecture is
never trained.

What travels: a :class:`~hwnas.proxy.ProxyTask` holds every window as its own
copy (``(n, features, lookback)`` float32, about 84 MB for the recorded BTCUSDT
15-minute year) although consecutive windows overlap in all but one bar.
:func:`pack_task` keeps each run of overlapping windows as the one series it
was cut from (about 1 MB) and :func:`unpack_task` rebuilds the windows as
strided views, bit for bit the same values, once per worker process.
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

import numpy as np

from ..checks import require_enum, require_int
from .base import Metrics, hardware_metrics

if TYPE_CHECKING:
    import torch

    from ..architecture import Architecture
    from ..hardware import HardwareProfile
    from ..proxy.task import ProxyTask
    from .store import EvaluationStore

__all__ = ["Evaluator", "PackedTask", "TrainResult", "Trainer", "pack_task", "task_fingerprint", "unpack_task"]

_SPLITS = ("train", "val", "test")
_RECIPE = ("target", "horizon", "vol_window", "epochs", "batch_size", "lr", "max_train_windows",
           "eval_stride", "cost_bps", "periods_per_year", "num_threads", "data_seed", "grad_clip")


def task_fingerprint(task: ProxyTask) -> str:
    """sha256 of what makes two proxy tasks score alike, from the task's public fields.

    Covers the data source, each split's date range and size, a checksum of the
    targets, the feature names, the lookback, the split and every recipe field.

    Taught in: notebooks/07_pareto.
    """
    digest = hashlib.sha256()
    spec: dict[str, Any] = {
        "source": task.source,
        "features": list(task.feature_names),
        "lookback": task.lookback,
        "split": repr(task.split),
        "recipe": {name: getattr(task, name) for name in _RECIPE},
    }
    for name in _SPLITS:
        part = task.subset(name)
        spec[name] = [len(part), str(part.index[0]) if len(part.index) else "",
                      str(part.index[-1]) if len(part.index) else ""]
        for key in sorted(part.targets):
            digest.update(np.ascontiguousarray(part.targets[key]).tobytes())
    digest.update(json.dumps(spec, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- packing


@dataclass(frozen=True, eq=False)
class PackedTask:
    """A :class:`~hwnas.proxy.ProxyTask` whose windows are stored as the series they were cut from.

    ``task`` has empty window tensors; ``runs[split]`` lists, for each run of
    consecutive overlapping windows, the ``(features, n + lookback - 1)`` series.

    Taught in: notebooks/07_pareto.
    """

    task: ProxyTask
    runs: dict[str, list[torch.Tensor]]
    fingerprint: str


def _runs(X: torch.Tensor) -> list[torch.Tensor]:
    """Split windows into runs where window ``i`` is window ``i - 1`` moved by one bar."""
    import torch

    if len(X) == 0:
        return []
    same = (X[1:, :, :-1] == X[:-1, :, 1:]).flatten(1).all(dim=1)
    starts = [0] + (torch.nonzero(~same).flatten() + 1).tolist() + [len(X)]
    return [torch.cat([X[a], X[a + 1:b, :, -1].T], dim=1).contiguous()
            for a, b in zip(starts[:-1], starts[1:])]


def _windows(runs: list[torch.Tensor], features: int, lookback: int) -> torch.Tensor:
    """The windows of ``runs`` (a strided view when there is one run)."""
    import torch

    views = [series.unfold(1, lookback, 1).permute(1, 0, 2) for series in runs]
    if not views:
        return torch.empty(0, features, lookback)
    return views[0] if len(views) == 1 else torch.cat(views)


def pack_task(task: ProxyTask) -> PackedTask:
    """The compact form of ``task`` that an executor ships to its workers.

    Raises ValueError if the rebuilt windows would differ from ``task``'s (they
    never should: the check makes packing exact by construction).

    Taught in: notebooks/07_pareto.
    """
    import torch

    from ..proxy.task import ProxySplit

    runs: dict[str, list[torch.Tensor]] = {}
    splits: dict[str, ProxySplit] = {}
    for name in _SPLITS:
        part = task.subset(name)
        runs[name] = _runs(part.X)
        if not torch.equal(_windows(runs[name], task.num_features, task.lookback), part.X):
            raise ValueError(f"pack_task: the {name} windows do not rebuild exactly")
        splits[name] = ProxySplit(part.X[:0].clone(), part.targets, part.index)
    stripped = replace(task, train=splits["train"], val=splits["val"], test=splits["test"])
    return PackedTask(stripped, runs, task_fingerprint(task))


_UNPACKED: dict[str, ProxyTask] = {}  # per worker process: fingerprint -> rebuilt task


def unpack_task(packed: PackedTask) -> ProxyTask:
    """The full task of ``packed``, rebuilt once per process and then reused.

    Taught in: notebooks/07_pareto.
    """
    from ..proxy.task import ProxySplit

    task = _UNPACKED.get(packed.fingerprint)
    if task is None:
        base = packed.task
        splits = {name: ProxySplit(_windows(packed.runs[name], base.num_features, base.lookback),
                                   base.subset(name).targets, base.subset(name).index)
                  for name in _SPLITS}
        task = replace(base, train=splits["train"], val=splits["val"], test=splits["test"])
        if len(_UNPACKED) >= 2:
            _UNPACKED.clear()
        _UNPACKED[packed.fingerprint] = task
    return task


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainResult:
    """What the training half of an evaluation found (validation and test scores).

    Taught in: notebooks/07_pareto.
    """

    score: float
    scores: dict[str, float]
    test_scores: dict[str, float]
    seconds: float


@dataclass(frozen=True, eq=False)
class Trainer:
    """The picklable half of an evaluation: train an architecture on the task, score it.

    Holds the task packed (see :func:`pack_task`); the validation and test
    splits are scored from one training run (the loop keeps test scores away
    from the strategies).

    Taught in: notebooks/07_pareto.
    """

    task: ProxyTask | PackedTask
    seed: int = 0
    epochs: int | None = None  # None: the task's; else trained this many epochs (a fidelity)
    fixed_point: str = "float"
    fixed_point_width: int = 8

    def __call__(self, arch: Architecture) -> TrainResult:
        """Train and score ``arch`` (one torch thread per evaluation: ``task.num_threads``); at
        ``fixed_point_width``-bit fixed point when ``fixed_point`` is ``"qat"`` or ``"ptq"``
        (:func:`hwnas.proxy.fixed_point.evaluate_fixed_point`)."""
        from ..proxy.training import evaluate_splits

        start = time.perf_counter()
        task = unpack_task(self.task) if isinstance(self.task, PackedTask) else self.task
        if self.epochs is not None and self.epochs != task.epochs:
            task = replace(task, epochs=self.epochs)
        if self.fixed_point != "float":
            from ..proxy.fixed_point import evaluate_fixed_point

            scores, _ = evaluate_fixed_point(arch, task, self.seed, mode=self.fixed_point,
                                             width=self.fixed_point_width)
        else:
            scores = evaluate_splits(arch, task, self.seed, splits=("val", "test"))
        val, test = scores["val"], scores["test"]
        score = val.score if math.isfinite(val.score) else math.nan
        return TrainResult(score, dict(val.metrics), dict(test.metrics), time.perf_counter() - start)


@dataclass(eq=False)
class Evaluator:
    """``(task, profile, precision, seed)``: an :class:`Architecture` in, :class:`Metrics` out.

    ``precision`` (default the profile's) is the precision memory is counted
    at; ``batch`` the inference batch of the latency and memory. ``fixed_point``
    (:class:`hwnas.proxy.fixed_point.FixedPointMode`: ``float``, ``qat`` or ``ptq``) scores
    candidates at ``fixed_point_width``-bit fixed point, as an FPGA deploys them. Calling the
    evaluator does everything in this process; the loop calls
    :meth:`hardware_metrics` here and ships :attr:`trainer` to an executor.

    Taught in: notebooks/07_pareto.
    """

    task: ProxyTask
    profile: HardwareProfile
    precision: str | None = None
    seed: int = 0
    batch: int = 1
    fixed_point: str = "float"
    fixed_point_width: int = 8
    trainer: Trainer = field(init=False, repr=False)
    _packed: PackedTask | None = field(default=None, init=False, repr=False)
    _fingerprints: tuple[str, str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        from ..cost import bytes_per_value

        self.seed = require_int(self.seed, "seed", 0)
        self.batch = require_int(self.batch, "batch", 1)
        bytes_per_value(self.target_precision)  # validates the name
        from ..proxy.fixed_point import FixedPointMode

        self.fixed_point = require_enum(FixedPointMode, self.fixed_point, "fixed_point").value
        self.fixed_point_width = require_int(self.fixed_point_width, "fixed_point_width", 2, 32)
        self.trainer = Trainer(self.task, self.seed, fixed_point=self.fixed_point,
                               fixed_point_width=self.fixed_point_width)

    @property
    def target_precision(self) -> str:
        """The precision memory is counted at."""
        return self.precision or self.profile.precision

    def remote_trainer(self) -> Trainer:
        """The trainer to submit to an executor: the task packed once, small to pickle."""
        if self._packed is None:
            self._packed = pack_task(self.task)
        return Trainer(self._packed, self.seed, fixed_point=self.fixed_point,
                       fixed_point_width=self.fixed_point_width)

    def train_all(self, items: Sequence[tuple[str, Architecture]], store: EvaluationStore,
                  executor: Executor | None) -> Iterator[tuple[str, TrainResult]]:
        """Train each ``(key, architecture)`` once (through ``executor`` when given), yielding each
        result as it lands; the search loop's one call into training. ``store`` is unused here: the
        multi-fidelity evaluator (:class:`~hwnas.search.fidelity.MultiFidelityEvaluator`) keeps each
        of its training runs there."""
        if executor is None:
            for key, arch in items:
                yield key, self.trainer(arch)
            return
        if not items:
            return
        trainer = self.remote_trainer()
        futures = {executor.submit(trainer, arch): key for key, arch in items}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def hardware_metrics(self, arch: Architecture) -> Metrics:
        """Latency, memory, FLOPs, parameters and feasibility; ``score`` NaN (not trained)."""
        return hardware_metrics(self.profile, arch, self.target_precision, self.batch)

    @staticmethod
    def combine(hardware: Metrics, trained: TrainResult | None) -> Metrics:
        """The full metrics of a candidate from its two halves (``None``: not trained)."""
        if trained is None:
            return hardware
        return replace(hardware, score=trained.score, scores=trained.scores,
                       test_scores=trained.test_scores, seconds=trained.seconds)

    def __call__(self, arch: Architecture) -> Metrics:
        """Evaluate ``arch`` here: infeasible ones are recorded with their reasons, untrained."""
        start = time.perf_counter()
        hardware = self.hardware_metrics(arch)
        if not hardware.feasible:
            return replace(hardware, seconds=time.perf_counter() - start)
        return self.combine(hardware, self.trainer(arch))

    def fingerprints(self) -> tuple[str, str]:
        """``(task, profile)`` fingerprints: the evaluation store's key parts (computed once)."""
        if self._fingerprints is None:
            profile = profile_fingerprint(self.profile, self.target_precision, self.batch)
            if self.fixed_point != "float":  # fixed-point scores are not float scores: a key of their own
                profile = f"{profile}|{self.fixed_point}{self.fixed_point_width}"
            self._fingerprints = (task_fingerprint(self.task), profile)
        return self._fingerprints


def profile_fingerprint(profile: HardwareProfile, precision: str, batch: int = 1) -> str:
    """sha256 of a profile's saved form plus the precision and batch of the evaluation.

    Taught in: notebooks/07_pareto.
    """
    text = json.dumps({"profile": profile.to_dict(), "precision": precision, "batch": batch},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()

