"""MnasNet-style reinforcement learning: an LSTM controller samples architectures.

Taught in: notebooks/08_mnasnet_rl.

The controller (Tan et al. 2019, after Zoph and Le 2017 and NNI's
``PolicyBasedRL``) is a one-layer LSTM that emits the decisions of a
:class:`~hwnas.space.Genome` one after another, each conditioned on the earlier
ones through the recurrent state: the lookback, the depth, the head, then per
layer the operation, its variant (kernel, width, dilation, heads, activation)
and the skip. A decision that cannot follow what was already chosen (a kernel
longer than the sequence, pooling below the minimum length) is masked out of
the logits, so every sample is a valid architecture and its log-probability is
that of the masked distribution.

Training is REINFORCE with a moving-average baseline and an entropy bonus
(``algorithm="reinforce"``) or PPO's clipped objective over a few epochs per
batch (``algorithm="ppo"``, what MnasNet used). The reward is
:meth:`SearchProblem.reward <hwnas.search.base.SearchProblem.reward>`: MnasNet's
``ACC * (LAT/T)^w`` (soft, ``w = -0.07``, or hard), times the memory term when
a memory budget is set, and :data:`~hwnas.search.base.INFEASIBLE_REWARD` for an
architecture the target cannot run (which the evaluator never trains).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..checks import require_choice, require_float, require_int
from ..numerics import torch_threads
from ..space import POOL_OPS, Architecture, BlockChoice, Genome, OpType, SearchSpace
from .base import Metrics, SearchProblem, Strategy, register_strategy

__all__ = ["ALGORITHMS", "Controller", "Decision", "MnasNetStrategy", "decision_layout"]

ALGORITHMS = ("reinforce", "ppo")
STATE_VERSION = 1
_NO_SKIP_OPS = POOL_OPS | {OpType.IDENTITY}


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


class _Masks:
    """Which choices each decision allows, given the earlier ones (cached per shape)."""

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
            if choice.op in _NO_SKIP_OPS:
                return [i == 0 for i in range(len(self.space.skip_choices))]
            return [_skip_fits(choice, channels, length, s) for s in self.space.skip_choices]
        return self._cached(("skips", block, channels, length), make)


def _skip_fits(choice: BlockChoice, channels: int, length: int, skip: bool) -> bool:
    """Whether the skip branch's length matches the block's (an odd span at stride 1)."""
    layer = choice.layer(channels, skip)
    return not skip or layer.shortcut_length(length) == layer.output_length(length)


class _Rollout:
    """The running state of a batch of partial genomes while decisions are made."""

    def __init__(self, masks: _Masks, batch: int) -> None:
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


@functools.lru_cache(maxsize=None)
def _first_only(size: int) -> torch.Tensor:
    """The mask of a padding step: only the first choice (its log-probability is 0)."""
    mask = torch.zeros(size, dtype=torch.bool)
    mask[0] = True
    return mask


_MaskSet = tuple[list[torch.Tensor], torch.Tensor]  # allowed (B, size) per decision, active (B, T)


def _replay_masks(masks: _Masks, actions: torch.Tensor) -> _MaskSet:
    """The masks a batch of actions was sampled under."""
    rollout = _Rollout(masks, actions.shape[0])
    allowed, active = [], []
    for t, decision in enumerate(masks.layout):
        mask, on = rollout.mask(decision)
        allowed.append(mask)
        active.append(on)
        rollout.take(decision, actions[:, t].tolist(), on.tolist())
    return allowed, torch.stack(active, dim=1)


def _masked_log_softmax(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.masked_fill(~allowed, -math.inf), dim=-1)


def _entropy(logp: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of log-probabilities (masked entries, at -inf, add nothing)."""
    p = logp.exp()
    return -(p * torch.where(p > 0, logp, torch.zeros_like(logp))).sum(-1)


@register_strategy("mnasnet")
class MnasNetStrategy(Strategy):
    """MnasNet's RL search: an LSTM controller trained by REINFORCE (or PPO) on the reward.

    ``ask(n)`` hands out up to ``n`` architectures of the current policy batch
    (``batch_size`` samples drawn together when a batch starts, so the result
    does not depend on how the loop chunks its asks); ``tell`` records
    :meth:`SearchProblem.reward` and, once every sample of the batch is told,
    takes one update (``ppo_epochs`` for PPO). The baseline is an exponential
    moving average of batch-mean rewards (the first batch's mean to start).
    ``history`` holds one record per update (mean reward, baseline, entropy,
    the most likely choice's probability per decision).

    Taught in: notebooks/08_mnasnet_rl.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0, batch_size: int = 10,
                 lr: float = 0.02, entropy: float = 1e-3, baseline_decay: float = 0.8,
                 algorithm: str = "reinforce", hidden: int = 64, ppo_clip: float = 0.2,
                 ppo_epochs: int = 4) -> None:
        super().__init__(problem, seed=seed)
        self.batch_size = require_int(batch_size, "batch_size", 1)
        self.lr = require_float(lr, "lr", minimum=0.0, strict_minimum=True)
        self.entropy = require_float(entropy, "entropy", minimum=0.0)
        self.baseline_decay = require_float(baseline_decay, "baseline_decay", minimum=0.0, maximum=1.0)
        self.algorithm = require_choice(algorithm, "algorithm", ALGORITHMS)
        self.hidden = require_int(hidden, "hidden", 1)
        self.ppo_clip = require_float(ppo_clip, "ppo_clip", minimum=0.0, strict_minimum=True)
        self.ppo_epochs = require_int(ppo_epochs, "ppo_epochs", 1)
        self.masks = _Masks(problem.space)
        self.layout = self.masks.layout
        self.generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):  # module construction must not move the global RNG
            self.policy = Controller(self.layout, self.hidden)
        self.policy.reset_parameters(self.generator)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.lr)
        self.baseline: float | None = None
        self.updates = 0
        self.asked_total = 0
        self.history: list[dict[str, Any]] = []
        self._actions = torch.zeros(0, len(self.layout), dtype=torch.long)
        self._archs: list[Architecture] = []
        self._rewards: list[float | None] = []
        self._handed = 0
        self._masks: _MaskSet | None = None

    # ---- sampling
    def sample(self, batch: int, greedy: bool = False) -> tuple[torch.Tensor, list[Architecture]]:
        """``batch`` action sequences ``(B, T)`` from the policy and their architectures."""
        actions, archs, _ = self._sample(batch, greedy)
        return actions, archs

    @torch.no_grad()
    def _sample(self, batch: int, greedy: bool = False) -> tuple[torch.Tensor, list[Architecture], _MaskSet]:
        """:meth:`sample`, and the masks each decision was drawn under."""
        rollout = _Rollout(self.masks, batch)
        allowed_steps, active_steps = [], []
        inputs, state = self.policy.start.expand(batch, -1), None
        actions = torch.zeros(batch, len(self.layout), dtype=torch.long)
        for t, decision in enumerate(self.layout):
            logits, state = self.policy.step(inputs, state, t)
            allowed, active = rollout.mask(decision)
            allowed_steps.append(allowed)
            active_steps.append(active)
            logp = _masked_log_softmax(logits, allowed)
            if greedy:
                chosen = logp.argmax(-1)
            else:
                chosen = torch.multinomial(logp.exp(), 1, generator=self.generator)[:, 0]
            actions[:, t] = chosen
            rollout.take(decision, chosen.tolist(), active.tolist())
            inputs = self.policy.embed(chosen, t)
        archs = [self.problem.space.decode(self.genome(row)) for row in actions.tolist()]
        return actions, archs, (allowed_steps, torch.stack(active_steps, dim=1))

    def genome(self, actions: Sequence[int]) -> Genome:
        """The genome one row of actions describes."""
        space, layout = self.problem.space, self.layout
        picked = dict(zip((d.name for d in layout), actions))
        depth = space.depths[picked["depth"]]
        blocks = tuple(int(picked[f"variant{i + 1}"]) for i in range(depth))
        skips = tuple(bool(space.skip_choices[picked[f"skip{i + 1}"]]) for i in range(depth))
        return Genome(space.lookbacks[picked["lookback"]], blocks, skips,
                      space.head_types[picked["head"]])

    def actions_of(self, arch: Architecture) -> list[int]:
        """The action sequence that produces ``arch`` (inverse of :meth:`genome`)."""
        space, genome = self.problem.space, self.problem.space.encode(arch)
        picked = {"lookback": space.lookbacks.index(genome.lookback),
                  "depth": space.depths.index(len(genome.blocks)),
                  "head": space.head_types.index(genome.head)}
        for i, (block, skip) in enumerate(zip(genome.blocks, genome.skips)):
            no_skip = self.masks.blocks[block].op in _NO_SKIP_OPS
            picked.update({f"op{i + 1}": self.masks.block_op[block], f"variant{i + 1}": block,
                           f"skip{i + 1}": 0 if no_skip else space.skip_choices.index(skip)})
        return [picked.get(d.name, 0) for d in self.layout]

    @torch.no_grad()
    def log_prob(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The policy's log-probability of each architecture (``-inf`` for one it cannot sample)."""
        actions = torch.tensor([self.actions_of(a) for a in archs], dtype=torch.long)
        with torch_threads(1):
            return self.log_probs(actions)[0].numpy().astype(float)

    def log_probs(self, actions: torch.Tensor,
                  masks: "_MaskSet | None" = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (summed over active decisions) of each row of ``actions``.

        ``masks`` (from sampling) saves replaying the decisions to rebuild them.
        """
        allowed, active = masks or _replay_masks(self.masks, actions)
        logits = self.policy.sequence_logits(actions)
        padded = torch.zeros(logits.shape, dtype=torch.bool)
        for t, mask in enumerate(allowed):
            padded[:, t, :mask.shape[1]] = mask
        logp = _masked_log_softmax(logits, padded)
        chosen = logp.gather(2, actions.unsqueeze(2))[..., 0]
        return torch.where(active, chosen, 0.0).sum(1), torch.where(active, _entropy(logp), 0.0).sum(1)

    @torch.no_grad()
    def decision_probabilities(self) -> list[np.ndarray]:
        """The policy's distribution at every decision along its most likely path.

        Every layer position is shown (as if the depth were the largest), each
        conditioned on the most likely earlier choices.
        """
        rollout = _Rollout(self.masks, 1)
        rollout.depth = [max(self.problem.space.depths)]
        inputs: torch.Tensor = self.policy.start
        state, out = None, []
        for t, decision in enumerate(self.layout):
            logits, state = self.policy.step(inputs, state, t)
            allowed, _ = rollout.mask(decision)
            probs = _masked_log_softmax(logits, allowed).exp()[0]
            chosen = int(probs.argmax())
            out.append(probs.numpy().astype(float))
            if decision.kind != "depth":
                rollout.take(decision, [chosen], [True])
            inputs = self.policy.embed(torch.tensor([chosen]), t)
        return out

    # ---- the ask/tell interface
    def ask(self, n: int = 1) -> list[Architecture]:
        """Up to ``n`` architectures of the current batch; ``[]`` once ``num_iterations`` were asked."""
        n = require_int(n, "n", 1)
        if self._handed == len(self._archs):
            if any(r is None for r in self._rewards):
                raise RuntimeError("tell the results of every asked architecture before asking again")
            left = self.problem.num_iterations - self.asked_total
            if left <= 0:
                return []
            with torch_threads(1):  # a 64-wide LSTM: more threads only add contention
                self._actions, self._archs, self._masks = self._sample(self.batch_size)
            self._rewards, self._handed = [None] * self.batch_size, 0
        take = min(n, len(self._archs) - self._handed, self.problem.num_iterations - self.asked_total)
        out = self._archs[self._handed:self._handed + take]
        self._handed += take
        self.asked_total += take
        return list(out)

    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """Record ``arch``'s reward; update the policy once the whole batch is told."""
        for i in range(self._handed):
            if self._rewards[i] is None and self._archs[i] == arch:
                self._rewards[i] = self.problem.reward(metrics)
                break
        else:
            raise ValueError("tell: arch was not handed out by ask() or was already told")
        if self._handed == len(self._archs) and all(r is not None for r in self._rewards):
            with torch_threads(1):
                self._update()

    def _update(self) -> None:
        rewards = torch.tensor([float(r) for r in self._rewards if r is not None])
        baseline = float(rewards.mean()) if self.baseline is None else self.baseline
        advantage = rewards - baseline
        old_logp = torch.zeros(0)
        if self.algorithm == "ppo":
            with torch.no_grad():
                old_logp, _ = self.log_probs(self._actions, self._masks)
        for _ in range(self.ppo_epochs if self.algorithm == "ppo" else 1):
            loss, ent = self.loss(self._actions, advantage, old_logp, self._masks)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.baseline = self.baseline_decay * baseline + (1 - self.baseline_decay) * float(rewards.mean())
        self.updates += 1
        self._record(rewards, baseline, float(ent.detach().mean()), float(loss.detach()))
        self._actions = self._actions[:0]
        self._archs, self._rewards, self._handed, self._masks = [], [], 0, None

    def loss(self, actions: torch.Tensor, advantage: torch.Tensor, old_logp: torch.Tensor | None = None,
             masks: "_MaskSet | None" = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss one update minimises, and each sample's entropy.

        REINFORCE: ``-mean(A * log p(a))``; PPO: ``-mean(min(r A, clip(r, 1-e, 1+e) A))``
        with ``r = p(a) / p_old(a)``; both minus ``entropy`` times the mean entropy.
        ``advantage`` is ``reward - baseline`` per sample.
        """
        logp, ent = self.log_probs(actions, masks)
        if self.algorithm == "reinforce" or old_logp is None:
            policy = -(advantage * logp).mean()
        else:
            ratio = (logp - old_logp).exp()
            clipped = ratio.clamp(1 - self.ppo_clip, 1 + self.ppo_clip)
            policy = -torch.minimum(ratio * advantage, clipped * advantage).mean()
        return policy - self.entropy * ent.mean(), ent

    def _record(self, rewards: torch.Tensor, baseline: float, entropy: float, loss: float) -> None:
        feasible = rewards[rewards > -1.0]
        self.history.append({
            "update": self.updates,
            "evaluations": self.asked_total,
            "mean_reward": float(rewards.mean()),
            "best_reward": float(rewards.max()),
            "infeasible": int((rewards <= -1.0).sum()),
            "mean_feasible_reward": float(feasible.mean()) if len(feasible) else None,
            "baseline": baseline,
            "entropy": entropy,
            "loss": loss,
            "top_probability": [round(float(p.max()), 6) for p in self.decision_probabilities()],
        })

    # ---- state
    def state_dict(self) -> dict[str, Any]:
        """Weights, optimiser state, baseline, RNG state and the pending batch, as plain JSON."""
        optim = self.optimizer.state_dict()
        return {
            "version": STATE_VERSION,
            "strategy": self.name,
            "options": self._options(),
            "policy": {k: _tensor_json(v) for k, v in self.policy.state_dict().items()},
            "optimizer": {
                "state": [[int(k), {n: _tensor_json(t) for n, t in v.items()}]
                          for k, v in optim["state"].items()],
                "param_groups": optim["param_groups"],
            },
            "baseline": self.baseline,
            "rng": _tensor_json(self.generator.get_state()),
            "updates": self.updates,
            "asked_total": self.asked_total,
            "pending": {"actions": self._actions.tolist(), "rewards": list(self._rewards),
                        "handed": self._handed},
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` output (of a strategy with the same options)."""
        if state.get("version") != STATE_VERSION or state.get("strategy") != self.name:
            raise ValueError(f"state: not a {self.name!r} state of version {STATE_VERSION}")
        if state["options"] != self._options():
            raise ValueError(f"state: options {state['options']} differ from this strategy's "
                             f"{self._options()}")
        self.policy.load_state_dict({k: _tensor_from_json(v) for k, v in state["policy"].items()})
        self.optimizer.load_state_dict({
            "state": {k: {n: _tensor_from_json(t) for n, t in v.items()}
                      for k, v in state["optimizer"]["state"]},
            "param_groups": state["optimizer"]["param_groups"],
        })
        self.baseline = state["baseline"]
        self.generator.set_state(_tensor_from_json(state["rng"]))
        self.updates, self.asked_total = int(state["updates"]), int(state["asked_total"])
        pending = state["pending"]
        self._actions = torch.tensor(pending["actions"], dtype=torch.long).reshape(-1, len(self.layout))
        self._archs = [self.problem.space.decode(self.genome(row)) for row in self._actions.tolist()]
        self._rewards, self._handed = list(pending["rewards"]), int(pending["handed"])
        self._masks = None  # rebuilt from the actions at the update
        self.history = list(state["history"])

    def _options(self) -> dict[str, Any]:
        return {"seed": self.seed, "batch_size": self.batch_size, "lr": self.lr,
                "entropy": self.entropy, "baseline_decay": self.baseline_decay,
                "algorithm": self.algorithm, "hidden": self.hidden, "ppo_clip": self.ppo_clip,
                "ppo_epochs": self.ppo_epochs}

    def __repr__(self) -> str:
        return (f"MnasNetStrategy(seed={self.seed}, algorithm={self.algorithm!r}, "
                f"batch_size={self.batch_size}, lr={self.lr}, updates={self.updates})")


def _tensor_json(value: Any) -> Any:
    """A tensor as plain JSON: shape, dtype and the flat values (exact: a float32 is a double)."""
    if not isinstance(value, torch.Tensor):
        return value
    array = value.detach().cpu().numpy()
    return {"shape": list(array.shape), "dtype": str(array.dtype), "data": array.ravel().tolist()}


def _tensor_from_json(value: Any) -> Any:
    """Inverse of :func:`_tensor_json` (other values pass through)."""
    if isinstance(value, dict) and set(value) == {"shape", "dtype", "data"}:
        array = np.asarray(value["data"], dtype=value["dtype"]).reshape(value["shape"])
        return torch.from_numpy(array)
    return value
