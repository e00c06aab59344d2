"""Deployment figures (hwnas.plots.deploy)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hwnas import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_runtime_speedup_draws_models_guides_and_highlights():
    ax = plots.runtime_speedup([100, 300, 200], [30, 40, 60], highlight=[1], budget_us=50)
    offsets = [c.get_offsets() for c in ax.collections]
    assert len(offsets) == 2 and offsets[1].tolist() == [[300.0, 40.0]]
    assert len(ax.lines) == 4  # 1x, 3x, 10x and the budget
    assert ax.lines[-1].get_ydata()[0] == 50
    assert ax.get_xscale() == "log" and "ONNX Runtime" in ax.get_ylabel()


def test_sla_histogram_marks_budget_and_percentiles():
    samples = np.r_[np.full(990, 100.0), np.full(10, 1000.0)]
    ax = plots.sla_histogram(samples, 200.0)
    xs = [line.get_xdata()[0] for line in ax.lines]
    assert xs == [pytest.approx(np.percentile(samples, q)) for q in (50, 99, 99.9)] + [200.0]
    assert sum(p.get_height() for p in ax.patches) == 1000


def test_precision_tradeoff_labels_each_precision():
    ax = plots.precision_tradeoff({"fp32": 40.0, "int8": 60.0}, {"fp32": 0.0, "int8": -0.01},
                                  sizes={"fp32": 26_000, "int8": 9_000})
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["fp32\n26.0 kB", "int8\n9.0 kB"]
    assert [c.get_offsets().tolist() for c in ax.collections] == [[[40.0, 0.0]], [[60.0, -0.01]]]
