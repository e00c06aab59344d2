"""Multi-objective core: dominance, non-dominated sorting, hypervolume, the MnasNet reward.

Taught in: notebooks/07_pareto.

Every function here **minimises every objective**; ``points`` is an ``(n, m)``
array-like (``n`` points, ``m`` objectives). A maximised quantity such as the
proxy score is negated in one place, :meth:`hwnas.search.SearchProblem.objectives`,
as Optuna's study does. The shapes follow Optuna's ``_multi_objective.py`` and
its WFG hypervolume: plain arrays in, fast paths for 2 and 3 objectives, a
``ValueError`` for NaN, infinite or mismatched input.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from .checks import require_finite_array, require_float, require_positive

__all__ = [
    "crowding_distance",
    "dominates",
    "hypervolume",
    "mnas_reward",
    "non_dominated_sort",
    "trader_reference",
    "pareto_front",
]


def _points(points: Any, where: str = "points", m: int | None = None) -> np.ndarray:
    """``points`` as a finite ``(n, m)`` float array (an empty input becomes ``(0, m)``)."""
    array = require_finite_array(points, where)
    if array.size == 0:
        return np.zeros((0, m or (array.shape[-1] if array.ndim == 2 else 0)))
    if array.ndim != 2:
        raise ValueError(f"{where} must be an (n, m) array of n points and m objectives, "
                         f"got shape {array.shape}")
    if m is not None and array.shape[1] != m:
        raise ValueError(f"{where} has {array.shape[1]} objectives but the reference has {m}")
    return array


def dominates(a: Any, b: Any) -> bool:
    """Whether ``a`` Pareto-dominates ``b``: no worse in every objective, better in one.

    Taught in: notebooks/07_pareto.
    """
    x = require_finite_array(a, "a", ndim=1)
    y = require_finite_array(b, "b", ndim=1)
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same number of objectives, got {x.shape} and {y.shape}")
    return bool(np.all(x <= y) and np.any(x < y))


def _front_2d(values: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points of a 2-objective array, by a sort and a sweep."""
    order = np.lexsort((values[:, 1], values[:, 0]))  # by f1, then f2
    keep: list[int] = []
    best_f2 = np.inf
    last: np.ndarray | None = None
    for index in order:
        point = values[index]
        if point[1] < best_f2 or (last is not None and np.array_equal(point, last)):
            keep.append(int(index))
            best_f2 = min(best_f2, float(point[1]))
            last = point
    return np.sort(np.array(keep, dtype=int))


def _dominated_mask(values: np.ndarray, chunk: int = 512) -> np.ndarray:
    """For each point, whether some other point dominates it (O(m n^2), chunked)."""
    n = len(values)
    dominated = np.zeros(n, dtype=bool)
    for start in range(0, n, chunk):
        block = values[start:start + chunk]  # candidates dominated?
        le = np.all(values[None, :, :] <= block[:, None, :], axis=2)
        lt = np.any(values[None, :, :] < block[:, None, :], axis=2)
        dominated[start:start + chunk] = np.any(le & lt, axis=1)
    return dominated


def pareto_front(points: Any) -> np.ndarray:
    """Indices (ascending) of the points no other point dominates: the first front.

    Equal points do not dominate each other, so duplicates of a front point are
    all on the front. Two objectives take O(n log n); more take O(m n^2).

    Taught in: notebooks/07_pareto.
    """
    values = _points(points)
    if len(values) == 0:
        return np.zeros(0, dtype=int)
    if values.shape[1] == 2:
        return _front_2d(values)
    return np.flatnonzero(~_dominated_mask(values))


def _sort_2d(values: np.ndarray) -> list[np.ndarray]:
    """Fronts of a 2-objective array in O(n log n): each point joins the first front
    whose last member (the lowest f2 so far) does not dominate it."""
    order = np.lexsort((values[:, 1], values[:, 0]))
    last_f2: list[float] = []
    last_index: list[int] = []
    fronts: list[list[int]] = []
    for index in order:
        f2 = float(values[index, 1])
        k = bisect.bisect_right(last_f2, f2)
        if k > 0 and np.array_equal(values[last_index[k - 1]], values[index]):
            k -= 1  # a duplicate of a front's last point joins that front
        if k == len(fronts):
            fronts.append([])
            last_f2.append(f2)
            last_index.append(int(index))
        fronts[k].append(int(index))
        last_f2[k] = f2
        last_index[k] = int(index)
    return [np.sort(np.array(front, dtype=int)) for front in fronts]


def non_dominated_sort(points: Any) -> list[np.ndarray]:
    """The fronts in order: front 0 is :func:`pareto_front`, front 1 the front of the rest, ...

    Each front is an ascending array of indices into ``points``; together they
    partition ``range(n)``. Two objectives take O(n log n) (a sort and binary
    searches); more take O(m n^2) (the dominance matrix, then peeling).

    Taught in: notebooks/07_pareto.
    """
    values = _points(points)
    n = len(values)
    if n == 0:
        return []
    if values.shape[1] == 2:
        return _sort_2d(values)
    counts = np.zeros(n, dtype=int)  # how many points dominate each point
    dominated_by: list[np.ndarray] = []
    for i in range(n):
        better = np.all(values[i] <= values, axis=1) & np.any(values[i] < values, axis=1)
        dominated_by.append(np.flatnonzero(better))
        counts[better] += 1
    fronts: list[np.ndarray] = []
    current = np.flatnonzero(counts == 0)
    while len(current):
        fronts.append(current)
        for index in current:
            counts[dominated_by[index]] -= 1
        current = np.unique(np.array([j for index in current for j in dominated_by[index] if counts[j] == 0],
                                     dtype=int))
    return fronts


def crowding_distance(points: Any) -> np.ndarray:
    """NSGA-II's crowding distance of each point within the set (usually one front).

    Per objective, the points are sorted; the two extremes get infinity and each
    other point the gap between its neighbours divided by the objective's range;
    the distances add over objectives. An objective with zero range adds nothing.

    Taught in: notebooks/07_pareto.
    """
    values = _points(points)
    n, m = values.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(values[:, j], kind="stable")
        column = values[order, j]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


# --------------------------------------------------------------------------- hypervolume


def _hv_2d(values: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by 2-D points (all strictly inside the reference): a sweep."""
    order = np.lexsort((values[:, 1], values[:, 0]))
    area, height = 0.0, float(reference[1])
    for x, y in values[order]:
        if y < height:
            area += (float(reference[0]) - x) * (height - y)
            height = float(y)
    return area


def _hv_3d(values: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by 3-D points: sweep f3 upwards, keep the (f1, f2) staircase
    and its area up to date as each point is inserted (amortised O(n log n))."""
    r1, r2, r3 = (float(v) for v in reference)
    xs: list[float] = []  # staircase: x ascending, y strictly descending
    ys: list[float] = []
    area = volume = 0.0
    previous_z = None
    for x, y, z in values[np.argsort(values[:, 2], kind="stable")]:
        x, y, z = float(x), float(y), float(z)
        if previous_z is not None:
            volume += area * (z - previous_z)
        previous_z = z
        i = bisect.bisect_left(xs, x)
        if (i > 0 and ys[i - 1] <= y) or (i < len(xs) and xs[i] == x and ys[i] <= y):
            continue  # weakly dominated in (f1, f2): adds no area
        j = i
        while j < len(ys) and ys[j] >= y:  # the points the new one dominates
            j += 1
        cover = ys[i - 1] if i > 0 else r2
        start = x
        for k in range(i, j):
            area += (xs[k] - start) * (cover - y)
            start, cover = xs[k], ys[k]
        right = xs[j] if j < len(xs) else r1
        area += (right - start) * (cover - y)
        xs[i:j] = [x]
        ys[i:j] = [y]
    if previous_z is not None:
        volume += area * (r3 - previous_z)
    return volume


def _hv(values: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume of points strictly inside the reference box, any m >= 1."""
    m = values.shape[1]
    if len(values) == 0:
        return 0.0
    if m == 1:
        return float(reference[0] - values[:, 0].min())
    if m == 2:
        return _hv_2d(values, reference)
    if m == 3:
        return _hv_3d(values, reference)
    # m >= 4: slice along the last objective (HSO); each slab is an (m-1)-D problem.
    values = values[pareto_front(values)]
    values = values[np.argsort(values[:, -1], kind="stable")]
    volume = 0.0
    for k in range(len(values)):
        top = values[k + 1, -1] if k + 1 < len(values) else reference[-1]
        if top > values[k, -1]:
            slab = values[: k + 1, :-1]
            volume += _hv(slab[pareto_front(slab)], reference[:-1]) * float(top - values[k, -1])
    return volume


def hypervolume(points: Any, reference: Any) -> float:
    """The exact volume of objective space dominated by ``points`` and bounded by ``reference``.

    ``HV(P, r) = vol( U_{p in P} [p_1, r_1] x ... x [p_m, r_m] )``. Points that
    do not strictly dominate ``reference`` (no worse in every objective) add
    nothing; an empty set has hypervolume 0, but a non-empty set none of whose
    points is strictly better than ``reference`` raises (the reference is
    misplaced). Two objectives: a sweep; three: an O(n log n) staircase sweep;
    four or more: exact slicing, slower.

    Taught in: notebooks/07_pareto.
    """
    ref = require_finite_array(reference, "reference", ndim=1)
    values = _points(points, m=len(ref))
    if len(values) == 0:
        return 0.0
    inside = np.all(values < ref, axis=1)
    if not inside.any():
        raise ValueError(f"reference {ref.tolist()} is not strictly worse than any point in every "
                         f"objective; choose a reference above the points' worst values "
                         f"{values.max(axis=0).tolist()}")
    return float(_hv(values[inside], ref))


# --------------------------------------------------------------------------- the MnasNet reward


def _factor(value: Any, target: float, w: float, hard: bool) -> np.ndarray:
    """``(value / target)^w`` (soft) or 1 up to the target and ``(value / target)^-1`` above (hard)."""
    ratio = np.asarray(value, dtype=float) / target
    if hard:
        return np.where(ratio <= 1.0, 1.0, 1.0 / ratio)
    return np.power(ratio, w)


def mnas_reward(accuracy: Any, latency: Any, target: float, w: float = -0.07, *, hard: bool = False,
                memory: Any = None, memory_target: float | None = None,
                memory_w: float = -0.07) -> Any:
    """MnasNet's reward ``ACC * (LAT / T)^w``, optionally times ``(MEM / M)^memory_w``.

    Soft constraint (default): with ``w = -0.07`` a model twice as slow needs
    ``2^0.07``, about 5% more accuracy for the same reward. Hard constraint
    (``hard=True``): the exponent is 0 while ``LAT <= T`` and -1 above (``w`` is
    not used), and the same rule is applied to memory. The memory term is
    applied only when ``memory`` is given (then ``memory_target`` is required).
    Vectorised: arrays broadcast; a float is returned for scalar inputs.

    Taught in: notebooks/07_pareto.
    """
    target = require_positive(target, "target")
    w = require_float(w, "w", maximum=0.0)
    memory_w = require_float(memory_w, "memory_w", maximum=0.0)
    acc = require_finite_array(accuracy, "accuracy")
    lat = require_finite_array(latency, "latency")
    if np.any(lat < 0):
        raise ValueError("latency must be >= 0")
    reward = acc * _factor(lat, target, w, hard)
    if memory is not None:
        if memory_target is None:
            raise ValueError("memory_target must be given with memory")
        mem_target = require_positive(memory_target, "memory_target")
        mem = require_finite_array(memory, "memory")
        if np.any(mem < 0):
            raise ValueError("memory must be >= 0")
        reward = reward * _factor(mem, mem_target, memory_w, hard)
    if np.ndim(reward) == 0:
        return float(reward)
    return reward


def trader_reference(baseline_score: float, objectives: int = 2) -> np.ndarray:
    """The hypervolume reference a trader needs: ``(-baseline_score, 1[, 1])`` in normalised objectives.

    Over (-score, LAT/T[, MEM/M]) with this reference a candidate adds volume only
    when it scores better than the baseline (persistence's validation score: the
    forecast that costs nothing to beat) **and** runs within the budgets. The
    reference ``(0, 1)`` instead credits any positive correlation, so a nearly empty
    network that scores a little below persistence at a tenth of the budget can
    carry most of a front's volume.

    Taught in: notebooks/07_pareto.
    """
    value = float(baseline_score)
    if not math.isfinite(value):
        raise ValueError(f"baseline_score must be a finite number, got {baseline_score!r}")
    if int(objectives) < 2:
        raise ValueError(f"objectives must be >= 2 (score and latency), got {objectives!r}")
    return np.array([-value] + [1.0] * (int(objectives) - 1))
