"""Market data for the course: Bybit V5 klines, a disk cache, recorded CSVs, synthetic data.

Start with :func:`load_klines`, which picks the best source available (recorded
files, the cache, live Bybit, then a loudly labelled synthetic series) and says
which one it used.
"""

from hwnas.data.bybit import (
    BybitAPIError,
    BybitConnectionError,
    BybitRateLimitError,
    BybitResponseError,
    BybitTimeoutError,
    KlineGapWarning,
    fetch_bybit_klines,
)
from hwnas.data.cache import KlineCache, read_kline_csv
from hwnas.data.features import (
    Scaler,
    Split,
    chronological_split,
    make_features,
    make_targets,
    make_windows,
    periods_per_year,
)
from hwnas.data.klines import (
    CATEGORIES,
    INTERVAL_LABELS,
    INTERVALS,
    KLINE_COLUMNS,
    find_gaps,
    interval_label,
    normalize_interval,
)
from hwnas.data.loader import KlineData, SyntheticDataWarning, load_klines
from hwnas.data.synthetic import synthetic_klines

__all__ = [
    "CATEGORIES",
    "INTERVALS",
    "INTERVAL_LABELS",
    "KLINE_COLUMNS",
    "BybitAPIError",
    "BybitConnectionError",
    "BybitRateLimitError",
    "BybitResponseError",
    "BybitTimeoutError",
    "KlineCache",
    "Scaler",
    "Split",
    "chronological_split",
    "make_features",
    "make_targets",
    "make_windows",
    "periods_per_year",
    "KlineData",
    "KlineGapWarning",
    "SyntheticDataWarning",
    "fetch_bybit_klines",
    "find_gaps",
    "interval_label",
    "load_klines",
    "normalize_interval",
    "read_kline_csv",
    "synthetic_klines",
]
