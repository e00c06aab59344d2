"""Figures of the foundations part: the search space, FLOPs and memory (chapters 01-03),
and the conventions every figure module follows.

Each function takes data that a chapter has already computed (plain numbers,
sequences or mappings), draws it on ``ax`` (a new figure's axes when ``ax`` is
None) and returns the :class:`matplotlib.axes.Axes`, so a chapter can add a
title, a budget line or a second series. Nothing here computes a cost, samples
an architecture or runs a model: computing lives in the other modules.

Each module is a flat list of independent functions; add new figures the same
way (data in, ``ax=None`` keyword, Axes out, a "Taught in" line). A figure of
several panels returns its :class:`matplotlib.figure.Figure` instead.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .style import is_space_name, space_color

__all__ = [
    "ensure_axes",
    "power_of_ten_label",
    "png_bytes",
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
]

# One colour per series, in order; the peak / highlight colour stands apart.
_HIGHLIGHT = "tab:red"
_BASE = "tab:blue"


def ensure_axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 3.6)) -> Axes:
    """``ax`` itself, or the axes of a new figure of ``figsize`` inches (every plot helper starts here).

    Taught in: notebooks/01_search_space (the first figure).
    """
    if ax is not None:
        return ax
    _, new_ax = plt.subplots(figsize=figsize, layout="constrained")
    return new_ax


def png_bytes(draw: Callable[[Axes], Any], *, figsize: tuple[float, float] = (6.4, 3.6), dpi: int = 110) -> bytes:
    """PNG bytes of the figure ``draw(ax)`` draws, made without pyplot.

    The figure is a bare :class:`matplotlib.figure.Figure`, so writing a file
    neither changes the session's backend (a notebook keeps showing its
    figures) nor leaves a figure open.

    Taught in: notebooks/12_capstone.
    """
    figure = Figure(figsize=figsize, layout="constrained")
    draw(figure.subplots())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _format_bytes(value: float) -> str:
    """``value`` bytes with a decimal unit (B, kB, MB, GB), e.g. ``2.5 MB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} B"


_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten_label(value: float) -> str:
    """``value`` as ``10³`` when it is a positive power of ten, else as ``%g``.

    Taught in: notebooks/04_latency_lut (the noise-floor label).
    """
    exponent = float(np.log10(value)) if value > 0 else float("nan")
    if np.isfinite(exponent) and exponent == round(exponent):
        return "10" + str(int(round(exponent))).translate(_SUPERSCRIPTS)
    return f"{value:g}"


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
    ax = ensure_axes(ax)
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

    ``sizes`` maps a space's name to ``{depth: size}``; each space is drawn in its
    target's colour (:func:`~hwnas.plots.style.space_color`).

    Taught in: notebooks/01_search_space.
    """
    ax = ensure_axes(ax)
    for label, by_depth in sizes.items():
        depths = sorted(by_depth)
        ax.plot(depths, [float(by_depth[d]) for d in depths], marker="o", label=label, color=space_color(label))
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
    ax = ensure_axes(ax)
    categories: list[str] = []
    for series in counts.values():
        categories.extend(c for c in series if c not in categories)
    positions = np.arange(len(categories))
    width = 0.8 / max(len(counts), 1)
    spaces = all(is_space_name(label) for label in counts)  # search spaces keep their targets' colours
    for i, (label, series) in enumerate(counts.items()):
        values = [series.get(c, 0) for c in categories]
        bars = ax.bar(positions + (i - (len(counts) - 1) / 2) * width, values, width, label=label,
                      color=space_color(label) if spaces else None)
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
    reference: float | None = None,
    reference_label: str = "",
    ax: Axes | None = None,
) -> Axes:
    """One bar per layer; the bar at index ``highlight`` (e.g. the peak) in red.

    ``highlight_label`` is written above the highlighted bar; ``byte_units``
    writes the y ticks as B/kB/MB. ``reference`` draws a dashed grey line at
    that height (e.g. a measured peak to compare the bars with), with
    ``reference_label`` written under its right end.

    Taught in: notebooks/02_flops (FLOPs per layer), notebooks/03_memory (activation
    memory per layer).
    """
    ax = ensure_axes(ax)
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
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
        if reference_label:
            ax.annotate(reference_label, (len(heights) - 1, reference), xytext=(0, -4),
                        textcoords="offset points", ha="right", va="top", color="grey", fontsize="small")
    return ax


def parity(
    x: Sequence[float],
    y: Sequence[float],
    *,
    xlabel: str = "",
    ylabel: str = "",
    log: bool = True,
    band: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Scatter of ``y`` against ``x`` with the line ``y = x`` (perfect agreement).

    Use it to compare a prediction with a measurement (FLOP formula against
    PyTorch's counter, memory model against the measured peak, predicted against
    measured latency). ``band`` (a fraction, e.g. 0.1) shades the region within
    ±band of ``y = x``, from ``(1 - band) x`` to ``(1 + band) x``, across the
    range of ``x``.

    Taught in: notebooks/02_flops, notebooks/04_latency_lut.
    """
    ax = ensure_axes(ax, figsize=(4.2, 4.0))
    x_arr, y_arr = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ax.scatter(x_arr, y_arr, s=14, alpha=0.7)
    low = float(min(x_arr.min(), y_arr.min()))
    high = float(max(x_arr.max(), y_arr.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="y = x")
    if band is not None:
        if log:
            grid = np.geomspace(float(x_arr.min()) * 0.8, float(x_arr.max()) * 1.2, 50)
        else:
            pad = 0.1 * float(np.ptp(x_arr)) or 1.0
            grid = np.linspace(float(x_arr.min()) - pad, float(x_arr.max()) + pad, 50)
        ax.fill_between(grid, (1 - band) * grid, (1 + band) * grid, color="tab:green", alpha=0.15,
                        label=f"±{100 * band:g} %")
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
    ax = ensure_axes(ax)
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
    ax = ensure_axes(ax)
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
    ax = ensure_axes(ax, figsize=(4.8, 3.2))
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
    ax = ensure_axes(ax)
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

