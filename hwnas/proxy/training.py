"""Training a candidate on the proxy task: the loop, its predictions, and the evaluation a search calls.

Taught in: notebooks/06_bybit_data.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..architecture import Architecture
from ..checks import require_choice, require_int
from ..model import build_model
from ..numerics import torch_threads
from .task import ProxyScore, ProxySplit, ProxyTask, score_run


@contextlib.contextmanager
def torch_settings(threads: int) -> Iterator[None]:
    """Run with a fixed thread count and deterministic algorithms, then restore."""
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch_threads(threads):
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def train_targets(task: ProxyTask, split: ProxySplit) -> np.ndarray:
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


def _train_inputs(task: ProxyTask, lookback: int) -> torch.Tensor:
    """The training windows every candidate sees, cut to the last ``lookback`` steps."""
    rows = torch.from_numpy(task.train_indices())
    return task.train.X.index_select(0, rows)[:, :, task.lookback - lookback:].contiguous()


def _fit(model: nn.Module, task: ProxyTask, lookback: int, seed: int, epochs: int) -> tuple[float, bool]:
    """Train ``model`` on the task's training windows; training seconds and whether it diverged.

    The model is left in eval mode.
    """
    X = _train_inputs(task, lookback)
    y = torch.from_numpy(train_targets(task, task.train)[task.train_indices()].astype(np.float32))
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
    return train_seconds, diverged


def _raw_outputs(model: nn.Module, inputs: torch.Tensor, lookback: int) -> np.ndarray:
    """The model's outputs on ``inputs`` (last ``lookback`` steps), as float64."""
    with torch.no_grad():  # small chunks stay in cache: faster than one big batch
        outs = [model(c[:, :, -lookback:].contiguous()).squeeze(-1) for c in inputs.split(256)]
    return torch.cat(outs).double().numpy()


def _check_epochs(epochs: int | None, task: ProxyTask) -> int:
    """``epochs`` (the task's when None), an integer >= 1."""
    return task.epochs if epochs is None else require_int(epochs, "epochs", 1)


def train_model(arch: Architecture, task: ProxyTask, seed: int = 0, *,
                epochs: int | None = None) -> nn.Module:
    """Train ``arch`` exactly as :func:`evaluate` does and return the model, in eval mode.

    The weights come from ``build_model(arch, seed)``, the batch order from
    ``seed``, ``epochs`` defaults to the task's; use :func:`predict_split` for
    its predictions (e.g. to score a quantised copy of it).

    Taught in: notebooks/06_bybit_data.
    """
    _check_arch(arch, task)
    epochs = _check_epochs(epochs, task)
    with torch_settings(task.num_threads):
        model = build_model(arch, seed=seed)
        _fit(model, task, arch.lookback, seed, epochs)
    return model


def predict_split(model: nn.Module, task: ProxyTask, split: str, lookback: int) -> np.ndarray:
    """Predictions of a trained model on ``task.eval_indices(split)``, in the units
    :func:`score_predictions` expects.

    Volatility: log realised volatility. Direction: the logit minus its median
    over the training windows (no look-ahead: a briefly trained classifier
    learns the base rate first and would otherwise be long nearly all the time,
    so its Sharpe ratio would be buy-and-hold's). ``lookback`` is the number of
    last steps of each window the model reads (``arch.lookback``).

    Taught in: notebooks/06_bybit_data.
    """
    name = require_choice(split, "split", ("train", "val", "test"))
    steps = require_int(lookback, "lookback", 1, task.lookback)
    with torch_settings(task.num_threads):
        centre = 0.0
        if task.target == "direction":
            centre = float(np.median(_raw_outputs(model, _train_inputs(task, steps), steps)))
        inputs = task.subset(name).X.index_select(0, torch.from_numpy(task.eval_indices(name)))
        return _to_prediction(task, _raw_outputs(model, inputs, steps) - centre)


def fit_and_predict(model: nn.Module, task: ProxyTask, lookback: int, seed: int,
                     splits: Sequence[str], epochs: int) -> tuple[dict[str, np.ndarray], float, bool]:
    """Train ``model``, then predict each of ``splits`` (:func:`predict_split`).

    Returns predictions per split, training seconds and whether it diverged
    (a non-finite loss, or a non-finite prediction).
    """
    train_seconds, diverged = _fit(model, task, lookback, seed, epochs)
    preds = {}
    for split in splits:
        preds[split] = predict_split(model, task, split, lookback)
        diverged = diverged or not np.isfinite(preds[split]).all()
    return preds, train_seconds, diverged


def _check_splits(splits: Sequence[str]) -> tuple[str, ...]:
    splits = (splits,) if isinstance(splits, str) else tuple(splits)
    bad = [s for s in splits if s not in ("train", "val", "test")]
    if bad or not splits:
        raise ValueError(f"splits must name 'train', 'val' or 'test', got {list(splits)}")
    return splits


def _check_arch(arch: Architecture, task: ProxyTask) -> None:
    """ValueError unless ``arch`` can be trained on ``task`` (features, lookback, outputs)."""
    if not isinstance(arch, Architecture):
        raise ValueError(f"arch must be an Architecture, got {type(arch).__name__}")
    if arch.input_features != task.num_features:
        raise ValueError(
            f"arch.input_features is {arch.input_features} but the task has "
            f"{task.num_features} features {list(task.feature_names)}; build the architecture "
            f"with input_features={task.num_features} (SearchSpace.default(input_features="
            f"{task.num_features}), `hwnas sample --features {task.num_features}`)"
        )
    if arch.lookback > task.lookback:
        raise ValueError(
            f"arch.lookback {arch.lookback} is longer than the task's windows ({task.lookback}); "
            f"build the task with lookback >= {arch.lookback}"
        )
    if arch.num_outputs != 1:
        raise ValueError(f"the proxy task needs num_outputs=1, got {arch.num_outputs}")


def evaluate_splits(arch: Architecture, task: ProxyTask, seed: int = 0, *,
                    splits: Sequence[str] = ("val", "test"), epochs: int | None = None,
                    keep_predictions: bool = False) -> dict[str, ProxyScore]:
    """Train ``arch`` once like :func:`evaluate` and score it on several splits.

    Searches score on ``"val"`` only; the test split is for checking, after the
    fact, that a ranking on validation carries over to later data.

    Taught in: notebooks/06_bybit_data.
    """
    t_start = time.perf_counter()
    splits = _check_splits(splits)
    _check_arch(arch, task)
    epochs = _check_epochs(epochs, task)
    with torch_settings(task.num_threads):
        model = build_model(arch, seed=seed)
        preds, train_seconds, diverged = fit_and_predict(model, task, arch.lookback, seed, splits,
                                                          epochs)
    name = f"arch L{arch.lookback} d{arch.depth}"
    return {split: score_run(name, preds[split], task, split, seed, train_seconds, t_start, epochs,
                          diverged, keep_predictions, len(task.train_indices()))
            for split in splits}


def evaluate(arch: Architecture, task: ProxyTask, seed: int = 0, *, split: str = "val",
             epochs: int | None = None, keep_predictions: bool = False) -> ProxyScore:
    """Train ``arch`` briefly on the task and score it on ``split`` (validation by default).

    This is the proxy a search calls. Seeded and deterministic: the weights come
    from ``build_model(arch, seed)``, the batch order from a generator seeded with
    ``seed``; the thread count is ``task.num_threads`` during the call.
    ``epochs`` overrides the task's (for the longer trainings of the honesty checks).

    Taught in: notebooks/06_bybit_data.
    """
    return evaluate_splits(arch, task, seed, splits=(split,), epochs=epochs,
                           keep_predictions=keep_predictions)[split]


__all__ = ["evaluate", "evaluate_splits", "predict_split", "train_model"]
