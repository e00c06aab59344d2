"""FBNet figures: the sharpening architecture distribution, the temperature schedule, the fronts.

Taught in: notebooks/10_fbnet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

from .foundations import ensure_axes
from .style import strategy_color

__all__ = ["theta_sharpening", "temperature_and_latency", "fbnet_front"]


def theta_sharpening(probs: Sequence[Sequence[float]], labels: Sequence[str], *, title: str | None = None,
                     ax: Axes | None = None) -> Axes:
    """Heatmap of one layer's ``softmax(theta)`` (rows: candidate blocks, columns: epochs).

    Taught in: notebooks/10_fbnet.
    """
    values = np.asarray(probs, dtype=float).T  # (blocks, epochs)
    ax = ensure_axes(ax, (6.4, 0.3 * len(labels) + 1.2))
    image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, interpolation="nearest")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("epoch")
    ax.figure.colorbar(image, ax=ax, label="probability")
    if title:
        ax.set_title(title)
    return ax


def temperature_and_latency(taus: Sequence[float], expected_latency_us: Sequence[float], *,
                            ax: Axes | None = None) -> Axes:
    """The Gumbel temperature per epoch (log scale, left) and the expected latency (right).

    Taught in: notebooks/10_fbnet.
    """
    ax = ensure_axes(ax)
    epochs = np.arange(len(taus))
    ax.plot(epochs, taus, marker="o", color="tab:purple", label="temperature τ")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("temperature τ", color="tab:purple")
    right = ax.twinx()
    right.plot(epochs, expected_latency_us, marker="s", color=strategy_color("fbnet"), label="E[LAT]")
    right.set_ylabel("expected latency (µs)", color=strategy_color("fbnet"))
    return ax


def _staircase(latency: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The front (latency down, score up) as a step line."""
    order = np.argsort(latency)
    xs, ys, best = [], [], -np.inf
    for x, y in zip(latency[order], score[order]):
        if y > best:
            xs.append(x)
            ys.append(y)
            best = y
    return np.asarray(xs), np.asarray(ys)


def fbnet_front(evaluated: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                derived: Sequence[tuple[float, float, str]] = (), *, budget_us: float | None = None,
                ax: Axes | None = None) -> Axes:
    """Every strategy's evaluations (dots) and front (steps), FBNet's derived models labelled.

    ``evaluated`` maps a strategy name to (latencies µs, validation scores);
    ``derived`` lists (latency, score, label) of FBNet's architectures.

    Taught in: notebooks/10_fbnet.
    """
    ax = ensure_axes(ax, (6.4, 4.0))
    for name, (latency, score) in evaluated.items():
        lat, sc = np.asarray(latency, float), np.asarray(score, float)
        keep = np.isfinite(lat) & np.isfinite(sc)
        colour = strategy_color(name)
        ax.scatter(lat[keep], sc[keep], s=12, alpha=0.35, color=colour)
        xs, ys = _staircase(lat[keep], sc[keep])
        ax.step(xs, ys, where="post", color=colour, label=f"{name} front")
    for lat_us, value, label in derived:
        ax.scatter([lat_us], [value], marker="*", s=140, color=strategy_color("fbnet"), edgecolor="black",
                   zorder=3)
        ax.annotate(label, (lat_us, value), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if budget_us is not None:
        ax.axvline(budget_us, color="black", linestyle=":", label="budget T")
    ax.set_xscale("log")
    ax.set_xlabel("LUT latency (µs)")
    ax.set_ylabel("validation score (Pearson)")
    ax.legend(fontsize=8)
    return ax
