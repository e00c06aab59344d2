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
from matplotlib.figure import Figure

from .style import strategy_color, target_color

__all__ = ["plot_ofa"]


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
