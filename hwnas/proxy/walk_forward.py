"""Walk-forward evaluation: retrain on rolling windows of the data, score each later period.

Taught in: notebooks/12_capstone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..checks import require_int
from .baselines import train_baseline
from .task import PRIMARY_METRIC, ProxyTask, make_proxy_task, score_predictions
from .training import predict_split, train_model

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from ..architecture import Architecture

__all__ = ["split_score", "walk_forward"]


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
