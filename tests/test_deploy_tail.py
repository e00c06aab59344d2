"""The tail factor (hwnas.deploy.tail): p99 over fastest call, and the search budget it implies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwnas.deploy.tail import TailCalibration, measure_tail, near_budget_models
from hwnas.space import SearchSpace

positive = st.floats(min_value=0.5, max_value=1e4, allow_nan=False)


@given(st.lists(st.tuples(positive, st.floats(min_value=0.2, max_value=20.0)), min_size=1, max_size=6),
       st.floats(min_value=1.0, max_value=1e5))
def test_factor_is_the_worst_ratio_and_divides_the_budget(models, budget):
    fastest = tuple(f for f, _ in models)
    tail = tuple(f * r for f, r in models)
    calibration = TailCalibration(99.0, tuple(f"m{i}" for i in range(len(models))), fastest, tail)
    assert calibration.factor == pytest.approx(max(1.0, max(t / f for t, f in zip(tail, fastest))))
    assert calibration.factor >= 1.0 and all(calibration.factor >= r for r in calibration.ratios)
    assert calibration.search_budget_us(budget) * calibration.factor == pytest.approx(budget)


def test_a_tail_below_the_fastest_call_counts_as_no_tail():
    # a percentile cannot be below the minimum of the same samples; a factor below 1 would loosen the budget
    calibration = TailCalibration(99.0, ("a",), (10.0,), (9.0,))
    assert calibration.factor == 1.0 and calibration.search_budget_us(25.0) == 25.0


@pytest.mark.parametrize("kwargs, named", [
    (dict(labels=(), fastest_us=(), tail_us=()), "labels"),
    (dict(labels=("a", "b"), fastest_us=(1.0,), tail_us=(2.0,)), "equally long"),
    (dict(labels=("a",), fastest_us=(0.0,), tail_us=(2.0,)), "fastest_us"),
])
def test_bad_calibrations_are_refused(kwargs, named):
    with pytest.raises(ValueError, match=named):
        TailCalibration(99.0, **kwargs)


def test_search_budget_refuses_a_non_positive_budget():
    with pytest.raises(ValueError, match="budget_us"):
        TailCalibration(99.0, ("a",), (1.0,), (2.0,)).search_budget_us(0.0)


def test_measure_tail_times_each_calibration_model():
    space = SearchSpace.fpga(lookbacks=(16,), depths=(2,))
    calibration = measure_tail(space, runtime="eager", models=2, repeats=200, bursts=2, seed=1)
    assert len(calibration.labels) == 2 and calibration.conditions["repeats"] == 200
    assert all(0 < f <= t for f, t in zip(calibration.fastest_us, calibration.tail_us))
    assert calibration.factor >= 1.0
    rng = np.random.default_rng(1)  # the calibration models are the space's seeded samples
    assert list(calibration.labels) == [space.sample(rng).label() for _ in range(2)]
    data = json.loads(json.dumps(calibration.to_dict()))
    assert data["factor"] == calibration.factor and len(data["ratios"]) == 2
    assert "p99 / fastest call" in calibration.summary()


def test_measure_tail_takes_a_list_of_architectures():
    arch = SearchSpace.fpga(lookbacks=(16,), depths=(2,)).sample(np.random.default_rng(0))
    calibration = measure_tail([arch], runtime="eager", repeats=100, bursts=1)
    assert calibration.labels == (arch.label(),)


@pytest.mark.parametrize("kwargs, named", [
    (dict(models=0), "models"), (dict(repeats=10), "repeats"), (dict(bursts=0), "bursts"),
    (dict(percentile=120.0), "percentile"), (dict(threads=0), "threads"),
])
def test_measure_tail_checks_its_options(kwargs, named):
    with pytest.raises(ValueError, match=named):
        measure_tail(SearchSpace.fpga(lookbacks=(16,), depths=(2,)), runtime="eager", **kwargs)


def test_measure_tail_refuses_a_list_of_other_things():
    with pytest.raises(ValueError, match="space"):
        measure_tail(["not an architecture"], runtime="eager")


class _PricedByParams:
    """A stand-in profile: an architecture's latency is its parameter count / 100 µs."""

    def predict_latency(self, arch, batch=1):
        from hwnas.cost import count_params

        return count_params(arch) / 100.0


def test_near_budget_models_spread_below_the_budget():
    space = SearchSpace.named("mobile", input_features=10)
    profile = _PricedByParams()
    rng = np.random.default_rng(0)
    prices = sorted({a.label(): profile.predict_latency(a) for a in (space.sample(rng) for _ in range(256))}.values())
    budget = prices[len(prices) // 2]
    picks = near_budget_models(space, profile, budget, models=3, seed=0)
    priced = [profile.predict_latency(a) for a in picks]
    assert len(picks) == 3 and priced == sorted(priced) and max(priced) <= budget
    assert priced[0] == prices[0] and priced[-1] == max(p for p in prices if p <= budget)


def test_near_budget_models_fall_back_to_the_fastest_when_none_fit():
    space = SearchSpace.named("mobile", input_features=10)
    picks = near_budget_models(space, _PricedByParams(), 1e-9, models=2, seed=0)
    rng = np.random.default_rng(0)
    distinct: dict = {}  # the first draw of each label, as near_budget_models keeps; equal latencies possible
    for arch in (space.sample(rng) for _ in range(256)):
        distinct.setdefault(arch.label(), arch)
    fastest = sorted(_PricedByParams().predict_latency(a) for a in distinct.values())[:2]
    assert [_PricedByParams().predict_latency(a) for a in picks] == fastest
