"""Zero-cost pre-filtered random search: sample many candidates, score them untrained, train the top share.

Taught in: notebooks/13_beyond.

Each round of ``n`` candidates draws ``pool_factor * n`` random architectures
(:meth:`SearchSpace.sample`), scores each with a zero-cost proxy
(:mod:`hwnas.zero_cost`, milliseconds, no training) and keeps the ``n`` with the
highest *surrogate reward*: the problem's own :meth:`SearchProblem.reward` with
the candidate's rank in its pool (0 worst .. 1 best) in place of the trained
score and the LUT latency and memory as they are. So the latency budget and the
soft or hard constraint act on the pre-filter exactly as they act on
evolution's fitness, and only the proxy stands in for training. The proxy is
scored with weights and mini-batch seed 0 (the same for every search seed, like
the evaluation seed of the loop). The seconds spent scoring are kept in the
state (``zero_cost_seconds``) so a benchmark can charge them to the search.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checks import require_int
from .base import SearchProblem, Strategy, register_strategy
from .random_search import draw_within_budget

if TYPE_CHECKING:
    from ..architecture import Architecture
    from .base import Metrics

__all__ = ["ZeroCostPrefilter"]


@register_strategy("prefilter")
class ZeroCostPrefilter(Strategy):
    """Random search whose candidates are the top ``1 / pool_factor`` of a zero-cost-scored pool.

    ``proxy`` names a :class:`~hwnas.zero_cost.ZeroCostProxy`; ``batch_size``
    is its mini-batch. ``pool_factor = 1`` is random search.

    Taught in: notebooks/13_beyond.
    """

    def __init__(self, problem: SearchProblem, *, seed: int = 0, proxy: str = "params", pool_factor: int = 4,
                 batch_size: int = 64, max_tries: int = 100) -> None:
        from ..zero_cost import ZeroCostProxy

        super().__init__(problem, seed=seed)
        try:
            self.proxy = ZeroCostProxy(proxy)
        except ValueError:
            raise ValueError(f"proxy {proxy!r} unknown; choose one of {[p.value for p in ZeroCostProxy]}") from None
        if problem.task is None and self.proxy not in (ZeroCostProxy.PARAMS, ZeroCostProxy.FLOPS):
            raise ValueError(f"proxy {self.proxy.value!r} needs the problem's task (SearchProblem(task=...))")
        self.pool_factor = require_int(pool_factor, "pool_factor", 1)
        self.batch_size = require_int(batch_size, "batch_size", 2)
        self.max_tries = require_int(max_tries, "max_tries", 0)
        self.rng = np.random.default_rng(self.seed)
        self.zero_cost_seconds = 0.0
        self.scored = 0

    def _score(self, arch: Architecture) -> float:
        from ..cost import count_flops, count_params
        from ..zero_cost import ZeroCostProxy, zero_cost_score

        if self.proxy == ZeroCostProxy.PARAMS:
            return float(count_params(arch))
        if self.proxy == ZeroCostProxy.FLOPS:
            return float(count_flops(arch))
        assert self.problem.task is not None
        return zero_cost_score(arch, self.problem.task, self.proxy, seed=0, batch_size=self.batch_size)

    def ask(self, n: int = 1) -> list[Architecture]:
        """The ``n`` best of ``pool_factor * n`` fresh samples by the surrogate reward."""
        space = self.problem.space
        pool = [draw_within_budget(self.problem, lambda: space.sample(self.rng), self.max_tries)
                for _ in range(self.pool_factor * n)]
        if self.pool_factor == 1:
            return pool
        start = time.perf_counter()
        raw = np.array([self._score(a) for a in pool], dtype=float)
        raw = np.where(np.isnan(raw), -np.inf, raw)
        ranks = np.empty(len(pool))
        ranks[np.argsort(raw, kind="stable")] = np.arange(len(pool))
        surrogate = [self.problem.reward(replace(self.problem.predict(a), score=r / max(len(pool) - 1, 1)))
                     for a, r in zip(pool, ranks)]
        self.zero_cost_seconds += time.perf_counter() - start
        self.scored += len(pool)
        keep = sorted(np.argsort(-np.array(surrogate), kind="stable")[:n])  # pool order among the kept
        return [pool[int(i)] for i in keep]

    def tell(self, arch: Architecture, metrics: Metrics) -> None:
        """The pre-filter learns nothing from trained scores."""

    def state_dict(self) -> dict[str, Any]:
        """The generator's state and the scoring cost so far."""
        return {"rng": self.rng.bit_generator.state, "zero_cost_seconds": self.zero_cost_seconds,
                "scored": self.scored}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]
        self.zero_cost_seconds = float(state.get("zero_cost_seconds", 0.0))
        self.scored = int(state.get("scored", 0))

    def __repr__(self) -> str:
        return f"ZeroCostPrefilter(proxy={self.proxy.value!r}, pool_factor={self.pool_factor}, seed={self.seed})"
