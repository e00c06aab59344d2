"""Walk-forward evaluation: retrain on rolling windows of the data, score each later period.

Taught in: notebooks/12_capstone.

Two uses. :func:`walk_forward` re-cuts a whole kline frame into rolling tasks (each with
its own test period): the out-of-sample report. :func:`fold_tasks` and
:func:`walk_forward_select` stay inside one task's training and validation windows
(the test period is never read): the selection of the final model from a front, on
``folds`` validation blocks across time instead of the one validation period.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..checks import require_int
from .baselines import train_baseline
from .task import PRIMARY_METRIC, ProxySplit, ProxyTask, make_proxy_task, score_predictions
from .training import predict_split, train_model

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from ..architecture import Architecture

__all__ = ["fold_tasks", "split_score", "walk_forward", "walk_forward_select"]


def split_score(model: nn.Module, task: ProxyTask, split: str, lookback: int) -> float:
    """The task's primary metric of a trained model's predictions on ``split``.

    Taught in: notebooks/12_capstone.
    """
    return float(score_predictions(predict_split(model, task, split, lookback), task, split)[
        PRIMARY_METRIC[task.target]])


def walk_forward(models: Mapping[str, Architecture], frame: pd.DataFrame, *, folds: int = 2,
                 fraction: float = 0.8, lookback: int | None = None, seed: int = 0,
                 baselines: Sequence[str] = ("persistence", "lstm"), interval: str | None = None,
                 **recipe: Any) -> list[dict[str, Any]]:
    """Retrain ``models`` (and ``baselines``) on rolling windows of ``frame``; each window's test score.

    Window ``i`` of ``folds`` holds ``fraction`` of the rows, starting ``i``
    steps of ``(1 - fraction) / (folds - 1)`` of the rows later; inside it the
    proxy task's chronological 60/20/20 split with gaps, so each later window is
    trained on later data and scored on the period after it. ``recipe`` sets the
    training fields (``epochs``, ``max_train_windows``, ...). Rows: ``fold``,
    ``test_start``, ``test_end``, ``model``, ``test``.

    Taught in: notebooks/12_capstone.
    """

    folds = require_int(folds, "folds", 2)
    if not 0.2 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0.2, 1), got {fraction!r}")
    steps = max(a.lookback for a in models.values()) if lookback is None else require_int(lookback, "lookback", 1)
    length = int(len(frame) * fraction)
    rows: list[dict[str, Any]] = []
    for fold in range(folds):
        start = round(fold * (len(frame) - length) / (folds - 1))
        task = make_proxy_task(frame.iloc[start:start + length], lookback=steps, interval=interval, **recipe)
        period = {"fold": fold, "test_start": str(task.test.index[0]), "test_end": str(task.test.index[-1])}
        for name, arch in models.items():
            model = train_model(arch, task, seed)
            rows.append({**period, "model": name, "test": split_score(model, task, "test", arch.lookback)})
        for kind in baselines:
            rows.append({**period, "model": kind,
                         "test": float(train_baseline(kind, task, seed, split="test").score)})
    return rows


def _cut(split: ProxySplit, start: int, stop: int) -> ProxySplit:
    return ProxySplit(split.X[start:stop], {k: v[start:stop] for k, v in split.targets.items()},
                      split.index[start:stop])


def fold_tasks(task: ProxyTask, folds: int = 3, fraction: float = 0.4) -> list[ProxyTask]:
    """``folds`` walk-forward tasks inside ``task``'s training and validation windows.

    The training and validation windows, in time order, are one series of ``n``; its last
    ``fraction`` is cut into ``folds`` consecutive validation blocks. Fold ``i`` trains on
    every window before its block less a gap of ``task.split.gap`` windows (so no window or
    target straddles the two) and is scored on the block (its ``val``; its ``test`` is the
    same block, so nothing can read the real test period). The scaler stays the task's,
    fitted on the training period.

    Taught in: notebooks/12_capstone.
    """
    import numpy as np
    import torch

    folds = require_int(folds, "folds", 1)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    joined = ProxySplit(torch.cat([task.train.X, task.val.X]),
                        {k: np.concatenate([task.train.targets[k], task.val.targets[k]]) for k in task.train.targets},
                        task.train.index.append(task.val.index))
    n, gap = len(joined), task.split.gap
    block = int(n * fraction) // folds
    first = n - block * folds
    if block < 1 or first - gap < 1:
        raise ValueError(f"{n} training and validation windows are too few for {folds} walk-forward folds "
                         f"with a gap of {gap}")
    out = []
    for i in range(folds):
        start = first + i * block
        val = _cut(joined, start, start + block)
        out.append(replace(task, train=_cut(joined, 0, start - gap), val=val, test=val))
    return out


def walk_forward_select(candidates: Mapping[str, Architecture], task: ProxyTask, *, folds: int = 3,
                        fraction: float = 0.4, seed: int = 0,
                        baselines: Sequence[str] = ()) -> tuple[str, list[dict[str, Any]]]:
    """The candidate with the best mean validation score over :func:`fold_tasks`, and every fold's row.

    Each candidate (and each of ``baselines``, for reference: never chosen) is trained on each
    fold with ``task``'s recipe and scored on the fold's validation block. Rows: ``fold``,
    ``val_start``, ``val_end``, ``model``, ``score``. Ties go to the earlier candidate (give them
    in order of preference). The test period is never read.

    Taught in: notebooks/12_capstone.
    """
    if not candidates:
        raise ValueError("candidates must hold at least one architecture")
    rows: list[dict[str, Any]] = []
    for fold, part in enumerate(fold_tasks(task, folds, fraction)):
        period = {"fold": fold, "val_start": str(part.val.index[0]), "val_end": str(part.val.index[-1])}
        for name, arch in candidates.items():
            model = train_model(arch, part, seed)
            rows.append({**period, "model": name, "score": split_score(model, part, "val", arch.lookback)})
        for kind in baselines:
            rows.append({**period, "model": kind, "score": float(train_baseline(kind, part, seed, split="val").score)})

    def mean(name: str) -> float:
        values = [r["score"] for r in rows if r["model"] == name]
        value = sum(values) / len(values)
        return value if math.isfinite(value) else -math.inf

    return max(candidates, key=mean), rows
