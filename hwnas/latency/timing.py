"""The timing harness: fixed conditions, warm-up, per-call samples, round-robin passes.

Taught in: notebooks/04_latency_lut.

Every latency figure of hwnas comes from here: :func:`time_callable` for one
callable, :func:`time_round_robin` (and :func:`run_passes` under it) for many
callables timed interleaved, in shuffled passes, as the lookup table is built.
The callables are made by a :class:`~hwnas.runtime.Runtime`, so the same
harness times eager PyTorch and ONNX Runtime alike.
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checks import require_int
from ..hardware import current_conditions
from ..numerics import torch_threads
from ..runtime import Runtime
from .spec import Estimator, TimingSpec, check_estimator


@dataclass(frozen=True)
class Timing:
    """Statistics of the repeated timing of one callable, in microseconds.

    ``median_us`` is the median of all samples; :meth:`estimate` picks the value
    a table uses (see :data:`ESTIMATORS`). ``burst_medians_us`` holds the median
    of each burst (pass) when the samples came in several; ``samples_us`` holds
    every repetition when the harness was asked to keep them (for histograms).

    Taught in: notebooks/04_latency_lut.
    """

    median_us: float
    p90_us: float
    p99_us: float
    min_us: float
    mean_us: float
    reps: int
    threads: int
    batch: int
    samples_us: tuple[float, ...] = field(default=(), repr=False, compare=False)
    burst_medians_us: tuple[float, ...] = field(default=(), compare=False)

    @property
    def best_median_us(self) -> float:
        """The smallest median of the bursts (passes) the samples came in.

        Under intermittent load from other processes this estimates the quiet
        machine's median (as ``timeit`` takes the best of its repeats); with a
        single burst it equals :attr:`median_us`.
        """
        return min(self.burst_medians_us) if self.burst_medians_us else self.median_us

    def estimate(self, estimator: Estimator | str = Estimator.MEDIAN) -> float:
        """The table value in µs: ``median`` (pooled over the passes), ``best_median``
        (the best pass's median) or ``min`` (the fastest call); see :class:`Estimator`."""
        chosen = check_estimator(estimator)
        if chosen is Estimator.MEDIAN:
            return self.median_us
        if chosen is Estimator.BEST_MEDIAN:
            return self.best_median_us
        return self.min_us

    @classmethod
    def from_bursts(cls, bursts: Sequence[Sequence[float]], threads: int, batch: int,
                    keep_samples: bool = False) -> Timing:
        """Summarise per-call samples (µs) collected in several bursts."""
        pooled = [v for burst in bursts for v in burst]
        timing = cls.from_samples(pooled, threads, batch, keep_samples)
        medians = tuple(float(np.median(b)) for b in bursts if len(b))
        return replace(timing, burst_medians_us=medians)

    @classmethod
    def from_samples(cls, samples_us: Sequence[float] | np.ndarray, threads: int, batch: int,
                     keep_samples: bool = False) -> Timing:
        """Summarise raw per-call samples (µs)."""
        arr = np.asarray(samples_us, dtype=float)
        if arr.size == 0:
            raise ValueError("Timing needs at least one sample")
        return cls(
            median_us=float(np.median(arr)),
            p90_us=float(np.percentile(arr, 90)),
            p99_us=float(np.percentile(arr, 99)),
            min_us=float(arr.min()),
            mean_us=float(arr.mean()),
            reps=int(arr.size),
            threads=int(threads),
            batch=int(batch),
            samples_us=tuple(float(v) for v in arr) if keep_samples else (),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (without the samples)."""
        return {k: getattr(self, k) for k in
                ("median_us", "p90_us", "p99_us", "min_us", "mean_us", "reps", "threads", "batch")}


_NULL_NS: float | None = None


def null_call_ns() -> float:
    """Median cost (ns) of timing an empty Python call with the harness loop (measured once).

    Taught in: notebooks/04_latency_lut.
    """
    global _NULL_NS
    if _NULL_NS is None:
        pc = time.perf_counter_ns

        def noop() -> None:
            return None

        samples = []
        for _ in range(2000):
            t0 = pc()
            noop()
            t1 = pc()
            samples.append(t1 - t0)
        _NULL_NS = float(np.median(samples))
    return _NULL_NS


class _Conditions:
    """Context manager: fixed threads, inference mode, gc off; all restored on exit."""

    def __init__(self, threads: int) -> None:
        self.threads = require_int(threads, "threads", 1)

    def __enter__(self) -> _Conditions:
        self._gc = gc.isenabled()
        self._threads = torch_threads(self.threads)
        self._threads.__enter__()
        self._mode = torch.inference_mode()
        self._mode.__enter__()
        gc.collect()
        gc.disable()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._mode.__exit__(*exc)
        finally:
            if self._gc:
                gc.enable()
            self._threads.__exit__(None, None, None)


def _sample(fn: Callable[[], Any], reps: int, null_ns: float) -> list[float]:
    """``reps`` per-call times of ``fn`` in µs, the empty-call cost subtracted."""
    pc = time.perf_counter_ns
    out = [0.0] * reps
    for i in range(reps):
        t0 = pc()
        fn()
        t1 = pc()
        out[i] = t1 - t0
    return [max(v - null_ns, 0.0) / 1e3 for v in out]


def _warm(fn: Callable[[], Any], warmup: int, warmup_ms: float) -> float:
    """Call ``fn`` at least ``warmup`` times and ``warmup_ms``; return its median µs."""
    pc = time.perf_counter_ns
    samples: list[int] = []
    start = pc()
    while len(samples) < max(warmup, 1) or (pc() - start) < warmup_ms * 1e6:
        t0 = pc()
        fn()
        samples.append(pc() - t0)
        if len(samples) >= 10_000:
            break
    tail = samples[len(samples) // 2:] or samples
    return float(np.median(tail)) / 1e3


def time_callable(
    fn: Callable[[], Any],
    *,
    timing: TimingSpec = TimingSpec.CALL,
    threads: int = 1,
    batch: int = 1,
    keep_samples: bool = False,
) -> Timing:
    """Time ``fn()`` the way a performance engineer would trust, as ``timing`` says.

    ``threads`` torch threads (restored after), inside ``torch.inference_mode``,
    after at least ``timing.warmup`` calls and ``timing.warmup_ms`` of warm-up;
    then between ``timing.min_reps`` and ``timing.max_reps`` timed calls, as many
    as fit in about ``timing.target_ms``, in ``timing.passes`` consecutive bursts
    (their medians give :attr:`Timing.best_median_us`), each call timed alone with
    ``time.perf_counter_ns`` (the cost of timing an empty call subtracted), with
    the garbage collector disabled (re-enabled after, also on an exception).
    ``batch`` is recorded only.

    Taught in: notebooks/04_latency_lut.
    """
    null_ns = null_call_ns()
    with _Conditions(threads):
        estimate = _warm(fn, timing.warmup, timing.warmup_ms)
        reps = timing.reps_for(estimate)
        sizes = [len(chunk) for chunk in np.array_split(np.arange(reps), min(timing.passes, reps))]
        bursts = [_sample(fn, size, null_ns) for size in sizes]
    return Timing.from_bursts(bursts, threads, batch, keep_samples)


def time_module(module: nn.Module, x: torch.Tensor | Sequence[torch.Tensor], **kwargs: Any) -> Timing:
    """:func:`time_callable` of ``module(x)`` (``module(*x)`` for a sequence of inputs);
    ``kwargs`` (``timing``, ``threads``, ``keep_samples``) go to it.

    Taught in: notebooks/04_latency_lut.
    """
    args = tuple(x) if isinstance(x, (list, tuple)) else (x,)
    kwargs.setdefault("batch", int(args[0].shape[0]))
    module.eval()
    return time_callable(lambda: module(*args), **kwargs)


def load_average() -> float | None:
    """One-minute load average, rounded (None where the OS has none).

    Taught in: notebooks/04_latency_lut.
    """
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def measure_conditions(threads: int, batch: int, runtime: Runtime | None = None) -> dict[str, Any]:
    """What a measurement depends on: torch, CPU, threads, batch, runtime, date, load.

    Taught in: notebooks/04_latency_lut.
    """
    info = current_conditions()
    info.update(
        threads=threads,
        batch=batch,
        cpu_count=os.cpu_count(),
        mkldnn=bool(torch.backends.mkldnn.is_available()),
        date=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        timer_null_ns=round(null_call_ns(), 1),
        load_avg_1min_start=load_average(),
    )
    if runtime is not None:
        info.update(runtime=runtime.name, runtime_version=runtime.version())
    return info


def progress_bar(total: int, desc: str, unit: str) -> Any:
    """A tqdm bar counting ``total`` ``unit``s, silent when stderr is not a terminal.

    Taught in: notebooks/04_latency_lut.
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=None)


def _sample_group(fns: Sequence[Callable[[], Any]], reps: int, null_ns: float) -> list[list[float]]:
    """Round-robin timing: ``reps`` rounds, each calling every ``fn`` once, timed alone.

    Each timed call follows a call of a *different* op, as a layer follows
    another layer inside a model (caches and branch predictors hold the other
    op's state), instead of following itself, which flatters small ops.
    """
    pc = time.perf_counter_ns
    raw = [[0] * reps for _ in fns]
    for r in range(reps):
        for j, fn in enumerate(fns):
            t0 = pc()
            fn()
            t1 = pc()
            raw[j][r] = t1 - t0
    return [[max(v - null_ns, 0.0) / 1e3 for v in row] for row in raw]


Item = tuple[Any, Callable[[], Any]] | tuple[Any, Callable[[], Any], float]


def run_passes(
    items: Sequence[Item],
    *,
    timing: TimingSpec,
    threads: int,
    progress: bool,
    desc: str,
) -> tuple[dict[Any, list[list[float]]], dict[Any, float]]:
    """Time every ``(key, fn)``; µs samples per key (one list per pass), seconds per key.

    Each of ``timing.passes`` passes shuffles the items (``timing.seed``) and
    times them in round-robin groups of ``timing.group`` (see
    :func:`_sample_group`); a group runs as many rounds as spend about
    ``timing.target_ms / passes`` per item (times the item's optional weight, the
    third tuple element), within ``min_reps / passes`` and ``max_reps / passes``
    (at least 3). The first pass warms each item with ``timing.warmup`` calls and
    ``timing.warmup_ms``, later ones with one call and a quarter of that time.
    ``seconds`` in the result maps each key to the wall time its share of the
    groups took. The progress bar (``desc``) counts timed items over all passes.

    Taught in: notebooks/04_latency_lut.
    """
    passes, group, warmup_ms = timing.passes, timing.group, timing.warmup_ms
    null_ns = null_call_ns()
    samples: dict[Any, list[list[float]]] = {item[0]: [] for item in items}
    seconds: dict[Any, float] = {}
    order = list(range(len(items)))
    rng = random.Random(timing.seed)
    per_pass_us = timing.target_ms * 1e3 / passes
    lo, hi = max(timing.min_reps // passes, 3), max(timing.max_reps // passes, 3)
    bar = progress_bar(len(items) * passes, desc, "timings") if progress else None
    try:
        with _Conditions(threads):
            for p in range(passes):
                rng.shuffle(order)
                for start in range(0, len(order), group):
                    t_group = time.perf_counter()
                    members = [items[i] for i in order[start:start + group]]
                    fns = [m[1] for m in members]
                    weight = sum(float(m[2]) if len(m) > 2 else 1.0 for m in members)  # type: ignore[misc]
                    estimates = [_warm(fn, timing.warmup if p == 0 else 1, warmup_ms if p == 0 else warmup_ms / 4)
                                 for fn in fns]
                    total = sum(estimates)
                    reps = hi if total <= 0 else int(min(max(round(per_pass_us * weight / total), lo), hi))
                    rows = _sample_group(fns, reps, null_ns)
                    spent = time.perf_counter() - t_group
                    busy = sum(sum(row) for row in rows) or 1.0
                    for member, row in zip(members, rows):
                        samples[member[0]].append(row)
                        seconds[member[0]] = seconds.get(member[0], 0.0) + spent * sum(row) / busy
                    if bar is not None:
                        bar.update(len(members))
                gc.enable()
                gc.collect()
                gc.disable()
    finally:
        if bar is not None:
            bar.close()
    return samples, seconds


def time_round_robin(
    callables: dict[Any, Callable[[], Any]],
    *,
    timing: TimingSpec = TimingSpec.COMPARE,
    threads: int = 1,
    batch: int = 1,
    keep_samples: bool = False,
) -> dict[Any, Timing]:
    """Time several callables the way the LUT is built: interleaved, in context.

    Shuffled passes over ``callables`` (:func:`run_passes` with ``timing``);
    within a pass, round-robin groups of ``timing.group`` callables so that each
    timed call follows a *different* one. Use it to compare things side by side
    under the same machine conditions.

    Taught in: notebooks/04_latency_lut.
    """
    samples, _ = run_passes(list(callables.items()), timing=timing, threads=threads, progress=False, desc="")
    return {key: Timing.from_bursts(samples[key], threads, batch, keep_samples) for key in callables}


PEAK_FLOPS_TIMING = TimingSpec.CALL.replace(target_ms=30.0, min_reps=5, max_reps=200)
"""A 512x512 product takes about 1 ms: fewer, longer calls than :attr:`TimingSpec.CALL`."""


def peak_flops_measured(threads: int = 1, n: int = 512) -> float:
    """FLOP/s of an ``n x n`` float32 matrix product on this machine (its fastest call).

    Taught in: notebooks/04_latency_lut.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = time_callable(lambda: a @ b, timing=PEAK_FLOPS_TIMING, threads=threads)
    return 2.0 * n**3 / (t.min_us * 1e-6)


__all__ = [
    "PEAK_FLOPS_TIMING",
    "Timing",
    "load_average",
    "measure_conditions",
    "null_call_ns",
    "peak_flops_measured",
    "progress_bar",
    "run_passes",
    "time_callable",
    "time_module",
    "time_round_robin",
]
