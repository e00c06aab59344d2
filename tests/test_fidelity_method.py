"""The shared comparison of chapters 04 and 11 (issue 20): the table against a FLOPs fit,
same models, same passes. The scoring math is checked against brute-force references on
fixed numbers; the FLOPs fit is checked to be cross-fitted (never scored on a model it
was fitted to); one tiny real run checks the wiring (no timing claim: the suite runs on
loaded machines)."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.cost import count_flops
from hwnas.latency import FidelityReport, TimingSpec, compare_with_flops, flops_baseline, spread_archs, within
from hwnas.space import SearchSpace

MEAS = np.array([100.0, 120.0, 80.0, 200.0, 55.0, 310.0, 150.0, 90.0])
PRED = np.array([109.0, 135.0, 80.5, 170.0, 60.4, 300.0, 166.0, 99.5])
FLOPS = np.array([1e4, 3e4, 2e4, 9e4, 5e3, 2e5, 4e4, 1.5e4])


def brute_acc(pred: np.ndarray, meas: np.ndarray, tol: float) -> float:
    hits = 0
    for p, m in zip(pred, meas):
        if m * (1 - tol) <= p <= m * (1 + tol):
            hits += 1
    return hits / len(meas)


def brute_spearman(a: np.ndarray, b: np.ndarray) -> float:
    """1 - 6 sum d^2 / (n (n^2 - 1)), ranks by counting (no ties in these numbers)."""
    n = len(a)
    ra = [sum(x < v for x in a) for v in a]
    rb = [sum(x < v for x in b) for v in b]
    d2 = sum((i - j) ** 2 for i, j in zip(ra, rb))
    return 1 - 6 * d2 / (n * (n * n - 1))


def report(pred: np.ndarray = PRED, meas: np.ndarray = MEAS, flops: np.ndarray = FLOPS) -> FidelityReport:
    baseline, fits = flops_baseline(flops, meas)
    return FidelityReport("fixed", meas, pred, flops, baseline, meas * 1.1, {}, fits)


def test_within_matches_a_brute_force_count():
    for tol in (0.05, 0.10, 0.2):
        assert within(PRED, MEAS, tol) == pytest.approx(brute_acc(PRED, MEAS, tol))
    # By hand at ±10%: 109/100 in, 135/120 out (12.5%), 80.5/80 in, 170/200 out (15%),
    # 60.4/55 in (9.8%), 300/310 in, 166/150 out (10.7%), 99.5/90 out (10.6%).
    assert within(PRED, MEAS) == pytest.approx(4 / 8)


def test_report_scores_match_brute_force_references():
    r = report()
    assert r.acc10 == pytest.approx(brute_acc(PRED, MEAS, 0.10))
    assert r.spearman == pytest.approx(brute_spearman(PRED, MEAS))
    assert r.baseline_spearman == pytest.approx(brute_spearman(FLOPS, MEAS))
    assert r.baseline_acc10 == pytest.approx(brute_acc(r.baseline_us, MEAS, 0.10))


@pytest.mark.parametrize(("pred", "meas", "named"), [
    (np.ones(3), np.ones(4), "pred and meas"),
    (np.ones(3), np.array([1.0, 0.0, 1.0]), "meas"),
    (np.array([]), np.array([]), "pred and meas"),
])
def test_within_rejects_bad_input(pred, meas, named):
    with pytest.raises(ValueError, match=named):
        within(pred, meas)
    with pytest.raises(ValueError, match="tol"):
        within(PRED, MEAS, tol=0.0)


def test_flops_fit_is_cross_fitted_never_scored_on_its_own_models():
    pred, fits = flops_baseline(FLOPS, MEAS)
    assert len(fits) == 2
    idx = np.arange(len(MEAS))
    for fold in range(2):
        train = idx % 2 != fold
        b, a = np.polyfit(FLOPS[train], MEAS[train], 1)  # brute-force fit on the other half
        np.testing.assert_allclose(pred[~train], a + b * FLOPS[~train], rtol=1e-9)
    # A model's own measurement never moves its own prediction (it is out of sample) ...
    for i in range(len(MEAS)):
        moved = MEAS.copy()
        moved[i] *= 3.0
        again, _ = flops_baseline(FLOPS, moved)
        assert again[i] == pytest.approx(pred[i])
        assert not np.allclose(again, pred)  # ... but it does move the other half's


def test_a_perfectly_affine_latency_is_predicted_exactly_out_of_sample():
    meas = 7.0 + 2e-3 * FLOPS
    pred, _ = flops_baseline(FLOPS, meas)
    np.testing.assert_allclose(pred, meas, rtol=1e-9)
    assert report(meas=meas).baseline_acc10 == 1.0


def test_spread_archs_cover_the_flops_range_deterministically():
    space = SearchSpace(name="tiny", lookbacks=(32,), depths=(1, 2, 3), widths=(8, 16), kernel_sizes=(3,),
                        dilations=(2,), heads=(2,), activations=("relu",))
    archs = spread_archs(space, 6, seed=3)
    flops = [count_flops(a) for a in archs]
    assert flops == sorted(flops) and flops[-1] > flops[0]
    assert [a.to_json() for a in spread_archs(space, 6, seed=3)] == [a.to_json() for a in archs]
    rng = np.random.default_rng(3)
    pool = [count_flops(space.sample(rng)) for _ in range(48)]
    assert flops[0] == min(pool) and flops[-1] == max(pool)  # the extremes of the seeded draw
    with pytest.raises(ValueError, match="n must"):
        spread_archs(space, 3)
    with pytest.raises(ValueError, match="pool must"):
        spread_archs(space, 4, pool=0)


def test_compare_with_flops_scores_both_predictors_on_the_same_first_timing():
    space = SearchSpace(name="tiny", lookbacks=(16,), depths=(1, 2), widths=(8,), kernel_sizes=(3,),
                        dilations=(2,), heads=(2,), activations=("relu",))
    archs = spread_archs(space, 4, seed=1)
    c = compare_with_flops(space, archs, timing=TimingSpec.QUICK.replace(seed=1), calibration=4)
    r = c.report
    assert r.n == 4 and c.repeat_us.shape == (4,)
    assert len(c.build.validation_timings) == 8  # every model timed twice in the same passes
    np.testing.assert_allclose(r.measured_us, [t.min_us for t in c.build.validation_timings[:4]])
    np.testing.assert_allclose(c.repeat_us, [t.min_us for t in c.build.validation_timings[4:]])
    np.testing.assert_allclose(r.predicted_us, [c.profile.predict_latency(a) for a in archs])
    assert c.table_wins == (r.acc10 > r.baseline_acc10 and r.spearman > r.baseline_spearman)
    assert c.repeat_acc10 == pytest.approx(brute_acc(c.repeat_us, r.measured_us, 0.10))
    figures = c.figures()
    assert figures["runtime"] == "eager" and figures["table_wins"] == c.table_wins
    assert "repeatability" in c.summary() and ("BEATS" in c.summary()) == c.table_wins
    with pytest.raises(ValueError, match="at least 4"):
        compare_with_flops(space, archs[:3])


def test_table_wins_needs_both_acc10_and_spearman():
    cases = {
        # (pred, expected) on the fixed measurements: a perfect table wins ...
        "perfect": (MEAS.copy(), True),
        # ... a table that ranks perfectly but is 30% off everywhere loses acc10 to a decent fit
        "biased": (MEAS * 1.3, False),
    }
    from hwnas.latency.compare import Comparison
    for name, (pred, expected) in cases.items():
        r = report(pred=pred)
        c = Comparison(build=None, profile=None, report=r, repeat_us=MEAS)  # type: ignore[arg-type]
        assert c.table_wins is (r.acc10 > r.baseline_acc10 and r.spearman > r.baseline_spearman), name
        assert c.table_wins is expected, (name, r.acc10, r.baseline_acc10, r.spearman, r.baseline_spearman)


@pytest.mark.parametrize(("chapter", "runtime"), [("04_latency_lut", '"eager"'), ("11_deployment", '"onnxruntime"')])
def test_chapters_measure_with_the_shared_function_and_assert_the_claim(chapter, runtime):
    """One method for the chapters and the benchmarks: no copy of it in a chapter."""
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / "notebooks" / f"{chapter}.py").read_text(encoding="utf-8")
    assert "compare_with_flops(" in source and f"runtime={runtime}" in source
    assert ".table_wins" in source and "assert " in source.split(".table_wins")[0].splitlines()[-1]
    assert "validate(" not in source.replace("(through `validate`)", "")  # no second, separate timing
