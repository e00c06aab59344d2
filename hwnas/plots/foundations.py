"""The figures the chapters share.

Each function takes data that a chapter has already computed (plain numbers,
sequences or mappings), draws it on ``ax`` (a new figure's axes when ``ax`` is
None) and returns the :class:`matplotlib.axes.Axes`, so a chapter can add a
title, a budget line or a second series. Nothing here computes a cost, samples
an architecture or runs a model: computing lives in the other modules.

The module is a flat list of independent functions; add new figures the same
way (data in, ``ax=None`` keyword, Axes out, a "Taught in" line). A figure of
several panels returns its :class:`matplotlib.figure.Figure` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

if TYPE_CHECKING:
    from ..proxy_study import NoiseStudy

__all__ = [
    "bytes_formatter",
    "receptive_field_growth",
    "space_size_by_depth",
    "grouped_counts",
    "layer_bars",
    "parity",
    "flops_vs_length",
    "ratio_histogram",
    "share_bars",
    "memory_vs_batch",
    "batch_sweep",
    "latency_vs_flops",
    "correlation_heatmap",
    "decision_budget",
    "histogram_with_limits",
    "memory_vs_width",
    "recent_market",
    "split_timeline",
    "seed_spread",
    "rank_agreement",
]

# One colour per series, in order; the peak / highlight colour stands apart.
_HIGHLIGHT = "tab:red"
_BASE = "tab:blue"


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 3.6)) -> Axes:
    """``ax`` itself, or the axes of a new figure of ``figsize`` inches."""
    if ax is not None:
        return ax
    _, new_ax = plt.subplots(figsize=figsize, layout="constrained")
    return new_ax


def _format_bytes(value: float) -> str:
    """``value`` bytes with a decimal unit (B, kB, MB, GB), e.g. ``2.5 MB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} B"


def bytes_formatter() -> FuncFormatter:
    """A tick formatter that writes byte counts as B, kB, MB or GB (decimal units).

    Taught in: notebooks/03_memory.
    """
    return FuncFormatter(lambda value, _pos: _format_bytes(value))


def receptive_field_growth(
    curves: Mapping[str, Sequence[int]],
    lookback: int | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Receptive field (time steps one output sees) against the number of stacked layers.

    ``curves`` maps a label to the receptive field after 1, 2, ... layers. A
    dashed horizontal line marks ``lookback``, the whole window.

    Taught in: notebooks/01_search_space.
    """
    ax = _axes(ax)
    for label, values in curves.items():
        depth = np.arange(1, len(values) + 1)
        ax.plot(depth, values, marker="o", label=label)
    if lookback is not None:
        ax.axhline(lookback, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"lookback = {lookback}", (len(next(iter(curves.values()), [1])), lookback),
                    xytext=(0, -4), textcoords="offset points", ha="right", va="top",
                    color="grey", fontsize="small")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("layers stacked")
    ax.set_ylabel("receptive field (steps)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, which="major", alpha=0.3)
    return ax


def space_size_by_depth(
    sizes: Mapping[str, Mapping[int, float]],
    *,
    ax: Axes | None = None,
) -> Axes:
    """Number of architectures of each search space against depth, on a log scale.

    ``sizes`` maps a space's name to ``{depth: size}``.

    Taught in: notebooks/01_search_space.
    """
    ax = _axes(ax)
    for label, by_depth in sizes.items():
        depths = sorted(by_depth)
        ax.plot(depths, [float(by_depth[d]) for d in depths], marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("searchable layers (depth)")
    ax.set_ylabel("architectures")
    ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def grouped_counts(
    counts: Mapping[str, Mapping[str, int]],
    *,
    ylabel: str = "count",
    ax: Axes | None = None,
) -> Axes:
    """Grouped bar chart: one group per category, one bar per series.

    ``counts`` maps a series name (e.g. a search space) to ``{category: count}``;
    a category missing from a series counts 0. Categories keep the order in
    which they first appear.

    Taught in: notebooks/01_search_space.
    """
    ax = _axes(ax)
    categories: list[str] = []
    for series in counts.values():
        categories.extend(c for c in series if c not in categories)
    positions = np.arange(len(categories))
    width = 0.8 / max(len(counts), 1)
    for i, (label, series) in enumerate(counts.items()):
        values = [series.get(c, 0) for c in categories]
        bars = ax.bar(positions + (i - (len(counts) - 1) / 2) * width, values, width, label=label)
        ax.bar_label(bars, fontsize="x-small", padding=1)
    ax.set_xticks(positions, categories, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return ax


def layer_bars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    highlight: int | None = None,
    highlight_label: str = "peak",
    ylabel: str = "",
    byte_units: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """One bar per layer; the bar at index ``highlight`` (e.g. the peak) in red.

    ``highlight_label`` is written above the highlighted bar; ``byte_units``
    writes the y ticks as B/kB/MB.

    Taught in: notebooks/02_flops (FLOPs per layer), notebooks/03_memory (activation
    memory per layer).
    """
    ax = _axes(ax)
    labels, heights = [str(label) for label in labels], np.asarray(values, dtype=float)
    colours = [_HIGHLIGHT if i == highlight else _BASE for i in range(len(heights))]
    ax.bar(range(len(heights)), heights, color=colours)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if byte_units:
        ax.yaxis.set_major_formatter(bytes_formatter())
    if highlight is not None:
        ax.annotate(highlight_label, (highlight, heights[highlight]), xytext=(0, 3),
                    textcoords="offset points", ha="center", color=_HIGHLIGHT, fontsize="small")
    return ax


def parity(
    x: Sequence[float],
    y: Sequence[float],
    *,
    xlabel: str = "",
    ylabel: str = "",
    log: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Scatter of ``y`` against ``x`` with the line ``y = x`` (perfect agreement).

    Use it to compare a prediction with a measurement (FLOP formula against
    PyTorch's counter, memory model against the measured peak, predicted against
    measured latency).

    Taught in: notebooks/02_flops, notebooks/03_memory.
    """
    ax = _axes(ax, figsize=(4.2, 4.0))
    x_arr, y_arr = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ax.scatter(x_arr, y_arr, s=14, alpha=0.7)
    low = float(min(x_arr.min(), y_arr.min()))
    high = float(max(x_arr.max(), y_arr.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="y = x")
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return ax


def flops_vs_length(
    lengths: Sequence[int],
    curves: Mapping[str, Sequence[float]],
    *,
    crossover: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """FLOPs of one layer against sequence length, log-log, with an optional crossover.

    ``curves`` maps a label to the FLOPs at each of ``lengths``; ``crossover`` is
    the length at which two curves meet, drawn as a dotted vertical line.

    Taught in: notebooks/02_flops.
    """
    ax = _axes(ax)
    for label, values in curves.items():
        ax.plot(lengths, values, marker=".", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if crossover is not None:
        ax.axvline(crossover, color="grey", linestyle=":", linewidth=1.2)
        # x in data coordinates, y as a fraction of the axes height
        ax.annotate(f"crossover n = {crossover:g}", (crossover, 0.03),
                    xycoords=ax.get_xaxis_transform(), xytext=(4, 0),
                    textcoords="offset points", color="grey", fontsize="small")
    ax.set_xlabel("sequence length n (steps)")
    ax.set_ylabel("FLOPs per sequence")
    ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def ratio_histogram(
    groups: Mapping[str, Sequence[float]],
    *,
    bins: int | Sequence[float] = 20,
    xlabel: str = "ratio",
    reference: float | None = 1.0,
    ax: Axes | None = None,
) -> Axes:
    """Overlaid histograms of a ratio, one per group, with a reference line.

    ``groups`` maps a label to its ratios; empty groups are skipped. The dashed
    line at ``reference`` (1.0 by default) marks agreement.

    Taught in: notebooks/03_memory.
    """
    ax = _axes(ax)
    edges = np.histogram_bin_edges(
        np.concatenate([np.asarray(v, dtype=float) for v in groups.values() if len(v)]), bins=bins
    )
    for label, values in groups.items():
        if len(values):
            ax.hist(values, bins=list(edges), alpha=0.6, label=f"{label} ({len(values)})")
    if reference is not None:
        ax.axvline(reference, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("architectures")
    ax.legend(fontsize="small")
    return ax


def share_bars(
    shares: Mapping[str, float],
    *,
    ylabel: str = "share",
    ax: Axes | None = None,
) -> Axes:
    """Bars of fractions in [0, 1], labelled as percentages.

    Taught in: notebooks/03_memory.
    """
    ax = _axes(ax, figsize=(4.8, 3.2))
    labels = list(shares)
    bars = ax.bar(labels, [shares[k] for k in labels], color=_BASE)
    ax.bar_label(bars, labels=[f"{100 * shares[k]:.0f} %" for k in labels], padding=2)
    ax.set_ylim(0, 1.1)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{100 * v:.0f} %"))
    ax.set_ylabel(ylabel)
    return ax


def memory_vs_batch(
    batch_sizes: Sequence[int],
    curves: Mapping[str, Sequence[float]],
    *,
    budget: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Memory in bytes against batch size, log-log, with an optional budget line.

    Taught in: notebooks/03_memory.
    """
    ax = _axes(ax)
    for label, values in curves.items():
        ax.plot(batch_sizes, values, marker=".", label=label)
    if budget is not None:
        ax.axhline(budget, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"budget {_format_bytes(budget)}", (batch_sizes[-1], budget), xytext=(0, -4),
                    textcoords="offset points", ha="right", va="top", fontsize="small")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(bytes_formatter())
    ax.set_xlabel("batch size")
    ax.set_ylabel("memory")
    ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    return ax


# Colours in the order a figure's series, periods or groups take them.
_CYCLE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def batch_sweep(
    batches: Sequence[int],
    totals: Mapping[str, Sequence[float]],
    *,
    styles: Mapping[str, str] | None = None,
    title: str = "whole batch",
    floor: float | None = None,
    floor_label: str = "",
    bottom: float | None = None,
) -> Figure:
    """Latency of one call against batch size, log-log: per call (left), per sample (right).

    ``totals`` maps a label (a card, precision, width) to the latency in µs of
    one call at each of ``batches``; the right panel divides it by the batch.
    ``styles`` maps a label to a line style (solid by default). ``floor`` draws a
    dotted line on the left panel (e.g. the launch overheads) with
    ``floor_label`` written just below it; ``bottom`` is the left panel's lower
    y limit. Returns the figure.

    Taught in: notebooks/05_hardware_targets.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    batch = np.asarray(batches)
    for label, total in totals.items():
        style = (styles or {}).get(label, "-")
        axes[0].loglog(batch, total, style, label=label)
        axes[1].loglog(batch, np.asarray(total, dtype=float) / batch, style, label=label)
    axes[0].set(xlabel="batch size", ylabel="µs per call (model estimate)", title=title)
    axes[1].set(xlabel="batch size", ylabel="µs per sample (model estimate)", title="per sample")
    if floor is not None:
        axes[0].axhline(floor, color="grey", ls=":", lw=1)
        axes[0].text(1.2 * float(batch[0]), 0.875 * floor, floor_label, color="grey", fontsize=8)
    if bottom is not None:
        axes[0].set_ylim(bottom=bottom)
    axes[1].legend(fontsize=8)
    return fig


def latency_vs_flops(
    table: pd.DataFrame,
    panels: Mapping[str, str],
    *,
    x: str = "MFLOPs",
    group: str = "space",
    xlabel: str = "MFLOPs (batch 1)",
    ylabel: str = "µs",
) -> Figure:
    """One log-log scatter panel per target: latency against FLOPs, coloured by search space.

    ``table`` has one row per architecture, a column ``x`` (FLOPs), a column
    ``group`` (the space it was sampled from) and one latency column per key of
    ``panels``, which maps that column to the panel's title. Returns the figure.

    Taught in: notebooks/05_hardware_targets.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.25 * len(panels), 3.4), layout="constrained",
                             sharex=True, squeeze=False)
    groups = list(dict.fromkeys(table[group]))
    for ax, (col, title) in zip(axes[0], panels.items()):
        for where, colour in zip(groups, _CYCLE):
            part = table[table[group] == where]
            ax.scatter(part[x], part[col], s=8, alpha=0.6, color=colour, label=f"{where} space")
        ax.set(xscale="log", yscale="log", title=title, xlabel=xlabel)
        ax.title.set_fontsize(9)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8)
    return fig


def correlation_heatmap(
    matrix: pd.DataFrame,
    *,
    title: str = "",
    label: str = "Spearman ρ",
    ax: Axes | None = None,
) -> Axes:
    """A correlation matrix as a heat map in [-1, 1], each cell written to two decimals.

    ``matrix`` is a square DataFrame whose index and columns name the variables;
    ``label`` names the colour bar.

    Taught in: notebooks/05_hardware_targets.
    """
    ax = _axes(ax, figsize=(5.2, 4.2))
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(values.shape[1]), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(values.shape[0]), matrix.index)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_title(title, fontsize=9)
    return ax


def decision_budget(
    budget: Mapping[str, float],
    fastest: Mapping[str, float],
    fits: Mapping[str, int],
    *,
    slice_part: str = "model inference",
    title: str = "market-making decision budget",
) -> Figure:
    """A time budget split into parts (left) and the fastest latency per target against one part (right).

    ``budget`` maps each part of the decision (in order) to its µs; the part
    ``slice_part`` is the model's slice, drawn as a dashed line on the right.
    ``fastest`` maps a target to its fastest architecture's µs (log scale) and
    ``fits`` the same target to how many architectures fit the slice, written
    under its name. Returns the figure.

    Taught in: notebooks/05_hardware_targets.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1.3]})
    part_colours = ("tab:grey", "tab:green", "tab:purple", "tab:brown", "tab:pink")
    left, total, slice_colour = 0.0, float(sum(budget.values())), "tab:green"
    for (part, us), colour in zip(budget.items(), part_colours):
        axes[0].barh(0, us, left=left, color=colour)
        axes[0].text(left + us / 2, 0, f"{part}\n{us:g} µs", ha="center", va="center", color="white",
                     fontsize=9)
        if part == slice_part:
            slice_colour = colour
        left += us
    axes[0].set(xlim=(0, total), yticks=[], xlabel="µs from tick to order", title=f"{title} ({total:g} µs)")
    slice_us = budget[slice_part]
    ypos = np.arange(len(fastest))
    target_colours = ("tab:blue", "tab:red", "tab:orange", "tab:purple", "tab:brown")
    axes[1].barh(ypos, list(fastest.values()),
                 color=[target_colours[i % len(target_colours)] for i in range(len(fastest))])
    axes[1].axvline(slice_us, color=slice_colour, ls="--", label=f"{slice_us:g} µs model slice")
    axes[1].set(xscale="log", yticks=ypos, yticklabels=[f"{k}\n{fits[k]} fit" for k in fastest],
                xlabel="fastest architecture, µs (log)", title="who can meet the model slice?")
    axes[1].legend(fontsize=8)
    return fig


def histogram_with_limits(
    values: Sequence[float],
    limits: Mapping[str, float],
    *,
    bins: int | Sequence[float] = 40,
    xlabel: str = "",
    ylabel: str = "architectures",
    title: str = "",
    ax: Axes | None = None,
) -> Axes:
    """A histogram of ``values`` with one dashed vertical line per limit (e.g. a chip's resources).

    ``limits`` maps a legend label to the limit's value; lines take red, green, ...

    Taught in: notebooks/05_hardware_targets.
    """
    ax = _axes(ax, figsize=(6.4, 3.2))
    ax.hist(np.asarray(values, dtype=float), bins=bins, color="tab:orange")
    for (label, limit), colour in zip(limits.items(), ("tab:red", "tab:green", "tab:purple", "tab:brown")):
        ax.axvline(limit, color=colour, ls="--", label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return ax


def memory_vs_width(
    widths: Sequence[int],
    sizes: Mapping[str, Sequence[float]],
    *,
    budget: float | None = None,
    budget_label: str = "app budget",
    title: str = "",
    ax: Axes | None = None,
) -> Axes:
    """Memory in MiB (log scale) against layer width, one line per precision, with a budget line.

    ``sizes`` maps a label (a precision) to bytes at each of ``widths``;
    ``budget`` is in bytes. (For memory against batch size on log-log axes see
    :func:`memory_vs_batch`.)

    Taught in: notebooks/05_hardware_targets.
    """
    ax = _axes(ax, figsize=(6.4, 3.2))
    for label, values in sizes.items():
        ax.plot(widths, np.asarray(values, dtype=float) / 2**20, marker="o", label=label)
    if budget is not None:
        ax.axhline(budget / 2**20, color="tab:red", ls="--", label=f"{budget / 2**20:g} MiB {budget_label}")
    ax.set(xlabel="width (channels)", ylabel="parameters + activations, MiB", yscale="log", title=title)
    ax.legend(fontsize=8)
    return ax


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
    ax = _axes(ax, figsize=(9, 3))
    ax.plot(close, lw=0.6, color="black")
    # red is the gaps' colour, so the periods skip it
    period_colours = [c for c in _CYCLE if c != "tab:red"]
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
