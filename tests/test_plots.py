"""hwnas.plots: every figure function draws what its data says, on small synthetic data.

Each test checks something a broken function would get wrong: one bar, line or
patch per input, the axis labels, the log scales it promises, the annotations.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from hwnas import plots  # noqa: E402
from hwnas.proxy_study import NoiseStudy, TargetStudy  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, "expected a legend"
    return [t.get_text() for t in legend.get_texts()]


def _texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _bars(ax: Axes) -> list:
    return [p for c in ax.containers if isinstance(c, BarContainer) for p in c.patches]


# --- chapters 01-04 ----------------------------------------------------------------------


def test_bytes_formatter_writes_decimal_units():
    fmt = plots.bytes_formatter()
    assert fmt(512, 0) == "512 B"
    assert fmt(2_500, 0) == "2.5 kB"
    assert fmt(3e6, 0) == "3 MB"
    assert fmt(1.5e9, 0) == "1.5 GB"


def test_receptive_field_growth():
    ax = plots.receptive_field_growth({"k3": [3, 5, 7], "k3 d2": [3, 7, 15, 31]}, lookback=32)
    assert isinstance(ax, Axes)
    assert len(ax.lines) == 3  # two curves and the lookback line
    assert len(ax.lines[1].get_xdata()) == 4
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() and ax.get_ylabel()
    assert "lookback = 32" in _texts(ax)


def test_space_size_by_depth_sorts_depths_on_a_log_scale():
    ax = plots.space_size_by_depth({"a": {3: 1e6, 1: 10.0, 2: 1e3}, "b": {1: 5.0}})
    assert len(ax.lines) == 2
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
    assert ax.get_yscale() == "log"
    assert _legend_texts(ax) == ["a", "b"]


def test_grouped_counts_one_bar_per_series_and_category():
    ax = plots.grouped_counts({"s1": {"conv": 3, "fc": 1}, "s2": {"fc": 2, "pool": 4}}, ylabel="blocks")
    assert len(_bars(ax)) == 2 * 3  # missing categories count 0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv", "fc", "pool"]
    assert ax.get_ylabel() == "blocks"


def test_layer_bars_highlights_one_bar():
    ax = plots.layer_bars(["stem", "l1", "head"], [5.0, 9.0, 1.0], highlight=1, ylabel="FLOPs")
    bars = _bars(ax)
    assert len(bars) == 3
    colours = [matplotlib.colors.to_hex(b.get_facecolor()) for b in bars]
    assert colours[1] != colours[0] == colours[2]
    assert "peak" in _texts(ax)
    assert ax.get_ylabel() == "FLOPs"


def test_layer_bars_draws_a_labelled_reference_line():
    ax = plots.layer_bars(["a", "b", "c"], [1e3, 4e3, 2e3], highlight=1, byte_units=True,
                          reference=9e3, reference_label="eager PyTorch peak")
    assert [line.get_ydata()[0] for line in ax.lines] == [9e3]
    (note,) = [t for t in ax.texts if t.get_text() == "eager PyTorch peak"]
    assert note.xy == (2, 9e3)  # under the right end of the line
    assert "peak" in _texts(ax)
    # no reference, no line
    assert not plots.layer_bars(["a"], [1.0]).lines


def test_parity_draws_the_identity_line_on_log_axes():
    ax = plots.parity([1, 10, 100], [1.1, 9, 120], xlabel="measured", ylabel="predicted")
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 3
    assert len(ax.lines) == 1
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("measured", "predicted")


def test_parity_band_spans_ten_percent_either_side_of_the_diagonal():
    x = [100.0, 200.0, 400.0]
    ax = plots.parity(x, [95.0, 230.0, 390.0], band=0.1)
    (band,) = [c for c in ax.collections if not isinstance(c, PathCollection)]
    vertices = band.get_paths()[0].vertices
    grid = vertices[:, 0]
    ratio = vertices[:, 1] / grid
    assert np.isclose(ratio.min(), 0.9) and np.isclose(ratio.max(), 1.1)
    assert np.isclose(grid.min(), 80.0) and np.isclose(grid.max(), 480.0)  # the x range, padded
    assert _legend_texts(ax) == ["y = x", "±10 %"]
    assert len(plots.parity(x, x).collections) == 1  # no band unless asked


def test_parity_panels_one_panel_per_predictor_with_its_band():
    measured = [100.0, 200.0, 400.0]
    fig = plots.parity_panels(measured, {"LUT": [110.0, 190.0, 420.0], "FLOPs": [250.0, 250.0, 260.0]},
                              band=0.05)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["LUT", "FLOPs"]
    for ax, predicted in zip(fig.axes, ([110.0, 190.0, 420.0], [250.0, 250.0, 260.0])):
        scatter = next(c for c in ax.collections if isinstance(c, PathCollection))
        np.testing.assert_allclose(scatter.get_offsets()[:, 1], predicted)
        assert _legend_texts(ax) == ["y = x", "±5 %"]
        assert ax.get_xscale() == ax.get_yscale() == "log"
    assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])


def test_flops_vs_length_marks_the_crossover():
    ax = plots.flops_vs_length([8, 16, 32], {"conv": [1, 2, 4], "attention": [0.5, 2, 8]}, crossover=16)
    assert len(ax.lines) == 3  # two curves and the crossover line
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert any("crossover" in t for t in _texts(ax))


def test_ratio_histogram_skips_empty_groups():
    ax = plots.ratio_histogram({"a": [0.9, 1.0, 1.1], "b": [], "c": [1.2, 1.3]}, bins=4)
    assert _legend_texts(ax) == ["a (3)", "c (2)"]
    assert len(ax.lines) == 1  # the reference line


def test_share_bars_labels_percentages():
    ax = plots.share_bars({"fp32": 0.25, "int8": 1.0})
    assert len(_bars(ax)) == 2
    assert [t.get_text() for t in ax.texts] == ["25 %", "100 %"]


def test_memory_vs_batch_is_log_log_with_a_budget():
    ax = plots.memory_vs_batch([1, 2, 4], {"fp32": [1e3, 2e3, 4e3], "int8": [250, 500, 1e3]}, budget=3e3)
    assert len(ax.lines) == 3
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert any(t.startswith("budget 3 kB") for t in _texts(ax))


# --- chapter 04 --------------------------------------------------------------------------


def test_timing_histogram_marks_each_statistic_and_counts_the_clipped_calls(mentions):
    samples = [10.0] * 50 + [11.0] * 40 + [12.0] * 9 + [1000.0]
    ax = plots.timing_histogram(samples, {"median": 10.5, "p90": 11.5, "p99": 20.0}, bins=10,
                                title="100 calls")
    assert [line.get_xdata()[0] for line in ax.lines] == [10.5, 11.5, 20.0]
    assert [line.get_linestyle() for line in ax.lines] == ["-", "--", ":"]
    assert _legend_texts(ax) == ["median 10.5 µs", "p90 11.5 µs", "p99 20.0 µs"]
    # 1.3 x the 99.5th percentile (about 506 µs) leaves the 1000 µs call out
    assert sum(b.get_height() for b in _bars(ax)) == 99
    assert re.search(mentions("100 calls", "1"), ax.get_title())  # the given title and the clipped count
    assert "µs" in ax.get_xlabel() and ax.get_ylabel()


def test_latency_by_op_one_scatter_per_op_with_small_flops_at_the_floor():
    entries = pd.DataFrame({"op": ["conv", "identity", "conv", "fc"], "flops": [5e4, 0, 2e5, 8e3],
                            "us": [60.0, 20.0, 90.0, 40.0]})
    ax = plots.latency_by_op(entries, title="4 entries")
    assert _legend_texts(ax) == ["conv", "fc", "identity"]
    offsets = [c.get_offsets() for c in ax.collections]
    np.testing.assert_allclose(offsets[0], [[5e4, 60.0], [2e5, 90.0]])
    np.testing.assert_allclose(offsets[2], [[1e3, 20.0]])  # zero FLOPs drawn at the floor
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert "FLOPs" in ax.get_xlabel() and ax.get_xlabel().count("10³") == 2  # where small ones are drawn
    assert ax.get_title() == "4 entries"


def test_descent_curve_draws_the_history_and_its_floor():
    ax = plots.descent_curve([400.0, 200.0, 120.0, 100.0], floor=95.0)
    curve, floor = ax.lines
    np.testing.assert_allclose(curve.get_ydata(), [400.0, 200.0, 120.0, 100.0])
    assert floor.get_ydata()[0] == 95.0 and floor.get_linestyle() == "--"
    assert _legend_texts(ax) == ["fastest choice per layer"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("gradient step", "E[LAT] (µs)")


# --- chapter 05 --------------------------------------------------------------------------


def test_batch_sweep_two_log_log_panels():
    batches = np.array([1, 2, 4, 8])
    totals = {"a": [10.0, 10.0, 12.0, 20.0], "b": [8.0, 9.0, 10.0, 11.0]}
    fig = plots.batch_sweep(batches, totals, styles={"b": "--"}, title="whole", floor=8.0,
                            floor_label="launches", bottom=5)
    assert isinstance(fig, Figure)
    left, right = fig.axes
    assert len(left.lines) == 3 and len(right.lines) == 2  # the floor line on the left only
    assert left.get_xscale() == left.get_yscale() == right.get_yscale() == "log"
    np.testing.assert_allclose(right.lines[0].get_ydata(), [10.0, 5.0, 3.0, 2.5])
    assert right.lines[1].get_linestyle() == "--"
    assert left.get_title() == "whole" and right.get_title() == "per sample"
    assert "launches" in _texts(left)
    assert left.get_ylim()[0] == 5
    assert _legend_texts(right) == ["a", "b"]


def test_latency_vs_flops_one_panel_per_target():
    table = pd.DataFrame({"MFLOPs": [1.0, 2.0, 3.0], "space": ["default", "fpga", "default"],
                          "cpu_us": [10.0, 20.0, 30.0], "fpga_us": [1.0, np.nan, 2.0]})
    fig = plots.latency_vs_flops(table, {"cpu_us": "CPU", "fpga_us": "FPGA"})
    assert [ax.get_title() for ax in fig.axes] == ["CPU", "FPGA"]
    for ax in fig.axes:
        assert len(ax.collections) == 2  # one scatter per space
        assert ax.get_xscale() == ax.get_yscale() == "log"
    assert len(fig.axes[0].collections[0].get_offsets()) == 2
    assert fig.axes[0].get_ylabel() == "µs"
    assert _legend_texts(fig.axes[0]) == ["default space", "fpga space"]


def test_target_series_take_the_target_colours():
    # latency_vs_flops: a space takes its target's colour; the default space is the CPU's
    table = pd.DataFrame({"MFLOPs": [1.0, 2.0, 3.0, 4.0], "space": ["default", "fpga", "gpu", "mobile"],
                          "cpu_us": [10.0, 20.0, 30.0, 40.0]})
    (ax,) = plots.latency_vs_flops(table, {"cpu_us": "CPU"}).axes
    colours = [matplotlib.colors.to_hex(c.get_facecolor()[0]) for c in ax.collections]
    assert colours == [plots.TARGET_COLORS[k] for k in ("cpu", "fpga", "gpu", "mobile")]
    # decision_budget: one bar per target, in the target's colour
    fastest = {"CPU (measured)": 100.0, "GPU batch 1 (model)": 30.0, "FPGA ZU9EG (model)": 2.0}
    fig = plots.decision_budget({"features": 20.0, "model inference": 20.0}, fastest,
                                {name: 0 for name in fastest})
    bars = [matplotlib.colors.to_hex(b.get_facecolor()) for b in _bars(fig.axes[1])]
    assert bars == [plots.TARGET_COLORS[k] for k in ("cpu", "gpu", "fpga")]


def test_correlation_heatmap_writes_every_cell():
    names = ["a", "b", "c"]
    matrix = pd.DataFrame(np.corrcoef(np.random.default_rng(0).normal(size=(3, 20))), index=names, columns=names)
    ax = plots.correlation_heatmap(matrix, title="agreement")
    assert len(ax.texts) == 9 and ax.texts[0].get_text() == "1.00"
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert sum(isinstance(i, AxesImage) for i in ax.images) == 1
    assert len(ax.figure.axes) == 2  # the colour bar
    assert ax.get_title() == "agreement"


def test_decision_budget_stacks_the_parts_and_marks_the_slice():
    budget = {"features": 20.0, "model inference": 20.0, "order": 10.0}
    fastest = {"CPU": 100.0, "GPU": 30.0, "FPGA": 2.0}
    fig = plots.decision_budget(budget, fastest, {"CPU": 0, "GPU": 0, "FPGA": 7})
    left, right = fig.axes
    assert len(_bars(left)) == 3 and left.get_xlim() == (0, 50)
    assert "(50 µs)" in left.get_title()
    assert len(_bars(right)) == 3 and right.get_xscale() == "log"
    assert [t.get_text() for t in right.get_yticklabels()][2] == "FPGA\n7 fit"
    assert right.lines[0].get_xdata()[0] == 20.0
    assert _legend_texts(right) == ["20 µs model slice"]


def test_histogram_with_limits_one_line_per_limit():
    ax = plots.histogram_with_limits([1, 2, 2, 3, 50], {"small: 10": 10, "big: 100": 100}, bins=5,
                                     xlabel="DSPs", title="t")
    assert len(_bars(ax)) == 5
    assert [line.get_xdata()[0] for line in ax.lines] == [10, 100]
    assert _legend_texts(ax) == ["small: 10", "big: 100"]
    assert ax.get_xlabel() == "DSPs" and ax.get_ylabel() == "architectures"


def test_memory_vs_width_in_mib_on_a_log_scale():
    ax = plots.memory_vs_width([32, 64], {"fp32": [2**20, 4 * 2**20], "int8": [2**18, 2**20]},
                               budget=10 * 2**20, title="stack")
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 4.0])
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    assert _legend_texts(ax) == ["fp32", "int8", "10 MiB app budget"]
    assert "MiB" in ax.get_ylabel()


# --- chapter 06 --------------------------------------------------------------------------


def _series(values, start="2024-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="15min", tz="UTC"))


def test_recent_market_four_stacked_panels():
    n = 16
    fig = plots.recent_market(_series(np.linspace(100, 110, n)), _series(np.zeros(n)),
                              {"16 bars": _series(np.ones(n)), "64 bars": _series(np.full(n, 2.0))},
                              _series(np.linspace(-1, 1, n)), title="last days")
    axes = fig.axes
    assert len(axes) == 4
    assert [len(ax.lines) for ax in axes] == [1, 1, 2, 2]  # the z-score panel has its zero line
    assert axes[0].get_title() == "last days"
    assert all(ax.get_ylabel() for ax in axes)
    assert _legend_texts(axes[2]) == ["16 bars", "64 bars"]


def test_split_timeline_shades_periods_gaps_and_warmup():
    close = _series(np.arange(100.0))
    t = close.index
    periods = {"train": (t[10], t[50], 41), "val": (t[60], t[75], 16), "test": (t[85], t[99], 15)}
    ax = plots.split_timeline(close, periods, gaps=[(t[50], t[60]), (t[75], t[85])], warmup=(t[0], t[10]),
                              title="split")
    assert len(ax.lines) == 1
    assert len(ax.patches) == 3 + 2 + 1
    assert _legend_texts(ax) == ["train: 41 windows", "val: 16 windows", "test: 15 windows", "warm-up (no window)"]
    assert ax.get_ylabel() == "close (USDT)" and ax.get_title() == "split"


def _study(n_arch: int = 4, n_seeds: int = 3) -> tuple[NoiseStudy, pd.DataFrame]:
    rng = np.random.default_rng(1)

    def scores():
        return {metric: rng.normal(size=(n_arch, n_seeds))}

    targets = {}
    for target, metric in (("volatility", "pearson"), ("direction", "ic")):
        targets[target] = TargetStudy(
            target, metric, short=scores(), long=scores(), short_test=scores(),
            baselines={"persistence": {"val": {metric: 0.1}}, "lstm": {"val": {}}},
        )
    summary = pd.DataFrame(
        [{"target": "volatility", "metric": "pearson", "icc": 0.8, "p": 1e-9, "short_long": 0.7, "val_test": 0.9},
         {"target": "direction", "metric": "ic", "icc": 0.1, "p": 0.2, "short_long": 0.2, "val_test": -0.1}]
    ).set_index(["target", "metric"])
    return NoiseStudy(seeds=tuple(range(n_seeds)), long_factor=5, architectures=(), targets=targets), summary


def test_seed_spread_one_errorbar_point_per_architecture():
    study, summary = _study()
    fig = plots.seed_spread(study, summary)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        (errorbars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(errorbars.lines[0].get_xdata()) == 4
        # the longer-training means and the one baseline that has a value (lstm has none)
        assert _legend_texts(ax) == ["5x longer training: mean", "baseline: persistence",
                                     "proxy (1 epoch): mean, seed range"]
    # sorted by the proxy score
    means = fig.axes[0].containers[0].lines[0].get_ydata()
    assert np.all(np.diff(means) >= 0)
    assert fig.axes[0].get_title().startswith("volatility: pearson\nICC 0.80")
    assert fig.axes[1].get_ylabel() == "validation ic"


def test_rank_agreement_two_scatters_per_target():
    study, summary = _study(n_arch=5)
    fig = plots.rank_agreement(study, summary, targets=("direction",))
    (ax,) = fig.axes
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatters) == 2 and all(len(s.get_offsets()) == 5 for s in scatters)
    assert _legend_texts(ax) == ["long training (rank +0.20)", "test period (rank -0.10)"]
    assert ax.get_title() == "direction" and ax.get_xlabel().startswith("proxy ic")


def test_strategy_color_is_fixed_per_strategy_with_a_fallback():
    assert plots.strategy_color("evolution") == plots.STRATEGY_COLORS["evolution"]
    assert plots.strategy_color("no-such-strategy") not in plots.STRATEGY_COLORS.values()
    assert len(set(plots.STRATEGY_COLORS.values())) == len(plots.STRATEGY_COLORS)


def test_target_color_matches_the_device_kind_in_a_profile_name():
    assert plots.target_color("cpu-1thread-edge") == plots.TARGET_COLORS["cpu"]
    assert plots.target_color("FPGA ZU9EG") == plots.TARGET_COLORS["fpga"]
    assert plots.target_color("tpu") not in plots.TARGET_COLORS.values()


def test_every_public_function_is_tested_and_says_where_it_is_taught():
    # each engineer tests their plots module in their own test file: look in all of them
    sources = [path.read_text(encoding="utf-8") for path in Path(__file__).parent.glob("test_*.py")]
    tested = {name for text in sources for name in re.findall(r"def test_(\w+)", text)}
    called = "\n".join(sources)
    for name in plots.__all__:
        if not callable(getattr(plots, name)):
            continue  # the style's colour tables
        assert "Taught in: notebooks/" in getattr(plots, name).__doc__, name
        assert any(t.startswith(name) for t in tested) or f"plots.{name}(" in called, f"no test for plots.{name}"


def test_search_spaces_take_their_targets_colours_in_chapter_01_figures():
    from hwnas.plots.style import TARGET_COLORS

    assert plots.is_space_name("default") and plots.is_space_name("fpga") and not plots.is_space_name("lstm")
    assert not plots.is_space_name("cpu")  # a target, not a space
    assert plots.space_color("default") == TARGET_COLORS["cpu"] and plots.space_color("fpga") == TARGET_COLORS["fpga"]
    ax = plots.space_size_by_depth({"default": {1: 10, 2: 100}, "mobile": {1: 5, 2: 50}})
    assert [matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()] == [
        TARGET_COLORS["cpu"], TARGET_COLORS["mobile"]]
    ax = plots.grouped_counts({"default": {"conv": 3}, "fpga": {"conv": 1}})
    assert [matplotlib.colors.to_hex(bar.get_facecolor()) for bar in ax.patches] == [
        TARGET_COLORS["cpu"], TARGET_COLORS["fpga"]]
    other = plots.grouped_counts({"a": {"conv": 3}, "b": {"conv": 1}})  # not spaces: the default cycle
    assert len({matplotlib.colors.to_hex(bar.get_facecolor()) for bar in other.patches}) == 2
    plt.close("all")


def test_png_bytes_draws_without_touching_pyplot():
    import matplotlib

    backend, open_figures = matplotlib.get_backend(), plt.get_fignums()
    data = plots.png_bytes(lambda ax: ax.plot([0, 1], [1, 0]), figsize=(2.0, 1.5), dpi=50)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (100, 75)
    assert matplotlib.get_backend() == backend and plt.get_fignums() == open_figures


def test_ensure_axes_keeps_given_axes_and_makes_new_ones_of_the_asked_size():
    _, ax = plt.subplots()
    assert plots.ensure_axes(ax) is ax
    new = plots.ensure_axes(None, figsize=(3.0, 2.0))
    assert new is not ax and tuple(new.figure.get_size_inches()) == (3.0, 2.0)


def test_power_of_ten_label_writes_superscripts_only_for_powers_of_ten():
    assert plots.power_of_ten_label(1000.0) == "10³"
    assert plots.power_of_ten_label(1e-2) == "10⁻²"
    assert plots.power_of_ten_label(250.0) == "250"
    assert plots.power_of_ten_label(0.0) == "0"
