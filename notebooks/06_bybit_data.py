# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Bybit market data and the proxy task
#
# A hardware-aware search needs two numbers per candidate: what it costs on the device
# (chapters {doc}`02_flops` to {doc}`05_hardware_targets`) and how good it is. "How good"
# cannot mean full training: a search looks at hundreds of candidates. It means a
# {term}`proxy task`: train each candidate for a moment on real market data and score
# it on a later, held-out period. This chapter builds that task from Bybit BTCUSDT
# candles, and then asks the question every proxy must answer before a search may
# trust it: **does the score rank architectures, or does it rank random seeds?**
#
# **You will learn**
#
# - what Bybit's V5 kline endpoint returns, how longer histories are paged, and where
#   the course's data comes from (recorded file, cache, live, or a labelled synthetic
#   fallback);
# - how to build features that use past data only, targets that look forward, windows
#   that pair them, and a chronological split with gaps so nothing leaks;
# - the proxy task of `hwnas.proxy`: a seeded training run of about a second, with
#   trading metrics (directional accuracy, information coefficient, Sharpe ratio after
#   costs) and volatility metrics (correlation, $R^2$ against naive forecasts, QLIKE);
# - how to measure whether a score is signal or noise (one-way ANOVA, intraclass
#   correlation, rank agreement with longer training and with a later period), and
#   why the searches of this course score next-window **volatility**, not next-bar
#   direction.
#
# **Prerequisites**: {doc}`01_search_space` (architectures, search spaces); a little
# statistics (correlation, standard error).

# %%
import json
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from myst_nb import glue

import hwnas
from hwnas import plots
from hwnas.data import KlineCache, load_klines
from hwnas.data.bybit import BYBIT_BASE_URL, KLINE_PATH, MAX_PAGE_LIMIT
from hwnas.data.features import (
    Scaler,
    chronological_split,
    feature_warmup,
    make_features,
    make_targets,
    make_windows,
    periods_per_year,
)
from hwnas.proxy import (
    DEFAULT_TARGET,
    evaluate,
    make_proxy_task,
    train_baseline,
)
from hwnas.proxy_study import NoiseStudy, noise_study
from hwnas.space import SearchSpace

SEED = 2024
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
pd.set_option("display.precision", 4)
print(f"hwnas {hwnas.__version__}, torch {torch.__version__}, seed {SEED}")

# %% [markdown]
# ## Klines from Bybit V5
#
# Bybit publishes candles ({term}`klines <kline>`) without an API key
# {cite:p}`bybit2024kline`. The reference chapter fetches 200 fifteen-minute candles of
# the BTCUSDT perpetual future with
#
# ```text
# GET https://api.bybit.com/v5/market/kline?category=linear&symbol=BTCUSDT&interval=15&limit=200
# ```
#
# | parameter | meaning |
# |---|---|
# | `category` | `linear` (USDT-margined perpetuals and futures), `inverse` or `spot` |
# | `symbol` | e.g. `BTCUSDT` |
# | `interval` | minutes `1 3 5 15 30 60 120 240 360 720`, or `D`, `W`, `M` |
# | `limit` | candles per request, default 200, at most 1000 |
# | `start`, `end` | optional bounds on the candle open time, in milliseconds |
#
# The answer is a JSON envelope with `retCode` 0 on success and the candles under
# `result.list`, **newest first**, every field a **string**: open time in ms, open,
# high, low, close, volume (in BTC) and turnover (in USDT). Here is an answer of that
# shape built from the last three candles of the data this chapter uses (loaded in the
# next section; the recorded file has no turnover, so the loader estimates it as
# typical price times volume):

# %%
data = load_klines("BTCUSDT", "15", limit=28_000)
frame = data.frame

last3 = frame.iloc[-3:][::-1]  # newest first, as Bybit sends them
example = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {
        "category": "linear",
        "symbol": "BTCUSDT",
        "list": [
            [str(ts.value // 1_000_000)] + [f"{row[c]:.{p}f}" for c, p in
                                            zip(["open", "high", "low", "close", "volume", "turnover"],
                                                [1, 1, 1, 1, 3, 4])]
            for ts, row in last3.iterrows()
        ],
    },
    "retExtInfo": {},
    "time": int(frame.index[-1].value // 1_000_000) + 15 * 60_000 + 1_234,
}
print(json.dumps(example, indent=1))

# %% [markdown]
# Turning that into a table means parsing the strings, converting the open times to UTC
# timestamps and reversing the order. `fetch_bybit_klines` does it (and more: it
# validates arguments before any request, retries rate limits with backoff, drops the
# candle that has not closed yet and reports gaps without filling them); by hand it is:

# %%
rows = example["result"]["list"]
parsed = pd.DataFrame(
    [[float(v) for v in row[1:]] for row in rows],
    columns=["open", "high", "low", "close", "volume", "turnover"],
    index=pd.to_datetime([int(row[0]) for row in rows], unit="ms", utc=True),
).iloc[::-1]  # oldest first
assert parsed.index.is_monotonic_increasing
parsed

# %% [markdown]
# **Paging.** One request returns at most 1000 candles. For a longer history the client
# asks for the newest page, then again with `end` set just before the oldest open time
# it has, and so on backwards until it has enough, de-duplicating candles that two pages
# share. For 3000 fifteen-minute candles ending at the last candle above, the requests
# are:

# %%
step_ms = 15 * 60_000
newest = int(frame.index[-1].value // 1_000_000)  # open time of the newest candle, in ms
end_param, wanted, pages = None, 3000, []
while wanted > 0:
    n = min(MAX_PAGE_LIMIT, wanted)
    oldest = newest - (n - 1) * step_ms
    pages.append({"limit": n, "end (ms)": "none (newest)" if end_param is None else end_param,
                  "oldest candle": pd.Timestamp(oldest, unit="ms", tz="UTC"),
                  "newest candle": pd.Timestamp(newest, unit="ms", tz="UTC")})
    wanted -= n
    end_param = oldest - 1  # the next page ends just before this page's oldest candle
    newest = oldest - step_ms
print(f"GET {BYBIT_BASE_URL}{KLINE_PATH}?category=linear&symbol=BTCUSDT&interval=15&limit=...&end=...")
pd.DataFrame(pages)

# %% [markdown]
# **Where the data comes from.** `load_klines` tries, in order: a folder of recorded
# CSV files (the argument `recorded_dir` or the environment variable `HWNAS_BYBIT_DIR`);
# the on-disk cache (one CSV per category, symbol and interval, written atomically and
# topped up with only the new candles when online); live Bybit (skipped when
# `HWNAS_OFFLINE=1`); and last a **synthetic** series with a loud warning. Whatever it
# picks, it says so. The course's committed outputs use recorded real candles of 2024,
# so every reader sees the same numbers; without that folder the chapter still runs, on
# live or synthetic data, and the line below tells you which.

# %%
print(data.summary())
print("cache file name for BTCUSDT 15m:", KlineCache().path_for("BTCUSDT", "15").name)
if data.is_synthetic:
    print("\n*** SYNTHETIC DATA: every market number in this chapter is illustrative only. ***")

# %% [markdown]
# ## Features from the past only
#
# The reference chapter's preprocessing step normalises prices with rolling z-scores and
# computes returns, volatility and momentum. With $c_t$ the close of bar $t$ and every
# window **ending at $t$**:
#
# $$
# r_t = \ln\frac{c_t}{c_{t-1}}, \qquad
# m^{(h)}_t = \sum_{j=0}^{h-1} r_{t-j} = \ln\frac{c_t}{c_{t-h}}, \qquad
# \sigma^{(w)}_t = \operatorname{std}\bigl(r_{t-w+1}, \dots, r_t\bigr), \qquad
# z_t = \frac{c_t - \bar c^{(w)}_t}{s^{(w)}_t},
# $$
#
# where $\bar c^{(w)}_t$ and $s^{(w)}_t$ are the mean and standard deviation of the last
# $w$ closes. `make_features` adds the z-score of log volume, the change of log volume
# and the bar's range $\ln(\text{high}_t/\text{low}_t)$, and uses the log of
# $\sigma^{(w)}_t$ (volatility is closer to log-normal than normal). No window is
# centred, nothing is normalised over the whole sample, and the first rows, which lack
# history, are **dropped**, not filled in from later bars.

# %%
features = make_features(frame)
print(f"{len(frame):,} candles -> {len(features):,} feature rows x {features.shape[1]} features "
      f"(the first {feature_warmup()} rows lack history)")
print("features:", ", ".join(features.columns))

# %% [markdown]
# The rule "only the past" is easy to break by accident (a centred rolling window, a
# z-score over the whole series, a forward fill). The test suite checks it with random
# perturbations; here is the same check once: change the last candle and no earlier
# feature may move.

# %%
changed = frame.copy()
changed.iloc[-1, changed.columns.get_loc("close")] *= 1.05
changed.iloc[-1, changed.columns.get_loc("high")] = changed["close"].iloc[-1] * 1.001
after = make_features(changed)
pd.testing.assert_frame_equal(features.iloc[:-1], after.iloc[:-1], check_exact=True)
assert not features.iloc[-1].equals(after.iloc[-1])
print("a change to the last candle moves only the last feature row")

# %% mystnb={"figure": {"caption": "Volatility comes in clusters, calm days and busy days following each other, which is what makes it forecastable; the sign of the next return shows no such structure to the eye."}, "image": {"alt": "Four stacked time-series panels sharing a date axis over the last 30 days of 15-minute bars: the close in USDT; the return in basis points, noise around zero with a few large spikes; realised volatility in bps per bar over 16 bars (blue) and 64 bars (orange), in bursts that rise and decay; and the z-score of the close over 64 bars, swinging around a grey zero line."}}
month = slice(features.index[-1] - pd.Timedelta(days=30), None)
fig = plots.recent_market(
    frame["close"][month],
    features["ret_1"][month] * 1e4,
    {"16 bars": np.exp(features["log_rv_16"][month]) * 1e4, "64 bars": np.exp(features["log_rv_64"][month]) * 1e4},
    features["z_close"][month],
    title=f"The last 30 days: BTCUSDT 15-minute bars ({data.source})",
    zscore_label="z-score of close\n(64 bars)",
);

# %% [markdown]
# Volatility comes in clusters: calm days and busy days follow each other, which is
# what makes it forecastable. The sign of the next return shows no such structure to
# the eye; we will measure whether a network finds any.

# %% [markdown]
# ## Targets, windows and the split
#
# **Targets look forward** and are kept apart from features. For a bar $t$:
#
# $$
# y^{\text{dir}}_t = \mathbb 1\!\left[r_{t+1} > 0\right], \qquad
# y^{\text{vol}}_t = \ln \sqrt{\frac{1}{k}\sum_{j=1}^{k} r_{t+j}^2},
# $$
#
# the direction of the next bar and the log realised volatility of the next $k = 16$
# bars (four hours), what a market maker needs to quote spreads and a risk engine to
# size positions. The naive forecast of $y^{\text{vol}}_t$ is **persistence**: the same
# quantity over the last $k$ bars, which uses only the past.
#
# **Windows.** Window $i$ ends at bar $t_i$ and holds the feature rows
# $t_i - L + 1, \dots, t_i$ ($L$ is the {term}`lookback`); its target is the one defined
# at $t_i$, i.e. what happens right after. On a hand-made frame of eight candles with
# $L = 3$:

# %%
# NBVAL_CHECK_OUTPUT
close = np.array([100.0, 101, 99, 102, 103, 101, 104, 105])
tiny = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                     "volume": 1.0},
                    index=pd.date_range("2024-01-01", periods=8, freq="15min", tz="UTC"))
bar_number = pd.DataFrame({"bar": np.arange(8.0)}, index=tiny.index)  # a "feature" = the bar number
X, y, ends = make_windows(bar_number, make_targets(tiny)["ret_fwd"], lookback=3)
print("X shape:", X.shape)
for i in (0, 1, len(X) - 1):
    bar = tiny.index.get_loc(ends[i])
    print(f"window {i}: bars {X[i, 0].astype(int).tolist()} -> target log(c{bar + 1}/c{bar}) = "
          f"{y[i]:+.5f} = log({close[bar + 1]:.0f}/{close[bar]:.0f})")
assert np.isclose(y[0], np.log(102 / 99))
print("the last bar has no next bar, so", len(X), "windows from 8 bars")

# %% [markdown]
# **The split.** Shuffled cross-validation would train on Tuesday and validate on the
# Monday before it. A {term}`walk-forward split` keeps time order: train, then
# validation, then test. Neighbouring windows still overlap, so a gap is dropped between
# the sets. The last training window ends at $t_a$ and its target reads bars up to
# $t_a + H$ ($H$ the target horizon); the first validation window reads bars from
# $t_b - L + 1$. They share nothing when
#
# $$
# t_b - L + 1 > t_a + H \quad\Longleftarrow\quad \text{gap} = t_b - t_a - 1 \ge L + H,
# $$
#
# which `chronological_split` enforces (dropping labels that overlap the next period is
# called purging and embargo in {cite:t}`lopezdeprado2018advances`). Features are then
# standardised with a `Scaler` fitted on the training rows only.

# %%
LOOKBACK, HORIZON = 128, 16  # the longest lookback of the default space; k = 16 bars
targets = make_targets(frame, horizon=1, vol_window=HORIZON)
_, _, window_ends = make_windows(features.iloc[:, :1], targets, LOOKBACK)
split = chronological_split(len(window_ends), 0.6, 0.2, lookback=LOOKBACK, horizon=HORIZON)
print(split.summary())
tr, va, te = split
assert va.start - tr.stop >= LOOKBACK + HORIZON and te.start - va.stop >= LOOKBACK + HORIZON
train_rows = features.loc[: window_ends[tr.stop - 1]]
scaler = Scaler().fit(train_rows)
print(f"scaler fitted on {len(train_rows):,} rows up to {train_rows.index[-1]:%Y-%m-%d %H:%M}")

# %% mystnb={"figure": {"caption": "The walk-forward split keeps time order: train, then validation, then test, each gap (red) dropping the 144 windows whose features or target would overlap the next period, so nothing leaks between the sets."}, "image": {"alt": "Line chart of the close in USDT (black) over the whole data period, on shaded backgrounds: a thin grey warm-up strip at the start, then a long blue train period, an orange validation period and a green test period, with narrow red gap bands between them. The legend gives each period's number of windows."}}
periods = {name: (window_ends[r.start], window_ends[r.stop - 1], len(r))
           for name, r in zip(("train", "val", "test"), split)}
gaps = [(window_ends[r_prev.stop - 1], window_ends[r_next.start]) for r_prev, r_next in ((tr, va), (va, te))]
ax = plots.split_timeline(frame["close"], periods, gaps=gaps, warmup=(frame.index[0], window_ends[0]),
                          title=f"Chronological split: train, validation, test, with gaps of {split.gap} bars (red)");

# %% [markdown]
# ## The proxy task
#
# `make_proxy_task` runs all of the above (features, targets, windows of the longest
# lookback, the gapped split, a train-only scaler) once. `evaluate(arch, task, seed)`
# then trains a candidate from `build_model(arch, seed)` for one epoch on a fixed
# subsample of 2048 training windows (the same for every candidate), batches of 256,
# Adam with gradient clipping, one thread, deterministic algorithms, and scores it on
# the validation windows. A candidate whose lookback is shorter than the task's sees
# the last `arch.lookback` steps of each window. One evaluation takes about a second on
# a laptop core, so a search can afford hundreds (`benchmarks/bench_proxy.py`
# measures it).
#
# **Volatility metrics.** With $\hat y_i$ the forecast log volatility: Pearson and
# Spearman correlation with $y_i$; out-of-sample $R^2$ against a baseline $b$,
#
# $$
# R^2_b = 1 - \frac{\sum_i (y_i - \hat y_i)^2}{\sum_i (y_i - b_i)^2},
# $$
#
# against persistence and against the training mean ($R^2_b > 0$ beats the baseline);
# and QLIKE {cite:p}`patton2011volatility` on variances $h_i = e^{2\hat y_i}$,
# $s_i = e^{2 y_i}$,
#
# $$
# \operatorname{QLIKE} = \frac1n \sum_i \left(\frac{s_i}{h_i} - \ln\frac{s_i}{h_i} - 1\right) \ge 0,
# $$
#
# which punishes forecasting too little risk more than too much.
#
# **Direction metrics.** Directional accuracy; the information coefficient (IC), the
# Spearman correlation of the forecast with the realised return; and the Sharpe ratio
# of holding $p_t = \operatorname{sign}(\hat y_t)$ over the next bar, paying $c$ per unit
# traded:
#
# $$
# \pi_t = p_t\, R_{t+1} - c\,\lvert p_t - p_{t-1}\rvert, \qquad
# \mathrm{SR} = \frac{\bar\pi}{s_\pi}\sqrt{N_{\text{year}}},
# $$
#
# with $N_{\text{year}} = 365 \times 24 \times 4 = 35{,}040$ fifteen-minute bars (crypto
# trades around the clock) and $c = 5$ basis points, the order of a taker fee. A Sharpe
# ratio estimated from $n$ bars has a standard error of about
# $\sqrt{(1 + \mathrm{SR}_{\text{bar}}^2/2)/n}$ per bar {cite:p}`lo2002sharpe`, which is
# large: we print it beside every Sharpe ratio, together with buy-and-hold.

# %%
t0 = time.perf_counter()
task = make_proxy_task(data.frame, DEFAULT_TARGET, lookback=LOOKBACK, vol_window=HORIZON,
                       source=data.description)
print(f"built in {time.perf_counter() - t0:.1f} s; searches use DEFAULT_TARGET = {DEFAULT_TARGET!r}")
print(task.summary())
assert periods_per_year(frame.index) == 35_040

# %% [markdown]
# One candidate from the default search space, scored on both targets, with the
# baselines beside it: the naive forecasts (persistence; the training mean, which for
# direction is a constant position in the direction of the training period's drift),
# and a hand-designed MLP and LSTM trained with the same loop.

# %%
space = SearchSpace.default(input_features=task.num_features, lookbacks=(64,))
arch = space.sample(np.random.default_rng(7))
print(arch.summary())

results = {}
for target in ("volatility", "direction"):
    t = replace(task, target=target)
    scores = [evaluate(arch, t, seed=0)] + [train_baseline(k, t, seed=0)
                                           for k in ("persistence", "mean", "mlp", "lstm")]
    for s in scores:
        name = "candidate" if s.model == f"arch L{arch.lookback} d{arch.depth}" else s.model
        results[(target, name)] = s
table = pd.DataFrame({key: s.metrics for key, s in results.items()}).T
cand_vol, cand_dir = results[("volatility", "candidate")], results[("direction", "candidate")]
print(f"candidate: volatility score {cand_vol.score:+.3f} in {cand_vol.total_seconds:.2f} s, "
      f"direction score {cand_dir.score:+.3f} in {cand_dir.total_seconds:.2f} s")
glue("proxy_seconds", float(cand_vol.total_seconds), display=False)
glue("persistence_corr", float(table.loc["volatility"].filter(like="persist", axis=0)["pearson"].iloc[0]),
     display=False)
table.loc["volatility"].dropna(axis=1, how="all")

# %%
table.loc["direction"].dropna(axis=1, how="all")

# %% [markdown]
# Read the two tables side by side. For **volatility**, persistence is a strong naive
# forecast (a correlation of {glue:text}`persistence_corr:.2f` here) and the LSTM beats it ($R^2 > 0$ against it, a
# lower QLIKE than `qlike_persistence`). A random candidate after a single epoch
# sometimes does not, yet: some need more training, and the study
# below shows longer training lifting them to a mean correlation of
# {glue:text}`vol_long_corr:.2f`. That is acceptable for a proxy, whose job is to *rank*
# candidates, not to be the final model. Every model beats the training mean
# (`r2_vs_mean > 0`). For **direction**, look at the accuracy next to its standard
# error `accuracy_se` (the half-width of a coin's luck) and the Sharpe ratio next to
# `sharpe_se`: the naive "same sign as the last bar" forecast is right *less* than half
# the time, which hints at a small short-term reversal, but every strategy that trades
# on the sign loses money after costs, and buy-and-hold's Sharpe ratio is just the
# market of that period. The proxy is deterministic under a seed:

# %%
again = evaluate(arch, task, seed=0)
other = evaluate(arch, task, seed=1)
assert again.metrics == cand_vol.metrics
print(f"seed 0 twice: {cand_vol.score:.6f} and {again.score:.6f}; seed 1: {other.score:.6f}")

# %% [markdown]
# ## Is the score signal or noise?
#
# A search compares scores of different architectures. That comparison means something
# only if the score depends on the architecture more than on the seed (initial weights
# and batch order), and only if the ranking survives longer training and a later
# period. Train $a$ architectures with $k$ seeds each, $x_{ij}$ the score of
# architecture $i$ with seed $j$. A one-way analysis of variance splits the spread into
# a part between architectures and a part within (between seeds):
#
# $$
# \mathrm{MS_B} = \frac{k}{a-1}\sum_i (\bar x_i - \bar x)^2, \qquad
# \mathrm{MS_W} = \frac{1}{a(k-1)}\sum_{i,j} (x_{ij} - \bar x_i)^2, \qquad
# F = \frac{\mathrm{MS_B}}{\mathrm{MS_W}},
# $$
#
# with a p-value from the $F_{a-1,\,a(k-1)}$ distribution (are the architecture means
# different at all?), and the intraclass correlation {cite:p}`shrout1979icc`
#
# $$
# \mathrm{ICC} = \frac{\mathrm{MS_B} - \mathrm{MS_W}}{\mathrm{MS_B} + (k-1)\,\mathrm{MS_W}},
# $$
#
# the share of the variance of **one** run that is due to the architecture: 1 means the
# seed does not matter, 0 means the score is seed noise. Two rank agreements (Spearman
# over architectures) complete the check: the short proxy against five times longer
# training, and validation against the later test period.
#
# `benchmarks/proxy_noise_study.py` runs this on the recorded data with 20 random
# architectures of the default space and 3 seeds, for both targets (about ten minutes),
# and writes `benchmarks/results/proxy_noise_study.json`. The chapter loads that file
# when it is there; otherwise it runs a small version (5 architectures, 2 seeds, twice
# as long training; too small to trust, but it shows the method) and says so.

# %%
STUDY_FILE = Path(hwnas.__file__).resolve().parents[1] / "benchmarks" / "results" / "proxy_noise_study.json"
if STUDY_FILE.is_file():
    study = NoiseStudy.load(STUDY_FILE)
    made = study.info["data"]
    print(f"LOADED the full study from {STUDY_FILE.name} (created {study.info['created_utc']} UTC, "
          f"{len(study.architectures)} architectures x {len(study.seeds)} seeds, "
          f"long = {study.long_factor}x epochs)")
    print(f"its data: {made['source']} - {made['candles']:,} candles "
          f"{made['first'][:10]} .. {made['last'][:10]}")
else:
    t0 = time.perf_counter()
    small = SearchSpace.default(input_features=task.num_features, lookbacks=(32, 64))
    rng = np.random.default_rng(SEED)
    study = noise_study(task, [small.sample(rng) for _ in range(5)], seeds=(0, 1), long_factor=2,
                        baselines=("persistence", "lstm"))
    print(f"RECOMPUTED a small version ({time.perf_counter() - t0:.0f} s): 5 architectures x 2 seeds, "
          f"long = 2x epochs, on {data.source} data; run benchmarks/proxy_noise_study.py for the full one")
summary = study.summary()
summary[["icc", "p", "short_long", "one_seed_long", "val_test", "mean_val", "mean_test", "verdict"]]

# %% mystnb={"figure": {"caption": "For next-window volatility (left) the architectures are spread far apart with short seed bars and longer training mostly keeps their order; for next-bar direction (right) every information coefficient sits within a few hundredths of zero, the seed bars overlap and longer training reshuffles the order."}, "image": {"alt": "Two panels, one per target, architectures on the x axis sorted by proxy score. Each shows blue dots with error bars (the one-epoch proxy's seed mean and range), open red squares (the mean after longer training) and grey horizontal baselines (persistence dotted, LSTM dashed); the titles give the ICC, p-value and validation-test rank agreement. Left, validation pearson: the dots rise from about 0.1 to 0.6 with mostly short bars, the squares lie higher and flatter. Right, validation ic: the dots lie between about -0.01 and 0.03 with long, overlapping bars."}}
fig = plots.seed_spread(study, summary, targets=("volatility", "direction"));

# %% [markdown]
# The left panel is what a search needs: architectures are spread far apart, each with a
# short seed bar, and longer training moves the scores up but mostly keeps their order.
# It also narrows the spread: part of what a one-epoch proxy measures is how *fast* an
# architecture learns, which is the price of a one-second score.
# In the right panel every architecture's information coefficient sits within a few
# hundredths of zero, the seed bars overlap across architectures, and the order is
# reshuffled by longer training.

# %% mystnb={"figure": {"caption": "For volatility the one-epoch proxy's ranking agrees with longer training and with the later test period (the legend's rank correlations); for direction it agrees far less, so a search on that score would select on luck."}, "image": {"alt": "Two scatter plots, volatility (left) and direction (right), of each architecture's metric (y axis) against its one-epoch proxy score on validation, seed mean (x axis): blue dots for longer training and orange crosses for the test period, the Spearman rank agreements in the legend. In the volatility panel both sets rise with the proxy score; in the direction panel the points scatter over small values with little trend."}}
fig = plots.rank_agreement(study, summary, targets=("volatility", "direction"));

# %% [markdown]
# Finally the direction numbers that matter to a trader, against their standard errors:

# %%
res = study.targets["direction"]
ctx = res.context
acc = np.nanmean(res.table("short", "accuracy"))
ic = res.table("short", "ic")
sharpe = np.nanmean(res.table("short", "sharpe"))
gross = np.nanmean(res.table("short", "sharpe_gross"))
print(f"directional accuracy: {acc:.2%} on average, 50% +/- {ctx['accuracy_se']:.2%} (one s.e.) by luck")
print(f"information coefficient: mean {np.nanmean(ic):+.4f}, architectures' means "
      f"{np.nanmin(np.nanmean(ic, axis=1)):+.4f} .. {np.nanmax(np.nanmean(ic, axis=1)):+.4f}, "
      f"s.e. of one IC ~ {1 / np.sqrt(res.n_eval):.4f}")
print(f"Sharpe ratio before costs {gross:+.2f}, after {task.cost_bps:g} bps "
      f"costs {sharpe:+.2f}; s.e. {ctx['sharpe_se']:.2f}; buy-and-hold {ctx['buy_hold_sharpe']:+.2f}")
vol, dire = summary.loc[("volatility", "pearson")], summary.loc[("direction", "ic")]
print(f"\nverdicts: volatility correlation -> {vol['verdict']!r}; direction IC -> {dire['verdict']!r}")
if len(study.architectures) >= 20:  # the full study: the claims of the text below
    assert vol["verdict"] == "ranks" and vol["p"] < 1e-6
    assert dire["verdict"] == "noise"

# The figures the text below quotes, from the study printed above (loaded or recomputed).
vres = study.targets["volatility"]
beat_short = vres.seed_means("short", "r2_vs_persistence") > 0
beat_long = ((vres.seed_means("long", "r2_vs_persistence") > 0)
             & (vres.seed_means("long_test", "r2_vs_persistence") > 0))
arch_ic = np.nanmean(ic, axis=1)
arch_sharpe = np.nanmean(res.table("short", "sharpe"), axis=1)
lstm, persistence = res.baselines.get("lstm", {}), res.baselines.get("persistence", {})
glue("study_source", "the full study on the recorded candles" if len(study.architectures) >= 20
     else "a RECOMPUTED small study: too small to trust", display=False)
glue("n_arch", len(study.architectures), display=False)
glue("vol_icc", float(vol["icc"]), display=False)
glue("vol_p", float(vol["p"]), display=False)
glue("vol_short_long", float(vol["short_long"]), display=False)
glue("vol_val_test", float(vol["val_test"]), display=False)
glue("vol_long_corr", float(np.nanmean(vres.table("long"))), display=False)
glue("beat_long", int(beat_long.sum()), display=False)
glue("beat_short", int(beat_short.sum()), display=False)
glue("r2_max", float(np.nanmax(vres.seed_means("long", "r2_vs_persistence"))), display=False)
glue("dir_acc", float(acc), display=False)
glue("dir_acc_se", float(ctx["accuracy_se"]), display=False)
glue("ic_min", float(np.nanmin(arch_ic)), display=False)
glue("ic_max", float(np.nanmax(arch_ic)), display=False)
glue("ic_se", float(1 / np.sqrt(res.n_eval)), display=False)
glue("dir_icc", float(dire["icc"]), display=False)
glue("dir_p", float(dire["p"]), display=False)
glue("dir_one_seed_long", float(dire["one_seed_long"]), display=False)
glue("sharpe_icc", float(summary.loc[("direction", "sharpe"), "icc"]), display=False)
glue("sharpe_gross_icc", float(summary.loc[("direction", "sharpe_gross"), "icc"]), display=False)
glue("sharpe_mean", float(sharpe), display=False)
glue("sharpe_best", float(np.nanmax(arch_sharpe)), display=False)
glue("sharpe_se", float(ctx["sharpe_se"]), display=False)
glue("sharpe_best_within", "inside" if abs(np.nanmax(arch_sharpe)) < ctx["sharpe_se"] else "outside",
     display=False)
glue("persistence_acc", float(persistence.get("val", {}).get("accuracy", float("nan"))), display=False)
glue("lstm_acc_val", float(lstm.get("val", {}).get("accuracy", float("nan"))), display=False)
glue("lstm_acc_test", float(lstm.get("test", {}).get("accuracy", float("nan"))), display=False)
glue("lstm_ic", float(lstm.get("val", {}).get("ic", float("nan"))), display=False)

# %% [markdown]
# (ch06-plainly)=
# **Plainly** (the numbers are pasted from the cell above: {glue:text}`study_source`):
#
# - **Next-window volatility ranks architectures.** The architecture explains most of
#   the variance of the validation correlation (ICC {glue:text}`vol_icc:.2f`, p
#   {glue:text}`vol_p:.1e`), the proxy's ranking agrees with five times longer training
#   (Spearman {glue:text}`vol_short_long:.2f`) and with the later test period
#   ({glue:text}`vol_val_test:.2f`). After five times longer training
#   {glue:text}`beat_long` of the {glue:text}`n_arch` architectures beat the persistence
#   forecast on validation and test ($R^2$ against it up to {glue:text}`r2_max:.2f`);
#   after the one-epoch proxy {glue:text}`beat_short` already do on validation. This is why
#   `hwnas.proxy.DEFAULT_TARGET` is `"volatility"` and why the searches of the next
#   chapters use it.
# - **Next-bar direction is noise as a search score.** Directional accuracy averages
#   {glue:text}`dir_acc:.1%`, against a coin's one half give or take
#   {glue:text}`dir_acc_se:.1%` (one standard error). The architectures' mean information coefficients lie
#   between {glue:text}`ic_min:+.3f` and {glue:text}`ic_max:+.3f`, while a single IC has a
#   standard error of about {glue:text}`ic_se:.3f`; the architecture explains almost none
#   of its variance (ICC {glue:text}`dir_icc:.2f`, p {glue:text}`dir_p:.2f`), and the
#   single-seed ranking a search would see agrees with longer training at only
#   {glue:text}`dir_one_seed_long:.2f`. The Sharpe ratio *after costs* differs more
#   between architectures (ICC {glue:text}`sharpe_icc:.2f`), but only because some trade
#   more often than others: before costs its ICC is {glue:text}`sharpe_gross_icc:.2f`;
#   after costs it averages {glue:text}`sharpe_mean:+.1f`, and the best architecture's
#   mean, {glue:text}`sharpe_best:+.1f`, is {glue:text}`sharpe_best_within` one standard error
#   ({glue:text}`sharpe_se:.1f`) of zero and far below buy-and-hold. A search on this
#   score would select on luck and on turnover.
# - **Short-term direction is not perfectly random either**, and saying so is part of
#   being honest: persistence's "accuracy" (the last bar's sign) is
#   {glue:text}`persistence_acc:.1%` (below one half: a small reversal), and the LSTM
#   baseline reaches an IC of {glue:text}`lstm_ic:+.3f` and an accuracy of
#   {glue:text}`lstm_acc_val:.1%` on validation, {glue:text}`lstm_acc_test:.1%` on test.
#   That edge is far smaller than the cost of trading every bar at 5 bps.
#
# These statements hold for this period, this market and this recipe; the study script
# and the JSON it writes are there to check them again on new data.

# %% [markdown]
# ## Summary
#
# - Bybit's V5 `market/kline` endpoint returns up to 1000 candles per request, newest
#   first, as strings; `fetch_bybit_klines` pages backwards, validates and tidies them,
#   `load_klines` prefers recorded files, then the cache, then live data, and falls
#   back to labelled synthetic data, always saying which.
# - Features use windows that end at the current bar and drop rows without history;
#   targets look forward and live apart; window $i$ pairs bars $t_i - L + 1..t_i$ with
#   the target after $t_i$; train, validation and test follow each other in time with
#   gaps of at least $L + H$ bars, and the scaler sees the training rows only.
# - `evaluate(arch, task, seed)` is the proxy: about a second of seeded training and a
#   validation score; `train_baseline` scores naive forecasts, an MLP and an LSTM the
#   same way.
# - Before trusting a proxy, measure it: the share of score variance explained by the
#   architecture (ICC, ANOVA F-test) and the rank agreement with longer training and a
#   later period. On 15-minute BTCUSDT, volatility passes and direction does not.
#
# Next, the search strategies use this proxy as their accuracy term beside latency and
# memory.

# %% [markdown]
# ## Exercises
#
# **1.** A colleague standardises the features with the mean and standard deviation of
# the whole series before splitting. Which information leaks, and how would you show it
# with a test like the one in this chapter?
#
# :::{dropdown} Solution
# The validation and test periods' mean and spread enter the training inputs: a
# volatile autumn raises the standard deviation used to scale the quiet spring, so the
# training windows already "know" how volatile the future will be, which is exactly
# the volatility target. To show it, build the task twice, the second time with every
# bar after the training period changed (a different price path), and compare the
# training tensors: with a train-only scaler they are identical
# (`tests/test_proxy.py::test_later_data_changes_nothing_the_training_sees`), with a
# full-sample scaler they differ. The cell below does that comparison on the scaler
# alone.
# :::

# %% tags=["hide-cell"]
later = features.index > window_ends[tr.stop - 1]
shifted = features.copy()
shifted.loc[later] = shifted.loc[later] * 2.0
train_only = Scaler().fit(shifted.loc[~later])
assert np.allclose(train_only.mean_, scaler.mean_)
full_sample = Scaler().fit(shifted)
assert not np.allclose(full_sample.mean_, scaler.mean_)
print("train-only scaler unchanged by later data; a full-sample scaler moves")

# %% [markdown]
# **2.** The direction strategy trades at 5 bps per unit. Using the candidate's
# before-cost Sharpe ratio and turnover from the direction table, estimate the cost per
# unit at which it would break even. Is that a realistic fee?
#
# :::{dropdown} Solution
# Per bar the strategy earns $\bar\pi_{\text{gross}}$ and pays $c$ times the mean
# turnover $\bar u$, so it breaks even at $c^* = \bar\pi_{\text{gross}} / \bar u$. The
# cell below computes $\bar\pi_{\text{gross}}$ from the positions and returns. Unless
# the gross Sharpe ratio is clearly positive (it is not significantly so), $c^*$ is a
# fraction of a basis point or negative: below even maker fees, so there is nothing to
# trade.
# :::

# %% tags=["hide-cell"]
t_dir = replace(task, target="direction")
s = evaluate(arch, t_dir, seed=0, keep_predictions=True)
positions = np.sign(s.predictions)
returns = np.expm1(t_dir.val.targets["ret_next"])
gross_per_bar = float(np.mean(positions * returns))
turnover = float(np.mean(np.abs(np.diff(positions, prepend=0.0))))
print(f"gross P&L {gross_per_bar * 1e4:+.3f} bps per bar, turnover {turnover:.3f} units per bar "
      f"-> break-even cost {gross_per_bar / turnover * 1e4:+.2f} bps per unit")

# %% [markdown]
# **3.** Why does the proxy score volatility on every 4th validation window but
# direction on every window?
#
# :::{dropdown} Solution
# Neighbouring volatility targets share 15 of their 16 future bars, so consecutive
# windows carry almost the same information; scoring every 4th window costs a quarter of
# the time and changes the correlation very little (`task.stride`). The direction P&L
# is a time series of positions held bar after bar: costs are paid when the position
# changes between *consecutive* bars, so skipping bars would change the strategy being
# measured. `ProxyTask` refuses `eval_stride > 1` for direction for that reason.
# :::
