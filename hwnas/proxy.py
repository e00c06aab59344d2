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
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from .data.features import (
    Scaler,
    Split,
    chronological_split,
    make_features,
    make_targets,
    make_windows,
    periods_per_year,
)
from .model import build_model
from .space import Architecture

__all__ = [
    "BASELINES",
    "DEFAULT_TARGET",
    "MODEL_METRICS",
    "PRIMARY_METRIC",
    "TARGETS",
    "LSTMBaseline",
    "MLPBaseline",
    "ProxyScore",
    "ProxySplit",
    "ProxyTask",
    "directional_accuracy",
    "evaluate",
    "evaluate_splits",
    "information_coefficient",
    "make_proxy_task",
    "noise_study",
    "one_way_anova",
    "qlike",
    "r2_against",
    "sharpe_ratio",
    "score_predictions",
    "sharpe_standard_error",
    "strategy_returns",
    "summarize_noise_study",
    "train_baseline",
]

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

_WORST_SCORE = -1.0  # the score of a diverged run: the floor of a correlation
BASELINES = ("persistence", "mean", "mlp", "lstm")


# --------------------------------------------------------------------------- metrics


def directional_accuracy(pred: np.ndarray, realised: np.ndarray) -> float:
    """Share of the calls that were right: ``sign(pred) == sign(realised)``.

    A prediction of exactly zero makes no call and a realised return of exactly
    zero has no direction; both bars are left out. NaN when no bar is left (a
    model that always outputs zero).
    """
    pred, realised = np.asarray(pred, float), np.asarray(realised, float)
    keep = (realised != 0) & (pred != 0)
    if not keep.any():
        return float("nan")
    return float(np.mean(np.sign(pred[keep]) == np.sign(realised[keep])))


def information_coefficient(pred: np.ndarray, realised: np.ndarray) -> float:
    """Spearman rank correlation of predictions and realised returns (NaN if constant)."""
    pred, realised = np.asarray(pred, float), np.asarray(realised, float)
    if np.ptp(pred) == 0 or np.ptp(realised) == 0:
        return float("nan")
    return float(stats.spearmanr(pred, realised).statistic)


def strategy_returns(positions: np.ndarray, returns: np.ndarray, cost_bps: float = 0.0,
                     initial_position: float = 0.0) -> np.ndarray:
    """Per-bar P&L of holding ``positions[t]`` over the return ``returns[t]`` that follows.

    ``pnl_t = pos_t * r_t - c * |pos_t - pos_{t-1}|`` with ``c = cost_bps / 10^4``
    per unit of turnover (going from +1 to -1 trades 2 units) and
    ``pos_{-1} = initial_position``.
    """
    pos, ret = np.asarray(positions, float), np.asarray(returns, float)
    if pos.shape != ret.shape:
        raise ValueError(f"positions and returns must have the same shape, got {pos.shape} and {ret.shape}")
    if cost_bps < 0:
        raise ValueError(f"cost_bps must be >= 0, got {cost_bps}")
    turnover = np.abs(np.diff(pos, prepend=initial_position))
    return pos * ret - cost_bps * 1e-4 * turnover


def sharpe_ratio(pnl: np.ndarray, periods_per_year: float = 1.0) -> float:
    """Annualised Sharpe ratio ``mean / std * sqrt(periods_per_year)`` (zero risk-free rate).

    ``std`` is the sample standard deviation (ddof 1). NaN when it is zero.
    """
    pnl = np.asarray(pnl, float)
    if len(pnl) < 2:
        return float("nan")
    std = pnl.std(ddof=1)
    if not std > 0:
        return float("nan")
    return float(pnl.mean() / std * math.sqrt(periods_per_year))


def sharpe_standard_error(sharpe: float, n: int, periods_per_year: float = 1.0) -> float:
    """Standard error of an annualised Sharpe ratio estimated from ``n`` i.i.d. bars.

    With ``s`` the per-bar Sharpe ratio, ``se(s) = sqrt((1 + s^2 / 2) / n)``
    (Lo, 2002); annualising multiplies both by ``sqrt(periods_per_year)``.
    """
    per_bar = sharpe / math.sqrt(periods_per_year)
    return math.sqrt((1 + 0.5 * per_bar**2) / n) * math.sqrt(periods_per_year)


def qlike(forecast_var: np.ndarray, realised_var: np.ndarray) -> float:
    """Mean QLIKE loss ``s/h - log(s/h) - 1`` of variance forecasts ``h`` for realised ``s``.

    Zero for a perfect forecast, always >= 0, and it punishes forecasting too
    little variance more than too much (Patton, 2011).
    """
    h, s = np.asarray(forecast_var, float), np.asarray(realised_var, float)
    if (h <= 0).any() or (s <= 0).any():
        raise ValueError("variances must be positive for QLIKE")
    ratio = s / h
    return float(np.mean(ratio - np.log(ratio) - 1))


def r2_against(pred: np.ndarray, realised: np.ndarray, baseline: np.ndarray | float) -> float:
    """Out-of-sample ``R^2 = 1 - SSE(pred) / SSE(baseline)``: > 0 beats the baseline."""
    pred, realised = np.asarray(pred, float), np.asarray(realised, float)
    base = np.broadcast_to(np.asarray(baseline, float), realised.shape)
    sse_base = float(np.sum((realised - base) ** 2))
    if sse_base == 0:
        return float("nan")
    return 1.0 - float(np.sum((realised - pred) ** 2)) / sse_base


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def one_way_anova(scores: np.ndarray) -> dict[str, float]:
    """How much of the score variance the architecture explains.

    ``scores`` is ``(architectures, seeds)``. Returns the one-way ANOVA ``F``
    statistic and its p-value (are the architecture means different at all?),
    the intraclass correlation ``ICC(1) = (MSB - MSW) / (MSB + (k - 1) MSW)``
    (the share of the variance of a single run that is due to the architecture,
    the rest being seed noise), the mean between-architecture and within-
    architecture standard deviations.
    """
    scores = np.asarray(scores, float)
    if scores.ndim != 2 or scores.shape[0] < 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (architectures >= 2, seeds >= 2), got shape {scores.shape}")
    scores = scores[np.isfinite(scores).all(axis=1)]
    a, k = scores.shape
    means = scores.mean(axis=1)
    msb = k * np.sum((means - means.mean()) ** 2) / (a - 1)
    msw = np.sum((scores - means[:, None]) ** 2) / (a * (k - 1))
    f = msb / msw if msw > 0 else float("inf")
    p = float(stats.f.sf(f, a - 1, a * (k - 1))) if np.isfinite(f) else 0.0
    icc = (msb - msw) / (msb + (k - 1) * msw) if (msb + (k - 1) * msw) > 0 else float("nan")
    return {
        "architectures": int(a),
        "seeds": int(k),
        "f": float(f),
        "p": p,
        "icc": float(icc),
        "between_std": float(means.std(ddof=1)),
        "within_std": float(math.sqrt(msw)),
    }


# --------------------------------------------------------------------------- the task


@dataclass(frozen=True, eq=False)
class ProxySplit:
    """The windows of one set: inputs ``X`` ``(n, features, lookback)`` and what follows them.

    ``targets`` holds numpy arrays keyed like the columns of
    :func:`~hwnas.data.features.make_targets` (``log_vol_fwd``, ``direction``,
    ``ret_fwd``, ``ret_next``, ``log_vol_past``, ``ret_last``), aligned with ``X``.
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
        if self.target not in TARGETS:
            raise ValueError(f"target {self.target!r} unknown; choose one of {list(TARGETS)}")
        for name in ("epochs", "batch_size", "num_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.eval_stride is not None and (isinstance(self.eval_stride, bool) or not isinstance(
                self.eval_stride, int) or self.eval_stride < 1):
            raise ValueError(f"eval_stride must be an integer >= 1 or None, got {self.eval_stride!r}")
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
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
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

    def describe(self) -> str:
        """A few lines for a chapter to print."""
        n_train = len(self.train_indices())
        return "\n".join([
            f"proxy task: target {self.target!r}, {self.num_features} features x {self.lookback} steps",
            f"windows: train {len(self.train):,} (trains on {n_train:,}), val {len(self.val):,}, "
            f"test {len(self.test):,}; gap {self.split.gap}",
            f"recipe: {self.epochs} epoch(s), batch {self.batch_size}, Adam lr {self.lr}, "
            f"{self.num_threads} thread(s); scores every {self.stride} validation window(s); "
            f"costs {self.cost_bps} bps per unit turnover",
        ])


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
    """
    if target not in TARGETS:
        raise ValueError(f"target {target!r} unknown; choose one of {list(TARGETS)}")
    unknown = set(recipe) - {"epochs", "batch_size", "lr", "max_train_windows", "cost_bps",
                             "num_threads", "data_seed", "grad_clip", "eval_stride"}
    if unknown:
        raise ValueError(f"unknown recipe field(s) {sorted(unknown)}")
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


# --------------------------------------------------------------------------- scores


@dataclass(frozen=True, eq=False)
class ProxyScore:
    """The result of one proxy evaluation.

    ``score`` is the metric named by :data:`PRIMARY_METRIC` for the target (higher
    is better; 0 for a constant prediction, -1 when training diverged);
    ``metrics`` holds every metric;
    ``predictions`` the model's outputs on the scored windows when asked for.
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
                          if k in _SHOWN[self.target])
        return (f"{self.model:<28} {self.target:<10} {self.split}: score {self.score:+.4f} ({shown}); "
                f"trained {self.train_seconds:.2f} s")


_SHOWN = {
    "volatility": ("pearson", "spearman", "r2_vs_persistence", "r2_vs_mean", "qlike"),
    "direction": ("accuracy", "ic", "sharpe", "buy_hold_sharpe"),
}


def score_predictions(pred: np.ndarray, task: ProxyTask, split: str = "val") -> dict[str, float]:
    """Every metric of the task's target for predictions on the scored windows of a split.

    ``pred`` holds one prediction per window of ``task.eval_indices(split)``.
    Volatility predictions are log realised volatilities; direction predictions
    are any score whose sign is the position (a logit, a forecast return).
    """
    t = _eval_targets(task, split)
    pred = np.asarray(pred, float)
    n = len(t["ret_fwd"])
    if pred.shape != (n,):
        raise ValueError(f"expected {n} predictions for split {split!r}, got shape {pred.shape}")
    if task.target == "volatility":
        y = t["log_vol_fwd"]
        train_mean = float(task.train.targets["log_vol_fwd"].mean())
        return {
            "pearson": _pearson(pred, y),
            "spearman": information_coefficient(pred, y),
            "r2_vs_persistence": r2_against(pred, y, t["log_vol_past"]),
            "r2_vs_mean": r2_against(pred, y, train_mean),
            "qlike": qlike(np.exp(2 * pred), np.exp(2 * y)),
            "qlike_persistence": qlike(np.exp(2 * t["log_vol_past"]), np.exp(2 * y)),
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


def _eval_targets(task: ProxyTask, split: str) -> dict[str, np.ndarray]:
    """The target arrays of the scored windows of ``split``."""
    rows = task.eval_indices(split)
    return {k: v[rows] for k, v in task.subset(split).targets.items()}


# --------------------------------------------------------------------------- training


@contextlib.contextmanager
def _torch_settings(threads: int) -> Iterator[None]:
    """Run with a fixed thread count and deterministic algorithms, then restore."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def _train_targets(task: ProxyTask, split: ProxySplit) -> np.ndarray:
    """What the network is trained to output: standardised log vol, or the up/down label."""
    if task.target == "volatility":
        ref = task.train.targets["log_vol_fwd"]
        return (split.targets["log_vol_fwd"] - ref.mean()) / ref.std()
    return split.targets["direction"]


def _to_prediction(task: ProxyTask, out: np.ndarray) -> np.ndarray:
    """Network output -> prediction in target units (log vol, or a logit for direction)."""
    if task.target == "volatility":
        ref = task.train.targets["log_vol_fwd"]
        return out * ref.std() + ref.mean()
    return out


def _fit_and_predict(model: nn.Module, task: ProxyTask, lookback: int, seed: int,
                     splits: Sequence[str], epochs: int) -> tuple[dict[str, np.ndarray], float, bool]:
    """Train ``model`` on the task's training windows, then predict each of ``splits``.

    Returns predictions per split (target units; for direction the logit minus
    its median on the training windows), training seconds and whether it diverged.
    """
    start_step = task.lookback - lookback
    rows = torch.from_numpy(task.train_indices())
    X = task.train.X.index_select(0, rows)[:, :, start_step:].contiguous()
    y = torch.from_numpy(_train_targets(task, task.train)[rows.numpy()].astype(np.float32))
    loss_fn = nn.MSELoss() if task.target == "volatility" else nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(10_007 * seed + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=task.lr)
    diverged = False
    t0 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        for batch in order.split(task.batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[batch]).squeeze(-1), y[batch])
            if not torch.isfinite(loss):
                diverged = True
                break
            loss.backward()
            if task.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), task.grad_clip)
            optimizer.step()
        if diverged:
            break
    train_seconds = time.perf_counter() - t0
    model.eval()

    def predict(inputs: torch.Tensor) -> np.ndarray:
        with torch.no_grad():  # small chunks stay in cache: faster than one big batch
            outs = [model(c[:, :, -lookback:].contiguous()).squeeze(-1) for c in inputs.split(256)]
        return torch.cat(outs).double().numpy()

    centre = 0.0
    if task.target == "direction":
        # Centre the logits on their median over the training windows (no look-ahead):
        # a briefly trained classifier learns the base rate first and would otherwise be
        # long nearly all the time, so its Sharpe ratio would be buy-and-hold's.
        centre = float(np.median(predict(X)))
    preds = {}
    for split in splits:
        inputs = task.subset(split).X.index_select(0, torch.from_numpy(task.eval_indices(split)))
        out = predict(inputs) - centre
        diverged = diverged or not np.isfinite(out).all()
        preds[split] = _to_prediction(task, out)
    return preds, train_seconds, diverged


def _score(model_name: str, pred: np.ndarray | None, task: ProxyTask, split: str, seed: int,
           train_seconds: float, t_start: float, epochs: int, diverged: bool,
           keep_predictions: bool, n_train: int) -> ProxyScore:
    if diverged or pred is None:
        metrics = {k: float("nan") for k in MODEL_METRICS[task.target]}
        score = _WORST_SCORE
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


def _check_splits(splits: Sequence[str]) -> tuple[str, ...]:
    splits = (splits,) if isinstance(splits, str) else tuple(splits)
    bad = [s for s in splits if s not in ("train", "val", "test")]
    if bad or not splits:
        raise ValueError(f"splits must name 'train', 'val' or 'test', got {list(splits)}")
    return splits


def evaluate_splits(arch: Architecture, task: ProxyTask, seed: int = 0, *,
                    splits: Sequence[str] = ("val", "test"), epochs: int | None = None,
                    keep_predictions: bool = False) -> dict[str, ProxyScore]:
    """Train ``arch`` once like :func:`evaluate` and score it on several splits.

    Searches score on ``"val"`` only; the test split is for checking, after the
    fact, that a ranking on validation carries over to later data.
    """
    t_start = time.perf_counter()
    splits = _check_splits(splits)
    if not isinstance(arch, Architecture):
        raise ValueError(f"arch must be an Architecture, got {type(arch).__name__}")
    if arch.input_features != task.num_features:
        raise ValueError(
            f"arch.input_features is {arch.input_features} but the task has "
            f"{task.num_features} features {list(task.feature_names)}"
        )
    if arch.lookback > task.lookback:
        raise ValueError(
            f"arch.lookback {arch.lookback} is longer than the task's windows ({task.lookback}); "
            f"build the task with lookback >= {arch.lookback}"
        )
    if arch.num_outputs != 1:
        raise ValueError(f"the proxy task needs num_outputs=1, got {arch.num_outputs}")
    epochs = task.epochs if epochs is None else int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    with _torch_settings(task.num_threads):
        model = build_model(arch, seed=seed)
        preds, train_seconds, diverged = _fit_and_predict(model, task, arch.lookback, seed, splits,
                                                          epochs)
    name = f"arch L{arch.lookback} d{arch.depth}"
    return {split: _score(name, preds[split], task, split, seed, train_seconds, t_start, epochs,
                          diverged, keep_predictions, len(task.train_indices()))
            for split in splits}


def evaluate(arch: Architecture, task: ProxyTask, seed: int = 0, *, split: str = "val",
             epochs: int | None = None, keep_predictions: bool = False) -> ProxyScore:
    """Train ``arch`` briefly on the task and score it on ``split`` (validation by default).

    This is the proxy a search calls. Seeded and deterministic: the weights come
    from ``build_model(arch, seed)``, the batch order from a generator seeded with
    ``seed``; the thread count is ``task.num_threads`` during the call.
    ``epochs`` overrides the task's (for the longer trainings of the honesty checks).
    """
    return evaluate_splits(arch, task, seed, splits=(split,), epochs=epochs,
                           keep_predictions=keep_predictions)[split]


# --------------------------------------------------------------------------- baselines


class MLPBaseline(nn.Module):
    """A hand-designed baseline: flatten the window, two hidden layers, one output."""

    def __init__(self, features: int, lookback: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(features * lookback, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LSTMBaseline(nn.Module):
    """A hand-designed baseline: one LSTM layer over time, the last hidden state, a linear map."""

    def __init__(self, features: int, hidden: int = 32) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.lstm(x.transpose(1, 2))  # (batch, steps, hidden)
        return self.out(seq[:, -1])


def train_baseline(kind: str, task: ProxyTask, seed: int = 0, *, lookback: int | None = None,
                   split: str = "val", epochs: int | None = None,
                   keep_predictions: bool = False) -> ProxyScore:
    """Score a baseline with the same data, loop and metrics as :func:`evaluate`.

    ``kind``: ``"persistence"`` (volatility: the current realised volatility;
    direction: the sign of the last return), ``"mean"`` (the training mean:
    for direction a constant position, i.e. buy-and-hold when the mean is
    positive), ``"mlp"`` (:class:`MLPBaseline`) or ``"lstm"`` (:class:`LSTMBaseline`),
    the last two trained like a candidate on the last ``lookback`` steps
    (default 64, capped at the task's).
    """
    t_start = time.perf_counter()
    if kind not in BASELINES:
        raise ValueError(f"baseline {kind!r} unknown; choose one of {list(BASELINES)}")
    lookback = min(64, task.lookback) if lookback is None else int(lookback)
    if not 1 <= lookback <= task.lookback:
        raise ValueError(f"lookback must be in 1..{task.lookback}, got {lookback}")
    epochs = task.epochs if epochs is None else int(epochs)
    if kind in ("persistence", "mean"):
        t = _eval_targets(task, split)
        n = len(t["ret_fwd"])
        if task.target == "volatility":
            pred = (t["log_vol_past"].copy() if kind == "persistence"
                    else np.full(n, task.train.targets["log_vol_fwd"].mean()))
        else:
            pred = (t["ret_last"].copy() if kind == "persistence"
                    else np.full(n, task.train.targets["ret_fwd"].mean()))
        return _score(kind, pred, task, split, seed, 0.0, t_start, 0, False, keep_predictions, 0)
    with _torch_settings(task.num_threads):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = (MLPBaseline(task.num_features, lookback) if kind == "mlp"
                     else LSTMBaseline(task.num_features))
        preds, train_seconds, diverged = _fit_and_predict(model, task, lookback, seed, (split,), epochs)
        pred = preds[split]
    return _score(f"{kind} (L{lookback})", pred, task, split, seed, train_seconds, t_start, epochs,
                  diverged, keep_predictions, len(task.train_indices()))


# --------------------------------------------------------------------------- honesty checks


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return float("nan")
    return float(stats.spearmanr(a[keep], b[keep]).statistic)


def noise_study(
    task: ProxyTask,
    archs: Sequence[Architecture],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    targets: Sequence[str] = TARGETS,
    long_factor: int = 5,
    baselines: Sequence[str] = BASELINES,
    progress: Any = None,
) -> dict[str, Any]:
    """Is the proxy score a property of the architecture, or of the seed and the period?

    For each target, every architecture is trained with every seed twice: with
    the proxy recipe (``task.epochs``, ``"short"``) and with ``long_factor`` times
    as many epochs (``"long"``), each scored on the validation and the test
    windows. Returned, in plain JSON types, for each of :data:`MODEL_METRICS`:

    * ``short``, ``long``, ``short_test``, ``long_test``: ``(architectures, seeds)`` tables;
    * ``anova_short`` / ``anova_long``: :func:`one_way_anova` of the validation
      tables (F-test p-value; ICC, the share of the variance of one run that the
      architecture explains);
    * ``rank_agreement``: Spearman correlations across architectures of the short
      proxy with the long training (seed means, and one short seed against the
      long means, which is what a search sees) and of validation with test
      (does the ranking survive a later period?);
    * ``baselines``: the baselines' mean metrics over the seeds on val and test.

    ``progress`` is called with a message after each architecture when given.
    """
    seeds = [int(s) for s in seeds]
    out: dict[str, Any] = {
        "seeds": seeds,
        "long_factor": long_factor,
        "architectures": [a.to_dict() for a in archs],
        "targets": {},
    }
    for target in targets:
        t_task = replace(task, target=target)
        metric_names = list(MODEL_METRICS[target])
        tables: dict[str, list[list[dict[str, float]]]] = {
            "short": [], "long": [], "short_test": [], "long_test": []}
        seconds: dict[str, list[list[float]]] = {"short": [], "long": []}
        diverged = 0
        for i, arch in enumerate(archs):
            for kind, epochs in (("short", t_task.epochs), ("long", t_task.epochs * long_factor)):
                runs = [evaluate_splits(arch, t_task, seed, epochs=epochs) for seed in seeds]
                tables[kind].append([r["val"].metrics for r in runs])
                tables[f"{kind}_test"].append([r["test"].metrics for r in runs])
                seconds[kind].append([r["val"].total_seconds for r in runs])
                diverged += sum(r["val"].diverged for r in runs)
            if progress is not None:
                short = " ".join(f"{m[PRIMARY_METRIC[target]]:+.3f}" for m in tables["short"][-1])
                long = " ".join(f"{m[PRIMARY_METRIC[target]]:+.3f}" for m in tables["long"][-1])
                progress(f"{target} arch {i + 1}/{len(archs)} short {short} | long {long}")
        first = evaluate(archs[0], t_task, seeds[0])
        result: dict[str, Any] = {
            "primary": PRIMARY_METRIC[target],
            "metrics": metric_names,
            "context": {k: v for k, v in first.metrics.items() if k not in metric_names},
            "n_train": first.n_train,
            "n_eval": first.n_eval,
            "diverged": int(diverged),
            "seconds": seconds,
        }
        for kind, rows in tables.items():
            result[kind] = {m: [[run[m] for run in row] for row in rows] for m in metric_names}
        for kind in ("short", "long"):
            result[f"anova_{kind}"] = {
                m: one_way_anova(np.array(v)) for m, v in result[kind].items()
                if np.isfinite(np.array(v)).all(axis=1).sum() >= 2
            }
        mean = lambda kind, m: np.nanmean(np.array(result[kind][m], float), axis=1)  # noqa: E731
        result["rank_agreement"] = {
            m: {
                "short_long": _spearman(mean("short", m), mean("long", m)),
                "one_seed_long": _spearman(np.array(result["short"][m], float)[:, 0], mean("long", m)),
                "val_test": _spearman(mean("short", m), mean("short_test", m)),
                "val_test_long": _spearman(mean("long", m), mean("long_test", m)),
            }
            for m in metric_names
        }
        base: dict[str, Any] = {}
        for kind in baselines:
            for split in ("val", "test"):
                scored = [train_baseline(kind, t_task, seed, split=split) for seed in
                          (seeds[:1] if kind in ("persistence", "mean") else seeds)]
                base.setdefault(kind, {})[split] = {
                    m: float(np.mean([s.metrics[m] for s in scored])) for m in scored[0].metrics}
            if progress is not None:
                progress(f"{target} baseline {kind}: {scored[0].summary()}")
        result["baselines"] = base
        out["targets"][target] = result
    return out


def summarize_noise_study(study: dict[str, Any], *, alpha: float = 0.01, min_icc: float = 0.5,
                          min_agreement: float = 0.5) -> pd.DataFrame:
    """One row per (target, metric) of a :func:`noise_study` result, with a verdict.

    Columns: ``icc`` and ``p`` (one-way ANOVA of the short proxy on validation),
    ``short_long``, ``one_seed_long`` and ``val_test`` (Spearman rank agreements),
    the mean score on validation and test, and ``verdict``:

    * ``"ranks"`` when the architecture explains the score (``p < alpha`` and
      ``icc >= min_icc``) and the ranking carries over to longer training and to
      the later test period (both agreements ``>= min_agreement``);
    * ``"noise"`` when the architecture does not explain the score (``p >= 0.05``)
      or the ranking carries over to neither;
    * ``"weak"`` otherwise.
    """
    rows = []
    for target, res in study["targets"].items():
        for metric in res["metrics"]:
            anova = res["anova_short"].get(metric)
            if anova is None:
                continue
            agree = res["rank_agreement"][metric]
            carries = [agree["short_long"], agree["val_test"]]
            if anova["p"] < alpha and anova["icc"] >= min_icc and all(a >= min_agreement for a in carries):
                verdict = "ranks"
            elif anova["p"] >= 0.05 or all(not a >= min_agreement for a in carries):
                verdict = "noise"
            else:
                verdict = "weak"
            rows.append({
                "target": target, "metric": metric, "icc": anova["icc"], "p": anova["p"],
                "short_long": agree["short_long"], "one_seed_long": agree["one_seed_long"],
                "val_test": agree["val_test"],
                "mean_val": float(np.nanmean(res["short"][metric])),
                "mean_test": float(np.nanmean(res["short_test"][metric])),
                "verdict": verdict,
            })
    return pd.DataFrame(rows).set_index(["target", "metric"])
