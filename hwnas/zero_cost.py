"""Zero-cost proxies: score an architecture at initialisation, from one mini-batch, with no training.

Taught in: notebooks/13_beyond.

A zero-cost proxy ranks candidates from a freshly initialised network (one
forward and at most one backward pass) instead of training each one. The
proxies here are the ones compared by Abdelfattah et al. 2021 ("Zero-Cost
Proxies for Lightweight NAS", ICLR) and Krishnakumar et al. 2022
(NAS-Bench-Suite-Zero, NeurIPS Datasets and Benchmarks), beside the two
baselines those studies, and White et al. 2023 ("Neural Architecture Search:
Insights from 1000 Papers"), found hard to beat: the parameter count and the
FLOPs.

* ``grad_norm``: ``sum over parameter tensors of ||dL/dθ||_2`` of the task's
  training loss on one mini-batch (Abdelfattah et al. 2021).
* ``snip``: ``sum |θ ⊙ dL/dθ|``, the connection sensitivity of Lee et al. 2019
  ("SNIP: Single-shot Network Pruning based on Connection Sensitivity"), summed
  over all parameters as in Abdelfattah et al. 2021.
* ``synflow``: Tanaka et al. 2020 ("Pruning neural networks without any data by
  iteratively conserving synaptic flow"): every parameter replaced by its
  absolute value, an all-ones input, ``R = sum of the outputs``, score
  ``sum |θ ⊙ dR/dθ|``. No data and no labels. Computed in **double precision**
  (products of absolute weights over many layers overflow float32).
* ``naswot``: Mellor et al. 2021 ("Neural Architecture Search without
  Training", ICML): the binary activation code of each input of a mini-batch,
  kernel ``K[i, j] = number of units where inputs i and j agree`` (``N_A`` minus
  their Hamming distance), score ``log |det K|``. Adapted to these regression
  networks: a unit is one channel at one time step of a layer whose
  activation is ReLU **or GELU**, and its bit is the sign of the activation's
  input (pre-activation ``> 0``), which for ReLU is exactly Mellor et al.'s
  code and for GELU marks the side where GELU is close to the identity. Layers
  without activation (``none``, attention's softmax, pooling) give no bits; an
  architecture with no ReLU/GELU layer scores ``-inf``. No labels.
* ``params``, ``flops``: :func:`hwnas.count_params`, :func:`hwnas.count_flops`.

The mini-batch is ``batch_size`` windows drawn (with ``seed``) from the task's
training windows only; the weights are ``build_model(arch, seed)``. Proxies
that need no labels (:data:`LABEL_FREE`) never read the task's targets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import torch
from torch import nn

from .architecture import Architecture
from .checks import require_int
from .cost import count_flops, count_params
from .model import build_model
from .proxy.task import ProxyTask
from .proxy.training import torch_settings, train_targets

__all__ = [
    "LABEL_FREE",
    "ZERO_COST_PROXIES",
    "ZeroCostBatch",
    "ZeroCostProxy",
    "ZeroCostResult",
    "grad_norm",
    "naswot",
    "naswot_kernel",
    "rank_correlation",
    "snip",
    "synflow",
    "zero_cost_batch",
    "zero_cost_score",
    "zero_cost_scores",
]


class ZeroCostProxy(StrEnum):
    """The zero-cost proxies (higher is assumed better for every one).

    Taught in: notebooks/13_beyond.
    """

    GRAD_NORM = "grad_norm"
    SNIP = "snip"
    SYNFLOW = "synflow"
    NASWOT = "naswot"
    PARAMS = "params"
    FLOPS = "flops"


#: Proxies that read no labels (the targets of the mini-batch are never touched).
LABEL_FREE = frozenset({ZeroCostProxy.SYNFLOW, ZeroCostProxy.NASWOT, ZeroCostProxy.PARAMS,
                        ZeroCostProxy.FLOPS})


@dataclass(frozen=True, eq=False)
class ZeroCostBatch:
    """One mini-batch of training windows: inputs ``(batch, features, lookback)`` and, lazily, labels.

    ``labels()`` reads the task's targets (only the proxies that need labels call it).

    Taught in: notebooks/13_beyond.
    """

    task: ProxyTask
    rows: np.ndarray  # positions in task.train

    def inputs(self, lookback: int) -> torch.Tensor:
        """The windows, cut to their last ``lookback`` steps."""
        x = self.task.train.X.index_select(0, torch.from_numpy(self.rows))
        return x[:, :, self.task.lookback - lookback:].contiguous()

    def labels(self) -> torch.Tensor:
        """The training targets of the windows (standardised log vol, or the up/down label)."""
        return torch.from_numpy(train_targets(self.task, self.task.train)[self.rows].astype(np.float32))

    def loss_fn(self) -> nn.Module:
        """The training loss of the task (MSE for volatility, logistic for direction)."""
        return nn.MSELoss() if self.task.target == "volatility" else nn.BCEWithLogitsLoss()


def zero_cost_batch(task: ProxyTask, seed: int = 0, batch_size: int = 64) -> ZeroCostBatch:
    """``batch_size`` windows drawn with ``seed`` from the windows the proxy task trains on.

    Taught in: notebooks/13_beyond.
    """
    if not isinstance(task, ProxyTask):
        raise TypeError(f"task must be a ProxyTask, got {type(task).__name__}")
    require_int(seed, "seed", 0)
    require_int(batch_size, "batch_size", 2)
    pool = task.train_indices()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(pool, size=min(batch_size, len(pool)), replace=False))
    return ZeroCostBatch(task, rows)


# --------------------------------------------------------------------------- the proxies on a model


def _loss_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    loss_fn: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(θ, dL/dθ)`` for every parameter that receives a gradient."""
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model(x).squeeze(-1), y)
    loss.backward()
    return [(p.detach(), p.grad.detach()) for p in model.parameters() if p.grad is not None]


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module) -> float:
    """``sum over parameter tensors of ||dL/dθ||_2`` at the model's current weights.

    Taught in: notebooks/13_beyond.
    """
    return float(sum(g.double().norm() for _, g in _loss_gradients(model, x, y, loss_fn)))


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module) -> float:
    """``sum |θ ⊙ dL/dθ|`` (SNIP's connection sensitivity, summed) at the current weights.

    Taught in: notebooks/13_beyond.
    """
    return float(sum((p.double() * g.double()).abs().sum() for p, g in _loss_gradients(model, x, y, loss_fn)))


def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """SynFlow: ``sum |θ ⊙ dR/dθ|`` with every θ replaced by |θ|, ``R = sum(model(ones))``.

    Runs on a double-precision copy, so ``model`` is left as it was. No data, no labels.

    Taught in: notebooks/13_beyond.
    """
    import copy

    net = copy.deepcopy(model).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    out = net(torch.ones(1, *input_shape, dtype=torch.float64))
    out.sum().backward()
    with torch.no_grad():
        return float(sum((p * p.grad).abs().sum() for p in net.parameters() if p.grad is not None))


def naswot_kernel(codes: torch.Tensor) -> torch.Tensor:
    """``K = C Cᵀ + (1 - C)(1 - C)ᵀ`` for binary codes ``C`` ``(batch, units)``: agreements per pair.

    Taught in: notebooks/13_beyond.
    """
    c = codes.double()
    return c @ c.T + (1.0 - c) @ (1.0 - c).T


def naswot(model: nn.Module, x: torch.Tensor,
           activations: tuple[type[nn.Module], ...] = (nn.ReLU, nn.GELU)) -> float:
    """NASWOT's ``log |det K|`` from the sign codes of the inputs of every ReLU/GELU module.

    ``-inf`` when the network has no such module or ``K`` is singular (two inputs
    with the same code).

    Taught in: notebooks/13_beyond.
    """
    codes: list[torch.Tensor] = []

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        codes.append((inputs[0].detach() > 0).flatten(1))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, activations)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return -math.inf
    sign, logdet = torch.linalg.slogdet(naswot_kernel(torch.cat(codes, dim=1)))
    return float(logdet) if float(sign) > 0 else -math.inf


# --------------------------------------------------------------------------- the registry


def _model(arch: Architecture, seed: int) -> nn.Module:
    return build_model(arch, seed=seed).train()


def _grad_norm(arch: Architecture, batch: ZeroCostBatch, seed: int) -> float:
    return grad_norm(_model(arch, seed), batch.inputs(arch.lookback), batch.labels(), batch.loss_fn())


def _snip(arch: Architecture, batch: ZeroCostBatch, seed: int) -> float:
    return snip(_model(arch, seed), batch.inputs(arch.lookback), batch.labels(), batch.loss_fn())


def _synflow(arch: Architecture, batch: ZeroCostBatch, seed: int) -> float:
    return synflow(_model(arch, seed), (arch.input_features, arch.lookback))


def _naswot(arch: Architecture, batch: ZeroCostBatch, seed: int) -> float:
    return naswot(_model(arch, seed), batch.inputs(arch.lookback))


#: One function per proxy: ``(arch, batch, seed) -> score`` (higher assumed better).
ZERO_COST_PROXIES: dict[ZeroCostProxy, Callable[[Architecture, ZeroCostBatch, int], float]] = {
    ZeroCostProxy.GRAD_NORM: _grad_norm,
    ZeroCostProxy.SNIP: _snip,
    ZeroCostProxy.SYNFLOW: _synflow,
    ZeroCostProxy.NASWOT: _naswot,
    ZeroCostProxy.PARAMS: lambda arch, batch, seed: float(count_params(arch)),
    ZeroCostProxy.FLOPS: lambda arch, batch, seed: float(count_flops(arch)),
}


def _proxy(name: ZeroCostProxy | str) -> ZeroCostProxy:
    """``name`` as a :class:`ZeroCostProxy`, or a one-line ValueError naming the allowed ones."""
    try:
        return ZeroCostProxy(name)
    except ValueError:
        raise ValueError(f"proxy {name!r} unknown; choose one of {[p.value for p in ZeroCostProxy]}") from None


def _check(arch: Architecture, task: ProxyTask) -> None:
    if not isinstance(arch, Architecture):
        raise TypeError(f"arch must be an Architecture, got {type(arch).__name__}")
    if not isinstance(task, ProxyTask):
        raise TypeError(f"task must be a ProxyTask, got {type(task).__name__}")
    if arch.input_features != task.num_features or arch.lookback > task.lookback:
        raise ValueError(f"arch (input_features {arch.input_features}, lookback {arch.lookback}) does not fit "
                         f"the task ({task.num_features} features, windows of {task.lookback} steps)")


def zero_cost_score(arch: Architecture, task: ProxyTask, proxy: ZeroCostProxy | str, *, seed: int = 0,
                    batch_size: int = 64) -> float:
    """The zero-cost score of ``arch`` on one mini-batch of ``task`` (higher assumed better).

    Deterministic under ``seed`` (the weights and the mini-batch); runs with the
    task's thread count and deterministic algorithms.

    Taught in: notebooks/13_beyond.
    """
    name = _proxy(proxy)
    _check(arch, task)
    batch = zero_cost_batch(task, seed, batch_size)
    with torch_settings(task.num_threads):
        return ZERO_COST_PROXIES[name](arch, batch, seed)


@dataclass(frozen=True)
class ZeroCostResult:
    """The zero-cost scores of one architecture and the wall seconds each took.

    Taught in: notebooks/13_beyond.
    """

    scores: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def zero_cost_scores(archs: Iterable[Architecture], task: ProxyTask,
                     proxies: Iterable[ZeroCostProxy | str] | None = None, *, seed: int = 0,
                     batch_size: int = 64) -> list[ZeroCostResult]:
    """Every proxy of ``proxies`` (default: all) for each of ``archs``, timed one by one.

    Each proxy builds its own model (same ``seed``: same weights), so a proxy's
    seconds are its whole cost; all share one mini-batch.

    Taught in: notebooks/13_beyond.
    """
    names = [_proxy(p) for p in (ZeroCostProxy if proxies is None else proxies)]
    archs = list(archs)
    for arch in archs:
        _check(arch, task)
    batch = zero_cost_batch(task, seed, batch_size)
    out = []
    with torch_settings(task.num_threads):
        for arch in archs:
            scores, seconds = {}, {}
            for name in names:
                start = time.perf_counter()
                scores[name.value] = ZERO_COST_PROXIES[name](arch, batch, seed)
                seconds[name.value] = time.perf_counter() - start
            out.append(ZeroCostResult(scores, seconds))
    return out


# --------------------------------------------------------------------------- judging a proxy


def rank_correlation(x: Sequence[float], y: Sequence[float], *, seed: int = 0,
                     n_boot: int = 1000) -> dict[str, object]:
    """Spearman and Kendall (tau-b) rank correlation of ``x`` with ``y``, with 95% bootstrap intervals.

    Pairs with a NaN are dropped; ``-inf`` in ``x`` (NASWOT's singular kernel)
    ranks below every finite value. The intervals are the 2.5% and 97.5%
    percentiles over ``n_boot`` resamples of the pairs with replacement (drawn
    with ``seed``). Returns ``n``, ``spearman``, ``spearman_ci``, ``kendall``,
    ``kendall_ci`` (only ``n`` when fewer than 3 pairs remain).

    Taught in: notebooks/13_beyond.
    """
    from scipy import stats

    require_int(n_boot, "n_boot", 1)
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"x and y must be 1-d and of one length, got shapes {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    finite = a[np.isfinite(a)]
    a = np.where(np.isneginf(a), (finite.min() - 1.0) if len(finite) else 0.0, a)
    out: dict[str, object] = {"n": int(len(a))}
    if len(a) < 3:
        return out
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(a), size=(n_boot, len(a)))
    for name, fn in (("spearman", lambda u, v: stats.spearmanr(u, v)[0]),
                     ("kendall", lambda u, v: stats.kendalltau(u, v)[0])):
        boot = np.array([fn(a[i], b[i]) for i in draws], dtype=float)
        lo, hi = np.nanpercentile(boot, [2.5, 97.5]) if np.isfinite(boot).any() else (np.nan, np.nan)
        out[name] = float(fn(a, b))
        out[name + "_ci"] = [float(lo), float(hi)]
    return out
