"""Search and Pareto figures: fronts, hypervolume boxes, reward iso-lines, curves.

Taught in: notebooks/07_pareto.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from .foundations import ensure_axes
from .style import strategy_color

__all__ = [
    "hypervolume_boxes",
    "hypervolume_curves",
    "memory_front",
    "pareto_layers",
]


def _staircase(ax: Axes, points: np.ndarray, reference: Sequence[float] | None = None, **kw: Any) -> None:
    """Draw the attainment staircase of 2-D minimised points (sorted by the first objective)."""
    order = np.argsort(points[:, 0], kind="stable")
    xs, ys = points[order, 0], points[order, 1]
    if reference is not None:
        xs = np.concatenate([[xs[0]], xs, [reference[0]]])
        ys = np.concatenate([[reference[1]], ys, [ys[-1]]])
    ax.step(xs, ys, where="post", **kw)


def pareto_layers(points: Any, fronts: Sequence[Sequence[int]], *, ax: Axes | None = None,
                  xlabel: str = "objective 1 (minimised)", ylabel: str = "objective 2 (minimised)") -> Axes:
    """2-D points coloured by their non-dominated sorting front, each front a staircase.

    Taught in: notebooks/07_pareto.
    """
    ax = ensure_axes(ax)
    values = np.asarray(points, float)
    cmap = plt.get_cmap("viridis", max(len(fronts), 2))
    for k, front in enumerate(fronts):
        member = values[np.asarray(front, int)]
        colour = cmap(k)
        _staircase(ax, member, color=colour, alpha=0.6)
        ax.scatter(member[:, 0], member[:, 1], color=colour, s=22, zorder=3,
                   label=f"front {k}" if k < 4 or k == len(fronts) - 1 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return ax


def hypervolume_boxes(points: Any, reference: Sequence[float], *, ax: Axes | None = None,
                      value: float | None = None) -> Axes:
    """The hypervolume of 2-D minimised points as the union of their boxes up to ``reference``.

    Taught in: notebooks/07_pareto.
    """
    ax = ensure_axes(ax, (4.8, 4.0))
    values = np.asarray(points, float)
    for x, y in values:
        ax.add_patch(Rectangle((x, y), reference[0] - x, reference[1] - y, facecolor="tab:blue",
                               alpha=0.18, edgecolor="tab:blue", linewidth=0.8))
    ax.scatter(values[:, 0], values[:, 1], color="tab:blue", zorder=3, label="points")
    ax.scatter([reference[0]], [reference[1]], color="tab:red", marker="x", zorder=3, label="reference")
    low = values.min(axis=0) - 0.5
    ax.set_xlim(min(low[0], reference[0] - 1), reference[0] + 0.5)
    ax.set_ylim(min(low[1], reference[1] - 1), reference[1] + 0.5)
    if value is not None:
        ax.set_title(f"hypervolume = {value:g}")
    ax.set_xlabel("objective 1 (minimised)")
    ax.set_ylabel("objective 2 (minimised)")
    ax.legend(fontsize="small", loc="lower left")
    return ax


def hypervolume_curves(curves: Mapping[str, Sequence[Sequence[float]]], *, ax: Axes | None = None) -> Axes:
    """Hypervolume against evaluations per strategy: the mean over seeds and its min-max band.

    Taught in: notebooks/07_pareto.
    """
    ax = ensure_axes(ax)
    for name, runs in curves.items():
        length = min(len(r) for r in runs)
        stack = np.array([np.asarray(r, float)[:length] for r in runs])
        x = np.arange(1, length + 1)
        colour = strategy_color(name)
        ax.plot(x, stack.mean(axis=0), color=colour, label=f"{name} (mean of {len(runs)})")
        if len(runs) > 1:
            ax.fill_between(x, stack.min(axis=0), stack.max(axis=0), color=colour, alpha=0.2)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("hypervolume")
    ax.legend(fontsize="small")
    return ax


def memory_front(latency: Any, score: Any, memory: Any, on_front: Any, *, ax: Axes | None = None) -> Axes:
    """Latency against score coloured by memory; the members of the 3-objective front ringed.

    Taught in: notebooks/07_pareto.
    """
    ax = ensure_axes(ax)
    lat, acc, mem = (np.asarray(v, float) for v in (latency, score, memory))
    mask = np.asarray(on_front, bool)
    points = ax.scatter(lat, acc, c=mem / 1e3, cmap="viridis", s=16)
    ax.scatter(lat[mask], acc[mask], facecolors="none", edgecolors="tab:red", s=60,
               label="front with memory")
    ax.figure.colorbar(points, ax=ax, label="memory (kB)")
    ax.set_xlabel("predicted latency (µs)")
    ax.set_ylabel("validation score")
    ax.legend(fontsize="small")
    return ax
