"""Plots of the search chapters that no strategy's own test file draws."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from hwnas import plots  # noqa: E402
from hwnas.search import FrontMember, Metrics  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _metrics(score: float, latency: float) -> Metrics:
    return Metrics(score=score, latency_us=latency, memory_bytes=1000, flops=10, params=5)


def test_controller_learning_curves_draws_reward_baseline_and_entropy():
    history = [{"update": u, "mean_reward": 0.1 * u, "baseline": 0.05 * u, "entropy": 3.0 - u,
                "mean_feasible_reward": None if u == 0 else 0.1 * u} for u in range(4)]
    ax = plots.controller_learning_curves(history)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "mean reward" in labels and "baseline $b$" in labels
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    twins = [other for other in ax.figure.axes if other is not ax]
    assert twins and list(twins[0].get_lines()[0].get_ydata()) == [3.0, 2.0, 1.0, 0.0]


class _Result(list):
    """A SearchResult's shape: the front as FrontMembers, ``history``, ``run`` and ``problem``."""

    def __init__(self, front, history, strategy, budget_us):
        super().__init__(front)
        self.history = history
        self.run, self.problem = SimpleNamespace(strategy=strategy), SimpleNamespace(latency_budget_us=budget_us)


def test_search_front_marks_candidates_front_budget_and_choice():
    good, fast, bad = _metrics(0.6, 100.0), _metrics(0.5, 50.0), _metrics(0.2, 120.0)
    infeasible = Metrics(score=math.nan, latency_us=30.0, memory_bytes=1, flops=1, params=1, feasible=False,
                         reasons=("memory",))
    history = [SimpleNamespace(arch=name, metrics=m)
               for name, m in (("good", good), ("fast", fast), ("bad", bad), ("no", infeasible))]
    result = _Result([FrontMember("fast", fast, True), FrontMember("good", good, True)], history, "evolution",
                     110.0)
    ax = plots.search_front(result, chosen="good", title="t")  # the budget is the problem's
    labels = [c.get_label() for c in ax.collections] + [line.get_label() for line in ax.get_lines()]
    assert "3 trained candidates" in labels  # the infeasible one is not drawn
    assert not any("OVER BUDGET" in label for label in labels)
    assert "chosen" in labels and "budget 110 µs" in labels
    front = next(line for line in ax.get_lines() if line.get_label() == "front")
    assert list(front.get_xdata()) == [50.0, 100.0]
    assert ax.get_title() == "t"
    ax = plots.search_front(result, budget_us=37.5, budget_label="table budget 37.5 µs")
    assert "table budget 37.5 µs" in [line.get_label() for line in ax.get_lines()]
    over = _Result([FrontMember("fast", fast, True), FrontMember("good", good, False)], history, "evolution", 90.0)
    ax = plots.search_front(over)
    crossed = next(c for c in ax.collections if "OVER BUDGET" in str(c.get_label()))
    assert crossed.get_label() == "1 of 2 on the front OVER BUDGET"
    assert crossed.get_offsets().tolist() == [[100.0, 0.6]]


def test_decision_heatmap_draws_the_grid_and_rejects_a_label_mismatch():
    values = [[0.2, 0.8], [0.5, 0.5], [1.0, 0.0]]
    ax = plots.decision_heatmap(values, ["op", "kernel", "skip"], column_labels=[0, 1])
    assert ax.images[0].get_array().tolist() == values
    assert [t.get_text() for t in ax.get_yticklabels()] == ["op", "kernel", "skip"]
    with pytest.raises(ValueError, match="3 rows"):
        plots.decision_heatmap([[0.1, 0.9]], ["op", "kernel", "skip"])


def test_fronts_by_strategy_sorts_each_front_by_latency():
    ax = plots.fronts_by_strategy({"random": [[300.0, 0.5], [100.0, 0.4]], "mnasnet": [[50.0, 0.45]]},
                                  clouds={"random": [[400.0, 0.1]]}, budget=250.0)
    step = ax.get_lines()[0]
    assert list(step.get_xdata()) == [100.0, 300.0] and list(step.get_ydata()) == [0.4, 0.5]
    labels = [c.get_label() for c in ax.collections]
    assert "random (2)" in labels and "mnasnet (1)" in labels
    assert ax.get_xscale() == "log"


def test_reward_isolines_draws_one_contour_set_per_reward():
    import numpy as np

    ratio, acc = np.linspace(0.5, 2.0, 20), np.linspace(0.1, 0.9, 15)
    x, y = np.meshgrid(ratio, acc)
    soft, hard = y * x ** -0.07, y * np.where(x <= 1, 1.0, 1 / x)
    ax = plots.reward_isolines(ratio, acc, {"soft": soft, "hard": hard}, points=[[1.0, 0.5]])
    assert {"soft", "hard", "evaluated candidates"} <= set(ax.get_legend_handles_labels()[1])


def test_theta_sharpening_puts_blocks_on_rows_and_epochs_on_columns():
    probs = [[0.25, 0.25, 0.5], [0.1, 0.1, 0.8]]  # two epochs, three blocks
    ax = plots.theta_sharpening(probs, ["a", "b", "c"], title="layer 1")
    assert ax.images[0].get_array().shape == (3, 2)
    assert ax.get_title() == "layer 1"


def test_temperature_and_latency_share_the_epoch_axis():
    ax = plots.temperature_and_latency([5.0, 1.0, 0.2], [900.0, 700.0, 650.0])
    assert list(ax.get_lines()[0].get_ydata()) == [5.0, 1.0, 0.2] and ax.get_yscale() == "log"
    twin = next(other for other in ax.figure.axes if other is not ax)
    assert list(twin.get_lines()[0].get_ydata()) == [900.0, 700.0, 650.0]


def test_fbnet_front_labels_the_derived_models():
    ax = plots.fbnet_front({"random": ([100.0, 200.0], [0.3, 0.5])}, [(150.0, 0.45, "λ=0.1")], budget_us=180.0)
    assert [t.get_text() for t in ax.texts] == ["λ=0.1"]
    assert "random front" in ax.get_legend_handles_labels()[1]


def test_architecture_blocks_draws_a_box_per_layer():
    import numpy as np

    from hwnas import SearchSpace

    space = SearchSpace.default()
    archs = {"a": space.sample(np.random.default_rng(0)), "b": space.sample(np.random.default_rng(1))}
    ax = plots.architecture_blocks(archs)
    assert len(ax.patches) >= sum(len(a.layers) for a in archs.values())


def test_score_vs_latency_and_walk_forward_lines_plot_their_points():
    ax = plots.score_vs_latency([{"name": "nas", "latency_us": 20.0, "score": 0.6, "kind": "nas"},
                                 {"name": "lstm", "latency_us": 40.0, "score": 0.58, "kind": "baseline"}])
    assert sorted(float(c.get_offsets()[0][0]) for c in ax.collections) == [20.0, 40.0]
    ax2 = plots.walk_forward_lines({"nas": [0.6, 0.55], "lstm": [0.58, 0.57]}, ["2024H1", "2024H2"])
    assert [list(line.get_ydata()) for line in ax2.get_lines()] == [[0.6, 0.55], [0.58, 0.57]]
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["2024H1", "2024H2"]


def test_tail_calibration_draws_the_models_the_factor_line_and_both_budgets():
    calibration = {"percentile": 99.0, "factor": 2.5, "fastest_us": [6.0, 8.0], "tail_us": [12.0, 20.0]}
    ax = plots.tail_calibration(calibration, 25.0, chosen=(7.0, 15.0))
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert "SLA: p99 ≤ 25 µs" in lines and "table budget 10.0 µs" in lines
    factor = lines["p99 = 2.50 x fastest (worst calibration model)"]
    x, y = factor.get_xdata(), factor.get_ydata()
    assert y[1] / x[1] == pytest.approx(2.5)
    points = [c.get_offsets().tolist() for c in ax.collections]
    assert [[6.0, 12.0], [8.0, 20.0]] in points and [[7.0, 15.0]] in points
    assert list(lines["table budget 10.0 µs"].get_xdata()) == [10.0, 10.0]


def test_fold_differences_puts_each_model_at_its_means_with_two_se_bars():
    models = {"a": {"test": (0.01, 0.002), "fold 0": (-0.003, 0.001)}, "b": {"test": (0.0, 0.004)}}
    ax = plots.fold_differences(models)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["test", "fold 0"]
    points = {c.get_label(): c for c in ax.containers}
    a_line, _, (a_bars,) = points["a"]
    assert list(a_line.get_ydata()) == [0.01, -0.003]
    assert [seg[1][1] - seg[0][1] for seg in a_bars.get_segments()] == pytest.approx([0.008, 0.004])
    assert list(points["b"][0].get_xdata()) == pytest.approx([0.2])  # beside a's, in the first period
    assert any(list(line.get_ydata()) == [0.0, 0.0] for line in ax.get_lines())  # the zero line
