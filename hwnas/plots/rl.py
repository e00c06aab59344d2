"""MnasNet controller figures: learning curves, decision heatmaps, reward iso-lines, fronts.

Taught in: notebooks/08_mnasnet_rl.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from .foundations import ensure_axes
from .style import strategy_color

__all__ = ["controller_learning_curves", "decision_heatmap", "fronts_by_strategy", "reward_isolines"]


def controller_learning_curves(history: Sequence[Mapping[str, Any]], *, ax: Axes | None = None) -> Axes:
    """Mean batch reward and the baseline per update, the policy's entropy on a twin axis.

    ``history`` is :attr:`MnasNetStrategy.history` (records with ``update``,
    ``mean_reward``, ``baseline``, ``entropy`` and optionally ``mean_feasible_reward``).
    Taught in: notebooks/08_mnasnet_rl.
    """
    ax = ensure_axes(ax)
    updates = [h["update"] for h in history]
    colour = strategy_color("mnasnet")
    ax.plot(updates, [h["mean_reward"] for h in history], "o-", color=colour, label="mean reward")
    feasible = [np.nan if h.get("mean_feasible_reward") is None else h["mean_feasible_reward"]
                for h in history]
    if np.any(np.isfinite(feasible)):
        ax.plot(updates, feasible, "o:", color=colour, alpha=0.6, label="mean reward (feasible only)")
    ax.plot(updates, [h["baseline"] for h in history], "s--", color=strategy_color("baseline"),
            label="baseline $b$")
    ax.set_xlabel("policy update")
    ax.set_ylabel("reward")
    twin = ax.twinx()
    twin.plot(updates, [h["entropy"] for h in history], color="0.4", lw=1.2, label="entropy")
    twin.set_ylabel("entropy of a sample (nats)")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize="small", loc="lower right")
    return ax


def decision_heatmap(values: Any, row_labels: Sequence[str], *, column_labels: Sequence[Any] | None = None,
                     colorbar_label: str = "probability", ax: Axes | None = None) -> Axes:
    """A ``(rows, columns)`` array of probabilities as a heatmap (rows: decisions or choices).

    ``values[i, j]`` is drawn at row ``i`` (labelled ``row_labels[i]``) and
    column ``j`` (an update); NaN cells stay blank. Taught in: notebooks/08_mnasnet_rl.
    """
    grid = np.asarray(values, dtype=float)
    if grid.ndim != 2 or grid.shape[0] != len(row_labels):
        raise ValueError(f"values must be 2-D with {len(row_labels)} rows (one per label), got shape {grid.shape}")
    ax = ensure_axes(ax, (6.4, 0.22 * len(row_labels) + 1.6))
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0,
                      interpolation="nearest")
    ax.set_yticks(range(len(row_labels)), list(row_labels), fontsize="small")
    columns = list(column_labels) if column_labels is not None else list(range(1, grid.shape[1] + 1))
    step = max(1, len(columns) // 10)
    ax.set_xticks(range(0, len(columns), step), [str(c) for c in columns[::step]])
    ax.set_xlabel("policy update")
    ax.figure.colorbar(image, ax=ax, label=colorbar_label)
    return ax


def reward_isolines(latency_ratio: Any, accuracy: Any, rewards: Mapping[str, Any], *,
                    levels: Sequence[float] | None = None, points: Any = None,
                    ax: Axes | None = None) -> Axes:
    """Iso-lines of rewards over a grid of ``LAT / T`` (x) and accuracy (y).

    ``rewards`` maps a label (e.g. ``"soft, w = -0.07"``) to the reward on the
    ``(len(accuracy), len(latency_ratio))`` grid; the first is drawn solid,
    the others dashed. ``points`` (``(n, 2)``: ratio, accuracy) are scattered on top.
    Taught in: notebooks/08_mnasnet_rl.
    """
    ax = ensure_axes(ax)
    x, y = np.asarray(latency_ratio, dtype=float), np.asarray(accuracy, dtype=float)
    styles = ["solid", "dashed", "dotted", "dashdot"]
    colours = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    for k, (label, grid) in enumerate(rewards.items()):
        lines = ax.contour(x, y, np.asarray(grid, dtype=float), levels=levels, colors=colours[k % 4],
                           linestyles=styles[k % 4], linewidths=1.2)
        ax.clabel(lines, fontsize="x-small", fmt="%.2f")
        ax.plot([], [], color=colours[k % 4], linestyle=styles[k % 4], label=label)
    if points is not None:
        pts = np.asarray(points, dtype=float)
        ax.scatter(pts[:, 0], pts[:, 1], s=12, color="0.3", alpha=0.6, label="evaluated candidates")
    ax.axvline(1.0, color="0.5", lw=0.8)
    ax.set_xlabel("latency / budget  (LAT / T)")
    ax.set_ylabel("accuracy term ACC")
    ax.legend(fontsize="small")
    return ax


def fronts_by_strategy(fronts: Mapping[str, Any], *, clouds: Mapping[str, Any] | None = None,
                       budget: float | None = None, ax: Axes | None = None) -> Axes:
    """Pareto fronts (latency x, score y) per strategy as staircases, in the strategy colours.

    ``fronts[name]`` is an ``(n, 2)`` array of (latency µs, score) on the
    front; ``clouds[name]`` every evaluated point, drawn faintly; ``budget`` a
    vertical line at ``T``. Taught in: notebooks/08_mnasnet_rl.
    """
    ax = ensure_axes(ax)
    for name, cloud in (clouds or {}).items():
        pts = np.asarray(cloud, dtype=float).reshape(-1, 2)
        ax.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.25, color=strategy_color(name))
    for name, front in fronts.items():
        pts = np.asarray(front, dtype=float).reshape(-1, 2)
        pts = pts[np.argsort(pts[:, 0])]
        ax.step(pts[:, 0], pts[:, 1], where="post", color=strategy_color(name), lw=1.6)
        ax.scatter(pts[:, 0], pts[:, 1], s=22, color=strategy_color(name), label=f"{name} ({len(pts)})")
    if budget is not None:
        ax.axvline(budget, color="0.4", ls="--", lw=0.9, label=f"budget T = {budget:,.0f} µs")
    ax.set_xscale("log")
    ax.set_xlabel("predicted latency (µs, log scale)")
    ax.set_ylabel("validation score")
    ax.legend(fontsize="small")
    return ax
