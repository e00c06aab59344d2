"""The whole method for one hardware target: plan, run, result, deployment and ``hwnas run``.

Taught in: notebooks/12_capstone.

:func:`run_pipeline` (:mod:`hwnas.pipeline.run`) is what ``hwnas run --target
cpu|gpu|fpga`` (:mod:`hwnas.pipeline._cli`) calls; :data:`PLANS`
(:mod:`hwnas.pipeline.plan`) says how each target is searched;
:class:`PipelineResult` (:mod:`hwnas.pipeline.result`) is what it found.
Importing this package loads no torch.
"""

from __future__ import annotations

from typing import Any

from .deploy import PRECISIONS_BY_TARGET, QUANT_MAX_SCORE_LOSS, QUANT_MIN_SPEEDUP, side_by_side_latency
from .plan import PLANS, QUICK_SPACE, TARGET_NAMES, TargetPlan
from .result import PipelineResult
from .run import QUICK_LUT, run_pipeline, target_profile, target_space

__all__ = ["PLANS", "PRECISIONS_BY_TARGET", "QUANT_MAX_SCORE_LOSS", "QUANT_MIN_SPEEDUP", "QUICK_LUT",
           "QUICK_SPACE", "TARGET_NAMES", "PipelineResult", "TargetPlan", "run_pipeline",
           "side_by_side_latency", "target_profile", "target_space", "walk_forward"]


def __getattr__(name: str) -> Any:
    """``walk_forward`` lives in :mod:`hwnas.proxy.walk_forward`; importing it here stays lazy
    (the command line imports this package and must not load torch)."""
    if name == "walk_forward":
        from ..proxy.walk_forward import walk_forward

        return walk_forward
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
