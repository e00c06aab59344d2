"""Deployment figures: runtime speed-ups and SLA latency histograms.

Taught in: notebooks/11_deployment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

from .foundations import ensure_axes

__all__ = ["runtime_speedup", "sla_histogram", "precision_tradeoff"]


def runtime_speedup(
    eager_us: Sequence[float],
    runtime_us: Sequence[float],
    *,
    runtime: str = "ONNX Runtime",
    highlight: Sequence[int] = (),
    budget_us: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Latency of the same models in eager PyTorch (x) and a runtime (y), log-log.

    Dotted lines mark speed-ups of 1x, 3x and 10x; ``highlight`` (indices) are
    drawn in red, e.g. a pair whose order the runtime flips; ``budget_us`` a
    horizontal budget line.

    Taught in: notebooks/11_deployment.
    """
    ax = ensure_axes(ax, figsize=(4.8, 4.2))
    x, y = np.asarray(eager_us, dtype=float), np.asarray(runtime_us, dtype=float)
    ax.scatter(x, y, s=14, alpha=0.6, color="tab:blue", label="models")
    if len(highlight):
        chosen = np.asarray(highlight, dtype=int)
        ax.scatter(x[chosen], y[chosen], s=40, color="tab:red", zorder=3, label="order flipped")
    low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    line = np.array([low / 20, high * 2])
    for factor, style in ((1, "--"), (3, ":"), (10, ":")):
        ax.plot(line, line / factor, color="grey", linestyle=style, linewidth=1)
        ax.annotate(f"{factor}x", (high, high / factor), fontsize=7, color="grey")
    if budget_us is not None:
        ax.axhline(budget_us, color="tab:red", linestyle="--", linewidth=1, label=f"budget {budget_us:g} µs")
    ax.set(xscale="log", yscale="log", xlim=(low * 0.8, high * 1.5), ylim=(low / 12, high * 1.5),
           xlabel="eager PyTorch (µs)", ylabel=f"{runtime} (µs)")
    ax.legend(fontsize="small")
    return ax


def sla_histogram(
    samples_us: Sequence[float],
    budget_us: float,
    *,
    percentiles: Sequence[float] = (50, 99, 99.9),
    label: str = "",
    bins: int = 60,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of raw latency samples (log-spaced bins) with the budget and the percentiles.

    Taught in: notebooks/11_deployment.
    """
    ax = ensure_axes(ax, figsize=(6.4, 3.2))
    values = np.asarray(samples_us, dtype=float)
    low, high = max(float(values.min()), 1e-3), max(float(values.max()), budget_us) * 1.05
    edges = np.geomspace(low, high, bins)
    ax.hist(values, bins=edges.tolist(), color="tab:blue", alpha=0.7, label=label or None)
    for q, colour in zip(percentiles, ("tab:green", "tab:orange", "tab:purple", "tab:brown")):
        ax.axvline(float(np.percentile(values, q)), color=colour, linestyle=":",
                   label=f"p{q:g}" + (f" ({label})" if label else ""))
    ax.axvline(budget_us, color="tab:red", linestyle="--", label=f"budget {budget_us:g} µs")
    ax.set(xscale="log", yscale="log", xlabel="latency per call (µs)", ylabel="calls")
    ax.legend(fontsize="small")
    return ax


def precision_tradeoff(
    latency_us: Mapping[str, float],
    score_change: Mapping[str, float],
    *,
    sizes: Mapping[str, float] | None = None,
    ylabel: str = "change in validation score",
    ax: Axes | None = None,
) -> Axes:
    """One labelled point per precision: measured latency (x) against the score change (y).

    ``sizes`` (bytes) are written beside the labels when given.

    Taught in: notebooks/11_deployment.
    """
    ax = ensure_axes(ax, figsize=(5.6, 3.6))
    # Labels alternate above and below their points, so neighbours at similar latency stay readable.
    for i, (name, latency) in enumerate(sorted(latency_us.items(), key=lambda item: item[1])):
        ax.scatter([latency], [score_change[name]], s=30)
        text = name if sizes is None else f"{name}\n{sizes[name] / 1e3:.1f} kB"
        ax.annotate(text, (latency, score_change[name]), fontsize=7, xytext=(4, 6 if i % 2 == 0 else -16),
                    textcoords="offset points")
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set(xscale="log", xlabel="fastest call at batch 1 (µs, log)", ylabel=ylabel)
    return ax
