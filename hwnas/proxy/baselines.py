"""Hand-designed baselines scored exactly like a candidate.

Taught in: notebooks/06_bybit_data.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ..architecture import Activation, Architecture, HeadType, LayerSpec, OpType
from ..checks import require_choice
from .task import BASELINES, ProxyScore, ProxyTask, eval_targets, score_run
from .training import fit_and_predict, torch_settings


class MLPBaseline(nn.Module):
    """A hand-designed baseline: flatten the window, two hidden layers, one output.

    Taught in: notebooks/06_bybit_data.
    """

    def __init__(self, features: int, lookback: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(features * lookback, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class RecurrentBaseline(nn.Module):
    """A hand-designed baseline: one recurrent layer (``cell``: ``"lstm"`` or ``"gru"``) over time,
    the last hidden state, a linear map. The layer is the module's attribute named after the cell
    (``lstm``/``gru``), so saved weights keep their names.

    Taught in: notebooks/06_bybit_data.
    """

    def __init__(self, features: int, hidden: int = 32, cell: str = "lstm") -> None:
        super().__init__()
        self.cell = require_choice(cell, "cell", ("lstm", "gru"))
        self.add_module(self.cell, {"lstm": nn.LSTM, "gru": nn.GRU}[self.cell](features, hidden, batch_first=True))
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = getattr(self, self.cell)(x.transpose(1, 2))  # (batch, steps, hidden)
        return self.out(seq[:, -1])


class LSTMBaseline(RecurrentBaseline):
    """The LSTM baseline, the course's hand-designed model to beat: :class:`RecurrentBaseline` with an LSTM.

    Taught in: notebooks/06_bybit_data.
    """

    def __init__(self, features: int, hidden: int = 32) -> None:
        super().__init__(features, hidden, "lstm")


class GRUBaseline(RecurrentBaseline):
    """The GRU baseline: :class:`RecurrentBaseline` with a GRU.

    Taught in: notebooks/06_bybit_data.
    """

    def __init__(self, features: int, hidden: int = 32) -> None:
        super().__init__(features, hidden, "gru")


class TCNBaseline(nn.Module):
    """A hand-designed baseline: a temporal convolutional network (Bai, Kolter and Koltun 2018,
    "An Empirical Evaluation of Generic Convolutional and Recurrent Networks for Sequence
    Modeling"): causal convolutions of kernel 3 dilated 1, 2, 4, 8, each in a residual block with
    ReLU, then a linear map of the last step.

    Taught in: notebooks/06_bybit_data.
    """

    def __init__(self, features: int, hidden: int = 32, kernel: int = 3, dilations: tuple[int, ...] = (1, 2, 4, 8)
                 ) -> None:
        super().__init__()
        self.inp = nn.Conv1d(features, hidden, 1)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel, dilation=d) for d in dilations)
        self.pads = [(kernel - 1) * d for d in dilations]
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for conv, pad in zip(self.convs, self.pads):
            h = h + torch.relu(conv(nn.functional.pad(h, (pad, 0))))  # causal: padded on the left only
        return self.out(h[:, :, -1])


def baseline_model(kind: str, features: int, lookback: int) -> nn.Module:
    """The untrained network of a trained baseline ``kind`` (``mlp``, ``lstm``, ``gru``, ``tcn``).

    Taught in: notebooks/06_bybit_data.
    """
    require_choice(kind, "baseline", ("mlp", "lstm", "gru", "tcn"))
    if kind == "mlp":
        return MLPBaseline(features, lookback)
    return {"lstm": LSTMBaseline, "gru": GRUBaseline, "tcn": TCNBaseline}[kind](features)


def baseline_architecture(kind: str, features: int, lookback: int) -> Architecture:
    """A recurrent baseline (``lstm`` or ``gru``) written as an :class:`~hwnas.architecture.Architecture`:
    one recurrent layer of the baseline's width straight from the features, its last state, a linear
    head. Same weights and multiply-adds as :func:`baseline_model`, so a cost model or an analytical
    profile (a GPU's, an FPGA's) prices the baseline the way it prices a candidate.

    Taught in: notebooks/12_capstone.
    """
    cell = require_choice(kind, "recurrent baseline", ("lstm", "gru"))
    hidden = getattr(baseline_model(cell, features, lookback), cell).hidden_size
    layer = LayerSpec(OpType(cell), features, hidden, activation=Activation.NONE)
    return Architecture((layer,), features, lookback, HeadType.LAST)


def train_baseline(kind: str, task: ProxyTask, seed: int = 0, *, lookback: int | None = None,
                   split: str = "val", epochs: int | None = None,
                   keep_predictions: bool = False) -> ProxyScore:
    """Score a baseline with the same data, loop and metrics as :func:`evaluate`.

    ``kind``: ``"persistence"`` (volatility: the current realised volatility;
    direction: the sign of the last return), ``"mean"`` (the training mean:
    for direction a constant position, i.e. buy-and-hold when the mean is
    positive), ``"mlp"`` (:class:`MLPBaseline`), ``"lstm"`` (:class:`LSTMBaseline`), ``"gru"``
    (:class:`GRUBaseline`) or ``"tcn"`` (:class:`TCNBaseline`), the last four trained like a
    candidate on the last ``lookback`` steps (default 64, capped at the task's).

    Taught in: notebooks/06_bybit_data.
    """
    t_start = time.perf_counter()
    require_choice(kind, "baseline", BASELINES)
    lookback = min(64, task.lookback) if lookback is None else int(lookback)
    if not 1 <= lookback <= task.lookback:
        raise ValueError(f"lookback must be in 1..{task.lookback}, got {lookback}")
    epochs = task.epochs if epochs is None else int(epochs)
    if kind in ("persistence", "mean"):
        t = eval_targets(task, split)
        n = len(t["ret_fwd"])
        if task.target == "volatility":
            pred = (t["log_vol_past"].copy() if kind == "persistence"
                    else np.full(n, task.train.targets["log_vol_fwd"].mean()))
        else:
            pred = (t["ret_last"].copy() if kind == "persistence"
                    else np.full(n, task.train.targets["ret_fwd"].mean()))
        return score_run(kind, pred, task, split, seed, 0.0, t_start, 0, False, keep_predictions, 0)
    with torch_settings(task.num_threads):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = baseline_model(kind, task.num_features, lookback)
        preds, train_seconds, diverged = fit_and_predict(model, task, lookback, seed, (split,), epochs)
        pred = preds[split]
    return score_run(f"{kind} (L{lookback})", pred, task, split, seed, train_seconds, t_start, epochs,
                  diverged, keep_predictions, len(task.train_indices()))


__all__ = ["GRUBaseline", "LSTMBaseline", "MLPBaseline", "RecurrentBaseline", "TCNBaseline", "baseline_architecture",
           "baseline_model", "train_baseline"]
