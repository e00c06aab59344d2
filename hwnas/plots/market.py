"""Figures of the market-data part: klines, splits and the proxy's noise study (chapter 06).

Same conventions as :mod:`hwnas.plots.foundations` (data in, ``ax=None``, Axes or Figure out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .foundations import ensure_axes
from .style import COLOR_CYCLE

if TYPE_CHECKING:
    from ..proxy_study import NoiseStudy

__all__ = [
    "recent_market",
    "split_timeline",
    "seed_spread",
    "rank_agreement",
]


def recent_market(
    close: pd.Series,
    returns_bps: pd.Series,
    volatility_bps: Mapping[str, pd.Series],
    zscore: pd.Series,
    *,
    title: str = "",
    zscore_label: str = "z-score of close\n(64 bars)",
) -> Figure:
    """Four stacked time series sharing the time axis: close, returns, realised volatility, z-score.

    Each argument is indexed by time; ``volatility_bps`` maps a label (the
    window) to a series, one line each. Returns the figure.

    Taught in: notebooks/06_bybit_data.
    """
    fig, axes = plt.subplots(4, 1, figsize=(9, 7.5), sharex=True)
    axes[0].plot(close, lw=0.8)
    axes[0].set_ylabel("close (USDT)")
    axes[1].plot(returns_bps, lw=0.5)
    axes[1].set_ylabel("return (bps)")
    for label, series in volatility_bps.items():
        axes[2].plot(series, lw=0.8, label=label)
    axes[2].set_ylabel("realised vol\n(bps per bar)")
    axes[2].legend(loc="upper left", fontsize=8)
    axes[3].plot(zscore, lw=0.8)
    axes[3].axhline(0, color="grey", lw=0.5)
    axes[3].set_ylabel(zscore_label)
    axes[0].set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def split_timeline(
    close: pd.Series,
    periods: Mapping[str, tuple[Any, Any, int]],
    *,
    gaps: Sequence[tuple[Any, Any]] = (),
    warmup: tuple[Any, Any] | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Axes:
    """A price series with the shaded periods of a chronological split, its gaps and warm-up.

    ``periods`` maps a name (train, val, test) to ``(first, last, windows)``: the
    end times of its first and last window and its number of windows. ``gaps``
    are ``(start, end)`` spans drawn in red; ``warmup`` the span before the first
    window, in grey.

    Taught in: notebooks/06_bybit_data.
    """
    ax = ensure_axes(ax, figsize=(9, 3))
    ax.plot(close, lw=0.6, color="black")
    # red is the gaps' colour, so the periods skip it
    period_colours = [c for c in COLOR_CYCLE if c != "tab:red"]
    for (name, (first, last, windows)), colour in zip(periods.items(), period_colours):
        ax.axvspan(first, last, color=colour, alpha=0.25, label=f"{name}: {windows:,} windows")
    for start, end in gaps:
        ax.axvspan(start, end, color="red", alpha=0.6)
    if warmup is not None:
        ax.axvspan(*warmup, color="grey", alpha=0.3, label="warm-up (no window)")
    ax.set_ylabel("close (USDT)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return ax


_STUDY_TARGETS = ("volatility", "direction")


def seed_spread(
    study: NoiseStudy,
    summary: pd.DataFrame,
    *,
    targets: Sequence[str] = _STUDY_TARGETS,
    baselines: Mapping[str, str] | None = None,
) -> Figure:
    """One panel per target of a proxy noise study: each architecture's score over seeds.

    ``study`` is the :class:`~hwnas.proxy_study.NoiseStudy` that
    :func:`hwnas.proxy_study.noise_study` returns (or ``NoiseStudy.load`` reads);
    ``summary`` is ``study.summary()``. Per
    target, architectures are sorted by their mean proxy score (primary metric,
    validation); each shows its seed mean and range, the mean after longer
    training (red squares) and, as horizontal lines, the ``baselines`` (a name
    mapped to a line style; persistence dotted and LSTM dashed by default).
    The title carries the ICC, the ANOVA p-value and the validation-test rank
    agreement. Returns the figure.

    Taught in: notebooks/06_bybit_data.
    """
    baselines = {"persistence": ":", "lstm": "--"} if baselines is None else baselines
    fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), 4), squeeze=False)
    for ax, target in zip(axes[0], targets):
        res = study.targets[target]
        metric = res.primary
        short, long = res.table("short"), res.table("long")
        order = np.argsort(np.nanmean(short, axis=1))
        x = np.arange(len(order))
        mean = np.nanmean(short, axis=1)[order]
        lo, hi = np.nanmin(short, axis=1)[order], np.nanmax(short, axis=1)[order]
        ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], fmt="o", capsize=3,
                    label="proxy (1 epoch): mean, seed range")
        ax.plot(x, np.nanmean(long, axis=1)[order], "s", mfc="none", color="tab:red",
                label=f"{study.long_factor}x longer training: mean")
        for name, style in baselines.items():
            if name in res.baselines:
                value = res.baselines[name]["val"].get(metric, np.nan)
                if np.isfinite(value):
                    ax.axhline(value, ls=style, color="grey", label=f"baseline: {name}")
        row = summary.loc[(target, metric)]
        ax.set_title(f"{target}: {metric}\nICC {row['icc']:.2f}, p = {row['p']:.1g}, "
                     f"val~test rank {row['val_test']:+.2f}", fontsize=10)
        ax.set_xlabel("architecture (sorted by proxy score)")
        ax.set_ylabel(f"validation {metric}")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def rank_agreement(
    study: NoiseStudy,
    summary: pd.DataFrame,
    *,
    targets: Sequence[str] = _STUDY_TARGETS,
) -> Figure:
    """One panel per target of a proxy noise study: the proxy score against longer training and the test period.

    Each point is one architecture's seed mean (primary metric): on the x axis
    the short proxy on validation, on the y axis the same architecture after
    longer training (dots) and the short proxy on the test period (crosses).
    The legend carries the Spearman rank agreements of ``summary`` (see
    :func:`seed_spread` for the arguments). Returns the figure.

    Taught in: notebooks/06_bybit_data.
    """
    fig, axes = plt.subplots(1, len(targets), figsize=(4.5 * len(targets), 3.8), squeeze=False)
    for ax, target in zip(axes[0], targets):
        res = study.targets[target]
        metric = res.primary
        short, long, test = (res.seed_means(kind) for kind in ("short", "long", "short_test"))
        row = summary.loc[(target, metric)]
        ax.scatter(short, long, label=f"long training (rank {row['short_long']:+.2f})")
        ax.scatter(short, test, marker="x", label=f"test period (rank {row['val_test']:+.2f})")
        ax.set_xlabel(f"proxy {metric} (validation, seed mean)")
        ax.set_ylabel(metric)
        ax.set_title(target)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
