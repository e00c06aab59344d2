"""The proxy task: train a candidate briefly on market data and score it.

Taught in: notebooks/06_bybit_data.

A search needs an "accuracy" for hundreds of candidates, so each one is trained
for a moment (by default one epoch over a fixed subsample of 2048 training
windows, batches of 256, Adam at lr 1e-2 with gradient clipping, one thread:
about half a second for a typical candidate, see ``benchmarks/bench_proxy.py``)
and scored on the validation windows. Two targets:

* ``"volatility"``: the log realised volatility of the next ``vol_window`` bars
  (what a market maker quoting spreads or a risk engine sizing positions needs).
  Scores: Pearson and Spearman correlation, R^2 against the persistence forecast
  (the current realised volatility) and against the training mean, QLIKE.
* ``"direction"``: whether the next bar closes up. Scores: directional accuracy,
  the information coefficient (Spearman of prediction and realised return) and
  the annualised Sharpe ratio of trading the sign after costs, beside buy-and-hold.

:data:`DEFAULT_TARGET` is what searches use. Everything is seeded: the same
architecture, task and seed give the same scores (on the same machine and
thread count).

Layout: :mod:`~hwnas.proxy.task` (windows, split, recipe, scores),
:mod:`~hwnas.proxy.training` (the short training, ``train_model``,
``predict_split``, ``evaluate``), :mod:`~hwnas.proxy.metrics` (forecast and
trading metrics) and :mod:`~hwnas.proxy.baselines`; the noise study of the
proxy is :mod:`hwnas.proxy_study`.
"""

from __future__ import annotations

from . import baselines, metrics, task, training
from . import walk_forward as _walk_forward
from .baselines import (
    GRUBaseline,
    LSTMBaseline,
    MLPBaseline,
    RecurrentBaseline,
    TCNBaseline,
    baseline_architecture,
    baseline_model,
    train_baseline,
)
from .metrics import (
    directional_accuracy,
    information_coefficient,
    one_way_anova,
    pearson,
    qlike,
    qlike_log_vol,
    r2_against,
    sharpe_ratio,
    sharpe_standard_error,
    strategy_returns,
)
from .task import (
    BASELINES,
    DEFAULT_TARGET,
    MODEL_METRICS,
    PRIMARY_METRIC,
    RECIPE_FIELDS,
    TARGETS,
    ProxyScore,
    ProxySplit,
    ProxyTask,
    make_proxy_task,
    min_task_rows,
    score_predictions,
)
from .training import evaluate, evaluate_splits, predict_split, torch_settings, train_model, train_targets
from .walk_forward import fold_tasks, split_score, walk_forward, walk_forward_select

__all__ = [*task.__all__, *training.__all__, *metrics.__all__, *baselines.__all__, *_walk_forward.__all__]
