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

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..architecture import NO_SKIP_OPS, Architecture
from ..checks import require_choice, require_float, require_int
from ..numerics import torch_threads
from ..space import Genome
from .base import Metrics, SearchProblem, Strategy, register_strategy
from .controller import (
    Controller,
    DecisionMasks,
    MaskSet,
    Rollout,
    masked_entropy,
    masked_log_softmax,
    replay_masks,
)

__all__ = ["ALGORITHMS", "MnasNetStrategy"]

ALGORITHMS = ("reinforce", "ppo")
STATE_VERSION = 1


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
        self.masks = DecisionMasks(problem.space)
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
        self._masks: MaskSet | None = None
        self._weights_cache: tuple[int, dict[str, Any]] | None = None

    # ---- sampling
    def sample(self, batch: int, greedy: bool = False) -> tuple[torch.Tensor, list[Architecture]]:
        """``batch`` action sequences ``(B, T)`` from the policy and their architectures."""
        actions, archs, _ = self._sample(batch, greedy)
        return actions, archs

    @torch.no_grad()
    def _sample(self, batch: int, greedy: bool = False) -> tuple[torch.Tensor, list[Architecture], MaskSet]:
        """:meth:`sample`, and the masks each decision was drawn under."""
        rollout = Rollout(self.masks, batch)
        allowed_steps, active_steps = [], []
        inputs, state = self.policy.start.expand(batch, -1), None
        actions = torch.zeros(batch, len(self.layout), dtype=torch.long)
        for t, decision in enumerate(self.layout):
            logits, state = self.policy.step(inputs, state, t)
            allowed, active = rollout.mask(decision)
            allowed_steps.append(allowed)
            active_steps.append(active)
            logp = masked_log_softmax(logits, allowed)
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
            no_skip = self.masks.blocks[block].op in NO_SKIP_OPS
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
                  masks: MaskSet | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (summed over active decisions) of each row of ``actions``.

        ``masks`` (from sampling) saves replaying the decisions to rebuild them.
        """
        allowed, active = masks or replay_masks(self.masks, actions)
        logits = self.policy.sequence_logits(actions)
        padded = torch.zeros(logits.shape, dtype=torch.bool)
        for t, mask in enumerate(allowed):
            padded[:, t, :mask.shape[1]] = mask
        logp = masked_log_softmax(logits, padded)
        chosen = logp.gather(2, actions.unsqueeze(2))[..., 0]
        return torch.where(active, chosen, 0.0).sum(1), torch.where(active, masked_entropy(logp), 0.0).sum(1)

    @torch.no_grad()
    def decision_probabilities(self) -> list[np.ndarray]:
        """The policy's distribution at every decision along its most likely path.

        Every layer position is shown (as if the depth were the largest), each
        conditioned on the most likely earlier choices.
        """
        rollout = Rollout(self.masks, 1)
        rollout.depth = [max(self.problem.space.depths)]
        inputs: torch.Tensor = self.policy.start
        state, out = None, []
        for t, decision in enumerate(self.layout):
            logits, state = self.policy.step(inputs, state, t)
            allowed, _ = rollout.mask(decision)
            probs = masked_log_softmax(logits, allowed).exp()[0]
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
             masks: MaskSet | None = None) -> tuple[torch.Tensor, torch.Tensor]:
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
    def _weights_json(self) -> dict[str, Any]:
        """The policy's weights and the optimiser's state as JSON, encoded once per update.

        The loop saves the state after every round, the weights change once per batch: the
        encoding (raw bytes in base64, exact) is cached until the next update, so a save
        costs a fraction of a millisecond per candidate instead of tens (a list of floats
        of a 1 MB state took ~40 ms per candidate to write as JSON text).
        """
        if self._weights_cache is None or self._weights_cache[0] != self.updates:
            optim = self.optimizer.state_dict()
            self._weights_cache = (self.updates, {
                "policy": {k: _tensor_json(v) for k, v in self.policy.state_dict().items()},
                "optimizer": {
                    "state": [[int(k), {n: _tensor_json(t) for n, t in v.items()}]
                              for k, v in optim["state"].items()],
                    "param_groups": optim["param_groups"],
                },
            })
        return self._weights_cache[1]

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimiser state, baseline, RNG state and the pending batch, as plain JSON."""
        return {
            "version": STATE_VERSION,
            "strategy": self.name,
            "options": self._options(),
            **self._weights_json(),
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
        self._weights_cache = None

    def _options(self) -> dict[str, Any]:
        return {"seed": self.seed, "batch_size": self.batch_size, "lr": self.lr,
                "entropy": self.entropy, "baseline_decay": self.baseline_decay,
                "algorithm": self.algorithm, "hidden": self.hidden, "ppo_clip": self.ppo_clip,
                "ppo_epochs": self.ppo_epochs}

    def __repr__(self) -> str:
        return (f"MnasNetStrategy(seed={self.seed}, algorithm={self.algorithm!r}, "
                f"batch_size={self.batch_size}, lr={self.lr}, updates={self.updates})")


def _tensor_json(value: Any) -> Any:
    """A tensor as plain JSON: shape, dtype and its little-endian bytes in base64 (exact, and
    ~4x smaller and far faster to write than a list of floats)."""
    if not isinstance(value, torch.Tensor):
        return value
    array = np.ascontiguousarray(value.detach().cpu().numpy())
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {"shape": list(array.shape), "dtype": str(array.dtype),
            "base64": base64.b64encode(little.tobytes()).decode("ascii")}


def _tensor_from_json(value: Any) -> Any:
    """Inverse of :func:`_tensor_json` (also reads the older list form ``data``; other values pass through)."""
    if isinstance(value, dict) and set(value) == {"shape", "dtype", "base64"}:
        dtype = np.dtype(value["dtype"]).newbyteorder("<")
        array = np.frombuffer(base64.b64decode(value["base64"]), dtype=dtype).astype(value["dtype"])
        return torch.from_numpy(array.reshape(value["shape"]).copy())
    if isinstance(value, dict) and set(value) == {"shape", "dtype", "data"}:
        array = np.asarray(value["data"], dtype=value["dtype"]).reshape(value["shape"])
        return torch.from_numpy(array)
    return value
