"""The search: the loop, its evaluation store, and one module per strategy.

Taught in: notebooks/07_pareto.

``hwnas.search`` is both this package and the function that runs a search:
the package's module object is callable, so ``hwnas.search(space, profile,
budget, n)`` and ``hwnas.search.search(...)`` are the same call, and
``import hwnas.search.mnasnet`` does not shadow the function.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .base import (
    CONSTRAINTS,
    INFEASIBLE_REWARD,
    Metrics,
    SearchProblem,
    Strategy,
    available_strategies,
    get_strategy,
    register_strategy,
)
from .evaluator import Evaluator, pack_task, task_fingerprint, unpack_task
from .loop import Evaluation, SearchResult, default_task, search
from .store import EvaluationStore, architecture_key

__all__ = [
    "CONSTRAINTS",
    "INFEASIBLE_REWARD",
    "Evaluation",
    "EvaluationStore",
    "Evaluator",
    "Metrics",
    "SearchProblem",
    "SearchResult",
    "Strategy",
    "architecture_key",
    "available_strategies",
    "default_task",
    "get_strategy",
    "pack_task",
    "register_strategy",
    "search",
    "task_fingerprint",
    "unpack_task",
]


class _CallableModule(types.ModuleType):
    """This package's module type: calling it calls :func:`search`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
