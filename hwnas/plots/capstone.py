"""Capstone figures: the chosen models per target against the baselines.

Taught in: notebooks/12_capstone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import FancyBboxPatch

from .foundations import ensure_axes
from .style import strategy_color, target_color

if TYPE_CHECKING:
    from ..architecture import Architecture
    from ..search.result import SearchResult

__all__ = ["search_front", "architecture_blocks", "score_vs_latency", "walk_forward_lines", "tail_calibration",
           "fold_differences"]

_OP_COLOURS = {"conv": "#1f77b4", "dwsep_conv": "#17becf", "dilated_conv": "#9467bd", "fc": "#8c564b",
               "attention": "#d62728", "identity": "#c7c7c7", "max_pool": "#bcbd22", "avg_pool": "#bcbd22",
               "gru": "#2ca02c", "lstm": "#98df8a", "gated_tcn": "#ff7f0e"}
# Short names that fit inside a layer's box; the figure's title spells them out.
_OP_SHORT = {"conv": "conv", "dwsep_conv": "dws", "dilated_conv": "dil", "fc": "fc", "attention": "attn",
             "identity": "id", "max_pool": "max", "avg_pool": "avg", "gru": "gru", "lstm": "lstm",
             "gated_tcn": "gtcn"}


def search_front(result: SearchResult, *, budget_us: float | None = None, chosen: Architecture | None = None,
                 title: str = "", budget_label: str | None = None, ax: Axes | None = None) -> Axes:
    """Every trained candidate (validation score against predicted latency), the front, the budget, the choice.

    ``budget_us`` defaults to the search problem's latency budget; front members
    over the budget (a soft-constraint search) are crossed in red and counted in
    the legend. A 2-objective front (score, latency) is drawn as its step line; a
    front over more objectives (memory too) as ringed points only, since its 2-D
    projection is not a staircase: some of its members are dominated on the plot.
    A long title is wrapped to the axes' width.

    Taught in: notebooks/12_capstone.
    """
    ax = ensure_axes(ax)
    trained = [s.metrics for s in result.history if s.metrics.feasible and math.isfinite(s.metrics.score)]
    colour = strategy_color(result.run.strategy)
    ax.scatter([m.latency_us for m in trained], [m.score for m in trained], s=14, color=colour, alpha=0.45,
               label=f"{len(trained)} trained candidates")
    front = sorted(((m.latency_us, m.score) for _, m in result), key=lambda p: p[0])
    objectives = 3 if getattr(result.problem, "memory_budget_bytes", None) else 2  # memory: a third objective
    if front and objectives == 2:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color=colour, label="front")
    elif front:
        ax.scatter([p[0] for p in front], [p[1] for p in front], s=60, facecolors="none", edgecolors=colour,
                   linewidths=1.5, zorder=3, label=f"front over {objectives} objectives (2-D projection)")
    over = [member.metrics for member in result if member.over_budget]
    if over:
        ax.scatter([m.latency_us for m in over], [m.score for m in over], marker="x", s=70, color="tab:red",
                   zorder=4, label=f"{len(over)} of {len(result)} on the front OVER BUDGET")
    if budget_us is None:
        budget_us = result.problem.latency_budget_us
    if chosen is not None:
        picked = [s.metrics for s in result.history if s.arch == chosen][:1]
        for m in picked:
            ax.scatter([m.latency_us], [m.score], marker="*", s=180, color="black", zorder=3, label="chosen")
    if budget_us is not None:
        ax.axvline(budget_us, color="tab:red", linestyle="--", label=budget_label or f"budget {budget_us:.3g} µs")
    ax.set_xlabel("predicted latency (µs)")
    ax.set_ylabel("validation score (proxy)")
    ax.set_title(_wrapped(title, ax), fontsize="medium")
    ax.legend(fontsize="small")
    return ax


def _wrapped(title: str, ax: Axes) -> str:
    """``title`` broken into lines that fit the axes' width (about 0.55 em per character)."""
    import textwrap

    width_in = ax.get_figure().get_size_inches()[0] * ax.get_position().width  # type: ignore[union-attr]
    chars = max(20, int(width_in * 72 / (0.55 * 10)))
    return "\n".join(textwrap.wrap(title, chars)) if title else title


def architecture_blocks(archs: Mapping[str, Architecture], *, ax: Axes | None = None) -> Axes:
    """One row of boxes per architecture: each layer's operation, kernel and width; skips marked.

    Taught in: notebooks/12_capstone.
    """
    width = max(len(a.layers) for a in archs.values()) * 1.1 + 3.2
    # about 0.8 inch per box, so a box's two short lines of text fit inside it at 8 pt
    ax = ensure_axes(ax, figsize=(max(6.0, 0.8 * (width + 1.6)), 0.9 + 0.9 * len(archs)))
    for row, (name, arch) in enumerate(archs.items()):
        y = len(archs) - 1 - row
        for i, layer in enumerate(arch.layers):
            op = layer.op.value
            box = FancyBboxPatch((i * 1.1, y - 0.35), 1.0, 0.7, boxstyle="round,pad=0.02",
                                 facecolor=_OP_COLOURS.get(op, "#7f7f7f"), alpha=0.8,
                                 edgecolor="black" if layer.use_skip else "none", linewidth=1.5)
            ax.add_patch(box)
            kernel = f"{layer.kernel_size}" if layer.kernel_size > 1 else ""
            ax.text(i * 1.1 + 0.5, y, f"{_OP_SHORT.get(op, op)}{kernel}\n{layer.out_channels}", ha="center",
                    va="center", fontsize=8)
        ax.text(len(arch.layers) * 1.1 + 0.1, y, f"{arch.head.value} head\nL={arch.lookback}", va="center",
                fontsize=8)
        ax.text(-0.2, y, name, ha="right", va="center", color=target_color(name), fontweight="bold")
    ax.set_xlim(-1.6, width)
    ax.set_ylim(-0.6, len(archs) - 0.4)
    ax.set_axis_off()
    legend = ", ".join(f"{short} = {op}" for op, short in _OP_SHORT.items() if short != op)
    ax.set_title("chosen architectures: each box a layer (operation and kernel, output width);\n"
                 f"black edge: skip connection; {legend}", fontsize="small")
    return ax


def score_vs_latency(points: Sequence[Mapping[str, Any]], *, xlabel: str = "measured latency (µs)",
                     ax: Axes | None = None) -> Axes:
    """Test score against latency: one marker per model (``name``, ``latency_us``, ``score``, ``kind``).

    ``kind`` is a target name (coloured by :func:`~hwnas.plots.style.target_color`)
    or ``"baseline"`` (drawn as squares).

    Taught in: notebooks/12_capstone.
    """
    ax = ensure_axes(ax)
    for point in points:
        baseline = point.get("kind") == "baseline"
        colour = strategy_color("baseline") if baseline else target_color(str(point.get("kind", "")))
        ax.scatter([point["latency_us"]], [point["score"]], marker="s" if baseline else "o", s=50,
                   color=colour, zorder=3)
        ax.annotate(str(point["name"]), (point["latency_us"], point["score"]), xytext=(4, 4),
                    textcoords="offset points", fontsize="small")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test score (held out)")
    return ax


def walk_forward_lines(scores: Mapping[str, Sequence[float]], periods: Sequence[str], *,
                       ax: Axes | None = None) -> Axes:
    """Each model's test score in each walk-forward period (one line per model): a target's
    model in its target's colour, a baseline in the baseline colour with its own dash.

    Taught in: notebooks/12_capstone.
    """
    ax = ensure_axes(ax)
    dashes = {"persistence": ":", "mlp": "-.", "lstm": "--"}
    for name, values in scores.items():
        colour: str | None
        if name in dashes:
            colour, style, marker = strategy_color("baseline"), dashes[name], "s"
        else:
            colour, style, marker = (target_color(name) if name in ("cpu", "gpu", "fpga") else None), "-", "o"
        ax.plot(range(len(values)), list(values), marker=marker, linestyle=style, color=colour, label=name)
    ax.set_xticks(range(len(periods)), list(periods))
    ax.set_ylabel("test score")
    ax.set_xlabel("test period")
    ax.legend(fontsize="small")
    plt.setp(ax.get_xticklabels(), fontsize="small")
    return ax


def tail_calibration(calibration: Mapping[str, Any], budget_us: float, *,
                     chosen: tuple[float, float] | None = None, ax: Axes | None = None) -> Axes:
    """Fastest call against p99 for the calibration models, the line p99 = k x fastest, the budgets.

    ``calibration`` is :meth:`hwnas.deploy.tail.TailCalibration.to_dict`;
    ``chosen`` the deployed model's (fastest, p99) from its SLA report.

    Taught in: notebooks/12_capstone.
    """
    ax = ensure_axes(ax)
    fastest, tail, k = calibration["fastest_us"], calibration["tail_us"], float(calibration["factor"])
    q = f"p{calibration['percentile']:g}"
    top = max([*tail, budget_us, *(chosen or ())]) * 1.15
    ax.plot([0, top], [0, top], color="tab:gray", linestyle=":", label=f"{q} = fastest")
    ax.plot([0, top / k], [0, top], color="tab:blue", label=f"{q} = {k:.2f} x fastest (worst calibration model)")
    ax.scatter(fastest, tail, color="tab:blue", s=30, zorder=3, label="calibration models")
    if chosen is not None:
        ax.scatter([chosen[0]], [chosen[1]], marker="*", s=180, color="black", zorder=4,
                   label=f"deployed model ({q} of its SLA report)")
    ax.axhline(budget_us, color="tab:red", linestyle="--", label=f"SLA: {q} ≤ {budget_us:g} µs")
    ax.axvline(budget_us / k, color="tab:red", linestyle=":", label=f"table budget {budget_us / k:.1f} µs")
    ax.set_xlim(0, top / min(k, 2.0))
    ax.set_ylim(0, top)
    ax.set_xlabel("fastest call (µs): what the table predicts")
    ax.set_ylabel(f"{q} call (µs): what the SLA judges")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def fold_differences(models: Mapping[str, Mapping[str, tuple[float, float]]], *, reference: str = "LSTM",
                     ax: Axes | None = None) -> Axes:
    """Each model's score minus ``reference``'s on every fold (``models``: name -> fold -> (mean
    difference, its standard error over seeds)), with bars of two standard errors and a zero line:
    a model that dominates in score sits at or above zero on every fold.

    Taught in: notebooks/12_capstone.
    """
    ax = ensure_axes(ax)
    folds = list(dict.fromkeys(fold for per_fold in models.values() for fold in per_fold))
    width = 0.8 / max(1, len(models))
    for i, (name, per_fold) in enumerate(models.items()):
        xs = [folds.index(f) + (i - (len(models) - 1) / 2) * width for f in per_fold]
        means = [per_fold[f][0] for f in per_fold]
        errors = [2 * per_fold[f][1] for f in per_fold]
        ax.errorbar(xs, means, yerr=errors, fmt="o", capsize=3, label=name)
    ax.axhline(0.0, color="grey", linewidth=1, linestyle="--")
    ax.set_xticks(range(len(folds)), folds)
    ax.set_xlabel("scored period (held-out test, then the walk-forward folds)")
    ax.set_ylabel(f"score minus the {reference}'s (± 2 se)")
    ax.legend(fontsize="small", loc="lower left", bbox_to_anchor=(0.0, 1.02))  # above the axes, off the bars
    return ax
