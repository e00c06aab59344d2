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
    # each public name under the module that DEFINES it (tests/test_names.py checks this)
    "hwnas.architecture": ("Activation", "Architecture", "HeadType", "LayerSpec", "OpType",
                           "DEFAULT_INPUT_FEATURES", "receptive_fields"),
    "hwnas.space": ("BlockChoice", "Genome", "SearchSpace", "SpaceName"),
    "hwnas.cost": ("LayerCost", "MemoryFootprint", "Precision", "cost_breakdown", "count_flops", "count_params",
                   "max_batch_size", "memory_footprint"),
    "hwnas.cost_measure": ("measure_activation_peak", "measure_flops"),
    "hwnas.data.bybit": ("BybitAPIError", "BybitRateLimitError", "fetch_bybit_klines"),
    "hwnas.data.cache": ("KlineCache", "read_kline_csv"),
    "hwnas.data.loader": ("KlineData", "load_klines"),
    "hwnas.data.features": ("chronological_split", "make_features", "make_targets", "make_windows"),
    "hwnas.data.synthetic": ("synthetic_klines",),
    "hwnas.hardware": ("DeviceType", "HardwareProfile"),
    "hwnas.opspec": ("OpKind", "OpSpec", "arch_op_specs", "space_op_specs"),
    "hwnas.latency.fidelity": ("FidelityReport", "validate"),
    "hwnas.latency.timing": ("Timing", "time_callable"),
    "hwnas.latency.lut": ("build_lut",),
    "hwnas.latency.expected": ("candidate_latencies", "expected_latency"),
    "hwnas.latency.coverage": ("extend_profile",),
    "hwnas.latency.cpu": ("profile_cpu", "profile_cpu_edge", "profile_cpu_server"),
    "hwnas.model": ("build_layer", "build_model"),
    "hwnas.proxy.task": ("DEFAULT_TARGET", "TARGETS", "ProxyScore", "ProxyTask", "make_proxy_task"),
    "hwnas.proxy.training": ("evaluate", "evaluate_splits", "predict_split", "train_model"),
    "hwnas.proxy.baselines": ("train_baseline",),
    "hwnas.proxy.walk_forward": ("walk_forward",),
    "hwnas.proxy_study": ("noise_study",),
    "hwnas.targets.gpu": ("A100_40GB", "T4", "GpuSpec"),
    "hwnas.targets.fpga": ("ZU3EG", "ZU9EG", "FpgaSpec"),
    "hwnas.targets.profiles": ("fpga_profile", "gpu_profile"),
    "hwnas.pareto": ("dominates", "non_dominated_sort", "pareto_front", "crowding_distance", "hypervolume",
                     "mnas_reward"),
    "hwnas.search.base": ("Metrics", "SearchProblem", "Strategy", "register_strategy", "available_strategies",
                          "get_strategy"),
    "hwnas.search.loop": ("minimize",),
    "hwnas.search.result": ("SearchResult",),
    "hwnas.search.evaluator": ("Evaluator",),
    "hwnas.search.store": ("EvaluationStore",),
    "hwnas.search.scaling_rule": ("compound_scale",),
    "hwnas.search.scaling": ("scaling_grid", "ScalingStrategy"),
    "hwnas.search.mnasnet": ("MnasNetStrategy",),
    "hwnas.search.fbnet": ("FBNet", "FBNetConfig", "train_supernet", "train_supernets"),
    "hwnas.deploy.export": ("export",),
    "hwnas.deploy.sla": ("sla_report", "SLAReport"),
    "hwnas.deploy.runtimes": ("OnnxRuntime",),
    "hwnas.pipeline.run": ("run_pipeline",),
    "hwnas.pipeline.result": ("PipelineResult",),
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
