"""Building the lookup table: every distinct op of a space timed in context, calibrated.

Taught in: notebooks/04_latency_lut.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import numpy as np
import torch
from scipy import stats

from ..architecture import Architecture
from ..hardware import DeviceType, HardwareProfile
from ..model import build_model
from ..opspec import OpSpec, arch_op_specs, space_op_specs
from ..runtime import Runtime, get_runtime
from ..space import SearchSpace
from .ops import op_module
from .spec import Estimator, TimingSpec, check_estimator
from .timing import (
    Item,
    Timing,
    load_average,
    measure_conditions,
    peak_flops_measured,
    run_passes,
)

SERVER_MEMORY_BUDGET = 4 * 1024**3  # a few GB for a server process
PER_CALL_KEY = ("per_call", 0)  # the runtime's empty call, timed in the same passes as the table


class LUTOptions(TypedDict, total=False):
    """The keyword options of :func:`build_lut_detailed`, named once for the functions
    that pass them on (:func:`build_lut`, :func:`~hwnas.latency.profile_cpu`, ...).

    Taught in: notebooks/04_latency_lut.
    """

    timing: TimingSpec
    specs: Sequence[OpSpec] | None
    branches: bool
    calibration: int
    model_weight: float
    validation: Sequence[Architecture]
    runtime: str | Runtime


def calibration_archs(space: SearchSpace, n: int = 16, seed: int = 12345) -> list[Architecture]:
    """``n`` architectures of ``space`` used to calibrate the per-model overhead.

    Taught in: notebooks/04_latency_lut.
    """
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def model_callable(arch: Architecture, batch: int, seed: int, runtime: Runtime) -> Callable[[], Any]:
    """One inference of ``arch``'s model (weights from ``seed``) on a random batch, in ``runtime``.

    Taught in: notebooks/04_latency_lut.
    """
    model = build_model(arch, seed=seed)
    x = torch.randn(batch, arch.input_features, arch.lookback)
    return runtime.prepare(model, (x,))


def whole_or_branches(timings: dict[OpSpec, Timing], key: OpSpec, estimator: Estimator | str) -> float:
    """Estimate of ``key`` from timings, composing a skip layer from its branches if needed.

    Taught in: notebooks/04_latency_lut.
    """
    if key in timings:
        return timings[key].estimate(estimator)
    return sum(timings[p].estimate(estimator) for p in key.branches())


@dataclass
class LUTBuild:
    """What :func:`build_lut_detailed` measured: per-key timings, the calibration
    models' end-to-end timings, the conditions and the build time.

    One build serves several estimators (median, best pass median, min):
    :meth:`table` and :meth:`profile` derive the table and the calibrated
    per-model overhead for any of them.

    Taught in: notebooks/04_latency_lut.
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
    per_call_us: float = 0.0

    @property
    def timing(self) -> TimingSpec:
        """The :class:`TimingSpec` the build was measured with (from its conditions)."""
        return TimingSpec.from_conditions(self.conditions)

    def _estimator(self, estimator: Estimator | str | None) -> Estimator:
        """``estimator``, or the one the build's spec names when None."""
        return check_estimator(estimator) if estimator is not None else self.timing.estimator

    def _calibration_sums(self, estimator: Estimator | str) -> tuple[np.ndarray, np.ndarray]:
        """Per calibration model: the sum of its table entries and its measured µs."""
        sums = [sum(whole_or_branches(self.timings, k, estimator) for k in arch_op_specs(arch, self.batch))
                for arch in self.calibration]
        measured = [t.estimate(estimator) for t in self.calibration_timings]
        return np.asarray(sums, dtype=float), np.asarray(measured, dtype=float)

    def overhead_diffs(self, estimator: Estimator | str | None = None) -> np.ndarray:
        """Per calibration model: measured minus the sum of its table entries (µs)."""
        sums, measured = self._calibration_sums(self._estimator(estimator))
        return measured - sums

    def calibration_fit(self, estimator: Estimator | str | None = None) -> tuple[float, float]:
        """``(overhead_us, scale)`` of ``measured = overhead + scale * sum of entries``.

        Fitted on the calibration models only (never on models used to judge the
        table), robustly (Theil-Sen). The scale absorbs what isolated timings miss
        in proportion to the work (caches shared by the layers of one model);
        a negative overhead is not physical, so then the line goes through the
        origin (scale = median ratio). With fewer than 3 models: scale 1 and
        the median difference as overhead.
        """
        sums, measured = self._calibration_sums(self._estimator(estimator))
        if sums.size == 0:
            return 0.0, 1.0
        if sums.size < 3:
            return max(float(np.median(measured - sums)), 0.0), 1.0
        scale, overhead = stats.theilslopes(measured, sums)[:2]
        if overhead < 0 or scale <= 0:
            return 0.0, float(np.median(measured / sums))
        return float(overhead), float(scale)

    def overhead_us(self, estimator: Estimator | str | None = None) -> float:
        """The calibrated per-model overhead (µs), see :meth:`calibration_fit`."""
        return self.calibration_fit(estimator)[0]

    def table(self, estimator: Estimator | str | None = None) -> dict[OpSpec, float]:
        """Calibrated µs per key (entries times the scale) plus the overhead entry."""
        chosen = self._estimator(estimator)
        overhead, scale = self.calibration_fit(chosen)
        out = {k: scale * t.estimate(chosen) for k, t in self.timings.items()}
        if self.calibration:
            out[OpSpec.overhead(self.batch)] = overhead
        return out

    def lut(self, estimator: Estimator | str | None = None) -> dict[OpSpec, Timing]:
        """The timings plus an overhead :class:`Timing` (the calibration differences)."""
        out = dict(self.timings)
        if self.calibration:
            diffs = np.maximum(self.overhead_diffs(estimator), 0.0)
            out[OpSpec.overhead(self.batch)] = Timing.from_samples(diffs, self.threads, self.batch)
        return out

    def profile(
        self,
        name: str | None = None,
        estimator: Estimator | str | None = None,
        *,
        device_type: DeviceType | str = DeviceType.CPU,
        memory_budget_bytes: int = SERVER_MEMORY_BUDGET,
        peak_flops: float | None = None,
        precision: str = "fp32",
    ) -> HardwareProfile:
        """A measured, sequential-branch :class:`HardwareProfile` from this build.

        ``estimator`` (default: the build's spec's) picks the table's statistic;
        the profile's conditions record the spec with that estimator.
        """
        chosen = self._estimator(estimator)
        diffs = self.overhead_diffs(chosen)
        conditions = dict(self.conditions, **self.timing.replace(estimator=chosen).record())
        if diffs.size:
            overhead, scale = self.calibration_fit(chosen)
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
            device_type=DeviceType(getattr(device_type, "value", device_type)),
            latency_table=self.table(chosen),
            memory_budget_bytes=memory_budget_bytes,
            peak_flops=flops,
            parallel_branches=False,
            precision=precision,
            conditions=conditions,
            is_model=False,
        )


def per_call_callable(runtime: Runtime) -> Callable[[], Any] | None:
    """The runtime's empty call (its ``null_callable``), or None when it has none.

    A runtime whose every call pays a fixed cost (ONNX Runtime's session run:
    binding inputs, allocating outputs) charges it to each isolated table entry,
    yet a whole model pays it once; eager PyTorch pays its per-layer dispatch
    inside the model too, so it offers no null callable and nothing is taken off.

    Taught in: notebooks/11_deployment.
    """
    null = getattr(runtime, "null_callable", None)
    return null() if callable(null) else None


def without_per_call(bursts: Sequence[Sequence[float]], per_call_us: float) -> list[list[float]]:
    """Per-call samples (µs) with the runtime's fixed per-call cost taken off, floored at 0.

    Taught in: notebooks/11_deployment.
    """
    return [[max(v - per_call_us, 0.0) for v in burst] for burst in bursts]


def _table_keys(space: SearchSpace, specs: Sequence[OpSpec] | None, calib: Sequence[Architecture],
                batch: int, branches: bool) -> list[OpSpec]:
    """Every key of ``space`` (or the given ``specs``, plus what the calibration models need)."""
    if specs is None:
        return space_op_specs(space, batch, branches=branches)
    wanted = set(specs)
    for arch in calib:
        for key in arch_op_specs(arch, batch):
            if key.use_skip and branches:
                wanted.update(key.branches())
            else:
                wanted.add(key)
    return sorted(wanted, key=OpSpec.sort_key)


def build_lut_detailed(
    space: SearchSpace,
    threads: int = 1,
    batch: int = 1,
    progress: bool = True,
    *,
    timing: TimingSpec = TimingSpec.TABLE,
    specs: Sequence[OpSpec] | None = None,
    branches: bool = False,
    calibration: int = 128,
    model_weight: float = 4.0,
    validation: Sequence[Architecture] = (),
    runtime: str | Runtime = "eager",
) -> LUTBuild:
    """:func:`build_lut` with its calibration data, conditions and build time.

    ``timing`` (a :class:`TimingSpec`, :attr:`TimingSpec.TABLE` by default) says
    how: every key gets about ``timing.target_ms`` of timed calls spread over
    ``timing.passes`` shuffled passes (round-robin groups of ``timing.group``
    different ops), whole models ``model_weight`` times as much; ``timing.seed``
    seeds the modules' weights, the shuffle and the draw of the ``calibration``
    models of the space that calibrate the per-model overhead. The conditions
    record the spec (``conditions["timing"]``). ``validation``:
    architectures whose whole models are timed *inside the same passes* as the
    table (never used to fill it), so a fidelity check compares prediction and
    measurement made under the same machine conditions; their timings are in
    ``LUTBuild.validation_timings`` for :func:`validate`. ``build_seconds`` in the
    conditions counts the table and calibration only (the validation models'
    share of the passes is reported apart, as ``validation_seconds``).
    ``runtime`` (a name such as ``"eager"`` or ``"onnxruntime"``, or a
    :class:`~hwnas.runtime.Runtime`) runs every timed op and model. When the
    runtime has a ``null_callable`` (ONNX Runtime does), that empty call is timed
    in the same passes and its fastest call is taken off every entry's samples
    before the calibration (:func:`without_per_call`; the amount is
    ``per_call_us_subtracted`` in the conditions): each isolated entry paid the
    runtime's fixed per-call cost once, a whole model pays it once in all.

    Taught in: notebooks/04_latency_lut.
    """
    seed = timing.seed
    rt = get_runtime(runtime, threads)
    start = time.perf_counter()
    calib = calibration_archs(space, calibration, seed=12345 + seed) if calibration else []
    keys = _table_keys(space, specs, calib, batch, branches)
    conditions = measure_conditions(threads, batch, rt)
    items: list[Item] = []
    for key in keys:
        if key.batch != batch:
            raise ValueError(f"OpSpec {key.label()} has batch {key.batch}, the LUT is built at batch {batch}")
        module, inputs = op_module(key, seed=seed)
        items.append((key, rt.prepare(module, inputs)))
    for i, arch in enumerate(calib):
        items.append((("calibration", i), model_callable(arch, batch, seed, rt), model_weight))
    for i, arch in enumerate(validation):
        items.append((("validation", i), model_callable(arch, batch, seed, rt), model_weight))
    null = per_call_callable(rt)
    if null is not None:
        items.append((PER_CALL_KEY, null, model_weight))
    samples, spent = run_passes(
        items, timing=timing, threads=threads, progress=progress,
        desc=(f"timing {len(keys):,} layer settings and {len(calib) + len(validation)} models of "
              f"{space.name}, {timing.passes} passes ({threads} thr, batch {batch}, {rt.name})"),
    )
    # The fastest empty call is the fixed cost every isolated entry paid once and
    # a whole model pays once too: off every entry, into the calibrated overhead.
    per_call_us = Timing.from_bursts(samples[PER_CALL_KEY], threads, batch).min_us if null is not None else 0.0
    timings = {key: Timing.from_bursts(without_per_call(samples[key], per_call_us), threads, batch)
               for key in keys}
    calibration_timings = [Timing.from_bursts(samples[("calibration", i)], threads, batch)
                           for i in range(len(calib))]
    validation_timings = [Timing.from_bursts(samples[("validation", i)], threads, batch)
                          for i in range(len(validation))]
    validation_seconds = sum(spent.get(("validation", i), 0.0) for i in range(len(validation)))
    seconds = time.perf_counter() - start - validation_seconds
    conditions.update(
        space=space.name,
        distinct_opspecs=len(keys),
        **timing.record(),
        calibration_archs=len(calib),
        per_call_us_subtracted=round(per_call_us, 3),
        build_seconds=round(seconds, 1),
        validation_seconds=round(validation_seconds, 1),
        load_avg_1min_end=load_average(),
    )
    return LUTBuild(timings, calib, calibration_timings, conditions, seconds, threads, batch,
                    list(validation), validation_timings, per_call_us)


def build_lut(
    space: SearchSpace,
    threads: int = 1,
    batch: int = 1,
    progress: bool = True,
    **options: Unpack[LUTOptions],
) -> dict[OpSpec, Timing]:
    """Measure every distinct :class:`OpSpec` of ``space`` on this machine.

    Returns a :class:`Timing` per key (layers, the stem and heads), plus the
    per-model overhead under ``OpSpec.overhead(batch)`` (calibrated on
    ``calibration`` models of the space; its Timing summarises the per-model
    differences). ``options`` are the named keywords of :func:`build_lut_detailed`
    (:class:`LUTOptions`): ``timing`` (a :class:`TimingSpec`), ``branches`` (also
    time skip branches separately), ``specs`` (time these keys only), ``runtime``, ...

    Taught in: notebooks/04_latency_lut.
    """
    build = build_lut_detailed(space, threads, batch, progress, **options)
    return build.lut()


__all__ = [
    "LUTBuild",
    "LUTOptions",
    "SERVER_MEMORY_BUDGET",
    "build_lut",
    "build_lut_detailed",
    "calibration_archs",
    "model_callable",
    "per_call_callable",
    "whole_or_branches",
    "without_per_call",
]
