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

from .style import COLOR_CYCLE

__all__ = ["plot_proxy_correlations"]


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
