"""Small numerical helpers shared by several modules: one home each.

Taught in: notebooks/04_latency_lut (rank correlation of predictions, the
thread count of a measurement) and notebooks/06_bybit_data (the proxy's
information coefficient).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np

from .checks import require_int

MIN_RANK_PAIRS = 3  # fewer pairs than this: a rank correlation says nothing


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation of ``a`` and ``b`` over the pairs where both are finite.

    NaN (never an exception) when fewer than :data:`MIN_RANK_PAIRS` finite pairs
    remain or either side is constant on them: there is no ranking to compare.

    Taught in: notebooks/04_latency_lut.
    """
    from scipy.stats import spearmanr

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"spearman needs two arrays of one shape, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    if int(keep.sum()) < MIN_RANK_PAIRS or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return float("nan")
    return float(spearmanr(x[keep], y[keep]).statistic)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """Run the block with ``threads`` torch intra-op threads; the old count is restored after.

    Taught in: notebooks/04_latency_lut.
    """
    import torch

    wanted = require_int(threads, "threads", 1)
    old = torch.get_num_threads()
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(old)


__all__ = ["MIN_RANK_PAIRS", "spearman", "torch_threads"]
