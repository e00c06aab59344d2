"""The MnasNet controller: an LSTM policy over a search space's decisions, with masking.

Taught in: notebooks/08_mnasnet_rl.

:func:`decision_layout` lists the decisions of a :class:`~hwnas.space.Genome` in the
order the controller emits them (the lookback, the depth, the head, then per layer the
operation, its variant and the skip); :class:`Controller` is the one-layer LSTM that
emits them, each conditioned on the earlier ones. A decision that cannot follow what was
already chosen is masked out of the logits (the masks here), so every sample is a valid
architecture and its log-probability is that of the masked distribution. The strategy
that trains it is :mod:`hwnas.search.mnasnet`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..architecture import NO_SKIP_OPS, OpType
from ..space import BlockChoice, SearchSpace

__all__ = ["Controller", "Decision", "DecisionMasks", "MaskSet", "Rollout", "decision_layout",
           "masked_entropy", "masked_log_softmax", "replay_masks"]



@dataclass(frozen=True)
class Decision:
    """One step of the controller: its name, kind, and how many choices it has.

    ``kind`` is ``lookback``, ``depth``, ``head``, ``op``, ``variant`` or
    ``skip``; ``layer`` is the searchable layer (0-based) of the last three.

    Taught in: notebooks/08_mnasnet_rl.
    """

    name: str
    kind: str
    size: int
    layer: int = -1


def decision_layout(space: SearchSpace) -> tuple[Decision, ...]:
    """The fixed order of the controller's decisions for ``space``.

    Layers beyond the sampled depth are padding: their steps are run but carry
    no log-probability. Taught in: notebooks/08_mnasnet_rl.
    """
    steps = [Decision("lookback", "lookback", len(space.lookbacks)),
             Decision("depth", "depth", len(space.depths)),
             Decision("head", "head", len(space.head_types))]
    n_ops, n_blocks = len(_op_order(space)), len(space.candidates())
    for layer in range(max(space.depths)):
        steps += [Decision(f"op{layer + 1}", "op", n_ops, layer),
                  Decision(f"variant{layer + 1}", "variant", n_blocks, layer),
                  Decision(f"skip{layer + 1}", "skip", len(space.skip_choices), layer)]
    return tuple(steps)


def _op_order(space: SearchSpace) -> tuple[OpType, ...]:
    """The operations that have candidates, in candidate order."""
    return tuple(dict.fromkeys(c.op for c in space.candidates()))


class Controller(nn.Module):
    """The policy: an LSTM over the decisions, an embedding and a linear head per kind of decision.

    The layers share the heads of their kind (``op``, ``variant``, ``skip``), as
    ENAS does; the recurrent state tells the positions apart.
    Taught in: notebooks/08_mnasnet_rl.
    """

    def __init__(self, layout: Sequence[Decision], hidden: int = 64) -> None:
        super().__init__()
        sizes = {d.kind: d.size for d in layout}
        self.sizes = sizes
        self.kinds = [d.kind for d in layout]
        self.steps_by_kind = {k: torch.tensor([t for t, kind in enumerate(self.kinds) if kind == k])
                              for k in sizes}
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.lstm = nn.LSTM(hidden, hidden)
        self.embeddings = nn.ModuleDict({k: nn.Embedding(n, hidden) for k, n in sizes.items()})
        self.heads = nn.ModuleDict({k: nn.Linear(hidden, n) for k, n in sizes.items()})

    def embed(self, actions: torch.Tensor, index: int) -> torch.Tensor:
        """The next step's input: the embedding of the action taken at decision ``index``."""
        return self.embeddings[self.kinds[index]](actions)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Every weight uniform in [-0.1, 0.1] (as ENAS), drawn from ``generator``."""
        with torch.no_grad():
            for param in self.parameters():
                param.uniform_(-0.1, 0.1, generator=generator)

    def step(self, inputs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None,
             index: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits of decision ``index`` for a batch of inputs ``(B, hidden)``, and the new state.

        One cell of :attr:`lstm` (the same weights; a single fused call is
        cheaper than the module's sequence machinery for one step).
        """
        if state is None:
            zeros = inputs.new_zeros(inputs.shape[0], self.lstm.hidden_size)
            state = (zeros, zeros)
        w_ih, w_hh, b_ih, b_hh = self.lstm.all_weights[0]
        h, c = torch.lstm_cell(inputs, state, w_ih, w_hh, b_ih, b_hh)
        return self.heads[self.kinds[index]](h), (h, c)

    def sequence_logits(self, actions: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, widest)`` of every decision given the actions taken ``(B, T)``.

        Teacher forcing, one call per kind of decision; a decision narrower than
        the widest is padded with zeros (masked out by the caller).
        """
        batch, steps = actions.shape
        hidden = self.lstm.hidden_size
        inputs = torch.zeros(steps, batch, hidden)
        inputs[0] = self.start.expand(batch, -1)
        for kind, index in self.steps_by_kind.items():
            following = index[index < steps - 1]
            inputs[following + 1] = self.embeddings[kind](actions[:, following].T)
        out, _ = self.lstm(inputs)
        logits = torch.zeros(steps, batch, max(self.sizes.values()))
        for kind, index in self.steps_by_kind.items():
            logits[index, :, :self.sizes[kind]] = self.heads[kind](out[index])
        return logits.transpose(0, 1)


class DecisionMasks:
    """Which choices each decision allows, given the earlier ones (cached per shape).

    Taught in: notebooks/08_mnasnet_rl.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.layout = decision_layout(space)
        self.ops = _op_order(space)
        self.blocks = space.candidates()
        self.block_op = [self.ops.index(c.op) for c in self.blocks]
        allowed = getattr(space, "allowed", None) or space._allowed
        self._allowed = allowed
        self._cache: dict[tuple[Any, ...], torch.Tensor] = {}
        self._shapes: dict[tuple[int, int, int], tuple[int, int]] = {}

    def _cached(self, key: tuple[Any, ...], make: Any) -> torch.Tensor:
        if key not in self._cache:
            self._cache[key] = torch.tensor(make(), dtype=torch.bool)
        return self._cache[key]

    def blocks_allowed(self, channels: int, length: int) -> torch.Tensor:
        """Boolean mask over the candidate blocks that fit a ``(channels, length)`` map."""
        def make() -> np.ndarray:
            mask = np.zeros(len(self.blocks), dtype=bool)
            mask[np.asarray(self._allowed(channels, length), dtype=int)] = True
            return mask
        return self._cached(("blocks", channels, length), make)

    def ops_allowed(self, channels: int, length: int) -> torch.Tensor:
        """Boolean mask over the operations with at least one block that fits."""
        fits = self.blocks_allowed(channels, length)
        def make() -> list[bool]:
            return [bool(fits[[i for i, o in enumerate(self.block_op) if o == k]].any())
                    for k in range(len(self.ops))]
        return self._cached(("ops", channels, length), make)

    def variants_allowed(self, op: int, channels: int, length: int) -> torch.Tensor:
        """Boolean mask over the blocks of operation ``op`` that fit."""
        fits = self.blocks_allowed(channels, length)
        def make() -> list[bool]:
            return [bool(fits[i]) and o == op for i, o in enumerate(self.block_op)]
        return self._cached(("variants", op, channels, length), make)

    def output_shape(self, block: int, channels: int, length: int) -> tuple[int, int]:
        """``(channels, length)`` after candidate ``block`` on a ``(channels, length)`` map."""
        key = (block, channels, length)
        if key not in self._shapes:
            layer = self.blocks[block].layer(channels, False)
            self._shapes[key] = (layer.out_channels, layer.output_length(length))
        return self._shapes[key]

    def skips_allowed(self, block: int, channels: int, length: int) -> torch.Tensor:
        """Boolean mask over the skip choices this block can take (pooling, identity: the first)."""
        choice = self.blocks[block]
        def make() -> list[bool]:
            if choice.op in NO_SKIP_OPS:
                return [i == 0 for i in range(len(self.space.skip_choices))]
            return [_skip_fits(choice, channels, length, s) for s in self.space.skip_choices]
        return self._cached(("skips", block, channels, length), make)


def _skip_fits(choice: BlockChoice, channels: int, length: int, skip: bool) -> bool:
    """Whether the skip branch's length matches the block's (an odd span at stride 1)."""
    layer = choice.layer(channels, skip)
    return not skip or layer.shortcut_length(length) == layer.output_length(length)


class Rollout:
    """The running state of a batch of partial genomes while decisions are made.

    Taught in: notebooks/08_mnasnet_rl.
    """

    def __init__(self, masks: DecisionMasks, batch: int) -> None:
        self.m = masks
        self.depth = [0] * batch
        self.channels = [masks.space.stem_width] * batch
        self.length = [0] * batch
        self.op = [0] * batch
        self.block = [0] * batch

    def mask(self, decision: Decision) -> tuple[torch.Tensor, torch.Tensor]:
        """``(allowed (B, size), active (B,))`` for the next decision."""
        rows, active = [], []
        for r in range(len(self.depth)):
            on = decision.layer < 0 or decision.layer < self.depth[r]
            active.append(on)
            rows.append(self._row(decision, r) if on else _first_only(decision.size))
        return torch.stack(rows), torch.tensor(active)

    def _row(self, decision: Decision, r: int) -> torch.Tensor:
        ch, ln, kind = self.channels[r], self.length[r], decision.kind
        if kind == "op":
            return self.m.ops_allowed(ch, ln)
        if kind == "variant":
            return self.m.variants_allowed(self.op[r], ch, ln)
        if kind == "skip":
            return self.m.skips_allowed(self.block[r], ch, ln)
        return torch.ones(decision.size, dtype=torch.bool)

    def take(self, decision: Decision, actions: Sequence[int], active: Sequence[bool]) -> None:
        """Advance every active row by the chosen action."""
        space = self.m.space
        for r, (a, on) in enumerate(zip(actions, active)):
            if not on:
                continue
            if decision.kind == "lookback":
                self.length[r] = space.lookbacks[a]
            elif decision.kind == "depth":
                self.depth[r] = space.depths[a]
            elif decision.kind == "op":
                self.op[r] = a
            elif decision.kind == "variant":
                self.block[r] = a
                self.channels[r], self.length[r] = self.m.output_shape(a, self.channels[r], self.length[r])


@functools.cache
def _first_only(size: int) -> torch.Tensor:
    """The mask of a padding step: only the first choice (its log-probability is 0)."""
    mask = torch.zeros(size, dtype=torch.bool)
    mask[0] = True
    return mask


MaskSet = tuple[list[torch.Tensor], torch.Tensor]  # allowed (B, size) per decision, active (B, T)


def replay_masks(masks: DecisionMasks, actions: torch.Tensor) -> MaskSet:
    """The masks a batch of actions was sampled under.

    Taught in: notebooks/08_mnasnet_rl.
    """
    rollout = Rollout(masks, actions.shape[0])
    allowed, active = [], []
    for t, decision in enumerate(masks.layout):
        mask, on = rollout.mask(decision)
        allowed.append(mask)
        active.append(on)
        rollout.take(decision, actions[:, t].tolist(), on.tolist())
    return allowed, torch.stack(active, dim=1)


def masked_log_softmax(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the allowed choices only (the others at -inf).

    Taught in: notebooks/08_mnasnet_rl.
    """
    return torch.log_softmax(logits.masked_fill(~allowed, -math.inf), dim=-1)


def masked_entropy(logp: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of log-probabilities (masked entries, at -inf, add nothing).

    Taught in: notebooks/08_mnasnet_rl.
    """
    p = logp.exp()
    return -(p * torch.where(p > 0, logp, torch.zeros_like(logp))).sum(-1)
