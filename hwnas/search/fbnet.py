"""FBNet: differentiable search, one supernet training instead of hundreds of evaluations.

Taught in: notebooks/10_fbnet.

:func:`train_supernet` trains the supernet of :mod:`hwnas.search.supernet`:
the weights on the first 80% of the task's training windows, the architecture
logits ``theta`` on the last 20% (chronologically later, as validation is;
the validation windows stay untouched for scoring), alternating one epoch of
each after a weights-only warm-up, ``theta`` with Adam (FBNet: lr 1e-2,
weight decay 5e-4), the Gumbel temperature annealed exponentially from
``tau0 = 5`` to ``tau_final`` over the run (FBNet: ``exp(-0.045)`` per epoch
over 90 epochs; a short run needs a faster rate) or a schedule passed in.

Losses (``loss=``), with ``LAT = E[LAT](softmax(theta))`` in µs from the
profile's table (:func:`~hwnas.search.supernet.chain_expected_latency`):

* ``"additive"`` (the default; ProxylessNAS's ``add#linear``):
  ``task + lambda * LAT / T`` with ``T`` the latency budget. ``lambda`` is a
  price per budget's worth of latency, independent of the scale of the task
  loss, so a sweep of ``lambda`` traces a front.
* ``"fbnet"`` (Wu et al. 2019): ``task * alpha * (log LAT)^beta``,
  ``alpha = 0.2``, ``beta = 0.6``. LAT is in µs, so ``log LAT > 0`` for every
  model here (in ms, FBNet's unit, it would be negative below 1 ms and the
  power undefined). Our task loss is the MSE of standardised log volatility,
  not cross-entropy; it is positive too, so the product is a loss, but the
  latency pressure scales with the task loss and shrinks as the fit improves;
  and since Adam normalises each gradient, ``alpha`` (a common factor) changes
  nothing: only ``beta`` prices latency. A sweep in this form sweeps ``beta``.

Both add ``memory_weight * E[parameter bytes] / M`` when ``memory_weight > 0``
(the parameters are the additive part of the footprint; the activation peak is
a maximum and is left to the profile's feasibility check).

:class:`FBNet` (``strategy="fbnet"``) trains one supernet per (lookback,
latency weight) of its sweep at the first ``ask``, then hands the loop the
derived architectures (argmax per layer, plus ``samples`` drawn from
``softmax(theta)``), which the loop retrains from scratch with the proxy
recipe and scores like any other strategy's.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..architecture import Architecture
from ..checks import require_choice, require_float, require_int
from ..proxy.task import ProxyTask
from ..proxy.training import torch_settings, train_targets
from .base import Metrics, SearchProblem, Strategy, nan_to_none, register_strategy
from .supernet import MODES, Supernet, SupernetSpec, chain_expected_latency, gumbel_softmax, supernet_spec

LOSSES = ("additive", "fbnet")

__all__ = [
    "FBNet",
    "FBNetConfig",
    "LOSSES",
    "SupernetRun",
    "supernet_loss",
    "temperature_schedule",
    "train_supernet",
    "train_supernets",
    "expected_cost",
]


def temperature_schedule(tau0: float, tau_final: float, epochs: int) -> list[float]:
    """``tau_e = tau0 * exp(-r e)`` for ``e = 0..epochs-1``, ``r`` such that the last is ``tau_final``.

    Taught in: notebooks/10_fbnet.
    """
    tau0 = require_float(tau0, "tau0", minimum=0.0, strict_minimum=True)
    tau_final = require_float(tau_final, "tau_final", minimum=0.0, strict_minimum=True)
    epochs = require_int(epochs, "epochs", 1)
    if epochs == 1:
        return [tau0]
    rate = math.log(tau0 / tau_final) / (epochs - 1)
    return [tau0 * math.exp(-rate * e) for e in range(epochs)]


@dataclass(frozen=True)
class FBNetConfig:
    """The recipe of one supernet training (see the module docstring).

    ``latency_weight`` is ``lambda`` of the additive loss or ``beta`` of the
    FBNet loss; ``temperatures`` (one per epoch) overrides the schedule from
    ``tau0`` to ``tau_final``; ``mode`` is ``"hard"`` (straight-through, one
    block per layer and step) or ``"soft"`` (FBNet's full mixture).
    ``max_windows`` caps the training windows used (None: all of them).
    The defaults (6 epochs, 2 of them warm-up, 1,024 windows, theta batches
    of 16 for more theta steps) keep the default search near two minutes on one
    core; FBNet trained 90 epochs, so ``theta`` sharpens far less here.

    Taught in: notebooks/10_fbnet.
    """

    epochs: int = 6
    warmup_epochs: int = 2
    tau0: float = 5.0
    tau_final: float = 0.2
    temperatures: tuple[float, ...] | None = None
    loss: str = "additive"
    latency_weight: float = 0.3
    alpha: float = 0.2
    memory_weight: float = 0.0
    theta_lr: float = 1e-2
    theta_weight_decay: float = 5e-4
    theta_batch_size: int = 16
    weight_share: float = 0.8
    mode: str = "hard"
    max_windows: int | None = 1024

    def __post_init__(self) -> None:
        require_int(self.epochs, "epochs", 1)
        require_int(self.warmup_epochs, "warmup_epochs", 0, self.epochs - 1)
        require_float(self.tau0, "tau0", minimum=0.0, strict_minimum=True)
        require_float(self.tau_final, "tau_final", minimum=0.0, strict_minimum=True)
        if self.temperatures is not None:
            object.__setattr__(self, "temperatures", tuple(
                require_float(t, "temperatures entry (tau)", minimum=0.0, strict_minimum=True)
                for t in self.temperatures))
            if len(self.temperatures) != self.epochs:
                raise ValueError(f"temperatures needs one tau per epoch ({self.epochs}), "
                                 f"got {len(self.temperatures)}")
        require_choice(self.loss, "loss", LOSSES)
        require_float(self.latency_weight, "latency_weight", minimum=0.0)
        require_float(self.alpha, "alpha", minimum=0.0)
        require_float(self.memory_weight, "memory_weight", minimum=0.0)
        require_float(self.theta_lr, "theta_lr", minimum=0.0, strict_minimum=True)
        require_float(self.theta_weight_decay, "theta_weight_decay", minimum=0.0)
        require_int(self.theta_batch_size, "theta_batch_size", 1)
        require_float(self.weight_share, "weight_share", minimum=0.0, maximum=1.0, strict_minimum=True)
        require_choice(self.mode, "mode", MODES)
        if self.max_windows is not None:
            require_int(self.max_windows, "max_windows", 2)

    def schedule(self) -> list[float]:
        """The temperature of each epoch."""
        if self.temperatures is not None:
            return list(self.temperatures)
        return temperature_schedule(self.tau0, self.tau_final, self.epochs)


def supernet_loss(task_loss: torch.Tensor, latency_us: torch.Tensor, config: FBNetConfig,
                  latency_target_us: float, memory: torch.Tensor | None = None,
                  memory_target: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(total, latency part)`` of the loss ``config.loss`` (see the module docstring).

    The latency part is ``total - task`` without the memory term.

    Taught in: notebooks/10_fbnet.
    """
    if config.loss == "fbnet":
        if not bool(latency_us > 1.0):
            raise ValueError(f"latency_us must exceed 1 µs for log LAT > 0, got {float(latency_us):.3g}")
        total = task_loss * config.alpha * torch.log(latency_us) ** config.latency_weight
    else:
        total = task_loss + config.latency_weight * latency_us / latency_target_us
    latency_part = total - task_loss
    if config.memory_weight > 0 and memory is not None and memory_target:
        total = total + config.memory_weight * memory / memory_target
    return total, latency_part


@dataclass
class SupernetRun:
    """One trained supernet: its final ``theta``, the history per epoch, the seconds it took.

    Each history row holds ``epoch``, ``tau``, ``probs`` (softmax(theta) per
    layer), ``weight_loss``, ``task_loss`` and ``latency_loss`` (on the theta
    windows; NaN during warm-up), ``expected_latency_us`` and
    ``expected_param_bytes``.

    Taught in: notebooks/10_fbnet.
    """

    spec: SupernetSpec
    config: FBNetConfig
    theta: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def probs(self) -> np.ndarray:
        """``softmax(theta)`` per layer, ``(D, J)``."""
        return torch.softmax(torch.as_tensor(self.theta, dtype=torch.float64), -1).numpy()

    def expected_latency_us(self, theta: np.ndarray | None = None) -> float:
        """E[LAT] in µs of ``theta`` (default: the final one)."""
        logits = torch.as_tensor(self.theta if theta is None else theta, dtype=torch.float64)
        return float(expected_cost(self.spec, torch.softmax(logits, -1)))

    def argmax_choices(self) -> list[int]:
        """The most likely block of each layer."""
        return [int(j) for j in np.argmax(self.theta, axis=1)]

    def derived(self) -> Architecture:
        """The architecture of the argmax per layer."""
        return self.spec.derive(self.argmax_choices())

    def sampled(self, n: int, rng: np.random.Generator) -> list[Architecture]:
        """``n`` architectures drawn from ``softmax(theta)`` (FBNet samples a few)."""
        probs = self.probs()
        out = []
        for _ in range(require_int(n, "samples", 0)):
            out.append(self.spec.derive([int(rng.choice(len(p), p=p / p.sum())) for p in probs]))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: the setting, the final theta, the history."""
        return {"lookback": self.spec.lookback, "labels": list(self.spec.labels),
                "config": nan_to_none(asdict(self.config)), "theta": self.theta.tolist(),
                "history": nan_to_none(self.history), "seconds": self.seconds}


def expected_cost(spec: SupernetSpec, probs: torch.Tensor, kind: str = "latency") -> torch.Tensor:
    """E[latency µs] or E[parameter bytes] of the choice distribution ``probs`` ``(D, J)``.

    Taught in: notebooks/10_fbnet.
    """
    start = spec.widths.index(spec.space.stem_width)
    if require_choice(kind, "kind", ("latency", "params")) == "latency":
        return chain_expected_latency(probs, spec.lut, spec.transition, spec.head_lut, start, spec.fixed_us)
    return chain_expected_latency(probs, spec.params, spec.transition, spec.head_params, start,
                                  spec.fixed_params)


def _windows(task: ProxyTask, lookback: int, config: FBNetConfig) -> tuple[torch.Tensor, ...]:
    """Weight windows and theta windows (inputs, targets): the earlier 80% and the later 20%."""
    n = len(task.train)
    rows = np.arange(n)
    if config.max_windows is not None and config.max_windows < n:
        rows = np.sort(np.random.default_rng(task.data_seed).choice(n, config.max_windows, replace=False))
    X = task.train.X.index_select(0, torch.from_numpy(rows))[:, :, task.lookback - lookback:].contiguous()
    y = torch.from_numpy(train_targets(task, task.train)[rows].astype(np.float32))
    cut = min(max(1, int(round(config.weight_share * len(rows)))), len(rows) - 1)
    return X[:cut], y[:cut], X[cut:], y[cut:]


def train_supernet(spec: SupernetSpec, task: ProxyTask, config: FBNetConfig | None = None, *,
                   latency_target_us: float, memory_target_bytes: float | None = None,
                   seed: int = 0) -> SupernetRun:
    """Train the supernet of ``spec`` on ``task`` (see the module docstring); seeded.

    Taught in: notebooks/10_fbnet.
    """
    config = config or FBNetConfig()
    return train_supernets(spec, task, config, (config.latency_weight,), latency_target_us=latency_target_us,
                           memory_target_bytes=memory_target_bytes, seed=seed)[0]


def train_supernets(spec: SupernetSpec, task: ProxyTask, config: FBNetConfig,
                    latency_weights: Sequence[float], *, latency_target_us: float,
                    memory_target_bytes: float | None = None, seed: int = 0) -> list[SupernetRun]:
    """One run per latency weight, sharing the weights-only warm-up (it does not depend on the weight).

    Run ``k`` continues a copy of the warmed-up supernet with its own seeded
    generators, so it equals :func:`train_supernet` with ``latency_weight`` set
    and the same ``seed`` only for ``k = 0``.

    Taught in: notebooks/10_fbnet.
    """
    latency_target_us = require_float(latency_target_us, "latency_target_us", minimum=0.0, strict_minimum=True)
    seed = require_int(seed, "seed", 0)
    weights = [require_float(w, "latency_weights entry", minimum=0.0) for w in latency_weights]
    if not weights:
        raise ValueError("latency_weights must hold at least one weight, got none")
    if spec.space.input_features != task.num_features:
        raise ValueError(f"space.input_features is {spec.space.input_features} but the task has "
                         f"{task.num_features} features")
    if spec.lookback > task.lookback:
        raise ValueError(f"lookback {spec.lookback} is longer than the task's windows ({task.lookback})")
    start = time.perf_counter()
    runs = []
    with torch_settings(task.num_threads):
        warm = _Trainer(spec, task, config, latency_target_us, memory_target_bytes, seed)
        schedule = config.schedule()
        warm_rows = [warm.epoch(e, schedule[e], search=False) for e in range(config.warmup_epochs)]
        warm_seconds = time.perf_counter() - start
        for k, weight in enumerate(weights):
            t0 = time.perf_counter()
            trainer = warm.fork(replace(config, latency_weight=weight), seed + k)
            rows = warm_rows + [trainer.epoch(e, schedule[e], search=True)
                                for e in range(config.warmup_epochs, config.epochs)]
            runs.append(SupernetRun(spec, trainer.config, trainer.theta.detach().numpy().astype(np.float64),
                                    rows, warm_seconds + time.perf_counter() - t0))
    return runs


class _Trainer:
    """The supernet, ``theta``, their optimizers, the windows and the generators of one training."""

    def __init__(self, spec: SupernetSpec, task: ProxyTask, config: FBNetConfig, target_us: float,
                 memory_target: float | None, seed: int) -> None:
        self.spec, self.task, self.config = spec, task, config
        self.target_us, self.memory_target = target_us, memory_target
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = Supernet(spec, config.mode)
        self.theta = nn.Parameter(torch.zeros(spec.depth, len(spec.indices)))
        self.w_opt = torch.optim.Adam(self.net.parameters(), lr=task.lr)
        self.loss_fn: nn.Module = nn.MSELoss() if task.target == "volatility" else nn.BCEWithLogitsLoss()
        self.Xw, self.yw, self.Xt, self.yt = _windows(task, spec.lookback, config)
        self._seed_generators(seed)

    def _seed_generators(self, seed: int) -> None:
        self.order_gen = torch.Generator().manual_seed(10_007 * seed + 3)
        self.noise_gen = torch.Generator().manual_seed(10_007 * seed + 5)
        self.t_opt = torch.optim.Adam([self.theta], lr=self.config.theta_lr,
                                      weight_decay=self.config.theta_weight_decay)

    def fork(self, config: FBNetConfig, seed: int) -> _Trainer:
        """A copy (weights, their optimizer, theta) that continues with ``config`` and ``seed``."""
        twin = copy.copy(self)
        twin.net, twin.w_opt, theta = copy.deepcopy((self.net, self.w_opt, self.theta))
        twin.theta = theta
        twin.config = config
        twin._seed_generators(seed)
        return twin

    def _sample(self, logits: torch.Tensor, tau: float) -> torch.Tensor:
        return gumbel_softmax(logits, tau, generator=self.noise_gen, hard=self.config.mode == "hard")

    def epoch(self, epoch: int, tau: float, search: bool) -> dict[str, Any]:
        """One pass of weight steps, then (when ``search``) one pass of theta steps."""
        self.net.train()
        weight_loss = []
        for batch in torch.randperm(len(self.Xw), generator=self.order_gen).split(self.task.batch_size):
            loss = self.loss_fn(self.net(self.Xw[batch], self._sample(self.theta.detach(), tau)).squeeze(-1),
                                self.yw[batch])
            self.w_opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.task.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.net.parameters(), self.task.grad_clip)
            self.w_opt.step()
            weight_loss.append(loss.item())
        task_losses, latency_losses = [], []
        if search:
            for batch in torch.randperm(len(self.Xt), generator=self.order_gen).split(self.config.theta_batch_size):
                task_loss, latency_part = self._theta_step(batch, tau)
                task_losses.append(task_loss)
                latency_losses.append(latency_part)
        return _history_row(self.spec, self.theta, epoch, tau, weight_loss, task_losses, latency_losses)

    def _theta_step(self, batch: torch.Tensor, tau: float) -> tuple[float, float]:
        out = self.net(self.Xt[batch], self._sample(self.theta, tau)).squeeze(-1)
        task_loss = self.loss_fn(out, self.yt[batch])
        probs = torch.softmax(self.theta.double(), -1)
        memory = expected_cost(self.spec, probs, "params") if self.config.memory_weight > 0 else None
        total, latency_part = supernet_loss(task_loss.double(), expected_cost(self.spec, probs), self.config,
                                            self.target_us, memory, self.memory_target)
        self.t_opt.zero_grad(set_to_none=True)
        self.w_opt.zero_grad(set_to_none=True)
        total.backward()
        self.t_opt.step()
        return task_loss.item(), latency_part.item()


def _history_row(spec: SupernetSpec, theta: torch.Tensor, epoch: int, tau: float, weight_loss: list[float],
                 task_losses: list[float], latency_losses: list[float]) -> dict[str, Any]:
    with torch.no_grad():
        probs = torch.softmax(theta.double(), -1)
        return {
            "epoch": epoch, "tau": tau, "probs": probs.numpy().round(6).tolist(),
            "weight_loss": float(np.mean(weight_loss)) if weight_loss else math.nan,
            "task_loss": float(np.mean(task_losses)) if task_losses else math.nan,
            "latency_loss": float(np.mean(latency_losses)) if latency_losses else math.nan,
            "expected_latency_us": float(expected_cost(spec, probs)),
            "expected_param_bytes": float(expected_cost(spec, probs, "params")),
        }


@register_strategy("fbnet")
class FBNet(Strategy):
    """FBNet as a search strategy: train supernets at the first ``ask``, then hand out what they derive.

    One supernet per (lookback, latency weight) of ``lookbacks`` x
    ``latency_weights`` (``lookbacks`` default: the space's shortest, the cheapest supernet;
    each weight is ``lambda`` of the additive loss or ``beta`` of the FBNet
    loss); each gives its argmax architecture and ``samples`` drawn from
    ``softmax(theta)``, duplicates dropped. The remaining keywords are
    :class:`FBNetConfig` fields. Needs ``problem.task``.

    Taught in: notebooks/10_fbnet.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0,
                 latency_weights: Sequence[float] = (0.0, 0.05, 1.0),
                 lookbacks: Sequence[int] | None = None, samples: int = 1,
                 head: str | None = None, use_skip: bool | None = None,
                 candidates: Sequence[int] | None = None, **config: Any) -> None:
        super().__init__(problem, seed=seed)
        if problem.task is None:
            raise ValueError("task: strategy 'fbnet' trains a supernet and needs the proxy task "
                             "(pass task= to hwnas.search)")
        self.latency_weights = tuple(require_float(w, "latency_weights entry", minimum=0.0)
                                     for w in latency_weights)
        if not self.latency_weights:
            raise ValueError("latency_weights must hold at least one weight, got none")
        space = problem.space
        fitting = sorted(lb for lb in space.lookbacks if lb <= problem.task.lookback)
        if not fitting:
            raise ValueError(f"lookbacks: none of the space's {list(space.lookbacks)} fits the task's "
                             f"windows of {problem.task.lookback} steps")
        self.lookbacks = tuple(lookbacks) if lookbacks is not None else (fitting[0],)
        for lb in self.lookbacks:
            require_choice(lb, "lookbacks entry", fitting)
        self.samples = require_int(samples, "samples", 0)
        self.config = FBNetConfig(**config)
        self._spec_kwargs: dict[str, Any] = {"head": head, "use_skip": use_skip, "candidates": candidates,
                                             "batch": problem.batch, "precision": problem.precision}
        self._specs = {lb: supernet_spec(space, problem.profile, lb, **self._spec_kwargs)
                       for lb in self.lookbacks}  # validates the settings now, not at the first ask
        self.runs: list[SupernetRun] = []
        self.trained = False
        self.pending: list[Architecture] = []
        self.origins: dict[str, dict[str, Any]] = {}
        self.told: list[dict[str, Any]] = []

    def _train_all(self) -> None:
        """Train every supernet of the sweep and queue the architectures they derive."""
        problem = self.problem
        assert problem.task is not None
        memory_target = problem.memory_budget_bytes or problem.profile.memory_budget_bytes or None
        rng = np.random.default_rng(self.seed)
        for k, lookback in enumerate(self.lookbacks):
            runs = train_supernets(self._specs[lookback], problem.task, self.config, self.latency_weights,
                                   latency_target_us=problem.latency_budget_us,
                                   memory_target_bytes=memory_target, seed=self.seed + 1000 * k)
            self.runs.extend(runs)
            for run in runs:
                self._queue(run, rng)
        self.trained = True

    def _queue(self, run: SupernetRun, rng: np.random.Generator) -> None:
        """Queue the argmax and the sampled architectures of ``run`` (duplicates dropped)."""
        problem = self.problem
        derived = [("argmax", run.derived())] + [("sample", a) for a in run.sampled(self.samples, rng)]
        for how, arch in derived:
            key = arch.to_json()
            if key in self.origins:
                continue
            predicted = problem.predict(arch)
            self.origins[key] = {"lookback": run.spec.lookback, "latency_weight": run.config.latency_weight,
                                 "how": how, "expected_latency_us": run.expected_latency_us(),
                                 "predicted_latency_us": predicted.latency_us,
                                 "within_budget": problem.within_budget(predicted)}
            self.pending.append(arch)

    def ask(self, n: int = 1) -> list[Architecture]:
        """The derived architectures, ``n`` at a time (training the supernets first); ``[]`` when done."""
        n = require_int(n, "n", 1)
        if not self.trained:
            self._train_all()
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """Record the retrained score of a derived architecture."""
        origin = self.origins.get(arch.to_json(), {})
        self.told.append({**origin, "arch": arch.to_dict(), "score": metrics.score,
                          "latency_us": metrics.latency_us})

    def state_dict(self) -> dict[str, Any]:
        """JSON-able: whether trained, the runs (theta, history), the pending list, what was told."""
        return nan_to_none({"trained": self.trained, "runs": [r.to_dict() for r in self.runs],
                       "pending": [a.to_dict() for a in self.pending],
                       "origins": self.origins, "told": self.told})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (the supernets are not retrained)."""
        self.trained = bool(state["trained"])
        self.pending = [Architecture.from_dict(a) for a in state["pending"]]
        self.origins = dict(state["origins"])
        self.told = list(state["told"])
        self.runs = []
        for row in state["runs"]:
            spec = self._specs.get(row["lookback"]) or supernet_spec(
                self.problem.space, self.problem.profile, row["lookback"], **self._spec_kwargs)
            config = dict(row["config"])
            if config.get("temperatures") is not None:
                config["temperatures"] = tuple(config["temperatures"])
            history = [{k: (math.nan if v is None else v) for k, v in h.items()} for h in row["history"]]
            self.runs.append(SupernetRun(spec, FBNetConfig(**config), np.asarray(row["theta"], dtype=float),
                                         history, float(row["seconds"])))
