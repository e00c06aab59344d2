"""Dominance, non-dominated sorting, hypervolume and the MnasNet reward against hand values,
brute force and hypothesis properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwnas.pareto import (
    crowding_distance,
    dominates,
    hypervolume,
    mnas_reward,
    non_dominated_sort,
    pareto_front,
)


def brute_front(points: np.ndarray) -> list[int]:
    return [i for i in range(len(points))
            if not any(dominates(points[j], points[i]) for j in range(len(points)) if j != i)]


def inclusion_exclusion(points: np.ndarray, reference: np.ndarray) -> float:
    """HV as the inclusion-exclusion sum over every subset's intersection box."""
    inside = [p for p in points if np.all(p < reference)]
    total = 0.0
    for k in range(1, len(inside) + 1):
        for subset in itertools.combinations(inside, k):
            corner = np.max(subset, axis=0)
            total += (-1) ** (k + 1) * float(np.prod(reference - corner))
    return total


def point_sets(m: int, max_n: int = 7) -> st.SearchStrategy[np.ndarray]:
    # small integers make ties and duplicates frequent, the hard cases
    return st.integers(0, max_n).flatmap(lambda n: arrays(float, (n, m), elements=st.integers(0, 5).map(float)))


@pytest.mark.parametrize("points, reference, expected", [
    ([(1, 2), (2, 1)], (3, 3), 3.0),
    ([(1, 3), (2, 2), (3, 1)], (4, 4), 6.0),
    ([(1, 3), (2, 2), (3, 1), (3, 3)], (4, 4), 6.0),
    ([(0, 0, 1), (1, 1, 0)], (2, 2, 2), 5.0),
    ([(2, 1, 1), (1, 2, 1), (1, 1, 2)], (3.5, 3.5, 3.5), 14.625),
])
def test_hypervolume_hand_values(points: list, reference: tuple, expected: float) -> None:
    assert hypervolume(points, reference) == pytest.approx(expected, abs=1e-12)


def test_hypervolume_staircase_closed_form() -> None:
    # n points (i, n - 1 - i) against (n, n): the staircase area n(n+1)/2
    n = 50
    points = [(i, n - 1 - i) for i in range(n)]
    assert hypervolume(points, (n, n)) == pytest.approx(n * (n + 1) / 2)
    # 3-D: a box per point along a diagonal plane, checked against inclusion-exclusion
    pts = np.array([(0, 1, 2), (1, 2, 0), (2, 0, 1)], float)
    assert hypervolume(pts, (3, 3, 3)) == pytest.approx(inclusion_exclusion(pts, np.array([3.0, 3, 3])))


def test_hypervolume_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        hypervolume([(1, float("nan"))], (3, 3))
    with pytest.raises(ValueError, match="infinite"):
        hypervolume([(1, 2)], (3, float("inf")))
    with pytest.raises(ValueError, match="objectives"):
        hypervolume([(1, 2, 3)], (3, 3))
    with pytest.raises(ValueError, match="reference"):
        hypervolume([(4, 4)], (3, 3))
    assert hypervolume(np.zeros((0, 2)), (1, 1)) == 0.0
    # a point not strictly better than the reference adds nothing
    assert hypervolume([(1, 1), (3, 0)], (3, 3)) == pytest.approx(4.0)


@pytest.mark.parametrize("m", [2, 3, 4])
@settings(max_examples=60)
@given(data=st.data())
def test_hypervolume_equals_inclusion_exclusion(m: int, data: st.DataObject) -> None:
    points = data.draw(point_sets(m, 6))
    reference = np.full(m, 6.0)
    assert hypervolume(points, reference) == pytest.approx(inclusion_exclusion(points, reference), abs=1e-9)


@pytest.mark.parametrize("m", [2, 3, 4])
@settings(max_examples=60)
@given(data=st.data())
def test_hypervolume_monotone_and_blind_to_dominated_points(m: int, data: st.DataObject) -> None:
    points = data.draw(point_sets(m, 8))
    extra = np.array(data.draw(st.lists(st.integers(0, 5).map(float), min_size=m, max_size=m)))
    reference = np.full(m, 6.0)
    before = hypervolume(points, reference)
    after = hypervolume(np.vstack([points, extra]) if len(points) else extra[None], reference)
    assert after >= before - 1e-9
    if len(points):
        dominated = points[0] + 0.5  # worse than points[0] in every objective
        assert hypervolume(np.vstack([points, dominated]), reference) == pytest.approx(before, abs=1e-9)


@pytest.mark.parametrize("m", [2, 3, 4])
@settings(max_examples=80)
@given(data=st.data())
def test_front_and_sort_against_brute_force(m: int, data: st.DataObject) -> None:
    points = data.draw(point_sets(m, 12))
    front = pareto_front(points)
    assert front.tolist() == brute_front(points)
    for i in front:  # no front point is dominated
        assert not any(dominates(points[j], points[i]) for j in range(len(points)))
    for i in set(range(len(points))) - set(front.tolist()):  # every other point is dominated by one on it
        assert any(dominates(points[j], points[i]) for j in front)
    fronts = non_dominated_sort(points)
    assert sorted(i for f in fronts for i in f) == list(range(len(points)))
    remaining = np.arange(len(points))
    for f in fronts:  # each front is the first front of what the earlier fronts left
        expected = remaining[brute_front(points[remaining])]
        assert f.tolist() == expected.tolist()
        remaining = np.setdiff1d(remaining, f)


def test_sort_2d_large_matches_general_algorithm() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 30, size=(400, 2)).astype(float)
    fast = non_dominated_sort(points)
    padded = np.hstack([points, np.zeros((len(points), 1))])  # a constant third objective: same fronts
    general = non_dominated_sort(padded)
    assert [f.tolist() for f in fast] == [f.tolist() for f in general]


def test_dominates() -> None:
    assert dominates((1, 2), (2, 2))
    assert not dominates((1, 2), (1, 2))
    assert not dominates((1, 3), (2, 2))
    with pytest.raises(ValueError, match="same number"):
        dominates((1, 2), (1, 2, 3))


def test_crowding_distance() -> None:
    points = np.array([(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)])
    distance = crowding_distance(points)
    assert np.isinf(distance[[0, 3]]).all()
    # point 1: neighbours (0, 4) and (3, 1) -> 3/4 + 3/4; point 2: (1, 3) and (4, 0) -> 3/4 + 3/4
    assert distance[1] == pytest.approx(1.5) and distance[2] == pytest.approx(1.5)
    assert np.isinf(crowding_distance([(1.0, 2.0), (2.0, 1.0)])).all()


@settings(max_examples=100)
@given(acc=st.floats(0, 1), lat=st.floats(1e-3, 1e4), target=st.floats(1e-2, 1e4), w=st.floats(-1, 0),
       mem=st.floats(1, 1e8), mem_target=st.floats(1, 1e8))
def test_reward_matches_its_formula(acc: float, lat: float, target: float, w: float, mem: float,
                                    mem_target: float) -> None:
    assert mnas_reward(acc, lat, target, w) == pytest.approx(acc * (lat / target) ** w)
    hard = acc * (1.0 if lat <= target else target / lat)
    assert mnas_reward(acc, lat, target, w, hard=True) == pytest.approx(hard)
    both = acc * (lat / target) ** w * (mem / mem_target) ** -0.07
    assert mnas_reward(acc, lat, target, w, memory=mem, memory_target=mem_target) == pytest.approx(both)
    hard_mem = hard * (1.0 if mem <= mem_target else mem_target / mem)
    assert mnas_reward(acc, lat, target, hard=True, memory=mem, memory_target=mem_target) == pytest.approx(hard_mem)


def test_reward_hand_values_and_vectorised() -> None:
    # twice as slow needs 2^0.07 (about 5%) more accuracy for the same reward
    assert mnas_reward(0.5 * 2 ** 0.07, 2.0, 1.0) == pytest.approx(0.5)
    assert 2 ** 0.07 == pytest.approx(1.0497, abs=1e-4)
    out = mnas_reward(np.array([0.5, 0.5, 0.5]), np.array([0.5, 1.0, 2.0]), 1.0, hard=True)
    assert isinstance(out, np.ndarray) and out.tolist() == [0.5, 0.5, 0.25]
    assert isinstance(mnas_reward(0.5, 1.0, 1.0), float)
    with pytest.raises(ValueError, match="target"):
        mnas_reward(0.5, 1.0, 0.0)
    with pytest.raises(ValueError, match="memory_target"):
        mnas_reward(0.5, 1.0, 1.0, memory=10)
    with pytest.raises(ValueError, match="w"):
        mnas_reward(0.5, 1.0, 1.0, w=0.5)
    assert math.isclose(mnas_reward(0.8, 3.0, 3.0, w=-1.0), 0.8)


def test_pareto_layers_hypervolume_boxes_curves_and_memory_front_draw_their_data() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwnas import plots

    points = np.array([(1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (3.0, 3.0)])
    ax = plots.pareto_layers(points, non_dominated_sort(points))
    assert len(ax.collections) == 2  # one scatter per front
    assert ax.collections[1].get_offsets().tolist() == [[3.0, 3.0]]
    ax = plots.hypervolume_boxes(points[:3], (4, 4), value=6.0)
    assert len(ax.patches) == 3 and ax.get_title() == "hypervolume = 6"
    ax = plots.hypervolume_curves({"random": [[0.1, 0.2, 0.3], [0.1, 0.1, 0.5]], "evolution": [[0.2, 0.3, 0.4]]})
    lines = {line.get_label(): line.get_ydata().tolist() for line in ax.lines}
    assert lines["random (mean of 2)"] == pytest.approx([0.1, 0.15, 0.4])
    assert lines["evolution (mean of 1)"] == [0.2, 0.3, 0.4]
    ax = plots.memory_front([100, 200, 300], [0.1, 0.3, 0.2], [1000, 5000, 2000], [True, True, False])
    assert ax.collections[1].get_offsets().tolist() == [[100.0, 0.1], [200.0, 0.3]]
    plt.close("all")


# ---------------------------------------------------------------- the trader's reference

FRONT = np.array([[-0.70, 0.5], [-0.60, 0.2], [-0.50, 0.1]])  # (-score, LAT/T)


def test_trader_reference_counts_only_what_beats_persistence_within_the_budget() -> None:
    from hwnas.pareto import trader_reference

    ref = trader_reference(0.55)
    assert ref.tolist() == [-0.55, 1.0]
    assert trader_reference(0.55, 3).tolist() == [-0.55, 1.0, 1.0]
    # staircase by hand: [-0.70, -0.60) x (1 - 0.5) + [-0.60, -0.55) x (1 - 0.2); the 0.50 scorer is out
    assert hypervolume(FRONT[:2], ref) == pytest.approx(0.10 * 0.5 + 0.05 * 0.8)
    # the old reference (0, 1): the cheap 0.50 scorer alone carries 0.45 of 0.58
    assert hypervolume(FRONT, [0.0, 1.0]) == pytest.approx(0.10 * 0.5 + 0.10 * 0.8 + 0.50 * 0.9)
    with pytest.raises(ValueError, match="baseline_score"):
        trader_reference(float("nan"))


def test_search_result_under_the_trader_reference_and_its_attainment_curve() -> None:
    import hwnas
    from hwnas.search import Evaluation, Metrics, SearchProblem, SearchResult, SearchRun

    space = hwnas.SearchSpace.default(input_features=4)
    problem = SearchProblem(space, hwnas.fpga_profile(hwnas.ZU9EG), 100.0, 5)
    rows = [(0.50, 10.0), (0.60, 20.0), (0.80, 150.0), (0.70, 50.0), (float("nan"), 5.0)]
    rng = np.random.default_rng(0)
    history = [Evaluation(i, space.sample(rng), Metrics(score=s, latency_us=lat, memory_bytes=1, flops=1,
                                                         params=1), False, 0.0)
               for i, (s, lat) in enumerate(rows)]
    result = SearchResult(history, problem, SearchRun("random"))
    ref = problem.reference(0.55)
    assert ref.tolist() == [-0.55, 1.0] and problem.reference().tolist() == [0.0, 1.0]
    assert result.hypervolume(ref) == pytest.approx(0.10 * 0.5 + 0.05 * 0.8)
    assert result.hypervolume_curve(ref).tolist() == pytest.approx([0.0, 0.05 * 0.8, 0.05 * 0.8, 0.09, 0.09])
    assert result.hypervolume() == pytest.approx(0.10 * 0.5 + 0.10 * 0.8 + 0.50 * 0.9)
    # the best score within the budget after each evaluation: 0.80 is over it, the NaN untrained
    curve = result.attainment_curve()
    assert curve.tolist() == pytest.approx([0.50, 0.60, 0.60, 0.70, 0.70])
    assert result.best_within_budget_score() == pytest.approx(0.70)
