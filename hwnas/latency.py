"""Measured latency: a timing harness, lookup tables (LUTs), CPU profiles, fidelity.

Taught in: notebooks/04_latency_lut.

The chapter's predictor is a sum over the layers of a table measured once per
target,

    LAT(a) = sum_i LUT(o_i, d_i)

(``o_i`` the operation of layer ``i``, ``d_i`` its input dimensions); for
parallel branches the slowest path counts, and for a soft choice of operations
(DARTS/FBNet) the expected latency is the softmax-weighted sum of the table,
which is differentiable in the architecture weights (:func:`expected_latency`).

How the table is made faithful to whole models
----------------------------------------------
* Same modules: each entry times the module the model runs
  (:func:`hwnas.model.build_layer` for layers, the model's ``Head`` for heads)
  on a contiguous float32 input of the shape it receives in the model. Skip
  layers are timed whole (main branch, shortcut and add run one after another
  in eager PyTorch). The stem and the head are in the table too.
* Harness (:func:`time_callable`): fixed thread count (restored after),
  ``torch.inference_mode``, warm-up calls (oneDNN builds its kernels on the
  first call of a shape), the garbage collector off (re-enabled after, also on
  errors), one ``perf_counter_ns`` pair per call with the cost of timing an
  empty call subtracted; repetitions adapt to the op's speed so that about the
  same time is spent on every entry; median, p90, p99, min and mean kept.
* In context, not in a loop of itself: an op called again and again on the
  same input finds caches and branch predictors primed for it, and runs
  5-40% faster than inside a model (small ops and heads most). The table is
  therefore timed round-robin: groups of different ops, each timed call
  preceded by a call of another op, as a layer follows another layer.
* Drift: other processes and clock changes move timings by tens of percent
  over seconds on a shared machine. Every entry is timed in several short
  bursts spread over the whole build (shuffled passes), so table entries and
  whole models see the same mix of quiet and disturbed moments. Interference
  only ever slows a call down, so the table's default estimate is ``min``, the
  fastest call: what the op costs when nothing disturbs it, and the figure that
  reproduces. On this project's shared 2-core machine (pass medians of one
  model differing 1.7-2.1x), a second timing of the same 200 models agreed with
  the first within ±10% for 93-99% of them with ``min``, 85-99% with
  ``best_median`` (the median of the quietest burst) and 30-97% with the
  pooled ``median``; the benchmark prints this repeatability beside the
  fidelity of all three. ``Timing`` keeps the median, p90 and p99 too: tail
  latency against an SLA is a question about those, not about the table.
* Whole-model overhead: ``TradingNet.forward`` checks the input and loops in
  Python, and the head meets its input in another state than in the table.
  Layers of one model also share caches that isolated timings do not see, a
  cost that grows with the work. Both are calibrated on models drawn from the
  space (128 by default; never the models used to judge the table), timed
  inside the same passes: a robust line ``measured = overhead + scale * sum
  of entries``. The
  profile's table holds the entries times ``scale`` and the overhead under
  ``OpSpec.overhead(batch)``, so it predicts ``overhead + sum of layers``.
* Fidelity (:func:`validate`) times whole models with the same harness and
  compares, beside a FLOPs-only baseline; models passed as ``validation`` to
  :func:`build_lut_detailed` are timed inside the table's passes, so both sides
  see the same machine conditions.
"""

from __future__ import annotations

import datetime as _dt
import gc
import math
import os
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch
from scipy import stats
from torch import nn

from .cost import count_flops
from .hardware import (
    DeviceType,
    HardwareProfile,
    OpSpec,
    arch_op_specs,
    current_conditions,
    space_op_specs,
)
from .model import Head, build_layer, build_model
from .space import Architecture, HeadType, SearchSpace

EDGE_MEMORY_BUDGET = 10 * 1024 * 1024  # the chapter's "under 10 MB" app size limit
SERVER_MEMORY_BUDGET = 4 * 1024**3  # a few GB for a server process
ESTIMATORS = ("median", "best_median", "min")
DEFAULT_ESTIMATOR = "min"  # see the module docstring, "Drift"


# --------------------------------------------------------------------------- harness


@dataclass(frozen=True)
class Timing:
    """Statistics of the repeated timing of one callable, in microseconds.

    ``median_us`` is the median of all samples; :meth:`estimate` picks the value
    a table uses (see :data:`ESTIMATORS`). ``burst_medians_us`` holds the median
    of each burst (pass) when the samples came in several; ``samples_us`` holds
    every repetition when the harness was asked to keep them (for histograms).
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

    def estimate(self, estimator: str = "median") -> float:
        """The table value in µs: ``median`` (pooled over the passes), ``best_median``
        (the best pass's median) or ``min`` (the fastest call)."""
        if estimator == "median":
            return self.median_us
        if estimator == "best_median":
            return self.best_median_us
        if estimator == "min":
            return self.min_us
        raise ValueError(f"estimator {estimator!r} unknown; choose one of {list(ESTIMATORS)}")

    @classmethod
    def from_bursts(cls, bursts: Sequence[Sequence[float]], threads: int, batch: int,
                    keep_samples: bool = False) -> "Timing":
        """Summarise per-call samples (µs) collected in several bursts."""
        pooled = [v for burst in bursts for v in burst]
        timing = cls.from_samples(pooled, threads, batch, keep_samples)
        medians = tuple(float(np.median(b)) for b in bursts if len(b))
        return replace(timing, burst_medians_us=medians)

    @classmethod
    def from_samples(cls, samples_us: Sequence[float], threads: int, batch: int,
                     keep_samples: bool = False) -> "Timing":
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


def _null_call_ns() -> float:
    """Median cost (ns) of timing an empty Python call with the harness loop."""
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
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        self.threads = threads

    def __enter__(self) -> "_Conditions":
        self._threads = torch.get_num_threads()
        self._gc = gc.isenabled()
        torch.set_num_threads(self.threads)
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
            torch.set_num_threads(self._threads)


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
    samples = []
    start = pc()
    while len(samples) < max(warmup, 1) or (pc() - start) < warmup_ms * 1e6:
        t0 = pc()
        fn()
        samples.append(pc() - t0)
        if len(samples) >= 10_000:
            break
    tail = samples[len(samples) // 2:] or samples
    return float(np.median(tail)) / 1e3


def _reps_for(estimate_us: float, target_ms: float, min_reps: int, max_reps: int) -> int:
    """Repetitions that spend about ``target_ms`` on an op of ``estimate_us``."""
    if estimate_us <= 0:
        return max_reps
    return int(min(max(round(target_ms * 1e3 / estimate_us), min_reps), max_reps))


def time_callable(
    fn: Callable[[], Any],
    *,
    threads: int = 1,
    batch: int = 1,
    warmup: int = 3,
    warmup_ms: float = 2.0,
    target_ms: float = 20.0,
    min_reps: int = 20,
    max_reps: int = 2000,
    keep_samples: bool = False,
) -> Timing:
    """Time ``fn()`` the way a performance engineer would trust.

    ``threads`` torch threads (restored after), inside ``torch.inference_mode``,
    after at least ``warmup`` calls and ``warmup_ms`` of warm-up; then between
    ``min_reps`` and ``max_reps`` timed calls, as many as fit in about
    ``target_ms``, each timed alone with ``time.perf_counter_ns`` (the cost of
    timing an empty call subtracted), with the garbage collector disabled
    (re-enabled after, also on an exception). ``batch`` is recorded only.
    """
    null_ns = _null_call_ns()
    with _Conditions(threads):
        estimate = _warm(fn, warmup, warmup_ms)
        reps = _reps_for(estimate, target_ms, min_reps, max_reps)
        samples = _sample(fn, reps, null_ns)
    return Timing.from_samples(samples, threads, batch, keep_samples)


def time_module(module: nn.Module, x: torch.Tensor | Sequence[torch.Tensor], **kwargs: Any) -> Timing:
    """:func:`time_callable` of ``module(x)`` (``module(*x)`` for a sequence of inputs)."""
    args = tuple(x) if isinstance(x, (list, tuple)) else (x,)
    kwargs.setdefault("batch", int(args[0].shape[0]))
    module.eval()
    return time_callable(lambda: module(*args), **kwargs)


# --------------------------------------------------------------------------- runnable ops


class _Add(nn.Module):
    """The residual sum ``a + b`` (the join of a skip layer's branches)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def op_module(spec: OpSpec, seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module an :class:`OpSpec` stands for and contiguous float32 inputs for it.

    Layers use :func:`hwnas.model.build_layer` (exactly what the model runs),
    heads the model's ``Head``; ``shortcut`` is the 1x1 strided projection (or
    the identity) and ``add`` the residual sum.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.is_layer:
            module: nn.Module = build_layer(spec.layer_spec())
        elif spec.is_head:
            kind = HeadType(spec.op.removeprefix("head_"))
            features = spec.in_channels * (spec.seq_len if kind == HeadType.FLATTEN else 1)
            module = Head(kind, features, spec.out_channels)
        elif spec.op == "shortcut":
            module = (nn.Conv1d(spec.in_channels, spec.out_channels, 1, stride=spec.stride)
                      if spec.is_projection else nn.Identity())
        elif spec.op == "add":
            module = _Add()
        else:
            raise ValueError(f"op {spec.op!r} has no module to time (the overhead is calibrated, not timed)")
    module.eval()
    shape = (spec.batch, spec.in_channels, spec.seq_len)
    inputs: tuple[torch.Tensor, ...] = (torch.randn(shape, generator=gen),)
    if spec.op == "add":
        inputs = inputs + (torch.randn(shape, generator=gen),)
    return module, inputs


# --------------------------------------------------------------------------- LUT building


def _load() -> float | None:
    """One-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def measure_conditions(threads: int, batch: int) -> dict[str, Any]:
    """What a measurement depends on: torch, CPU, threads, batch, date, load."""
    info = current_conditions()
    info.update(
        threads=threads,
        batch=batch,
        cpu_count=os.cpu_count(),
        mkldnn=bool(torch.backends.mkldnn.is_available()),
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        timer_null_ns=round(_null_call_ns(), 1),
        load_avg_1min_start=_load(),
    )
    return info


def calibration_archs(space: SearchSpace, n: int = 16, seed: int = 12345) -> list[Architecture]:
    """``n`` architectures of ``space`` used to calibrate the per-model overhead."""
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


@dataclass
class LUTBuild:
    """What :func:`build_lut_detailed` measured: per-key timings, the calibration
    models' end-to-end timings, the conditions and the build time.

    One build serves several estimators (median, best pass median, min):
    :meth:`table` and :meth:`profile` derive the table and the calibrated
    per-model overhead for any of them.
    """

    timings: dict[OpSpec, Timing]
    calibration: list[Architecture]
    calibration_timings: list[Timing]
    conditions: dict[str, Any]
    seconds: float
    threads: int
    batch: int
    validation: list[Architecture] = field(default_factory=list)
    validation_timings: list[Timing] = field(default_factory=list)

    def _calibration_sums(self, estimator: str) -> tuple[np.ndarray, np.ndarray]:
        """Per calibration model: the sum of its table entries and its measured µs."""
        sums = [sum(_whole_or_branches(self.timings, k, estimator) for k in arch_op_specs(arch, self.batch))
                for arch in self.calibration]
        measured = [t.estimate(estimator) for t in self.calibration_timings]
        return np.asarray(sums, dtype=float), np.asarray(measured, dtype=float)

    def overhead_diffs(self, estimator: str = DEFAULT_ESTIMATOR) -> np.ndarray:
        """Per calibration model: measured minus the sum of its table entries (µs)."""
        sums, measured = self._calibration_sums(estimator)
        return measured - sums

    def calibration_fit(self, estimator: str = DEFAULT_ESTIMATOR) -> tuple[float, float]:
        """``(overhead_us, scale)`` of ``measured = overhead + scale * sum of entries``.

        Fitted on the calibration models only (never on models used to judge the
        table), robustly (Theil-Sen). The scale absorbs what isolated timings miss
        in proportion to the work (caches shared by the layers of one model);
        a negative overhead is not physical, so then the line goes through the
        origin (scale = median ratio). With fewer than 3 models: scale 1 and
        the median difference as overhead.
        """
        sums, measured = self._calibration_sums(estimator)
        if sums.size == 0:
            return 0.0, 1.0
        if sums.size < 3:
            return max(float(np.median(measured - sums)), 0.0), 1.0
        scale, overhead = stats.theilslopes(measured, sums)[:2]
        if overhead < 0 or scale <= 0:
            return 0.0, float(np.median(measured / sums))
        return float(overhead), float(scale)

    def overhead_us(self, estimator: str = DEFAULT_ESTIMATOR) -> float:
        """The calibrated per-model overhead (µs), see :meth:`calibration_fit`."""
        return self.calibration_fit(estimator)[0]

    def table(self, estimator: str = DEFAULT_ESTIMATOR) -> dict[OpSpec, float]:
        """Calibrated µs per key (entries times the scale) plus the overhead entry."""
        overhead, scale = self.calibration_fit(estimator)
        out = {k: scale * t.estimate(estimator) for k, t in self.timings.items()}
        if self.calibration:
            out[OpSpec.overhead(self.batch)] = overhead
        return out

    def lut(self, estimator: str = DEFAULT_ESTIMATOR) -> dict[OpSpec, Timing]:
        """The timings plus an overhead :class:`Timing` (the calibration differences)."""
        out = dict(self.timings)
        if self.calibration:
            diffs = np.maximum(self.overhead_diffs(estimator), 0.0)
            out[OpSpec.overhead(self.batch)] = Timing.from_samples(diffs, self.threads, self.batch)
        return out

    def profile(
        self,
        name: str | None = None,
        estimator: str | None = None,
        *,
        device_type: DeviceType | str = DeviceType.CPU,
        memory_budget_bytes: int = SERVER_MEMORY_BUDGET,
        peak_flops: float | None = None,
        precision: str = "fp32",
    ) -> HardwareProfile:
        """A measured, sequential-branch :class:`HardwareProfile` from this build."""
        estimator = estimator or self.conditions.get("estimator", DEFAULT_ESTIMATOR)
        diffs = self.overhead_diffs(estimator)
        conditions = dict(self.conditions, estimator=estimator)
        if diffs.size:
            overhead, scale = self.calibration_fit(estimator)
            conditions["overhead_calibration"] = {
                "archs": int(diffs.size),
                "overhead_us": round(overhead, 2),
                "scale": round(scale, 4),
                "rule": "table entries = scale x measured entry; prediction = overhead + sum",
                "diff_us_p10_p50_p90": [round(float(v), 2) for v in np.percentile(diffs, [10, 50, 90])],
            }
        flops = peak_flops if peak_flops is not None else peak_flops_measured(self.threads)
        conditions["peak_flops_method"] = (
            "measured: 512x512 fp32 matmul, fastest call" if peak_flops is None else "given"
        )
        return HardwareProfile(
            name=name or f"cpu-{self.threads}thread-b{self.batch}",
            device_type=DeviceType(_plain(device_type)),
            latency_table=self.table(estimator),
            memory_budget_bytes=memory_budget_bytes,
            peak_flops=flops,
            parallel_branches=False,
            precision=precision,
            conditions=conditions,
            is_model=False,
        )


def _plain(value: Any) -> Any:
    """An enum member's value, or the value itself."""
    return getattr(value, "value", value)


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


def _run_passes(
    items: list[tuple[Any, Callable[[], Any]] | tuple[Any, Callable[[], Any], float]],
    *,
    passes: int,
    threads: int,
    target_ms: float,
    min_reps: int,
    max_reps: int,
    warmup_ms: float,
    seed: int,
    progress: bool,
    desc: str,
    group: int = 6,
) -> tuple[dict[Any, list[list[float]]], dict[Any, float]]:
    """Time every ``(key, fn)``; µs samples per key (one list per pass), seconds per key.

    Each pass shuffles the items and times them in round-robin groups of
    ``group`` (see :func:`_sample_group`); a group runs as many rounds as
    spend about ``target_ms / passes`` per item (times the item's optional
    weight, the third tuple element), within the rep limits. ``seconds`` in the
    result maps each key to the wall time its share of the groups took.
    """
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise ValueError(f"passes must be an integer >= 1, got {passes!r}")
    null_ns = _null_call_ns()
    samples: dict[Any, list[list[float]]] = {item[0]: [] for item in items}
    seconds: dict[Any, float] = {}
    order = list(range(len(items)))
    rng = random.Random(seed)
    per_pass_us = target_ms * 1e3 / passes
    lo, hi = max(min_reps // passes, 3), max(max_reps // passes, 3)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items) * passes, desc=desc, leave=False)
    try:
        with _Conditions(threads):
            for p in range(passes):
                rng.shuffle(order)
                for start in range(0, len(order), group):
                    t_group = time.perf_counter()
                    members = [items[i] for i in order[start:start + group]]
                    fns = [m[1] for m in members]
                    weight = sum(float(m[2]) if len(m) > 2 else 1.0 for m in members)
                    estimates = [_warm(fn, 3 if p == 0 else 1, warmup_ms if p == 0 else warmup_ms / 4)
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
    threads: int = 1,
    batch: int = 1,
    passes: int = 4,
    target_ms: float = 20.0,
    min_reps: int = 20,
    max_reps: int = 2000,
    group: int = 6,
    seed: int = 0,
    keep_samples: bool = False,
) -> dict[Any, Timing]:
    """Time several callables the way the LUT is built: interleaved, in context.

    Shuffled passes over ``callables``; within a pass, round-robin groups of
    ``group`` callables so that each timed call follows a *different* one. Use
    it to compare things side by side under the same machine conditions.

    Taught in: notebooks/04_latency_lut.
    """
    samples, _ = _run_passes(
        list(callables.items()), passes=passes, threads=threads, target_ms=target_ms,
        min_reps=min_reps, max_reps=max_reps, warmup_ms=1.0, seed=seed, progress=False,
        desc="", group=group,
    )
    return {key: Timing.from_bursts(samples[key], threads, batch, keep_samples) for key in callables}


def build_lut_detailed(
    space: SearchSpace,
    threads: int = 1,
    batch: int = 1,
    progress: bool = True,
    *,
    specs: Sequence[OpSpec] | None = None,
    branches: bool = False,
    passes: int = 8,
    target_ms: float = 12.0,
    min_reps: int = 24,
    max_reps: int = 1000,
    warmup_ms: float = 1.0,
    calibration: int = 128,
    model_weight: float = 4.0,
    estimator: str = DEFAULT_ESTIMATOR,
    group: int = 6,
    validation: Sequence[Architecture] = (),
    seed: int = 0,
) -> LUTBuild:
    """:func:`build_lut` with its calibration data, conditions and build time.

    Every key gets about ``target_ms`` of timed calls spread over ``passes``
    shuffled passes (round-robin groups of ``group`` different ops), whole
    models ``model_weight`` times as much. ``calibration`` models of the space
    (their own seed) calibrate the per-model overhead. ``validation``:
    architectures whose whole models are timed *inside the same passes* as the
    table (never used to fill it), so a fidelity check compares prediction and
    measurement made under the same machine conditions; their timings are in
    ``LUTBuild.validation_timings`` for :func:`validate`. ``build_seconds`` in the
    conditions counts the table and calibration only (the validation models'
    share of the passes is reported apart, as ``validation_seconds``).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator {estimator!r} unknown; choose one of {list(ESTIMATORS)}")
    start = time.perf_counter()
    calib = calibration_archs(space, calibration, seed=12345 + seed) if calibration else []
    if specs is None:
        keys = space_op_specs(space, batch, branches=branches)
    else:  # the given keys, plus what the calibration models need
        wanted = set(specs)
        for arch in calib:
            for key in arch_op_specs(arch, batch):
                if key.use_skip and branches:
                    wanted.update((key.main_branch(), key.shortcut_branch(), key.add_op()))
                else:
                    wanted.add(key)
        keys = sorted(wanted, key=OpSpec.sort_key)
    conditions = measure_conditions(threads, batch)
    items: list[tuple[Any, Callable[[], Any]]] = []
    for key in keys:
        if key.batch != batch:
            raise ValueError(f"OpSpec {key.label()} has batch {key.batch}, the LUT is built at batch {batch}")
        module, inputs = op_module(key, seed=seed)
        items.append((key, (lambda m=module, a=inputs: m(*a))))
    for i, arch in enumerate(calib):
        model = build_model(arch, seed=seed)
        x = torch.randn(batch, arch.input_features, arch.lookback)
        items.append((("calibration", i), (lambda m=model, a=x: m(a)), model_weight))
    for i, arch in enumerate(validation):
        model = build_model(arch, seed=seed)
        x = torch.randn(batch, arch.input_features, arch.lookback)
        items.append((("validation", i), (lambda m=model, a=x: m(a)), model_weight))
    samples, spent = _run_passes(
        items, passes=passes, threads=threads, target_ms=target_ms, min_reps=min_reps,
        max_reps=max_reps, warmup_ms=warmup_ms, seed=seed, progress=progress,
        desc=f"LUT {space.name} ({threads} thr, batch {batch})", group=group,
    )
    timings = {key: Timing.from_bursts(samples[key], threads, batch) for key in keys}
    calibration_timings = [Timing.from_bursts(samples[("calibration", i)], threads, batch)
                           for i in range(len(calib))]
    validation_timings = [Timing.from_bursts(samples[("validation", i)], threads, batch)
                          for i in range(len(validation))]
    validation_seconds = sum(spent.get(("validation", i), 0.0) for i in range(len(validation)))
    seconds = time.perf_counter() - start - validation_seconds
    conditions.update(
        space=space.name,
        distinct_opspecs=len(keys),
        passes=passes,
        estimator=estimator,
        target_ms_per_entry=target_ms,
        reps_range=[min_reps, max_reps],
        round_robin_group=group,
        calibration_archs=len(calib),
        build_seconds=round(seconds, 1),
        validation_seconds=round(validation_seconds, 1),
        load_avg_1min_end=_load(),
    )
    return LUTBuild(timings, calib, calibration_timings, conditions, seconds, threads, batch,
                    list(validation), validation_timings)


def _whole_or_branches(timings: dict[OpSpec, Timing], key: OpSpec, estimator: str) -> float:
    """Estimate of ``key`` from timings, composing a skip layer from branches if needed."""
    if key in timings:
        return timings[key].estimate(estimator)
    parts = (key.main_branch(), key.shortcut_branch(), key.add_op())
    return sum(timings[p].estimate(estimator) for p in parts)


def build_lut(
    space: SearchSpace,
    threads: int = 1,
    batch: int = 1,
    progress: bool = True,
    **kwargs: Any,
) -> dict[OpSpec, Timing]:
    """Measure every distinct :class:`OpSpec` of ``space`` on this machine.

    Returns a :class:`Timing` per key (layers, the stem and heads), plus the
    per-model overhead under ``OpSpec.overhead(batch)`` (calibrated on
    ``calibration`` models of the space; its Timing summarises the per-model
    differences). Keyword options of :func:`build_lut_detailed`: ``passes``,
    ``target_ms`` per entry, ``min_reps``/``max_reps``, ``branches`` (also time
    skip branches separately), ``specs`` (time these keys only), ``seed``.
    """
    build = build_lut_detailed(space, threads, batch, progress, **kwargs)
    return build.lut(build.conditions["estimator"])


def peak_flops_measured(threads: int = 1, n: int = 512) -> float:
    """FLOP/s of an ``n x n`` float32 matrix product on this machine (best of the reps)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = time_callable(lambda: a @ b, threads=threads, target_ms=30.0, min_reps=5, max_reps=200)
    return 2.0 * n**3 / (t.min_us * 1e-6)


def profile_cpu(
    space: SearchSpace,
    threads: int = 1,
    batch: int = 1,
    memory_budget_bytes: int = SERVER_MEMORY_BUDGET,
    name: str | None = None,
    progress: bool = True,
    *,
    device_type: DeviceType | str | None = None,
    precision: str = "fp32",
    **lut_kwargs: Any,
) -> HardwareProfile:
    """A :class:`HardwareProfile` of this CPU measured for every op of ``space``.

    ``threads`` torch threads, batch ``batch``; the table holds the median µs of
    each key and the calibrated per-model overhead. See :func:`profile_cpu_edge`
    (1 thread, a phone app's 10 MB budget) and :func:`profile_cpu_server` (all
    cores, GB budget) for the two standard cases. Extra keywords go to
    :func:`build_lut_detailed`.
    """
    build = build_lut_detailed(space, threads, batch, progress, **lut_kwargs)
    if device_type is None:
        device_type = DeviceType.MOBILE if threads == 1 and memory_budget_bytes <= 64 * 1024**2 else DeviceType.CPU
    return build.profile(name or f"cpu-{threads}thread-b{batch}", device_type=device_type,
                         memory_budget_bytes=memory_budget_bytes, precision=precision)


def profile_cpu_edge(space: SearchSpace, batch: int = 1, progress: bool = True, **kwargs: Any) -> HardwareProfile:
    """The edge/mobile case: 1 thread, a 10 MB memory budget (the chapter's app size limit)."""
    return profile_cpu(space, threads=1, batch=batch, memory_budget_bytes=EDGE_MEMORY_BUDGET,
                       name="cpu-1thread-edge", progress=progress, device_type=DeviceType.MOBILE, **kwargs)


def profile_cpu_server(space: SearchSpace, batch: int = 1, progress: bool = True, **kwargs: Any) -> HardwareProfile:
    """The server case: every core of this machine, a 4 GB memory budget."""
    threads = os.cpu_count() or 1
    return profile_cpu(space, threads=threads, batch=batch, memory_budget_bytes=SERVER_MEMORY_BUDGET,
                       name=f"cpu-{threads}thread-server", progress=progress, device_type=DeviceType.CPU,
                       **kwargs)


# --------------------------------------------------------------------------- expected latency


def expected_latency(alpha: torch.Tensor, candidate_latencies: torch.Tensor) -> torch.Tensor:
    """Softmax-weighted latency of a soft architecture (differentiable in ``alpha``).

    ``E[LAT] = sum_i sum_j softmax(alpha_i)_j * LUT(o_j, d_i)`` with ``alpha`` and
    ``candidate_latencies`` of shape ``(layers, choices)``. Non-finite latencies
    mark candidates that cannot run at that layer: they get probability 0 (their
    logits are masked) and contribute nothing.
    """
    return expected_latency_from_weights(masked_softmax(alpha, candidate_latencies), candidate_latencies)


def masked_softmax(alpha: torch.Tensor, candidate_latencies: torch.Tensor) -> torch.Tensor:
    """Row softmax of ``alpha`` with the non-finite latency entries masked out."""
    if alpha.shape != candidate_latencies.shape:
        raise ValueError(
            f"alpha has shape {tuple(alpha.shape)} but candidate_latencies {tuple(candidate_latencies.shape)};"
            f" both must be (layers, choices)"
        )
    finite = torch.isfinite(candidate_latencies)
    if not bool(finite.any(dim=-1).all()):
        raise ValueError("every layer needs at least one candidate with a finite latency")
    logits = alpha.masked_fill(~finite, float("-inf"))
    return torch.softmax(logits, dim=-1)


def expected_latency_from_weights(weights: torch.Tensor, candidate_latencies: torch.Tensor) -> torch.Tensor:
    """``sum_ij weights_ij * LUT_ij`` (e.g. Gumbel-softmax weights), masked entries skipped."""
    finite = torch.isfinite(candidate_latencies)
    lat = torch.where(finite, candidate_latencies, torch.zeros_like(candidate_latencies)).to(weights.dtype)
    return (weights * lat).sum()


def candidate_latencies(
    profile: HardwareProfile,
    space: SearchSpace,
    depth: int,
    lookback: int,
    width: int | None = None,
    use_skip: bool = False,
    batch: int = 1,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The ``(depth, len(space.candidates()))`` matrix ``LUT(o_j, d_i)`` for a supernet.

    Assumption (FBNet's fixed macro-architecture): every searchable layer ``i``
    receives ``width`` channels (default: the stem width) and ``lookback`` steps,
    whatever was chosen before it, so ``d_i`` is the same for all layers. Entry
    ``(i, j)`` is the profile's latency of candidate ``j`` built for that input
    (its own output width, with a skip if ``use_skip`` and the candidate allows
    one). Candidates that do not fit the input (span too long, pooling below the
    space's minimum length, heads not dividing the width) or that the profile
    marks unsupported get ``+inf`` (masked by :func:`expected_latency`). The
    stem, head and overhead are the same for every choice and are left out.
    """
    from .space import _check_layer_fits

    channels = space.stem_width if width is None else width
    row = []
    for choice in space.candidates():
        value = math.inf
        if space._fits(choice, channels, lookback):
            layer = choice.layer(channels, use_skip)
            try:
                _check_layer_fits(0, layer, channels, lookback)
            except ValueError:
                layer = choice.layer(channels, False)
            key = OpSpec.from_layer(layer, lookback, batch)
            reason = profile.unsupported(key) if profile.unsupported is not None else None
            if not reason:
                value = profile.spec_latency(key)
        row.append(value)
    return torch.tensor([row] * depth, dtype=dtype)


# --------------------------------------------------------------------------- fidelity


def _acc(pred: np.ndarray, meas: np.ndarray, tol: float) -> float:
    return float(np.mean(np.abs(pred - meas) <= tol * meas))


def _mape(pred: np.ndarray, meas: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - meas) / meas))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def flops_baseline(flops: np.ndarray, measured: np.ndarray, folds: int = 2) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Out-of-sample predictions of the affine model ``a + b * FLOPs``.

    Cross-fitted: the architectures are split into ``folds`` interleaved parts;
    each part is predicted by the least-squares fit on the others (so no
    prediction sees its own measurement). Returns the predictions and the
    ``(a_us, b_us_per_flop)`` of each fold.
    """
    flops = np.asarray(flops, dtype=float)
    measured = np.asarray(measured, dtype=float)
    n = len(flops)
    pred = np.empty(n)
    fits = []
    index = np.arange(n)
    if n < 2 * folds:
        folds = 1
    for f in range(folds):
        test = index % folds == f
        train = ~test if folds > 1 else test
        design = np.column_stack([np.ones(train.sum()), flops[train]])
        (a, b), *_ = np.linalg.lstsq(design, measured[train], rcond=None)
        pred[test] = a + b * flops[test]
        fits.append((float(a), float(b)))
    return pred, fits


@dataclass
class FidelityReport:
    """How well a profile predicts whole-model latency, beside a FLOPs-only baseline.

    Arrays are per architecture, in the order given to :func:`validate`.
    ``baseline_us`` is the affine FLOPs model ``a + b * FLOPs``, cross-fitted on
    the same measurements (each half predicted by the fit on the other half).
    """

    profile: str
    measured_us: np.ndarray
    predicted_us: np.ndarray
    flops: np.ndarray
    baseline_us: np.ndarray
    measured_p90_us: np.ndarray
    conditions: dict[str, Any]
    baseline_fits: list[tuple[float, float]]

    @property
    def n(self) -> int:
        """Number of architectures."""
        return len(self.measured_us)

    def acc(self, tol: float = 0.10, baseline: bool = False) -> float:
        """Share of predictions within ``±tol`` of the measurement."""
        return _acc(self.baseline_us if baseline else self.predicted_us, self.measured_us, tol)

    @property
    def acc10(self) -> float:
        """Share of LUT predictions within ±10% (nn-Meter's metric)."""
        return self.acc(0.10)

    @property
    def spearman(self) -> float:
        """Spearman rank correlation of LUT predictions with measurements."""
        return _spearman(self.predicted_us, self.measured_us)

    @property
    def mape(self) -> float:
        """Mean absolute percentage error of the LUT predictions (a fraction)."""
        return _mape(self.predicted_us, self.measured_us)

    @property
    def bias(self) -> float:
        """Median of predicted / measured - 1 (negative: the table under-predicts)."""
        return float(np.median(self.predicted_us / self.measured_us) - 1)

    @property
    def baseline_acc10(self) -> float:
        """acc10 of the FLOPs baseline."""
        return self.acc(0.10, baseline=True)

    @property
    def baseline_spearman(self) -> float:
        """Spearman of FLOPs with measurements (any increasing FLOPs model ranks alike)."""
        return _spearman(self.flops, self.measured_us)

    @property
    def baseline_mape(self) -> float:
        """MAPE of the FLOPs baseline."""
        return _mape(self.baseline_us, self.measured_us)

    def figures(self) -> dict[str, float]:
        """The headline numbers as a dict."""
        return {
            "n_archs": self.n,
            "lut_acc10": self.acc10,
            "lut_acc5": self.acc(0.05),
            "lut_spearman": self.spearman,
            "lut_mape": self.mape,
            "lut_median_ratio": 1 + self.bias,
            "flops_acc10": self.baseline_acc10,
            "flops_acc5": self.acc(0.05, baseline=True),
            "flops_spearman": self.baseline_spearman,
            "flops_mape": self.baseline_mape,
            "flops_median_ratio": float(np.median(self.baseline_us / self.measured_us)),
            "measured_median_us": float(np.median(self.measured_us)),
        }

    def summary(self) -> str:
        """A small table: LUT and FLOPs-baseline figures side by side."""
        f = self.figures()
        lines = [
            f"fidelity of {self.profile} on {self.n} architectures "
            f"(threads {self.conditions.get('threads')}, batch {self.conditions.get('batch')}, "
            f"median measured {f['measured_median_us']:.1f} µs)",
            f"{'':22}{'LUT sum':>12}{'FLOPs (a+b·F)':>16}",
            f"{'acc10 (±10%)':22}{f['lut_acc10']:>12.1%}{f['flops_acc10']:>16.1%}",
            f"{'acc5 (±5%)':22}{f['lut_acc5']:>12.1%}{f['flops_acc5']:>16.1%}",
            f"{'Spearman rho':22}{f['lut_spearman']:>12.3f}{f['flops_spearman']:>16.3f}",
            f"{'MAPE':22}{f['lut_mape']:>12.1%}{f['flops_mape']:>16.1%}",
            f"{'median pred/meas':22}{f['lut_median_ratio']:>12.3f}{f['flops_median_ratio']:>16.3f}",
            "FLOPs baseline: affine least squares, cross-fitted on interleaved halves (out of sample)",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (figures, per-arch arrays, conditions)."""
        return {
            "profile": self.profile,
            "figures": self.figures(),
            "measured_us": self.measured_us.tolist(),
            "predicted_us": self.predicted_us.tolist(),
            "baseline_us": self.baseline_us.tolist(),
            "measured_p90_us": self.measured_p90_us.tolist(),
            "flops": self.flops.tolist(),
            "baseline_fits": self.baseline_fits,
            "conditions": self.conditions,
        }


def measure_models(
    archs: Sequence[Architecture],
    threads: int = 1,
    batch: int = 1,
    *,
    passes: int = 8,
    target_ms: float = 48.0,
    min_reps: int = 24,
    max_reps: int = 1000,
    group: int = 6,
    seed: int = 0,
    progress: bool = False,
) -> list[Timing]:
    """End-to-end :class:`Timing` of each architecture's model.

    The same harness as the table: ``passes`` shuffled passes of round-robin
    groups, about ``target_ms`` of timed calls per model in all.
    """
    items = []
    for i, arch in enumerate(archs):
        model = build_model(arch, seed=seed)
        x = torch.randn(batch, arch.input_features, arch.lookback)
        items.append((i, (lambda m=model, a=x: m(a))))
    samples, _ = _run_passes(items, passes=passes, threads=threads, target_ms=target_ms,
                             min_reps=min_reps, max_reps=max_reps, warmup_ms=1.0, seed=seed + 1,
                             progress=progress, desc="whole models", group=group)
    return [Timing.from_bursts(samples[i], threads, batch) for i in range(len(archs))]


def validate(
    profile: HardwareProfile,
    archs: Sequence[Architecture],
    threads: int | None = None,
    batch: int = 1,
    *,
    passes: int = 8,
    target_ms: float = 48.0,
    estimator: str | None = None,
    timings: Sequence[Timing] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> FidelityReport:
    """Measure each model end to end and compare with ``profile.predict_latency``.

    ``threads`` defaults to the thread count the profile was measured with and
    ``estimator`` to the one its table used; the models are timed with the same
    harness as the table (:func:`measure_models`). Pass ``timings`` (from
    :func:`measure_models`, one per arch) to reuse measurements, e.g. to compare
    several profiles against one set of measurements.
    """
    if not archs:
        raise ValueError("validate needs at least one architecture")
    threads = int(threads if threads is not None else profile.conditions.get("threads", 1))
    estimator = estimator or profile.conditions.get("estimator", DEFAULT_ESTIMATOR)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator {estimator!r} unknown; choose one of {list(ESTIMATORS)}")
    predicted = np.array([profile.predict_latency(a, batch) for a in archs])
    if timings is None:
        timings = measure_models(archs, threads, batch, passes=passes, target_ms=target_ms, seed=seed,
                                 progress=progress)
    elif len(timings) != len(archs):
        raise ValueError(f"timings has {len(timings)} entries for {len(archs)} architectures")
    measured = np.array([t.estimate(estimator) for t in timings])
    flops = np.array([count_flops(a, batch) for a in archs], dtype=float)
    baseline, fits = flops_baseline(flops, measured)
    conditions = measure_conditions(threads, batch)
    conditions.update(estimator=estimator, passes=passes, target_ms_per_model=target_ms)
    return FidelityReport(
        profile=profile.label,
        measured_us=measured,
        predicted_us=predicted,
        flops=flops,
        baseline_us=baseline,
        measured_p90_us=np.array([t.p90_us for t in timings]),
        conditions=conditions,
        baseline_fits=fits,
    )


__all__ = [
    "Timing",
    "time_callable",
    "time_module",
    "time_round_robin",
    "op_module",
    "build_lut",
    "build_lut_detailed",
    "LUTBuild",
    "calibration_archs",
    "measure_conditions",
    "peak_flops_measured",
    "profile_cpu",
    "profile_cpu_edge",
    "profile_cpu_server",
    "expected_latency",
    "expected_latency_from_weights",
    "masked_softmax",
    "candidate_latencies",
    "flops_baseline",
    "FidelityReport",
    "measure_models",
    "validate",
    "EDGE_MEMORY_BUDGET",
    "SERVER_MEMORY_BUDGET",
    "ESTIMATORS",
    "DEFAULT_ESTIMATOR",
]
