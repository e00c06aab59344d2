"""Figures of the hardware part: timing one op, the lookup table, hardware targets (chapters 04-05).

Same conventions as :mod:`hwnas.plots.foundations` (data in, ``ax=None``, Axes or Figure out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .foundations import ensure_axes, parity, power_of_ten_label
from .style import space_color, target_color

__all__ = [
    "parity_panels",
    "timing_histogram",
    "latency_by_op",
    "descent_curve",
    "batch_sweep",
    "latency_vs_flops",
    "correlation_heatmap",
    "decision_budget",
    "histogram_with_limits",
    "memory_vs_width",
]


def parity_panels(
    measured: Sequence[float],
    predictions: Mapping[str, Sequence[float]],
    *,
    band: float | None = 0.1,
    xlabel: str = "measured (µs)",
    ylabel: str = "predicted (µs)",
) -> Figure:
    """Side-by-side :func:`parity` panels, one per predictor, sharing the y axis.

    ``predictions`` maps a panel's title (e.g. a predictor and its fidelity
    figures) to its predictions of ``measured``; every panel shades the ±``band``
    region (±10 % by default). Returns the figure.

    Taught in: notebooks/04_latency_lut.
    """
    fig, axes = plt.subplots(1, len(predictions), figsize=(4.8 * len(predictions), 4.2),
                             layout="constrained", sharey=True, squeeze=False)
    for ax, (title, predicted) in zip(axes[0], predictions.items()):
        parity(measured, predicted, xlabel=xlabel, ylabel=ylabel, band=band, ax=ax)
        ax.set_title(title, fontsize="medium")
    return fig


def timing_histogram(
    samples_us: Sequence[float],
    marks: Mapping[str, float],
    *,
    bins: int = 60,
    clip: float = 1.3,
    title: str = "",
    ax: Axes | None = None,
) -> Axes:
    """Histogram of the times of repeated calls, with a red vertical line per statistic.

    ``marks`` maps a statistic's name (median, p90, p99) to its value in µs; the
    lines are solid, dashed, dotted, dash-dotted in that order and the legend
    gives each value. Calls slower than ``clip`` times the 99.5th percentile are
    left off the chart, and the title says how many.

    Taught in: notebooks/04_latency_lut.
    """
    ax = ensure_axes(ax, figsize=(6.4, 3.4))
    samples = np.asarray(samples_us, dtype=float)
    upper = clip * float(np.percentile(samples, 99.5))
    ax.hist(samples[samples <= upper], bins=bins, color="tab:blue", alpha=0.8)
    for (label, value), style in zip(marks.items(), ("-", "--", ":", "-.")):
        ax.axvline(value, color="tab:red", linestyle=style, label=f"{label} {value:.1f} µs")
    ax.set_xlabel("time of one call (µs)")
    ax.set_ylabel("calls")
    off = f"{int((samples > upper).sum())} slower calls off the chart"
    ax.set_title(f"{title} ({off})" if title else off)
    ax.legend(fontsize="small")
    return ax


def latency_by_op(
    entries: pd.DataFrame,
    *,
    x: str = "flops",
    y: str = "us",
    group: str = "op",
    floor: float = 1e3,
    title: str = "",
    ax: Axes | None = None,
) -> Axes:
    """Log-log scatter of lookup-table entries: measured time against FLOPs, one colour per operation.

    ``entries`` has one row per entry with columns ``x`` (FLOPs), ``y`` (µs) and
    ``group`` (the operation); groups are drawn in sorted order. Entries under
    ``floor`` FLOPs (zero-FLOP operations included) are drawn at ``floor``, as the
    x label says. Past the ten colours of the cycle, groups change marker, so the
    thirteen operations of the default space stay apart.

    Taught in: notebooks/04_latency_lut.
    """
    ax = ensure_axes(ax, figsize=(6.8, 4.2))
    markers = "o^sD"
    for index, (op, part) in enumerate(entries.groupby(group)):
        ax.scatter(part[x].clip(lower=floor), part[y], s=12, alpha=0.7, label=str(op),
                   marker=markers[index // 10 % len(markers)])
    ax.set_xscale("log")
    ax.set_yscale("log")
    floor_text = power_of_ten_label(floor)
    ax.set_xlabel(f"FLOPs of the entry (entries under {floor_text} FLOPs drawn at {floor_text})")
    ax.set_ylabel("measured median (µs)")
    ax.set_title(title)
    ax.legend(fontsize="x-small", ncol=2)
    return ax


def descent_curve(
    history: Sequence[float],
    *,
    floor: float | None = None,
    floor_label: str = "fastest choice per layer",
    xlabel: str = "gradient step",
    ylabel: str = "E[LAT] (µs)",
    ax: Axes | None = None,
) -> Axes:
    """A loss per gradient step (e.g. the expected latency), with an optional dashed floor.

    ``floor`` is the lowest value the loss can reach (e.g. the sum of each
    layer's fastest candidate), drawn in grey with ``floor_label`` in the legend.

    Taught in: notebooks/04_latency_lut.
    """
    ax = ensure_axes(ax, figsize=(6.0, 3.2))
    ax.plot(np.asarray(history, dtype=float))
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle="--", label=floor_label)
        ax.legend(fontsize="small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


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
    ``panels``, which maps that column to the panel's title. A space takes the
    colour of its hardware target (:func:`~hwnas.plots.style.target_color`;
    ``default`` is the CPU's space). Returns the figure.

    Taught in: notebooks/05_hardware_targets.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.25 * len(panels), 3.4), layout="constrained",
                             sharex=True, squeeze=False)
    groups = list(dict.fromkeys(table[group]))
    for ax, (col, title) in zip(axes[0], panels.items()):
        for where in groups:
            part = table[table[group] == where]
            ax.scatter(part[x], part[col], s=8, alpha=0.6, color=space_color(str(where)),
                       label=f"{where} space")
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
    ax = ensure_axes(ax, figsize=(5.2, 4.2))
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
    ``fastest`` maps a target to its fastest architecture's µs (log scale), in
    the target's colour (:func:`~hwnas.plots.style.target_color`), and ``fits``
    the same target to how many architectures fit the slice, written under its
    name. Returns the figure.

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
    axes[1].barh(ypos, list(fastest.values()), color=[target_color(name) for name in fastest])
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
    ax = ensure_axes(ax, figsize=(6.4, 3.2))
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
    ax = ensure_axes(ax, figsize=(6.4, 3.2))
    for label, values in sizes.items():
        ax.plot(widths, np.asarray(values, dtype=float) / 2**20, marker="o", label=label)
    if budget is not None:
        ax.axhline(budget / 2**20, color="tab:red", ls="--", label=f"{budget / 2**20:g} MiB {budget_label}")
    ax.set(xlabel="width (channels)", ylabel="parameters + activations, MiB", yscale="log", title=title)
    ax.legend(fontsize=8)
    return ax
