"""Shared pytest set-up: hypothesis profiles, deterministic torch threads, the tiny proxy task,
and ``mentions``, the way tests check a message (by the fields it names, not its sentence).

The task fixtures are session-scoped: built once per process (once per xdist worker), and
read-only (``ProxyTask`` is frozen; change a recipe with ``dataclasses.replace``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, settings

import hwnas
from hwnas import ProxyTask, make_proxy_task, synthetic_klines

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True, derandomize=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

torch.set_num_threads(1)

#: Short feature windows, so that a few hundred synthetic candles give enough windows.
FEATURES: dict[str, Any] = dict(vol_windows=(4, 8), momentum_horizons=(2, 8), zscore_window=8, volume_window=8)
#: The tiny training recipe every task fixture uses (one epoch, few windows).
RECIPE: dict[str, Any] = dict(epochs=1, batch_size=64, max_train_windows=256)


@pytest.fixture(scope="session")
def features() -> dict[str, Any]:
    """The feature settings of the tiny tasks (a copy: change it freely)."""
    return dict(FEATURES)


@pytest.fixture(scope="session")
def recipe() -> dict[str, Any]:
    """The training recipe of the tiny tasks (a copy: change it freely)."""
    return dict(RECIPE)


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    """900 synthetic 15-minute candles (seed 3); copy it before changing it."""
    return synthetic_klines(900, "15", seed=3)


@pytest.fixture(scope="session")
def make_task(frame: pd.DataFrame) -> Callable[..., ProxyTask]:
    """Build the tiny volatility task on :func:`frame`, one per set of arguments (cached)."""

    @cache
    def make(lookback: int = 16) -> ProxyTask:
        return make_proxy_task(frame, "volatility", lookback=lookback, vol_window=4, feature_kwargs=FEATURES,
                               **RECIPE)

    return make


@pytest.fixture(scope="session")
def task(make_task: Callable[..., ProxyTask]) -> ProxyTask:
    """The tiny volatility task: lookback 16, four feature windows, 256 training windows."""
    return make_task()


@pytest.fixture(scope="session")
def long_task(make_task: Callable[..., ProxyTask]) -> ProxyTask:
    """The tiny task with lookback 48: room for compound scaling to grow a 16-step model's lookback."""
    return make_task(48)


def mentions_pattern(*tokens: str) -> str:
    """A regex that matches a text naming every token, in any order, each as a whole word.

    Tests check that an error or a title names the field (argument, option, value, allowed
    choices) rather than its wording, so rewording a sentence breaks no test but a message
    that stops naming its field does. Use it as ``pytest.raises(..., match=mentions(...))``
    or ``re.search(mentions(...), text)``.
    """
    if not tokens or not all(isinstance(t, str) and t for t in tokens):
        raise ValueError(f"tokens must be non-empty strings, got {tokens!r}")
    parts = []
    for token in tokens:
        pattern = re.escape(token)
        if re.match(r"\w", token):
            pattern = r"(?<![\w-])" + pattern
        if re.search(r"\w$", token):
            pattern += r"(?![\w-])"
        parts.append(f"(?=.*{pattern})")
    return "(?s)" + "".join(parts)


@pytest.fixture(scope="session")
def mentions() -> Callable[..., str]:
    """:func:`mentions_pattern`: ``mentions("batch_size", "1")`` matches "batch_size must be >= 1"."""
    return mentions_pattern


@pytest.fixture(scope="session")
def cli_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What the command-line tests feed ``hwnas``: a synthetic klines CSV and an FPGA profile
    tabulated over the fpga space (the command line's default of 10 input features)."""
    folder = tmp_path_factory.mktemp("cli")
    frame = hwnas.synthetic_klines(900, seed=1)
    csv = folder / "klines.csv"
    frame.rename_axis("timestamp").reset_index().to_csv(csv, index=False)
    space = hwnas.SearchSpace.named("fpga", input_features=10)
    profile = hwnas.fpga_profile(hwnas.ZU9EG).tabulate(space)
    return {"csv": csv, "profile": profile.save(folder / "fpga.json"), "folder": folder}
