"""Helpers shared by several test files: a workload of known duration, the command line in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["ROOT", "hwnas_cli", "spin"]

ROOT = Path(__file__).resolve().parents[1]


def spin(us: float) -> Callable[[], None]:
    """A workload that busy-waits ``us`` microseconds of wall time."""
    def run() -> None:
        end = time.perf_counter_ns() + us * 1e3
        while time.perf_counter_ns() < end:
            pass
    return run


def hwnas_cli(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``python -m hwnas ARGS`` offline in the repository root, its output captured."""
    full = dict(os.environ, HWNAS_OFFLINE="1", MPLBACKEND="Agg", **(env or {}))
    return subprocess.run([sys.executable, "-m", "hwnas", *args], capture_output=True, text=True, cwd=ROOT,
                          env=full, timeout=600, **kwargs)  # type: ignore[call-overload]
