"""hwnas: hardware-aware neural architecture search for trading models.

Taught in: notebooks/01_search_space (the library at a glance).

``import hwnas`` is cheap: the public names below are resolved on first access
(PEP 562 module ``__getattr__``), so ``hwnas.SearchSpace.default()`` loads numpy
only and ``python -m hwnas --help`` loads neither torch, scipy, pandas nor
requests. The map from each name to the module that defines it is
:data:`_LAZY`; ``hwnas.search`` is the search package itself (callable:
``hwnas.search(...)`` runs a search).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_GROUPS: dict[str, tuple[str, ...]] = {
    "hwnas.space": ("Activation", "Architecture", "BlockChoice", "Genome", "HeadType", "LayerSpec",
                    "OpType", "SearchSpace", "DEFAULT_INPUT_FEATURES", "receptive_fields"),
    "hwnas.cost": ("LayerCost", "MemoryFootprint", "cost_breakdown", "count_flops", "count_params",
                   "max_batch_size", "measure_activation_peak", "measure_flops", "memory_footprint"),
    "hwnas.data": ("BybitAPIError", "BybitRateLimitError", "KlineCache", "KlineData",
                   "chronological_split", "fetch_bybit_klines", "load_klines", "make_features",
                   "make_targets", "make_windows", "read_kline_csv", "synthetic_klines"),
    "hwnas.hardware": ("DeviceType", "HardwareProfile", "OpKind", "OpSpec", "arch_op_specs", "space_op_specs"),
    "hwnas.latency": ("FidelityReport", "Timing", "build_lut", "candidate_latencies", "expected_latency",
                      "extend_profile", "profile_cpu", "profile_cpu_edge", "profile_cpu_server",
                      "time_callable", "validate"),
    "hwnas.model": ("build_layer", "build_model"),
    "hwnas.proxy": ("DEFAULT_TARGET", "TARGETS", "ProxyScore", "ProxyTask", "evaluate", "evaluate_splits",
                    "make_proxy_task", "predict_split", "train_baseline", "train_model"),
    "hwnas.proxy_study": ("noise_study",),
    "hwnas.targets": ("A100_40GB", "T4", "ZU3EG", "ZU9EG", "FpgaSpec", "GpuSpec", "fpga_profile",
                      "gpu_profile"),
    "hwnas.pareto": ("dominates", "non_dominated_sort", "pareto_front", "crowding_distance", "hypervolume",
                     "mnas_reward"),
    "hwnas.search": ("Metrics", "SearchProblem", "SearchResult", "Strategy", "Evaluator", "EvaluationStore",
                     "register_strategy", "available_strategies", "get_strategy"),
    "hwnas.search.scaling": ("compound_scale", "scaling_grid", "ScalingStrategy"),
    "hwnas.search.mnasnet": ("MnasNetStrategy",),
    "hwnas.search.fbnet": ("FBNet", "FBNetConfig", "train_supernet", "train_supernets"),
    "hwnas.deploy": ("export", "sla_report", "SLAReport"),
    "hwnas.deploy.runtimes": ("OnnxRuntime",),
    "hwnas.pipeline": ("run_pipeline", "PipelineResult", "walk_forward"),
    "hwnas.runtime": ("Runtime", "EagerRuntime", "get_runtime", "available_runtimes"),
}

# public name -> the module that defines it
_LAZY: dict[str, str] = {name: module for module, names in _GROUPS.items() for name in names}

# submodules reachable as attributes after a bare ``import hwnas``
_SUBMODULES = ("checks", "cost", "cost_measure", "data", "deploy", "fileio", "hardware", "latency", "model",
               "numerics", "opspec", "pareto", "pipeline", "plots", "proxy", "proxy_study", "runtime",
               "search", "space", "targets")

__all__ = sorted([*_LAZY, "search", "__version__"], key=str.lower)


def __getattr__(name: str) -> Any:
    """Import the module behind ``name`` on first access and cache the attribute."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'hwnas' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
