"""The search: the problem, the loop, its evaluation store, and one module per strategy.

Taught in: notebooks/07_pareto.

``hwnas.search`` is both this package and the function that runs a search:
the package's module object is callable, so ``hwnas.search(space, profile,
budget, n)`` and ``hwnas.search.search(...)`` are the same call (with the same
signature for :func:`inspect.signature` and :func:`help`), and
``import hwnas.search.mnasnet`` does not shadow the function. In pymoo's
shape: :class:`SearchProblem` (what), a :class:`Strategy` (how),
``num_iterations`` (how long), :func:`minimize` the loop wiring them.
"""

from __future__ import annotations

import inspect
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
    hardware_metrics,
    register_strategy,
)
from .evaluator import Evaluator, pack_task, task_fingerprint, unpack_task
from .fidelity import MultiFidelityEvaluator, Rung, promotable, rung_ladder
from .loop import default_task, minimize, search
from .result import Evaluation, FrontMember, SearchResult, SearchRun
from .store import EvaluationStore, architecture_key

__all__ = [
    "CONSTRAINTS",
    "INFEASIBLE_REWARD",
    "Evaluation",
    "EvaluationStore",
    "Evaluator",
    "FrontMember",
    "Metrics",
    "MultiFidelityEvaluator",
    "Rung",
    "SearchProblem",
    "SearchResult",
    "SearchRun",
    "Strategy",
    "architecture_key",
    "available_strategies",
    "default_task",
    "get_strategy",
    "hardware_metrics",
    "minimize",
    "pack_task",
    "promotable",
    "register_strategy",
    "rung_ladder",
    "search",
    "task_fingerprint",
    "unpack_task",
]


class _CallableModule(types.ModuleType):
    """This package's module type: calling it calls :func:`search`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.search(*args, **kwargs)


#: What :func:`inspect.signature` reports for the callable package: :func:`search`'s own.
__signature__ = inspect.signature(search)
__doc__ = f"search{__signature__}\n\n{inspect.getdoc(search)}\n\n{__doc__}"
sys.modules[__name__].__class__ = _CallableModule
