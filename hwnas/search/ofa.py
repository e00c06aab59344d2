"""Once-for-all: one elastic supernet trained by progressive shrinking, sub-networks extracted per target.

Taught in: notebooks/13_beyond.

Cai et al. 2020 ("Once-for-All: Train One Network and Specialize it for Efficient
Deployment", ICLR) train one network whose sub-networks share its weights, then
search each deployment target's sub-network on the shared weights, with no
retraining. Here the supernet covers this subset of ``SearchSpace.default()``
(:class:`OFASpace`): the fixed per-step stem (elastic width), then up to
``max(depths)`` residual ``conv`` blocks (ReLU, a skip on every block), each with
its own elastic kernel size and width, then a GAP or LAST head (one linear layer
per head type), over an elastic lookback (the last ``L`` steps of each window).
Every sub-network is an :class:`~hwnas.architecture.Architecture` of the space, so
``hwnas.build_model`` runs it and each target's table or model prices it.

* **elastic kernel**: a ``k``-tap kernel is the centre ``k`` taps of the next
  larger one times a learned ``k x k`` transform (initialised to the identity),
  shared by the layer's channels (OFA's kernel transformation matrices);
* **elastic depth**: the first ``d`` blocks;
* **elastic width**: the first ``w`` channels. Before the width stage the channels
  are sorted by importance (the L1 norm of the weights that read them), as OFA
  does; identity skips add a block's input to its output channel by channel, so
  the residual stream shares one order: one permutation for every layer, which
  leaves the full network's function unchanged;
* **elastic lookback**: sampled in every stage, as OFA samples the image size.

Progressive shrinking (:func:`train_supernet`): the full network first, then
kernel, then depth, then width sampled, ``subnets_per_step`` sub-networks per
step with their losses summed. Not done here: OFA's knowledge distillation from
the full network (its soft labels matter for classification; the proxy target is
a regression) and BatchNorm recalibration (the backbone has no BatchNorm).

:func:`extract` copies a sub-network's slices into ``build_model(arch)``;
:func:`search_subnet` runs regularised evolution (:mod:`hwnas.search.evolution`)
on the inherited weights' validation score under one target's budgets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..architecture import DEFAULT_INPUT_FEATURES, Activation, Architecture, HeadType, LayerSpec, OpType
from ..checks import require_int, require_positive
from ..model import TradingNet, build_model

if TYPE_CHECKING:
    from ..hardware import HardwareProfile
    from ..proxy.task import ProxyTask
    from ..space import SearchSpace
    from .base import Metrics, SearchProblem

__all__ = ["PHASES", "OFAChoice", "OFASpace", "OFASupernet", "OFATraining", "Phase", "SubnetConfig", "extract",
           "finetune", "inherited_score", "search_subnet", "sort_channels", "target_problem", "train_supernet"]


class Phase(StrEnum):
    """The stages of progressive shrinking, in order: what each one samples besides the lookback and head.

    Taught in: notebooks/13_beyond.
    """

    FULL = "full"  # the largest kernel, depth and width
    KERNEL = "kernel"  # kernel sizes sampled
    DEPTH = "depth"  # kernel sizes and depth sampled
    WIDTH = "width"  # kernel sizes, depth and widths (stem included) sampled


PHASES: tuple[Phase, ...] = tuple(Phase)


@dataclass(frozen=True)
class SubnetConfig:
    """One sub-network of the supernet: lookback, stem width, per-block kernel and width, head.

    Taught in: notebooks/13_beyond.
    """

    lookback: int
    stem_width: int
    kernels: tuple[int, ...]
    widths: tuple[int, ...]
    head: HeadType

    @property
    def depth(self) -> int:
        """Number of blocks after the stem."""
        return len(self.kernels)


def _sorted_ints(values: Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"OFASpace.{name} must be a non-empty sequence of integers, got {values!r}")
    return tuple(sorted({require_int(v, f"OFASpace.{name} entry", 1) for v in values}))


@dataclass(frozen=True)
class OFASpace:
    """The subset of ``SearchSpace.default()`` the supernet covers (module docstring).

    Kernel sizes must be odd (a centre slice needs a centre); every lookback must
    be at least the largest kernel.

    Taught in: notebooks/13_beyond.
    """

    input_features: int = DEFAULT_INPUT_FEATURES
    lookbacks: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (2, 3, 4)
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    widths: tuple[int, ...] = (16, 32, 64)
    stem_widths: tuple[int, ...] = (16, 32, 64)
    head_types: tuple[HeadType, ...] = (HeadType.GAP, HeadType.LAST)

    def __post_init__(self) -> None:
        require_int(self.input_features, "OFASpace.input_features", 1)
        for name in ("lookbacks", "depths", "kernel_sizes", "widths", "stem_widths"):
            object.__setattr__(self, name, _sorted_ints(getattr(self, name), name))
        if any(k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"OFASpace.kernel_sizes must be odd (centre slices), got {self.kernel_sizes}")
        if self.lookbacks[0] < self.kernel_sizes[-1]:
            raise ValueError(f"OFASpace.lookbacks must be >= the largest kernel {self.kernel_sizes[-1]}, "
                             f"got {self.lookbacks[0]}")
        heads = tuple(self.head_types) if isinstance(self.head_types, (tuple, list)) else ()
        if not heads or any(h not in (HeadType.GAP.value, HeadType.LAST.value) for h in heads):
            raise ValueError(f"OFASpace.head_types must be a non-empty list of 'gap'/'last', got {self.head_types!r}")
        object.__setattr__(self, "head_types", tuple(dict.fromkeys(HeadType(h) for h in heads)))

    @property
    def channels(self) -> int:
        """Width of the supernet's residual stream: the largest stem or block width."""
        return max(self.widths[-1], self.stem_widths[-1])

    def largest(self, lookback: int | None = None, head: HeadType | None = None) -> SubnetConfig:
        """The full network (at ``lookback`` and ``head``, by default the longest and the first)."""
        depth = self.depths[-1]
        return SubnetConfig(lookback or self.lookbacks[-1], self.stem_widths[-1], (self.kernel_sizes[-1],) * depth,
                            (self.widths[-1],) * depth, head or self.head_types[0])

    def smallest(self, lookback: int | None = None, head: HeadType | None = None) -> SubnetConfig:
        """The smallest sub-network (at ``lookback`` and ``head``)."""
        depth = self.depths[0]
        return SubnetConfig(lookback or self.lookbacks[-1], self.stem_widths[0], (self.kernel_sizes[0],) * depth,
                            (self.widths[0],) * depth, head or self.head_types[0])

    def sample(self, rng: np.random.Generator, phase: Phase | str = Phase.WIDTH) -> SubnetConfig:
        """A random sub-network of what ``phase`` makes elastic (lookback and head always are).

        Taught in: notebooks/13_beyond.
        """
        phase = Phase(phase)
        stage = PHASES.index(phase)
        lookback = int(rng.choice(self.lookbacks))
        head = self.head_types[int(rng.integers(len(self.head_types)))]
        depth = int(rng.choice(self.depths)) if stage >= 2 else self.depths[-1]
        kernels = tuple(int(k) for k in rng.choice(self.kernel_sizes, depth)) if stage >= 1 else (
            (self.kernel_sizes[-1],) * depth)
        if stage >= 3:
            stem = int(rng.choice(self.stem_widths))
            widths = tuple(int(w) for w in rng.choice(self.widths, depth))
        else:
            stem, widths = self.stem_widths[-1], (self.widths[-1],) * depth
        return SubnetConfig(lookback, stem, kernels, widths, head)

    def architecture(self, config: SubnetConfig) -> Architecture:
        """The :class:`Architecture` of a sub-network (a stem, residual ReLU convs, the head).

        Taught in: notebooks/13_beyond.
        """
        self._check_config(config)
        layers = [LayerSpec(OpType.FC, self.input_features, config.stem_width, activation=Activation.RELU)]
        channels = config.stem_width
        for k, w in zip(config.kernels, config.widths):
            layers.append(LayerSpec(OpType.CONV, channels, w, kernel_size=k, use_skip=True,
                                    activation=Activation.RELU))
            channels = w
        return Architecture(tuple(layers), self.input_features, config.lookback, head=config.head)

    def config(self, arch: Architecture) -> SubnetConfig:
        """The sub-network ``arch`` is; ValueError naming what falls outside the supernet.

        Taught in: notebooks/13_beyond.
        """
        if not isinstance(arch, Architecture):
            raise TypeError(f"arch must be an Architecture, got {type(arch).__name__}")
        stem, blocks = arch.layers[0], arch.layers[1:]
        if arch.input_features != self.input_features or arch.num_outputs != 1:
            raise ValueError(f"arch must read {self.input_features} features and give 1 output, got "
                             f"{arch.input_features} and {arch.num_outputs}")
        if (stem.op, stem.activation, stem.use_skip) != (OpType.FC, Activation.RELU, False):
            raise ValueError("arch.layers[0] must be the stem: fc, relu, no skip (the supernet's stem)")
        for index, layer in enumerate(blocks, start=1):
            if (layer.op, layer.activation, layer.use_skip, layer.stride, layer.dilation) != (
                    OpType.CONV, Activation.RELU, True, 1, 1):
                raise ValueError(f"arch.layers[{index}] must be a conv with relu and a skip, stride 1, dilation 1 "
                                 f"(the supernet's blocks), got {layer.op.value} {layer.activation.value}"
                                 f"{' skip' if layer.use_skip else ''}")
        config = SubnetConfig(arch.lookback, stem.out_channels, tuple(b.kernel_size for b in blocks),
                              tuple(b.out_channels for b in blocks), arch.head)
        self._check_config(config)
        return config

    def _check_config(self, config: SubnetConfig) -> None:
        """ValueError naming the first choice of ``config`` outside this space."""
        if not isinstance(config, SubnetConfig):
            raise TypeError(f"config must be a SubnetConfig, got {type(config).__name__}")
        checks = [("lookback", (config.lookback,), self.lookbacks), ("depth", (config.depth,), self.depths),
                  ("stem width", (config.stem_width,), self.stem_widths),
                  ("kernel size", config.kernels, self.kernel_sizes), ("width", config.widths, self.widths),
                  ("head", (config.head,), self.head_types)]
        for name, values, allowed in checks:
            bad = [v for v in values if v not in allowed]
            if bad or len(config.kernels) != len(config.widths):
                raise ValueError(f"{name} {bad[0] if bad else values!r} is outside the supernet "
                                 f"(allowed: {list(allowed)})")

    def search_space(self, base: SearchSpace) -> SearchSpace:
        """``base`` (a target's named space) cut to the sub-networks this supernet holds.

        Conv blocks only, ReLU, a skip on every block; kernels, widths, depths, lookbacks
        and heads in both; ``base``'s stem width, which must be one of :attr:`stem_widths`.
        ValueError when the two share no sub-network.

        Taught in: notebooks/13_beyond.
        """
        def both(name: str, mine: tuple[Any, ...], theirs: tuple[Any, ...]) -> tuple[Any, ...]:
            common = tuple(v for v in mine if v in theirs)
            if not common:
                raise ValueError(f"space {base.name!r} shares no {name} with the supernet "
                                 f"({list(theirs)} vs {list(mine)})")
            return common

        if OpType.CONV not in base.ops or Activation.RELU not in base.activations or True not in base.skip_choices:
            raise ValueError(f"space {base.name!r} has no relu conv with a skip: the supernet's block")
        if base.stem_width not in self.stem_widths or base.input_features != self.input_features:
            raise ValueError(f"space {base.name!r} has stem width {base.stem_width} and {base.input_features} "
                             f"features; the supernet allows {list(self.stem_widths)} and {self.input_features}")
        return replace(base, name=f"{base.name}-ofa", ops=(OpType.CONV,), activations=(Activation.RELU,),
                       skip_choices=(True,), kernel_sizes=both("kernel size", self.kernel_sizes, base.kernel_sizes),
                       widths=both("width", self.widths, base.widths), depths=both("depth", self.depths, base.depths),
                       lookbacks=both("lookback", self.lookbacks, base.lookbacks),
                       head_types=both("head", self.head_types, base.head_types))


# --------------------------------------------------------------------------- the supernet


class OFASupernet(nn.Module):
    """The elastic network: the largest weights, one kernel transform per block and size, two heads.

    ``forward(x, config)`` runs the sub-network ``config`` on the last
    ``config.lookback`` steps of ``x`` ``(batch, features, steps)``.

    Taught in: notebooks/13_beyond.
    """

    def __init__(self, space: OFASpace | None = None, seed: int | None = 0) -> None:
        super().__init__()
        self.space = space = space if space is not None else OFASpace()
        if not isinstance(space, OFASpace):
            raise TypeError(f"space must be an OFASpace, got {type(space).__name__}")
        channels, kmax = space.channels, space.kernel_sizes[-1]
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(require_int(seed, "seed", 0))
            self.stem = nn.Conv1d(space.input_features, channels, 1)
            self.convs = nn.ModuleList(nn.Conv1d(channels, channels, kmax) for _ in range(space.depths[-1]))
            self.projections = nn.ModuleList(nn.Conv1d(channels, channels, 1) for _ in range(space.depths[-1]))
            self.heads = nn.ModuleDict({h.value: nn.Linear(channels, 1) for h in space.head_types})
        # transforms[i][str(k)]: the k x k matrix from the centre of the next larger kernel to a k-tap one
        self.transforms = nn.ModuleList(
            nn.ParameterDict({str(k): nn.Parameter(torch.eye(k)) for k in space.kernel_sizes[:-1]})
            for _ in range(space.depths[-1]))

    def _conv(self, block: int) -> nn.Conv1d:
        return cast(nn.Conv1d, self.convs[block])

    def _projection(self, block: int) -> nn.Conv1d:
        return cast(nn.Conv1d, self.projections[block])

    def _head(self, head: HeadType) -> nn.Linear:
        return cast(nn.Linear, self.heads[head.value])

    def _transform(self, block: int, size: int) -> torch.Tensor:
        return cast(torch.Tensor, cast(nn.ParameterDict, self.transforms[block])[str(size)])

    @staticmethod
    def _bias(module: nn.Conv1d | nn.Linear) -> torch.Tensor:
        return cast(torch.Tensor, module.bias)

    def kernel(self, block: int, k: int, out_channels: int, in_channels: int) -> torch.Tensor:
        """Block ``block``'s ``k``-tap weight for its first ``out_channels`` x ``in_channels`` channels.

        From the largest kernel down: centre ``k'`` taps, then that size's transform.

        Taught in: notebooks/13_beyond.
        """
        weight = self._conv(block).weight[:out_channels, :in_channels]
        for size in reversed(self.space.kernel_sizes[:-1]):
            if size < k:
                break
            start = (weight.shape[-1] - size) // 2
            centre = weight[..., start:start + size]
            weight = F.linear(centre.reshape(-1, size), self._transform(block, size)).reshape(centre.shape)
        return weight

    def subnet_state_dict(self, config: SubnetConfig) -> dict[str, torch.Tensor]:
        """The weights of sub-network ``config`` under ``build_model``'s names (detached copies).

        Taught in: notebooks/13_beyond.
        """
        self.space._check_config(config)
        state: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            s = config.stem_width
            state["layers.0.op.weight"] = self.stem.weight[:s].clone()
            state["layers.0.op.bias"] = self._bias(self.stem)[:s].clone()
            channels = s
            for i, (k, w) in enumerate(zip(config.kernels, config.widths)):
                name = f"layers.{i + 1}"
                state[f"{name}.op.weight"] = self.kernel(i, k, w, channels).clone()
                state[f"{name}.op.bias"] = self._bias(self._conv(i))[:w].clone()
                if channels != w:
                    state[f"{name}.shortcut.weight"] = self._projection(i).weight[:w, :channels].clone()
                    state[f"{name}.shortcut.bias"] = self._bias(self._projection(i))[:w].clone()
                channels = w
            head = self._head(config.head)
            state["head.linear.weight"] = head.weight[:, :channels].clone()
            state["head.linear.bias"] = self._bias(head).clone()
        return state

    def forward(self, x: torch.Tensor, config: SubnetConfig) -> torch.Tensor:
        x = x[:, :, -config.lookback:]
        s = config.stem_width
        h = F.relu(F.conv1d(x, self.stem.weight[:s], self._bias(self.stem)[:s]))
        channels = s
        for i, (k, w) in enumerate(zip(config.kernels, config.widths)):
            y = F.relu(F.conv1d(h, self.kernel(i, k, w, channels), self._bias(self._conv(i))[:w],
                                 padding=(k - 1) // 2))
            if channels == w:
                h = y + h
            else:
                proj = self._projection(i)
                h = y + F.conv1d(h, proj.weight[:w, :channels], self._bias(proj)[:w])
            channels = w
        pooled = h.mean(dim=-1) if config.head == HeadType.GAP else h[..., -1]
        head = self._head(config.head)
        return F.linear(pooled, head.weight[:, :channels], head.bias)


def extract(supernet: OFASupernet, arch: Architecture) -> TradingNet:
    """``build_model(arch)`` holding exactly the supernet's weights for ``arch``, in eval mode.

    ValueError when ``arch`` is not a sub-network of the supernet (:meth:`OFASpace.config`).

    Taught in: notebooks/13_beyond.
    """
    if not isinstance(supernet, OFASupernet):
        raise TypeError(f"supernet must be an OFASupernet, got {type(supernet).__name__}")
    state = supernet.subnet_state_dict(supernet.space.config(arch))
    model = build_model(arch, seed=0)
    model.load_state_dict(state, strict=True)
    return model.eval()


@torch.no_grad()
def sort_channels(supernet: OFASupernet) -> torch.Tensor:
    """Reorder the residual stream's channels by importance, most important first; the permutation.

    Importance of a channel: the L1 norm of every weight that reads it (the blocks'
    convolutions and projections, the heads), as OFA ranks channels before it
    shrinks widths. One permutation for the whole stream (identity skips tie the
    channels of consecutive blocks), so the full network computes the same function.

    Taught in: notebooks/13_beyond.
    """
    blocks = range(len(supernet.convs))
    convs = [supernet._conv(i) for i in blocks] + [supernet._projection(i) for i in blocks]
    heads = [supernet._head(HeadType(name)) for name in supernet.heads]
    readers = [m.weight for m in convs] + [h.weight for h in heads]
    importance = torch.stack([w.abs().sum(dim=tuple(d for d in range(w.dim()) if d != 1)) for w in readers]).sum(0)
    order = torch.argsort(importance, descending=True, stable=True)
    supernet.stem.weight.copy_(supernet.stem.weight[order])
    supernet._bias(supernet.stem).copy_(supernet._bias(supernet.stem)[order])
    for module in convs:
        module.weight.copy_(module.weight[order][:, order])
        supernet._bias(module).copy_(supernet._bias(module)[order])
    for head in heads:
        head.weight.copy_(head.weight[:, order])
    return order


# --------------------------------------------------------------------------- progressive shrinking


@dataclass
class OFATraining:
    """A trained supernet and its training curve (one row per stage and epoch).

    Each ``curve`` row: ``phase``, ``epoch``, ``step`` (optimiser steps so far),
    ``seconds`` (training time so far), ``loss`` (the epoch's mean training loss per
    sub-network), ``val_largest`` and ``val_smallest`` (validation score of the full
    and of the smallest sub-network at the longest lookback and the first head).

    Taught in: notebooks/13_beyond.
    """

    supernet: OFASupernet
    curve: list[dict[str, Any]]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # this process's CPU time in training (``seconds`` is wall time)


def train_supernet(task: ProxyTask, space: OFASpace | None = None, *, seed: int = 0,
                   phase_epochs: Sequence[int] = (2, 1, 1, 2), subnets_per_step: int = 2,
                   shrink_lr_factor: float = 0.3, curve: bool = True,
                   progress: Callable[[str], None] | None = None) -> OFATraining:
    """Train one supernet on ``task`` by progressive shrinking (Cai et al. 2020).

    ``phase_epochs`` gives the epochs of each :class:`Phase` (full, kernel, depth,
    width) over the task's training windows (``task.max_train_windows``, batch
    ``task.batch_size``, Adam at ``task.lr``, ``shrink_lr_factor`` times it after the
    full stage, gradients clipped at ``task.grad_clip``). Each step sums the losses of
    ``subnets_per_step`` sampled sub-networks. Channels are sorted
    (:func:`sort_channels`) before the width stage. Seeded: the weights, the
    sub-networks and the batch order. ``curve=False`` skips the validation scores.

    Taught in: notebooks/13_beyond.
    """
    from ..proxy.training import _check_arch, _train_inputs, torch_settings, train_targets

    space = space if space is not None else OFASpace()
    if not isinstance(space, OFASpace):
        raise TypeError(f"space must be an OFASpace, got {type(space).__name__}")
    seed = require_int(seed, "seed", 0)
    if isinstance(phase_epochs, (str, bytes)) or len(phase_epochs) != len(PHASES):
        raise ValueError(f"phase_epochs must give {len(PHASES)} epoch counts ({', '.join(PHASES)}), "
                         f"got {phase_epochs!r}")
    epochs = [require_int(e, f"phase_epochs[{i}]", 0) for i, e in enumerate(phase_epochs)]
    subnets_per_step = require_int(subnets_per_step, "subnets_per_step", 1)
    shrink_lr_factor = require_positive(shrink_lr_factor, "shrink_lr_factor")
    _check_arch(space.architecture(space.largest()), task)
    supernet = OFASupernet(space, seed)
    X = _train_inputs(task, task.lookback)
    y = torch.from_numpy(train_targets(task, task.train)[task.train_indices()].astype(np.float32))
    loss_fn = nn.MSELoss() if task.target == "volatility" else nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(10_007 * seed + 3)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    step, train_seconds, cpu_seconds = 0, 0.0, 0.0
    with torch_settings(task.num_threads):
        for phase, n_epochs in zip(PHASES, epochs):
            if n_epochs == 0:
                continue
            if phase == Phase.WIDTH:
                sort_channels(supernet)
            lr = task.lr * (1.0 if phase == Phase.FULL else shrink_lr_factor)
            optimizer = torch.optim.Adam(supernet.parameters(), lr=lr)
            for epoch in range(n_epochs):
                t0, cpu0 = time.perf_counter(), time.process_time()
                supernet.train()
                losses = []
                for batch in torch.randperm(len(X), generator=generator).split(task.batch_size):
                    optimizer.zero_grad(set_to_none=True)
                    total = torch.zeros(())
                    for _ in range(subnets_per_step):
                        loss = loss_fn(supernet(X[batch], space.sample(rng, phase)).squeeze(-1), y[batch])
                        total = total + loss
                        losses.append(loss.item())
                    if not torch.isfinite(total):
                        raise FloatingPointError(f"supernet training diverged in stage {phase.value!r}, "
                                                 f"epoch {epoch + 1}: lower task.lr")
                    total.backward()
                    if task.grad_clip is not None:
                        nn.utils.clip_grad_norm_(supernet.parameters(), task.grad_clip)
                    optimizer.step()
                    step += 1
                supernet.eval()
                train_seconds += time.perf_counter() - t0
                cpu_seconds += time.process_time() - cpu0
                row: dict[str, Any] = {"phase": phase.value, "epoch": epoch + 1, "step": step,
                                       "seconds": train_seconds, "loss": float(np.mean(losses))}
                if curve:
                    row["val_largest"] = inherited_score(supernet, space.architecture(space.largest()), task)
                    row["val_smallest"] = inherited_score(supernet, space.architecture(space.smallest()), task)
                rows.append(row)
                if progress is not None:
                    progress(f"ofa {phase.value} epoch {epoch + 1}/{n_epochs}: loss {row['loss']:.4f}"
                             + (f", val largest {row['val_largest']:+.4f} smallest {row['val_smallest']:+.4f}"
                                if curve else "") + f" ({train_seconds:.1f} s)")
    settings = {"phase_epochs": dict(zip([p.value for p in PHASES], epochs)), "subnets_per_step": subnets_per_step,
                "shrink_lr_factor": shrink_lr_factor, "lr": task.lr, "batch_size": task.batch_size,
                "train_windows": len(X), "seed": seed, "threads": task.num_threads}
    return OFATraining(supernet.eval(), rows, train_seconds, settings, cpu_seconds)


# --------------------------------------------------------------------------- per-target extraction


def _steps_read(config: SubnetConfig) -> int:
    """The last input steps a sub-network's prediction depends on.

    A GAP head reads every step of the lookback. A LAST head reads the last output
    step only, and with "same" padding each block's last output sees ``(k - 1) // 2``
    steps back (the steps after it are padding, the same in any cut): so the last
    ``1 + sum((k - 1) // 2)`` steps (the stem and the projections are pointwise).
    """
    if config.head != HeadType.LAST:
        return config.lookback
    return min(config.lookback, 1 + sum((k - 1) // 2 for k in config.kernels))


class _SubnetScorer(nn.Module):
    """Sub-network ``config`` run by the supernet itself on only the steps it reads (:func:`_steps_read`).

    The same function as ``extract(supernet, arch)`` (tests check the scores agree to
    float rounding) without building a model, and for a LAST head on a few steps
    instead of the whole lookback: what :func:`search_subnet` scores with.
    """

    def __init__(self, supernet: OFASupernet, config: SubnetConfig) -> None:
        super().__init__()
        self.supernet, self.config, self.steps = supernet, config, _steps_read(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x[:, :, -self.steps:], self.config)


def inherited_score(supernet: OFASupernet, arch: Architecture, task: ProxyTask, split: str = "val") -> float:
    """The task's primary score on ``split`` of ``arch`` with the supernet's weights (no training).

    Taught in: notebooks/13_beyond.
    """
    from ..proxy.walk_forward import split_score

    score = split_score(extract(supernet, arch), task, split, arch.lookback)
    return 0.0 if math.isnan(score) else score


def _search_score(supernet: OFASupernet, arch: Architecture, task: ProxyTask) -> float:
    """:func:`inherited_score` on validation through :class:`_SubnetScorer` (no model built, fewer steps)."""
    from ..proxy.task import PRIMARY_METRIC, score_predictions
    from ..proxy.training import predict_split

    scorer = _SubnetScorer(supernet, supernet.space.config(arch)).eval()
    score = float(score_predictions(predict_split(scorer, task, "val", arch.lookback), task, "val")[
        PRIMARY_METRIC[task.target]])
    return 0.0 if math.isnan(score) else score


def target_problem(supernet: OFASupernet, target: str, profile: HardwareProfile, task: ProxyTask | None = None, *,
                   evals: int = 60, latency_budget_us: float | None = None,
                   base_space: SearchSpace | None = None) -> SearchProblem:
    """The hard-constrained :class:`SearchProblem` of ``target``'s plan on the supernet's part of its space.

    Budget, batch and memory budget from :data:`hwnas.pipeline.plan.PLANS` (the memory
    budget the profile's when the plan sets none); ``latency_budget_us`` overrides the
    plan's (e.g. the CPU's p99 budget divided by a tail factor); ``base_space`` replaces
    the plan's named space (e.g. the one a committed table prices).

    Taught in: notebooks/13_beyond.
    """
    from ..checks import require_choice
    from ..pipeline.plan import PLANS, TARGET_NAMES
    from ..space import SearchSpace
    from .base import SearchProblem

    target = require_choice(target, "target", TARGET_NAMES)
    plan = PLANS[target]
    if base_space is None:
        base_space = SearchSpace.named(plan.space, input_features=supernet.space.input_features)
    elif not isinstance(base_space, SearchSpace):
        raise TypeError(f"base_space must be a SearchSpace, got {type(base_space).__name__}")
    space = supernet.space.search_space(base_space)
    budget = plan.latency_budget_us if latency_budget_us is None else require_positive(
        latency_budget_us, "latency_budget_us")
    return SearchProblem(space, profile, budget, require_int(evals, "evals", 1),
                         memory_budget_bytes=plan.memory_budget or int(profile.memory_budget_bytes), task=task,
                         constraint="hard", batch=plan.batch)


@dataclass
class OFAChoice:
    """The sub-network a target gets: architecture, its metrics (inherited validation score) and every candidate.

    ``points`` holds one row per distinct candidate: ``arch`` (label), ``latency_us``,
    ``score`` (NaN when outside the budgets: not scored), ``within_budget``. ``seconds``
    is wall time, ``cpu_seconds`` this process's CPU time (less sensitive to other jobs).

    Taught in: notebooks/13_beyond.
    """

    target: str
    arch: Architecture | None
    metrics: Metrics | None
    seconds: float
    evals: int
    scored: int
    points: list[dict[str, Any]]
    cpu_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (NaN as None)."""
        from .base import nan_to_none

        return nan_to_none({"target": self.target, "arch": self.arch.to_dict() if self.arch else None,
                            "label": self.arch.label() if self.arch else None,
                            "metrics": self.metrics.to_dict() if self.metrics else None, "seconds": self.seconds,
                            "cpu_seconds": self.cpu_seconds,
                            "evals": self.evals, "scored": self.scored, "points": self.points})


def search_subnet(supernet: OFASupernet, problem: SearchProblem, task: ProxyTask | None = None, *, seed: int = 0,
                  population_size: int = 12, sample_size: int = 4, target: str | None = None) -> OFAChoice:
    """Regularised evolution over ``problem.space`` on inherited weights: the best sub-network within budget.

    Every candidate is priced by ``problem`` (the target's table or model); only the
    ones within the budgets are scored (:func:`inherited_score` on validation, computed
    by the supernet itself on only the steps the sub-network reads: the same score to
    float rounding, several times cheaper for LAST heads), each architecture once.
    ``problem.num_iterations`` candidates are asked. No training.
    ``target`` names the result (default: the problem's space).

    Taught in: notebooks/13_beyond.
    """
    from .evolution import RegularizedEvolution

    if not isinstance(supernet, OFASupernet):
        raise TypeError(f"supernet must be an OFASupernet, got {type(supernet).__name__}")
    task = task if task is not None else problem.task
    if task is None:
        raise ValueError("task is required (or problem.task): the inherited weights are scored on its validation split")
    supernet.space.config(problem.space.sample(np.random.default_rng(0)))  # the supernet's space? fail early
    t0, cpu0 = time.perf_counter(), time.process_time()
    strategy = RegularizedEvolution(problem, seed=seed, population_size=population_size, sample_size=sample_size)
    seen: dict[str, Metrics] = {}
    for _ in range(problem.num_iterations):
        arch = strategy.ask(1)[0]
        key = arch.to_json()
        if key not in seen:
            metrics = problem.predict(arch)
            if problem.within_budget(metrics):
                metrics = replace(metrics, score=_search_score(supernet, arch, task))
            seen[key] = metrics
        strategy.tell(arch, seen[key])
    best = [(Architecture.from_json(k), m) for k, m in seen.items() if problem.selectable(m)]
    chosen = max(best, key=lambda c: c[1].score) if best else None
    points = [{"arch": Architecture.from_json(k).label(), "latency_us": m.latency_us, "score": m.score,
               "within_budget": problem.within_budget(m)} for k, m in seen.items()]
    return OFAChoice(target or problem.space.name, chosen[0] if chosen else None, chosen[1] if chosen else None,
                     time.perf_counter() - t0, problem.num_iterations,
                     sum(math.isfinite(m.score) for m in seen.values()), points, time.process_time() - cpu0)


def finetune(supernet: OFASupernet, arch: Architecture, task: ProxyTask, epochs: int = 2, seed: int = 0) -> TradingNet:
    """The extracted sub-network trained ``epochs`` more epochs with the task's recipe (eval mode).

    Taught in: notebooks/13_beyond.
    """
    from ..proxy.training import _check_arch, _fit, torch_settings

    _check_arch(arch, task)
    epochs = require_int(epochs, "epochs", 1)
    model = extract(supernet, arch)
    with torch_settings(task.num_threads):
        _fit(model, task, arch.lookback, require_int(seed, "seed", 0), epochs)
    return model
