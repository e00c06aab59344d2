"""hwnas: hardware-aware neural architecture search for trading models."""

from .cost import (
    LayerCost,
    MemoryFootprint,
    cost_breakdown,
    count_flops,
    count_params,
    measure_activation_peak,
    memory_footprint,
)
from .data import (
    BybitAPIError,
    BybitRateLimitError,
    KlineCache,
    KlineData,
    fetch_bybit_klines,
    load_klines,
    read_kline_csv,
    synthetic_klines,
)
from .model import build_model
from .space import (
    Activation,
    Architecture,
    BlockChoice,
    Genome,
    HeadType,
    LayerSpec,
    OpType,
    SearchSpace,
)

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "Architecture",
    "BybitAPIError",
    "BybitRateLimitError",
    "KlineCache",
    "KlineData",
    "fetch_bybit_klines",
    "load_klines",
    "read_kline_csv",
    "synthetic_klines",
    "BlockChoice",
    "Genome",
    "HeadType",
    "LayerCost",
    "LayerSpec",
    "MemoryFootprint",
    "OpType",
    "SearchSpace",
    "build_model",
    "cost_breakdown",
    "count_flops",
    "count_params",
    "measure_activation_peak",
    "memory_footprint",
]
