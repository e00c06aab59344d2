"""The proxy task (windows, split, recipe) and its scores.

Taught in: notebooks/06_bybit_data.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..checks import require_choice, require_int, require_optional_int
from ..data.features import (
    Scaler,
    Split,
    chronological_split,
    feature_warmup,
    make_features,
    make_targets,
    make_windows,
    periods_per_year,
)
from .metrics import (
    directional_accuracy,
    information_coefficient,
    pearson,
    qlike_log_vol,
    r2_against,
    sharpe_ratio,
    sharpe_standard_error,
    strategy_returns,
)

TARGETS = ("volatility", "direction")

DEFAULT_TARGET = "volatility"
"""The target a search scores candidates on: next-window realised volatility.

Evidence (``benchmarks/proxy_noise_study.py`` on the recorded Bybit BTCUSDT
15-minute candles of 2024-03-15 .. 2024-12-31, 20 random architectures of
``SearchSpace.default`` x 3 seeds; ``benchmarks/results/proxy_noise_study.json``;
notebooks/06_bybit_data):

* volatility, validation Pearson correlation: the architecture explains most of
  the variance of one run (ICC 0.81, ANOVA F-test p = 4e-12); the proxy's ranking
  agrees with 5x longer training (Spearman 0.74 on seed means, 0.75 from one seed)
  and with the later test period (0.95);
* direction, information coefficient: ICC 0.10, p = 0.21 (architecture means not
  distinguishable from seed noise), every architecture's mean IC within
  -0.010 .. +0.032 while one IC has a standard error of 0.0135; directional
  accuracy 50.3% against 50% +/- 0.7%; the Sharpe ratio after 5 bps costs
  averages -9.5 (best architecture +0.5; one estimate has a standard error of
  2.5; buy-and-hold +3.6) and differs between architectures only through
  turnover (before costs its ICC is -0.12).

Direction is noise as a search score; a search on it would select on luck.
"""

PRIMARY_METRIC = {"volatility": "pearson", "direction": "ic"}
"""The metric that becomes :attr:`ProxyScore.score` for each target (higher is better)."""

MODEL_METRICS = {
    "volatility": ("pearson", "spearman", "r2_vs_persistence", "r2_vs_mean", "qlike", "rmse"),
    "direction": ("accuracy", "ic", "sharpe", "sharpe_gross", "turnover", "long_share"),
}
"""Metrics that depend on the model (the others describe the data: buy-and-hold, the
persistence QLIKE, standard errors); the honesty checks test these."""

WORST_SCORE = -1.0  # the score of a diverged run: the floor of a correlation
BASELINES = ("persistence", "mean", "mlp", "lstm", "gru", "tcn")
RECIPE_FIELDS = ("epochs", "batch_size", "lr", "max_train_windows", "cost_bps", "num_threads",
                 "data_seed", "grad_clip", "eval_stride")  # ProxyTask fields make_proxy_task accepts


@dataclass(frozen=True, eq=False)
class ProxySplit:
    """The windows of one set: inputs ``X`` ``(n, features, lookback)`` and what follows them.

    ``targets`` holds numpy arrays keyed like the columns of
    :func:`~hwnas.data.features.make_targets` (``log_vol_fwd``, ``direction``,
    ``ret_fwd``, ``ret_next``, ``log_vol_past``, ``ret_last``), aligned with ``X``.

    Taught in: notebooks/06_bybit_data.
    """

    X: torch.Tensor
    targets: dict[str, np.ndarray]
    index: pd.DatetimeIndex

    def __len__(self) -> int:
        return int(self.X.shape[0])


@dataclass(frozen=True, eq=False)
class ProxyTask:
    """Everything :func:`evaluate` needs: prepared windows and the training recipe.

    Build it with :func:`make_proxy_task`; change the recipe with
    :func:`dataclasses.replace` (e.g. ``replace(task, target="direction")``).
    ``lookback`` is the longest window stored; a candidate with a shorter
    lookback sees the last ``arch.lookback`` steps of each window.

    Taught in: notebooks/06_bybit_data.
    """

    train: ProxySplit
    val: ProxySplit
    test: ProxySplit
    feature_names: tuple[str, ...]
    lookback: int
    split: Split
    target: str = DEFAULT_TARGET
    horizon: int = 1
    vol_window: int = 16
    epochs: int = 1
    batch_size: int = 256
    lr: float = 1e-2
    max_train_windows: int | None = 2048
    eval_stride: int | None = None
    cost_bps: float = 5.0
    periods_per_year: float = 35_040.0
    num_threads: int = 1
    data_seed: int = 0
    grad_clip: float | None = 1.0
    source: str = ""

    def __post_init__(self) -> None:
        require_choice(self.target, "target", TARGETS)
        for name in ("epochs", "batch_size", "num_threads"):
            require_int(getattr(self, name), name, 1)
        require_optional_int(self.eval_stride, "eval_stride", 1)
        if self.target == "direction" and (self.eval_stride or 1) > 1:
            raise ValueError("eval_stride must be 1 (or None) for target 'direction': the P&L of "
                             "trading the sign needs every consecutive bar")
        if self.max_train_windows is not None and self.max_train_windows < 1:
            raise ValueError(f"max_train_windows must be >= 1 or None, got {self.max_train_windows}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.cost_bps < 0:
            raise ValueError(f"cost_bps must be >= 0, got {self.cost_bps}")

    @property
    def num_features(self) -> int:
        """Input channels every candidate must accept (``arch.input_features``)."""
        return len(self.feature_names)

    def subset(self, name: str) -> ProxySplit:
        """The split called ``"train"``, ``"val"`` or ``"test"``."""
        require_choice(name, "split", ("train", "val", "test"))
        return getattr(self, name)

    @property
    def stride(self) -> int:
        """Every how many validation/test windows are scored: ``eval_stride``, or by
        default 4 for volatility (targets of neighbouring windows share 15 of their
        16 bars, so every 4th loses little) and 1 for direction (the P&L needs
        every bar)."""
        if self.eval_stride is not None:
            return self.eval_stride
        return 4 if self.target == "volatility" else 1

    def eval_indices(self, split: str) -> np.ndarray:
        """Positions of the scored windows of ``split`` (every :attr:`stride`-th)."""
        return np.arange(0, len(self.subset(split)), self.stride)

    def train_indices(self) -> np.ndarray:
        """The training windows every candidate sees: a fixed, sorted random subset
        of at most ``max_train_windows`` (drawn with ``data_seed``, so all
        candidates and seeds train on the same windows)."""
        n = len(self.train)
        if self.max_train_windows is None or self.max_train_windows >= n:
            return np.arange(n)
        rng = np.random.default_rng(self.data_seed)
        return np.sort(rng.choice(n, size=self.max_train_windows, replace=False))

    def __repr__(self) -> str:
        return (f"ProxyTask(target={self.target!r}, {self.num_features} features x {self.lookback} steps, "
                f"windows {len(self.train):,}/{len(self.val):,}/{len(self.test):,}, "
                f"{self.epochs} epoch(s), source={self.source or 'unknown'!r})")

    def summary(self) -> str:
        """A few lines for a chapter to print (``describe()`` is the same)."""
        n_train = len(self.train_indices())
        return "\n".join([
            f"proxy task: target {self.target!r}, {self.num_features} features x {self.lookback} steps",
            f"windows: train {len(self.train):,} (trains on {n_train:,}), val {len(self.val):,}, "
            f"test {len(self.test):,}; gap {self.split.gap}",
            f"recipe: {self.epochs} epoch(s), batch {self.batch_size}, Adam lr {self.lr}, "
            f"{self.num_threads} thread(s); scores every {self.stride} validation window(s); "
            f"costs {self.cost_bps} bps per unit turnover",
        ])

    describe = summary


def min_task_rows(lookback: int, *, horizon: int = 1, vol_window: int = 16,
                  feature_kwargs: dict[str, Any] | None = None, min_windows: int = 100) -> int:
    """Candles :func:`make_proxy_task` needs for ``min_windows`` windows across its three sets.

    The features' warm-up rows, the first window's ``lookback - 1`` earlier rows, the targets'
    ``max(horizon, vol_window)`` later rows, the two gaps of ``lookback + max(horizon, vol_window)``
    windows, and ``min_windows`` (a train, validation and test set of a useful size).

    Taught in: notebooks/12_capstone.
    """
    ahead = max(require_int(horizon, "horizon", 1), require_int(vol_window, "vol_window", 1))
    lookback = require_int(lookback, "lookback", 1)
    warmup = feature_warmup(**{k: v for k, v in (feature_kwargs or {}).items()
                               if k in ("vol_windows", "momentum_horizons", "zscore_window", "volume_window")})
    return warmup + lookback - 1 + ahead + 2 * (lookback + ahead) + require_int(min_windows, "min_windows", 1)


def make_proxy_task(
    frame: pd.DataFrame,
    target: str = DEFAULT_TARGET,
    lookback: int = 128,
    *,
    horizon: int = 1,
    vol_window: int = 16,
    train: float = 0.6,
    val: float = 0.2,
    feature_kwargs: dict[str, Any] | None = None,
    interval: str | int | None = None,
    source: str = "",
    **recipe: Any,
) -> ProxyTask:
    """Features, targets, windows, a gapped chronological split and a train-only scaler.

    ``lookback`` is the longest window any candidate may use (the default search
    space goes up to 128). ``recipe`` sets the training fields of
    :class:`ProxyTask` (``epochs``, ``batch_size``, ``lr``, ``max_train_windows``,
    ``cost_bps``, ``num_threads``, ``data_seed``, ``grad_clip``, ``eval_stride``). The bar interval
    for annualising the Sharpe ratio comes from ``interval`` or the index.

    Taught in: notebooks/06_bybit_data.
    """
    require_choice(target, "target", TARGETS)
    require_int(lookback, "lookback", 1)
    if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.DatetimeIndex) \
            or str(frame.index.tz) != "UTC":
        index = type(frame.index).__name__ if isinstance(frame, pd.DataFrame) else type(frame).__name__
        tz = f" in {frame.index.tz}" if isinstance(frame, pd.DataFrame) and isinstance(
            frame.index, pd.DatetimeIndex) else ""
        raise ValueError(f"make_proxy_task needs a DataFrame of candles with a UTC DatetimeIndex (what "
                         f"load_klines(...).frame and fetch_bybit_klines return), got a {index}{tz}")
    unknown = set(recipe) - set(RECIPE_FIELDS)
    if unknown:
        raise ValueError(f"unknown recipe field(s) {sorted(unknown)}; allowed: {list(RECIPE_FIELDS)}")
    features = make_features(frame, **(feature_kwargs or {}))
    targets = make_targets(frame, horizon=horizon, vol_window=vol_window)
    _, _, ends = make_windows(features.iloc[:, :1], targets, lookback)  # cheap: which windows exist
    gap_horizon = max(horizon, vol_window)
    split = chronological_split(len(ends), train, val, lookback=lookback, horizon=gap_horizon)
    # Fit the scaler on the feature rows the training windows read, and nothing later.
    last_train_row = features.index.get_loc(ends[split.train.stop - 1])
    scaler = Scaler().fit(features.iloc[: last_train_row + 1])
    X, y, index = make_windows(scaler.transform(features), targets, lookback)
    assert index.equals(ends)
    columns = list(targets.columns)

    def part(r: range) -> ProxySplit:
        sl = slice(r.start, r.stop)
        arrays = {c: np.ascontiguousarray(y[sl, j], dtype=np.float64) for j, c in enumerate(columns)}
        return ProxySplit(torch.from_numpy(np.ascontiguousarray(X[sl])), arrays, index[sl])

    ppy = periods_per_year(interval if interval is not None else frame.index)
    return ProxyTask(
        train=part(split.train), val=part(split.val), test=part(split.test),
        feature_names=tuple(features.columns), lookback=lookback, split=split, target=target,
        horizon=horizon, vol_window=vol_window, periods_per_year=ppy, source=source, **recipe,
    )


@dataclass(frozen=True, eq=False)
class ProxyScore:
    """The result of one proxy evaluation.

    ``score`` is the metric named by :data:`PRIMARY_METRIC` for the target (higher
    is better; 0 for a constant prediction, -1 when training diverged);
    ``metrics`` holds every metric;
    ``predictions`` the model's outputs on the scored windows when asked for.

    Taught in: notebooks/06_bybit_data.
    """

    model: str
    target: str
    split: str
    seed: int
    score: float
    metrics: dict[str, float]
    train_seconds: float
    total_seconds: float
    epochs: int
    n_train: int
    n_eval: int
    diverged: bool = False
    predictions: np.ndarray | None = field(default=None, repr=False)

    def summary(self) -> str:
        """One line: model, score and the main metrics."""
        shown = ", ".join(f"{k} {v:+.4f}" for k, v in self.metrics.items()
                          if k in SHOWN_METRICS[self.target])
        return (f"{self.model:<28} {self.target:<10} {self.split}: score {self.score:+.4f} ({shown}); "
                f"trained {self.train_seconds:.2f} s")

    def __repr__(self) -> str:
        return (f"ProxyScore({self.model!r}, {self.target} {self.split}: score {self.score:+.4f}, "
                f"seed {self.seed}{', diverged' if self.diverged else ''})")


SHOWN_METRICS = {
    "volatility": ("pearson", "spearman", "r2_vs_persistence", "r2_vs_mean", "qlike"),
    "direction": ("accuracy", "ic", "sharpe", "buy_hold_sharpe"),
}


def score_predictions(pred: np.ndarray, task: ProxyTask, split: str = "val") -> dict[str, float]:
    """Every metric of the task's target for predictions on the scored windows of a split.

    ``pred`` holds one prediction per window of ``task.eval_indices(split)``.
    Volatility predictions are log realised volatilities; direction predictions
    are any score whose sign is the position (a logit, a forecast return).

    Taught in: notebooks/06_bybit_data.
    """
    t = eval_targets(task, split)
    pred = np.asarray(pred, float)
    n = len(t["ret_fwd"])
    if pred.shape != (n,):
        raise ValueError(f"expected {n} predictions for split {split!r}, got shape {pred.shape}")
    if task.target == "volatility":
        y = t["log_vol_fwd"]
        train_mean = float(task.train.targets["log_vol_fwd"].mean())
        return {
            "pearson": pearson(pred, y),
            "spearman": information_coefficient(pred, y),
            "r2_vs_persistence": r2_against(pred, y, t["log_vol_past"]),
            "r2_vs_mean": r2_against(pred, y, train_mean),
            "qlike": qlike_log_vol(pred, y),
            "qlike_persistence": qlike_log_vol(t["log_vol_past"], y),
            "rmse": float(np.sqrt(np.mean((pred - y) ** 2))),
        }
    ret = np.expm1(t["ret_next"])  # simple returns for P&L
    positions = np.sign(pred)
    pnl = strategy_returns(positions, ret, task.cost_bps)
    hold = strategy_returns(np.ones_like(ret), ret, task.cost_bps)
    ppy = task.periods_per_year
    sharpe = sharpe_ratio(pnl, ppy)
    acc = directional_accuracy(pred, t["ret_fwd"])
    n_dir = int(np.count_nonzero(t["ret_fwd"]))
    return {
        "accuracy": acc,
        "accuracy_se": float(math.sqrt(0.25 / n_dir)) if n_dir else float("nan"),
        "ic": information_coefficient(pred, t["ret_fwd"]),
        "sharpe": sharpe,
        "sharpe_gross": sharpe_ratio(strategy_returns(positions, ret, 0.0), ppy),
        "sharpe_se": sharpe_standard_error(0.0 if math.isnan(sharpe) else sharpe, len(pnl), ppy),
        "turnover": float(np.mean(np.abs(np.diff(positions, prepend=0.0)))),
        "buy_hold_sharpe": sharpe_ratio(hold, ppy),
        "long_share": float(np.mean(positions > 0)),
    }


def eval_targets(task: ProxyTask, split: str) -> dict[str, np.ndarray]:
    """The target arrays of the scored windows of ``split``."""
    rows = task.eval_indices(split)
    return {k: v[rows] for k, v in task.subset(split).targets.items()}


def score_run(model_name: str, pred: np.ndarray | None, task: ProxyTask, split: str, seed: int,
              train_seconds: float, t_start: float, epochs: int, diverged: bool,
              keep_predictions: bool, n_train: int) -> ProxyScore:
    """The :class:`ProxyScore` of one run (the floor score when it diverged)."""
    if diverged or pred is None:
        metrics = {k: float("nan") for k in MODEL_METRICS[task.target]}
        score = WORST_SCORE
    else:
        metrics = score_predictions(pred, task, split)
        score = metrics[PRIMARY_METRIC[task.target]]
        if math.isnan(score):  # a constant prediction carries no information
            score = 0.0
    return ProxyScore(
        model=model_name, target=task.target, split=split, seed=seed, score=float(score),
        metrics=metrics, train_seconds=train_seconds, total_seconds=time.perf_counter() - t_start,
        epochs=epochs, n_train=n_train, n_eval=len(task.eval_indices(split)), diverged=diverged,
        predictions=pred if keep_predictions else None,
    )


__all__ = [
    "BASELINES",
    "DEFAULT_TARGET",
    "MODEL_METRICS",
    "PRIMARY_METRIC",
    "RECIPE_FIELDS",
    "TARGETS",
    "ProxyScore",
    "ProxySplit",
    "ProxyTask",
    "make_proxy_task",
    "min_task_rows",
    "score_predictions",
]
