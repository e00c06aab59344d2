"""Compound-scaling figures: the coefficient grid, FLOPs growth and scaled families.

Taught in: notebooks/09_efficientnet_scaling.

Data in (plain numbers, sequences, mappings), ``ax=None`` keyword, Axes out,
as in :mod:`hwnas.plots.foundations`. The compound family has the colour of the
``scaling`` strategy; the single-dimension families and the targets have their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from .foundations import ensure_axes
from .style import strategy_color, target_color

__all__ = ["family_colour", "flops_growth_plot", "scaled_families", "scaling_grid_heatmap", "target_families"]

_DIMENSION_COLOURS = {"compound": strategy_color("scaling"), "depth": "#1f77b4", "width": "#9467bd",
                      "lookback": "#ff7f0e"}


def family_colour(name: str) -> str:
    """The colour of a family: ``compound`` (the scaling strategy's), ``depth``, ``width``,
    ``lookback``, else a strategy's colour (so other strategies' fronts keep theirs).

    Taught in: notebooks/09_efficientnet_scaling.
    """
    return _DIMENSION_COLOURS.get(name, strategy_color(name))


def scaling_grid_heatmap(points: Sequence[tuple[float, float, float]], scores: Sequence[float], *,
                         best: tuple[float, float, float] | None = None, label: str = "validation score",
                         ax: Axes | None = None) -> Axes:
    """Score over the grid on the constraint: cells over (beta, gamma), alpha written in each cell.

    ``points`` are ``(alpha, beta, gamma)`` (alpha solved from the constraint), ``scores``
    one per point; ``best`` is outlined.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    ax = ensure_axes(ax, figsize=(5.6, 4.0))
    betas = sorted({round(p[1], 6) for p in points})
    gammas = sorted({round(p[2], 6) for p in points})
    grid = np.full((len(gammas), len(betas)), np.nan)
    for (alpha, beta, gamma), score in zip(points, scores):
        i, j = gammas.index(round(gamma, 6)), betas.index(round(beta, 6))
        grid[i, j] = score
        ax.text(j, i, f"α={alpha:.2f}\n{score:+.3f}", ha="center", va="center", fontsize=7)
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
    ax.set_yticks(range(len(gammas)), [f"{g:g}" for g in gammas])
    ax.set(xlabel="β (width coefficient)", ylabel="γ (lookback coefficient)")
    if best is not None:
        j, i = betas.index(round(best[1], 6)), gammas.index(round(best[2], 6))
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.figure.colorbar(image, ax=ax, label=label)
    return ax


def flops_growth_plot(phis: Sequence[float], measured: Mapping[str, Sequence[float]], *,
                      ax: Axes | None = None) -> Axes:
    """FLOPs ratio against ``phi`` (log 2 axis) per series, beside the ideal ``2^phi``.

    ``measured`` maps a label (e.g. ``"count_flops"``, ``"cost model"``) to one ratio per phi.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    ax = ensure_axes(ax)
    grid = np.linspace(min(phis), max(phis), 50)
    ax.plot(grid, 2.0**grid, color="black", linestyle="--", linewidth=1, label="2^φ")
    for (label, values), marker in zip(measured.items(), "os^v"):
        ax.plot(phis, values, marker=marker, linestyle="-", label=label)
    ax.set_yscale("log", base=2)
    ax.set(xlabel="φ", ylabel="FLOPs / FLOPs(base)")
    ax.legend(fontsize=8)
    return ax


def scaled_families(families: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                    errors: Mapping[str, Sequence[float]] | None = None,
                    budgets: Sequence[float] = (), fronts: Mapping[str, tuple[Sequence[float], Sequence[float]]]
                    | None = None, points: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
                    xlabel: str = "LUT latency (µs)", ax: Axes | None = None) -> Axes:
    """Validation score against latency per family (lines), other strategies' fronts (steps
    with markers, so a one-model front shows), and unordered ``points`` (hollow markers).

    ``families`` maps a name to ``(latencies_us, scores)`` in family order; ``errors``
    to one spread per point; ``budgets`` are drawn as dotted vertical lines;
    ``fronts`` (e.g. random or evolution) in their strategy colours; ``points``
    (e.g. the grid's models) unconnected, in grey. ``xlabel`` names where the
    latencies come from (a measured table or an analytical model).

    Taught in: notebooks/09_efficientnet_scaling.
    """
    ax = ensure_axes(ax, figsize=(6.8, 4.0))
    for budget in budgets:
        ax.axvline(budget, color="grey", linestyle=":", linewidth=0.8)
    for name, (latency, score) in (fronts or {}).items():
        order = np.argsort(latency)
        ax.step(np.asarray(latency)[order], np.asarray(score)[order], where="post", marker="s", markersize=4,
                color=strategy_color(name), alpha=0.7, label=f"{name} front")
    for name, (latency, score) in (points or {}).items():
        ax.scatter(latency, score, marker="o", facecolors="none", edgecolors="#7f7f7f", label=name)
    for name, (latency, score) in families.items():
        spread = None if errors is None else errors.get(name)
        ax.errorbar(latency, score, yerr=spread, marker="o", capsize=2, color=family_colour(name), label=name)
    ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel="validation score")
    ax.legend(fontsize=8)
    return ax


def target_families(latencies: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                    ax: Axes | None = None) -> Axes:
    """Predicted latency against ``phi`` of one family per hardware target (log latency axis).

    ``latencies`` maps a target name to ``(phis, latencies_us)``.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    ax = ensure_axes(ax)
    for name, (phis, values) in latencies.items():
        ax.plot(phis, values, marker="o", color=target_color(name), label=name)
    ax.set_yscale("log")
    ax.set(xlabel="φ", ylabel="predicted latency (µs)")
    ax.legend(fontsize=8)
    return ax
