"""Entries a profile lacks, measured on demand and added to it.

Taught in: notebooks/04_latency_lut.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..architecture import Architecture
from ..hardware import HardwareProfile
from ..opspec import OpSpec
from ..runtime import Runtime
from ..space import SearchSpace
from .lut import build_lut_detailed
from .spec import TimingSpec


def missing_keys(profile: HardwareProfile, archs: Iterable[Architecture], batch: int = 1) -> list[OpSpec]:
    """The distinct keys of ``archs`` that ``profile`` cannot price, sorted.

    Taught in: notebooks/04_latency_lut.
    """
    keys = {key for arch in archs for key in profile.missing(arch, batch)}
    return sorted(keys, key=OpSpec.sort_key)


def extend_profile(
    profile: HardwareProfile,
    archs: Iterable[Architecture],
    batch: int = 1,
    *,
    timing: TimingSpec | None = None,
    progress: bool = False,
    in_place: bool = False,
    runtime: str | Runtime = "eager",
) -> HardwareProfile:
    """``profile`` with the entries ``archs`` need and it lacks, timed on this machine now.

    The missing keys (:func:`missing_keys`) are timed like the table's
    (:func:`~hwnas.latency.build_lut_detailed` with ``specs=``, the profile's
    thread count, no new calibration) and multiplied by the profile's calibrated
    scale, so they sit on the same footing as the old entries. ``timing``
    defaults to the spec the profile was measured with
    (:meth:`TimingSpec.from_conditions`); a shorter one (:attr:`TimingSpec.QUICK`)
    suits keys added during a search. Its estimator is always the profile's (the
    new entries must be the same statistic as the old); ``conditions["extended"]``
    records how many were added and how.
    A copy unless ``in_place``; nothing is measured (and ``profile`` itself is
    returned) when nothing is missing. Measure on the machine and in the
    ``runtime`` the profile was made with.

    Taught in: notebooks/04_latency_lut.
    """
    archs = list(archs)
    keys = missing_keys(profile, archs, batch)
    if not keys:
        return profile
    if profile.is_model:
        raise ValueError(f"{profile.label} is an analytical model without a latency_model for "
                         f"{len(keys)} key(s): rebuild it and tabulate() it for the space instead")
    threads = int(profile.conditions.get("threads", 1))
    recorded = TimingSpec.from_conditions(profile.conditions)
    spec = (timing or recorded).replace(estimator=recorded.estimator)
    scale = float(profile.conditions.get("overhead_calibration", {}).get("scale", 1.0))
    space = SearchSpace.default(input_features=archs[0].input_features)  # its name only: no calibration
    build = build_lut_detailed(space, threads, batch, progress, timing=spec, specs=keys, calibration=0,
                               runtime=runtime)
    new = {key: scale * build.timings[key].estimate(spec.estimator) for key in keys}
    record = dict(profile.conditions.get("extended", {}))
    record.update(keys=int(record.get("keys", 0)) + len(new), **spec.record(),
                  scale=scale, load_avg_1min=build.conditions.get("load_avg_1min_end"))
    if in_place:
        profile.latency_table.update(new)
        profile.conditions["extended"] = record
        return profile
    return replace(profile, latency_table={**profile.latency_table, **new},
                   conditions={**profile.conditions, "extended": record})


__all__ = ["extend_profile", "missing_keys"]
