"""CPU profiles of this machine: the measured table wrapped as a HardwareProfile.

Taught in: notebooks/04_latency_lut.
"""

from __future__ import annotations

import os
from typing import Unpack

from ..hardware import DeviceType, HardwareProfile
from ..space import SearchSpace
from .lut import SERVER_MEMORY_BUDGET, LUTOptions, build_lut_detailed

EDGE_MEMORY_BUDGET = 10 * 1024 * 1024  # the chapter's "under 10 MB" app size: 10 MiB = 10,485,760 bytes
MOBILE_BUDGET_LIMIT = 64 * 1024**2  # a 1-thread profile under this budget is a mobile target


def runtime_suffix(options: LUTOptions) -> str:
    """``""`` for eager PyTorch, else ``"-<runtime name>"`` (it goes into profile names).

    Taught in: notebooks/04_latency_lut.
    """
    runtime = options.get("runtime", "eager")
    name = runtime if isinstance(runtime, str) else runtime.name
    return "" if name == "eager" else f"-{name}"


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
    **options: Unpack[LUTOptions],
) -> HardwareProfile:
    """A :class:`HardwareProfile` of this CPU measured for every op of ``space``.

    ``threads`` torch threads, batch ``batch``; the table holds each key's
    fastest call (the ``min`` estimator, see :mod:`hwnas.latency`; pass
    ``timing=TimingSpec.TABLE.replace(estimator="median")`` for the pooled median)
    times the calibrated scale,
    and the calibrated per-model overhead. ``options["timing"]`` (a
    :class:`~hwnas.latency.TimingSpec`, :attr:`~hwnas.latency.TimingSpec.TABLE` by
    default) says how every entry is timed and which estimator the table holds. The default name is
    ``cpu-<threads>thread-b<batch>``, with ``-<runtime>`` appended for a runtime
    other than eager PyTorch. See :func:`profile_cpu_edge` (1 thread, a phone
    app's 10 MiB budget) and :func:`profile_cpu_server` (all cores, GB budget)
    for the two standard cases. ``options`` are the named keywords of
    :func:`~hwnas.latency.build_lut_detailed` (:class:`~hwnas.latency.LUTOptions`).

    Taught in: notebooks/04_latency_lut.
    """
    build = build_lut_detailed(space, threads, batch, progress, **options)
    if device_type is None:
        mobile = threads == 1 and memory_budget_bytes <= MOBILE_BUDGET_LIMIT
        device_type = DeviceType.MOBILE if mobile else DeviceType.CPU
    return build.profile(name or f"cpu-{threads}thread-b{batch}{runtime_suffix(options)}",
                         device_type=device_type, memory_budget_bytes=memory_budget_bytes,
                         precision=precision)


def profile_cpu_edge(space: SearchSpace, batch: int = 1, progress: bool = True,
                     **options: Unpack[LUTOptions]) -> HardwareProfile:
    """The edge/mobile case: 1 thread, a 10 MiB memory budget (the chapter's app size limit).

    Named ``cpu-1thread-edge`` (``cpu-1thread-edge-<runtime>`` for another runtime).

    Taught in: notebooks/04_latency_lut.
    """
    return profile_cpu(space, threads=1, batch=batch, memory_budget_bytes=EDGE_MEMORY_BUDGET,
                       name=f"cpu-1thread-edge{runtime_suffix(options)}", progress=progress,
                       device_type=DeviceType.MOBILE, **options)


def profile_cpu_server(space: SearchSpace, batch: int = 1, progress: bool = True,
                       **options: Unpack[LUTOptions]) -> HardwareProfile:
    """The server case: every core of this machine, a 4 GiB memory budget.

    Named ``cpu-<cores>thread-server`` (plus ``-<runtime>`` for another runtime).

    Taught in: notebooks/04_latency_lut.
    """
    threads = os.cpu_count() or 1
    return profile_cpu(space, threads=threads, batch=batch, memory_budget_bytes=SERVER_MEMORY_BUDGET,
                       name=f"cpu-{threads}thread-server{runtime_suffix(options)}", progress=progress,
                       device_type=DeviceType.CPU, **options)


__all__ = [
    "EDGE_MEMORY_BUDGET",
    "MOBILE_BUDGET_LIMIT",
    "profile_cpu",
    "profile_cpu_edge",
    "profile_cpu_server",
    "runtime_suffix",
]
