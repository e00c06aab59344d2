"""Workloads of known duration for the timing tests (shared by test_latency and test_timing_spec)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["spin"]


def spin(us: float) -> Callable[[], None]:
    """A workload that busy-waits ``us`` microseconds of wall time."""
    def run() -> None:
        end = time.perf_counter_ns() + us * 1e3
        while time.perf_counter_ns() < end:
            pass
    return run
