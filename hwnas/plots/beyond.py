"""Figures of the chapter on what came after: zero-cost proxies (and once-for-all networks).

Taught in: notebooks/13_beyond.

Data in (plain numbers, sequences, mappings), Figure out for several panels,
as in :mod:`hwnas.plots.foundations`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .style import COLOR_CYCLE, strategy_color, target_color

__all__ = ["plot_ofa", "plot_proxy_correlations"]


def _log_scale_fits(values: np.ndarray) -> bool:
    """A log axis suits values that are all positive and span more than two decades."""
    finite = values[np.isfinite(values)]
    return len(finite) > 1 and bool((finite > 0).all()) and finite.max() / finite.min() > 100


def plot_proxy_correlations(scores: Mapping[str, Sequence[float]], trained: Sequence[float], *,
                            correlations: Mapping[str, Mapping[str, Any]] | None = None,
                            ceiling: Mapping[str, Any] | None = None,
                            trained_label: str = "trained validation score (seed mean)",
                            ncols: int = 3) -> Figure:
    """One panel per zero-cost proxy: its score at initialisation (x) against the trained score (y).

    ``scores`` maps a proxy name to one value per architecture, ``trained`` holds
    the trained score of each. ``correlations[proxy]`` (``spearman``,
    ``spearman_ci``, e.g. from ``benchmarks/results/zero_cost.json``) goes in the
    panel's title; ``ceiling`` (the trained score's seed-to-seed Spearman) in the
    figure's. A proxy whose values are positive and span over two decades is
    drawn on a log axis; ``-inf`` values (NASWOT's singular kernels) are left out.

    Taught in: notebooks/13_beyond.
    """
    if not scores:
        raise ValueError("scores must name at least one proxy")
    y = np.asarray(trained, dtype=float)
    for name, values in scores.items():
        if len(values) != len(y):
            raise ValueError(f"scores[{name!r}] has {len(values)} values but trained has {len(y)}")
    ncols = max(1, min(ncols, len(scores)))
    nrows = math.ceil(len(scores) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), sharey=True, squeeze=False)
    for k, (ax, (name, values)) in enumerate(zip(axes.flat, scores.items())):
        x = np.asarray(values, dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        ax.scatter(x[keep], y[keep], s=10, alpha=0.6, color=COLOR_CYCLE[k % len(COLOR_CYCLE)])
        if _log_scale_fits(x[keep]):
            ax.set_xscale("log")
        title = name
        entry = (correlations or {}).get(name)
        if entry and "spearman" in entry:
            title += f"  ρ = {entry['spearman']:+.2f}"
            if "spearman_ci" in entry:
                lo, hi = entry["spearman_ci"]
                title += f" [{lo:+.2f}, {hi:+.2f}]"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"{name} at initialisation", fontsize=8)
        if k % ncols == 0:
            ax.set_ylabel(trained_label, fontsize=8)
    for ax in list(axes.flat)[len(scores):]:
        ax.set_visible(False)
    suptitle = f"zero-cost proxies vs trained score ({len(y)} architectures)"
    if ceiling and "spearman" in ceiling:
        suptitle += f"; seed-to-seed ceiling ρ = {ceiling['spearman']:+.2f}"
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- once-for-all


def _finite(points: Sequence[Mapping[str, Any]], within_only: bool = True) -> tuple[list[float], list[float]]:
    """Latencies and scores of the points with a finite score (within the budget when ``within_only``)."""
    keep = [p for p in points if p.get("score") is not None and math.isfinite(float(p["score"]))
            and (p.get("within_budget", True) or not within_only)]
    return [float(p["latency_us"]) for p in keep], [float(p["score"]) for p in keep]


def plot_ofa(curve: Sequence[Mapping[str, Any]], targets: Mapping[str, Mapping[str, Any]]) -> Figure:
    """The supernet's training curve, then one panel per target: score against the target's latency.

    ``curve``: the rows of :attr:`hwnas.search.ofa.OFATraining.curve` (``step``,
    ``phase``, ``loss``, ``val_largest``, ``val_smallest``). ``targets``: the
    ``targets`` entries of ``benchmarks/results/ofa.json``: ``budget_us``; ``ofa``
    with ``points`` (candidates scored with inherited weights on validation),
    ``latency_us``, ``inherited_test`` and ``finetuned``/``scratch`` ``test_mean``;
    optionally ``separate`` with ``points`` (the separate search's candidates, their
    proxy validation scores), ``latency_us`` and ``retrained`` ``test_mean``.
    Small markers are validation scores of candidates, large ones the test scores of
    the chosen sub-networks.

    Taught in: notebooks/13_beyond.
    """
    if not curve:
        raise ValueError("curve must hold at least one row (OFATraining.curve)")
    if not targets:
        raise ValueError("targets must name at least one target (ofa.json's 'targets')")
    fig, axes = plt.subplots(1, 1 + len(targets), figsize=(3.6 * (1 + len(targets)), 3.6), layout="constrained")
    ax = axes[0]
    steps = [row["step"] for row in curve]
    ax.plot(steps, [row["val_largest"] for row in curve], "o-", label="largest sub-network")
    ax.plot(steps, [row["val_smallest"] for row in curve], "s-", label="smallest sub-network")
    phase_ends: dict[str, int] = {}
    for row in curve:
        phase_ends[row["phase"]] = row["step"]
    for phase, end in phase_ends.items():
        ax.axvline(end, color="0.8", lw=0.8, zorder=0)
        ax.annotate(phase, (end, 0), xycoords=("data", "axes fraction"), xytext=(-2, 4),
                    textcoords="offset points", ha="right", fontsize="x-small", color="0.4")
    ax.set_xlabel("optimiser step (progressive shrinking)")
    ax.set_ylabel("validation score, inherited weights")
    ax.set_title("supernet training", fontsize="medium")
    ax.legend(fontsize="small")
    for ax, (name, entry) in zip(axes[1:], targets.items()):
        colour = target_color(name)
        ofa = entry.get("ofa", {})
        x, y = _finite(ofa.get("points", []))
        ax.scatter(x, y, s=12, color=colour, alpha=0.45, label="OFA candidates (val)")
        separate = entry.get("separate")
        if separate:
            x, y = _finite(separate.get("points", []))
            ax.scatter(x, y, s=12, marker="x", color=strategy_color("baseline"), alpha=0.6,
                       label=f"{separate.get('strategy', 'separate')} search (val)")
        if ofa.get("latency_us") is not None:
            lat = float(ofa["latency_us"])
            for key, marker, label in (("inherited_test", "*", "OFA inherited"), ("finetuned", "^", "OFA fine-tuned"),
                                       ("scratch", "D", "OFA arch from scratch")):
                value = ofa.get(key)
                value = value.get("test_mean") if isinstance(value, Mapping) else value
                if value is not None:
                    ax.scatter([lat], [value], marker=marker, s=110, color=colour, edgecolor="black", zorder=3,
                               label=f"{label} (test)")
        if separate and separate.get("latency_us") is not None and separate.get("retrained"):
            ax.scatter([float(separate["latency_us"])], [separate["retrained"]["test_mean"]], marker="s", s=80,
                       color=strategy_color("baseline"), edgecolor="black", zorder=3, label="search's choice (test)")
        if entry.get("budget_us") is not None:
            ax.axvline(float(entry["budget_us"]), color="red", ls="--", lw=1, label="budget")
        ax.set_xlabel(f"{name} latency (µs)")
        ax.set_title(name, fontsize="medium")
    axes[-1].legend(fontsize="x-small", loc="best", framealpha=0.6)
    return fig
