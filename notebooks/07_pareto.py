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
# # 07 · Pareto fronts and the search loop
#
# Chapters {doc}`02_flops` to {doc}`06_bybit_data` measure a candidate: its latency on
# a target, its memory, and a proxy score on BTCUSDT candles. A search has to weigh
# those numbers against each other. Instead of one "best" model it looks for the
# **Pareto front**: the architectures no other one beats in every objective at once,
# so a trading desk can pick the trade-off its latency budget allows. This chapter
# builds the tools for that (dominance, non-dominated sorting, hypervolume, the
# MnasNet reward) and the loop every later strategy plugs into: `hwnas.search`.
#
# **You will learn**
#
# - what dominance is, how non-dominated sorting peels a set of candidates into
#   fronts, and how the hypervolume turns a whole front into one number;
# - the MnasNet reward $\text{ACC}\cdot(\text{LAT}/T)^{w}$, how its soft form differs
#   from a hard latency constraint, and how memory enters as a third term;
# - how `hwnas.search` asks a strategy, evaluates through an executor (a process pool
#   or a dask cluster), stores every result in SQLite, and tells, so that a search is
#   reproducible, resumable and never trains an architecture twice;
# - how random search compares with regularised evolution on real BTCUSDT data, and
#   why a few seeds of a short search do not settle that comparison.
#
# **Prerequisites**: {doc}`04_latency_lut` (the latency table), {doc}`05_hardware_targets`
# (profiles and feasibility), {doc}`06_bybit_data` (the proxy task and its score).

# %%
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import hwnas
from hwnas import plots
from hwnas.architecture import UNGATED_OPS
from hwnas.data import load_klines
from hwnas.hardware import HardwareProfile
from hwnas.latency import TimingSpec
from hwnas.pareto import (
    dominates,
    hypervolume,
    mnas_reward,
    non_dominated_sort,
    pareto_front,
)
from hwnas.proxy import make_proxy_task
from hwnas.search import EvaluationStore, Evaluator, search
from hwnas.space import SearchSpace

SEED = 7
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
CHAPTER_START = time.perf_counter()

# %% [markdown]
# ## Dominance
#
# Every objective in `hwnas.pareto` is **minimised**; a score that should be high is
# negated first (once, in `SearchProblem.objectives`). With objective vectors
# $f(a), f(a') \in \mathbb{R}^m$, $a$ dominates $a'$ when it is no worse anywhere and
# better somewhere:
#
# $$a \succ a' \iff \forall i:\ f_i(a) \le f_i(a') \ \text{ and } \ \exists j:\ f_j(a) < f_j(a').$$
#
# Two candidates can both be undominated: one faster, the other more accurate.

# %%
# NBVAL_CHECK_OUTPUT
fast = (-0.40, 300.0)      # (-score, latency in µs)
accurate = (-0.55, 900.0)
slow_and_worse = (-0.35, 950.0)
print("fast dominates slow_and_worse:", dominates(fast, slow_and_worse))
print("fast dominates accurate:", dominates(fast, accurate), "| accurate dominates fast:",
      dominates(accurate, fast))
assert dominates(fast, slow_and_worse) and not dominates(fast, accurate) and not dominates(accurate, fast)

# %% [markdown]
# ## Non-dominated sorting
#
# The first front $F_0$ is the set no point dominates; remove it and the front of what
# is left is $F_1$, and so on (NSGA-II's ranking {cite}`deb2002nsga2`). With two
# objectives `non_dominated_sort` needs one sort and a binary search per point,
# $O(n \log n)$; with more it builds the dominance relation, $O(m n^2)$.

# %%
rng = np.random.default_rng(SEED)
cloud = rng.random((60, 2)) ** 0.7
fronts = non_dominated_sort(cloud)
brute = [i for i in range(len(cloud)) if not any(dominates(cloud[j], cloud[i]) for j in range(len(cloud)))]
assert pareto_front(cloud).tolist() == brute == fronts[0].tolist()
print(f"{len(cloud)} points in {len(fronts)} fronts; sizes {[len(f) for f in fronts]}")

# %% mystnb={"figure": {"caption": "Non-dominated sorting peels the 60 random points into successive fronts: front 0 is the lower-left staircase that no point dominates, and each later front is the staircase of what is left once the earlier ones are removed."}, "image": {"alt": "Scatter plot of 60 points in the unit square, objective 1 (minimised) on the x axis and objective 2 (minimised) on the y axis, both linear from 0 to 1. Each point is coloured by its front on the viridis scale, from dark purple for front 0 near the lower left to yellow for the last front near the upper right, and the points of one front are joined by a step line; the legend lists fronts 0 to 3 and the last one."}}
ax = plots.pareto_layers(cloud, fronts)
ax.set_title("Fronts of non-dominated sorting (both objectives minimised)");

# %% [markdown]
# ## Hypervolume
#
# A front is many points; to compare two fronts we measure the volume they dominate up
# to a reference point $r$ that is worse than everything of interest
# {cite}`zitzler1999spea`:
#
# $$\text{HV}(P, r) = \lambda\Big(\bigcup_{p \in P} [p_1, r_1] \times \cdots \times [p_m, r_m]\Big).$$
#
# It grows whenever a new point pushes the front outwards and ignores dominated
# points. `hypervolume` is exact: a sweep in 2-D, a staircase sweep in 3-D in
# $O(n \log n)$ {cite}`fonseca2006hv3d`, slicing for more objectives
# {cite}`while2012wfg`. The cell checks it against values worked out by hand.

# %%
# NBVAL_CHECK_OUTPUT
hand = [
    ([(1, 2), (2, 1)], (3, 3), 3.0),
    ([(1, 3), (2, 2), (3, 1)], (4, 4), 6.0),
    ([(1, 3), (2, 2), (3, 1), (3, 3)], (4, 4), 6.0),     # (3, 3) is dominated: adds nothing
    ([(0, 0, 1), (1, 1, 0)], (2, 2, 2), 5.0),
    ([(2, 1, 1), (1, 2, 1), (1, 1, 2)], (3.5, 3.5, 3.5), 14.625),
]
for points, reference, expected in hand:
    value = hypervolume(points, reference)
    assert abs(value - expected) < 1e-12
    print(f"HV({points}, r={reference}) = {value:g}")

# %% mystnb={"figure": {"caption": "The boxes of the three points up to the reference $r = (4, 4)$ overlap; their union, a staircase of columns 1, 2 and 3 units high, has area 6, the value `hypervolume` returns and the cell above worked out by hand."}, "image": {"alt": "Plot with objective 1 (minimised) on the x axis and objective 2 (minimised) on the y axis, both from 0.5 to 4.5. Three blue points at (1, 3), (2, 2) and (3, 1) each span a translucent blue rectangle up to a red cross at the reference point (4, 4); where rectangles overlap the blue is darker, and together they form a staircase that rises from left to right."}}
ax = plots.hypervolume_boxes([(1, 3), (2, 2), (3, 1)], (4, 4), value=hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)))
ax.set_title("Hypervolume: the union of the boxes up to r = (4, 4) (area 6)");

# %% [markdown]
# ## The MnasNet reward: soft and hard constraints
#
# A single-objective strategy needs one number. The reference chapter's scalarised
# objective (MnasNet {cite}`tan2019mnasnet`, with a memory term) is
#
# $$\mathcal{L}(a) = \text{ACC}(a) \times \left[\frac{\text{LAT}(a)}{T}\right]^{w_1} \times
# \left[\frac{\text{MEM}(a)}{M}\right]^{w_2}, \qquad w_1, w_2 < 0.$$
#
# With the soft $w_1 = -0.07$ a model twice as slow needs $2^{0.07} \approx 5\%$ more
# accuracy for the same reward, at any latency. The hard form has $w = 0$ while
# $\text{LAT} \le T$ (latency does not matter inside the budget) and $w = -1$ above
# (the reward falls in proportion). `mnas_reward` implements both, vectorised.

# %%
# NBVAL_CHECK_OUTPUT
print(f"2^0.07 = {2 ** 0.07:.4f}")
assert abs(mnas_reward(0.5 * 2 ** 0.07, 2.0, 1.0) - 0.5) < 1e-12   # twice as slow, 5% more accurate
print("hard reward at LAT/T = 0.5, 1, 2:", mnas_reward(np.full(3, 0.5), np.array([0.5, 1.0, 2.0]), 1.0, hard=True))
print(f"with memory at twice the budget: {mnas_reward(0.5, 1.0, 1.0, memory=2.0, memory_target=1.0):.4f}")

# %% mystnb={"figure": {"caption": "Along each iso-line the reward is constant. The soft reward's lines (red) rise gently everywhere, so a model twice as slow needs $2^{0.07} \\approx 1.05$ times the accuracy, while the hard reward's lines (blue, dashed) are flat up to $T$ and above it rise in proportion to $\\text{LAT}/T$."}, "image": {"alt": "Contour plot with the latency ratio LAT/T on the x axis (linear, 0.2 to 3) and the accuracy term ACC on the y axis (0.05 to 0.8). Solid red lines of the soft reward (w = -0.07) at levels 0.2, 0.4 and 0.6 rise slowly from left to right; dashed blue lines of the hard reward at the same levels are horizontal up to a grey vertical line at LAT/T = 1 and then rise as straight lines, steeper for the higher levels."}}
ratio = np.linspace(0.2, 3.0, 200)
acc = np.linspace(0.05, 0.8, 200)
R, A = np.meshgrid(ratio, acc)
rewards = {"soft, w = -0.07": mnas_reward(A, R, 1.0), "hard (w = 0 / -1)": mnas_reward(A, R, 1.0, hard=True)}
ax = plots.reward_isolines(ratio, acc, rewards, levels=[0.2, 0.4, 0.6])
ax.set_title("Reward iso-lines: soft trades latency everywhere, hard only above T");

# %% [markdown]
# ## The search loop
#
# A strategy is a small class with `ask(n)` and `tell(arch, metrics)`;
# `hwnas.search` only runs the loop:
#
# 1. ask the strategy for `batch_size` architectures;
# 2. look each one up in the evaluation store (SQLite, keyed by the architecture's
#    canonical JSON hash, the task's and the profile's fingerprints and the seed);
# 3. for the others compute latency, memory and feasibility from the profile, and
#    train the feasible ones through the executor (in-process by default; a
#    `ProcessPoolExecutor`; or a dask cluster's `Client(...).get_executor()`
#    {cite}`rocklin2015dask`);
# 4. store every result, then **tell in the order asked** and save the strategy's
#    state in the store.
#
# Step 4 makes the result independent of the executor and of which worker finishes
# first, and it makes a killed search resumable. What a strategy is told never holds
# test scores: selection sees validation only.
#
# The data: the recorded Bybit BTCUSDT 15-minute candles when available (the chapter
# prints which source it used). To run in well under two minutes the chapter uses a
# **reduced task** (the last 6,000 candles, 256 training windows, lookbacks 32 and
# 64, widths 16 and 32) and 40 evaluations per run; `benchmarks/bench_search.py`
# runs the full task (2,048 training windows over March to December 2024) for 300
# evaluations per run.

# %%
data = load_klines("BTCUSDT", "15")
print(data)
# the operations the committed table prices (it predates the recurrent and gated ones)
space = SearchSpace.default(input_features=10, lookbacks=(32, 64), widths=(16, 32), depths=(2, 3, 4), ops=UNGATED_OPS)
task = make_proxy_task(data.frame.iloc[-6000:], lookback=max(space.lookbacks), source=data.description,
                       max_train_windows=256, eval_stride=8)
print(task.describe())

# %% [markdown]
# The latency comes from the 1-thread CPU profile of the default space, the table the
# benchmark measured (`benchmarks/results/search_profile_cpu_1thread.json`; without
# it the chapter measures a smaller table of its reduced space). That table was measured
# before the GRU, LSTM and gated convolution joined the default space
# ({doc}`01_search_space`), so the space here leaves those three out: a search draws only
# what its table prices. The budget $T$ is the median predicted latency of the space.

# %%
PROFILE_FILE = Path(hwnas.__file__).resolve().parents[1] / "benchmarks" / "results" / "search_profile_cpu_1thread.json"
if PROFILE_FILE.exists():
    profile = HardwareProfile.load(PROFILE_FILE)
else:
    quick = TimingSpec.QUICK.replace(passes=1, target_ms=2.0, min_reps=5)
    profile = hwnas.profile_cpu(space, threads=1, progress=False, timing=quick)
print(profile.summary().splitlines()[0])
sample_rng = np.random.default_rng(0)
BUDGET = float(np.median([profile.predict_latency(space.sample(sample_rng)) for _ in range(200)]))
print(f"latency budget T = {BUDGET:,.0f} µs")

# %% [markdown]
# Two strategies, two seeds each, one store. Random search samples the space
# uniformly; regularised evolution {cite}`real2019regularized` keeps a population of
# $P$ architectures, mutates the best of $S$ drawn at random and retires the
# **oldest** member (here $P = 10$, $S = 3$ for the short runs; the library default is
# $P = 20$, $S = 5$ for budgets of hundreds). Both use the soft reward.

# %%
store_dir = tempfile.TemporaryDirectory()
STORE = Path(store_dir.name) / "evals.sqlite"
EVALS, SEEDS = 40, (0, 1)
options = {"random": {}, "evolution": {"population_size": 10, "sample_size": 3}}
results = {}
t0 = time.perf_counter()
for name in options:
    for seed in SEEDS:
        results[name, seed] = search(space, profile, BUDGET, EVALS, strategy=name, task=task, seed=seed,
                                     store=STORE, strategy_options=options[name], progress=False)
print(f"{len(results)} searches of {EVALS} evaluations in {time.perf_counter() - t0:.0f} s")
print(results["evolution", 0].summary())

# %% mystnb={"figure": {"caption": "The Pareto fronts of seed 0 after 40 evaluations per strategy, random search in grey and regularised evolution in blue, over every feasible evaluation drawn faintly: read which staircase is higher at a given latency, and note that under the soft reward a front may reach past the budget $T$ (dashed)."}, "image": {"alt": "Scatter plot of validation score (y) against predicted latency in µs (x, log scale). Faint grey and blue dots are every feasible evaluation of random search and of evolution; bold dots joined by step lines are each strategy's front, grey for random and blue for evolution, along the top of the cloud; a dashed grey vertical line marks the budget T, and the legend gives the size of each front."}}
fronts_by_strategy = {name: np.array([(m.latency_us, m.score) for _, m in results[name, 0]])
                      for name in options}
clouds = {name: np.array([(s.metrics.latency_us, s.metrics.score) for s in results[name, 0].history
                          if s.metrics.feasible]) for name in options}
ax = plots.fronts_by_strategy(fronts_by_strategy, clouds=clouds, budget=BUDGET)
ax.set_title("Fronts found with seed 0 (every evaluation faint)");

# %% [markdown]
# The hypervolume of a search is measured in normalised objectives
# $(-\text{score},\ \text{LAT}/T)$ against the reference $(0, 1)$: a candidate counts when
# its validation correlation is positive and it runs within the budget, and the
# largest possible value is 1.

# %% mystnb={"figure": {"caption": "The hypervolume never falls as evaluations accumulate, and the min-max bands of the two seeds overlap over most of the run: the seed-to-seed spread is as large as the gap between random search and evolution, so 40 evaluations on two seeds do not rank the strategies."}, "image": {"alt": "Line chart of hypervolume (y, linear, from 0) against evaluations (x, 1 to 40). A grey line for random search and a blue line for evolution, each the mean of 2 seeds inside a shaded band from the lower to the higher seed, rise in steps and then flatten; the two bands overlap over most of the range."}}
curves = {name: [results[name, seed].hypervolume_curve() for seed in SEEDS] for name in options}
for name, runs in curves.items():
    finals = [c[-1] for c in runs]
    print(f"{name:<10} final HV per seed {np.round(finals, 4).tolist()}, mean {np.mean(finals):.4f}")
ratio_hv = np.mean([c[-1] for c in curves["evolution"]]) / np.mean([c[-1] for c in curves["random"]])
print(f"evolution / random: {ratio_hv:.3f}")
ax = plots.hypervolume_curves(curves)
ax.set_title("Hypervolume against evaluations (mean of 2 seeds, min-max band)");

# %% [markdown]
# Read this comparison with care: two seeds of 40 evaluations on a reduced task. The
# spread between seeds is of the same order as the difference between the
# strategies, so this run alone does not show that evolution beats random search.
# The benchmark's five seeds of 150 and 300 evaluations of every strategy, on a
# cheaper recipe of the same task, are the evidence (see
# `benchmarks/results/search_hv_reduced.txt`), and even there a ratio near 1 is what a
# proxy score with the noise of {doc}`06_bybit_data` lets one expect.
#
# The store made the second strategy cheaper: evolution's random start met some of
# random search's samples, which were read back instead of trained.

# %%
with EvaluationStore(STORE, *Evaluator(task, profile).fingerprints(), 0) as store:
    stored = len(store)
total = sum(len(r.history) for r in results.values())
print(f"{total} evaluations asked, {stored} architectures trained (the rest came from the store)")
assert stored <= total

# %% [markdown]
# ## Which reference? The hypervolume a trader needs
#
# The reference $(0, 1)$ credits any positive correlation within the budget. But a
# volatility forecast has a free competitor: **persistence**, tomorrow's volatility
# is today's. It needs no network and no latency, and it already scores well on the
# validation split. A front member that scores below it is of no use to a trader,
# however cheap. Under $(0, 1)$ the cheapest member of a front, often a nearly empty
# network with a modest score, spans the whole width from its score to 0, and so it
# can carry most of the volume. The **trader's reference**
# $(-s_{	ext{persistence}},\ 1)$ (`hwnas.pareto.trader_reference`,
# `SearchProblem.reference(baseline_score)`) counts only the region that beats
# persistence *and* fits the budget. Beside it we report the best within-budget
# score and its **attainment curve**: that score against the number of evaluations
# (`SearchResult.attainment_curve`). The old reference stays available, so older
# results can still be compared with new ones.

# %%
from myst_nb import glue  # noqa: E402

from hwnas.pareto import trader_reference  # noqa: E402
from hwnas.proxy.baselines import train_baseline  # noqa: E402

persistence = train_baseline("persistence", task, split="val").score
trader_ref = trader_reference(persistence)
print(f"persistence's validation score: {persistence:.4f}; trader reference {trader_ref.tolist()}")
corner_shares, rows = [], []
for (name, seed), result in results.items():
    points = result.objectives()
    inside = points[np.all(points < [0.0, 1.0], axis=1)]
    hv_zero, hv_trader = result.hypervolume(), result.hypervolume(trader_ref)
    cheapest = inside[np.argmin(inside[:, 1])] if len(inside) else None
    # the cheapest member's own box, the part of HV(0, 1) nothing else on the front covers
    rest = inside[inside[:, 1] > cheapest[1]] if cheapest is not None else inside
    share = (hv_zero - (hypervolume(rest, [0.0, 1.0]) if len(rest) else 0.0)) / hv_zero if hv_zero else 0.0
    corner_shares.append(share)
    rows.append((name, seed, hv_zero, hv_trader, result.best_within_budget_score(), share))
    print(f"{name:<10} seed {seed}: HV(0, 1) {hv_zero:.4f}, HV(trader) {hv_trader:.4f}, "
          f"best within budget {result.best_within_budget_score():.4f}, "
          f"share of HV(0, 1) only the cheapest member covers {share:.0%}")
glue("persistence_val", float(persistence), display=False)
glue("corner_share_mean", float(np.mean(corner_shares)), display=False)
glue("corner_share_max", float(np.max(corner_shares)), display=False)
beat = sum(r[3] > 0 for r in rows)
glue("runs_beating_persistence", beat, display=False)
glue("runs_total", len(rows), display=False)

# %% [markdown]
# On this reduced task persistence scores {glue:text}`persistence_val:.3f` on the
# validation split. On average {glue:text}`corner_share_mean:.0%` of a run's
# hypervolume under $(0, 1)$ (at most {glue:text}`corner_share_max:.0%`) is the
# part that only the cheapest front member covers. How much the cheap corner weighs
# depends on the task and the budget, and on the full task it can be most of the
# volume. In
# {glue:text}`runs_beating_persistence` of the {glue:text}`runs_total` runs some
# candidate within the budget beats persistence. That is the only case in which
# the trader's hypervolume is above zero. The two references can rank strategies
# differently: $(0, 1)$ rewards finding the cheap corner, the trader's reference
# rewards finding models worth deploying. The benchmark
# (`benchmarks/bench_search.py`) reports both, with the best within-budget score.

# %% mystnb={"figure": {"caption": "The best validation score within the budget after each evaluation (mean of 2 seeds, min-max band) against persistence's score (dashed): the attainment curve shows when, if ever, a search finds a model that beats the free forecast."}, "image": {"alt": "Line chart of the best within-budget validation score (y) against evaluations (x, 1 to 40). A grey line for random search and a blue line for evolution, each inside a shaded min-max band, rise in steps; a dashed horizontal line marks persistence's validation score."}}
attainment = {name: [np.nan_to_num(results[name, seed].attainment_curve(), nan=0.0) for seed in SEEDS]
              for name in options}
ax = plots.hypervolume_curves(attainment)
ax.axhline(persistence, color="0.3", linestyle="--", linewidth=1, label="persistence (validation)")
ax.set_ylim(max(0.0, persistence - 0.15), None)
ax.set_ylabel("best within-budget validation score")
ax.legend()
ax.set_title("Attainment: best within-budget score against evaluations");

# %% [markdown]
# ## Memory as a third objective
#
# With a memory budget $M$ the front has three objectives (score up, latency and memory
# down). Re-running the random search with a budget reads every evaluation back from
# the store: nothing is trained again, only the front is recomputed.

# %% mystnb={"figure": {"caption": "With memory as a third objective the front (ringed in red) keeps candidates that the two-objective front drops: a model beaten on score and latency stays on it when it needs less memory (a darker dot)."}, "image": {"alt": "Scatter plot of validation score (y) against predicted latency in µs (x, linear) for every feasible evaluation of the random search, each dot coloured by its memory in kB on a viridis colour bar, dark purple for little memory and yellow for much. Red rings mark the members of the three-objective front; they lie along the upper left edge of the cloud."}}
MEMORY_BUDGET = int(np.median([s.metrics.memory_bytes for s in results["random", 0].history]))
with_memory = search(space, profile, BUDGET, EVALS, strategy="random", task=task, seed=0, store=STORE,
                     memory_budget=MEMORY_BUDGET, progress=False)
assert all(s.cached for s in with_memory.history)
print(f"memory budget {MEMORY_BUDGET:,} B; front of 2 objectives: {len(results['random', 0])}, "
      f"of 3 objectives: {len(with_memory)}; HV (3-D, normalised) {with_memory.hypervolume():.4f}")
trained = [s for s in with_memory.history if s.metrics.feasible]
on_front = {hwnas.search.architecture_key(a) for a, _ in with_memory}
ax = plots.memory_front([s.metrics.latency_us for s in trained], [s.metrics.score for s in trained],
                        [s.metrics.memory_bytes for s in trained],
                        [hwnas.search.architecture_key(s.arch) in on_front for s in trained])
ax.set_title("A point off the 2-D front can be on the 3-D one: it saves memory");

# %% [markdown]
# ## Validation against test: the selection bias
#
# The front was selected on validation scores. Each member was scored on the later
# test period in the same training run, but no strategy ever saw it. Two things to
# look for: the level (the test period is a different market, so its correlations can
# be higher or lower for every model alike) and the order (the validation maxima are
# partly luck, so the member best on validation need not be best on test). The rank
# correlation over the front measures the second.

# %%
primary = results["evolution", 0].run.primary_metric
rows = [(m.score, m.test_scores[primary], m.latency_us) for _, m in results["evolution", 0]]
for val, test, lat in rows:
    print(f"val {val:+.4f}  test {test:+.4f}  latency {lat:7.1f} µs")
print(f"mean over the front: val {np.mean([r[0] for r in rows]):+.4f}, test {np.mean([r[1] for r in rows]):+.4f}")
val_rank, test_rank = (np.argsort(np.argsort([r[k] for r in rows])) for k in (0, 1))
print(f"rank correlation of validation and test over the front: {np.corrcoef(val_rank, test_rank)[0, 1]:+.2f}")

# %% [markdown]
# ## Hard constraint, executors, resuming
#
# `constraint="hard"` keeps only candidates within the budget on the front; random
# search and evolution then re-draw a candidate over budget before training it (the LUT
# says so in microseconds). The executor changes where candidates train, never what the
# search finds: the same seed through a process pool gives the same result.

# %%
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

hard = search(space, profile, BUDGET, 16, strategy="evolution", task=task, seed=2, store=STORE,
              constraint="hard", strategy_options=options["evolution"], progress=False)
assert all(m.latency_us <= BUDGET for _, m in hard)
with ProcessPoolExecutor(2) as pool:
    pooled = search(space, profile, BUDGET, 16, strategy="evolution", task=task, seed=2,
                    constraint="hard", strategy_options=options["evolution"], progress=False, executor=pool)
assert pooled.signature() == hard.signature()
print(f"hard constraint: front of {len(hard)}, all within {BUDGET:,.0f} µs; the process pool found the same")

# %% [markdown]
# On a cluster, start a dask scheduler and workers with hwnas installed, then pass the
# client's executor; the same store file makes the run resumable:
#
# ```python
# from distributed import Client
# client = Client("tcp://scheduler:8786")
# result = hwnas.search(space, profile, BUDGET, 500, executor=client.get_executor(),
#                       store="evals.sqlite")
# ```
#
# What travels with each candidate is small: the task's windows overlap in all but
# one bar, so `pack_task` ships the series they were cut from (a few MB instead of
# about 140 MB for the full task) and each worker rebuilds them once.
#
# The same from the shell: `python -m hwnas search --strategy evolution --budget-us 800
# --evals 300 --profile cpu.json --store evals.sqlite --workers 2 --out result.json`.

# %%
store_dir.cleanup()
print(f"chapter ran in {time.perf_counter() - CHAPTER_START:.0f} s")

# %% [markdown]
# ## Summary
#
# - Dominance orders candidates only partly; non-dominated sorting peels them into
#   fronts, and the first front is what a search returns.
# - The hypervolume measures a front by the volume it dominates up to a reference; it
#   never drops when a point is added and ignores dominated points.
# - The MnasNet reward scalarises score, latency (and memory): the soft exponent
#   trades latency everywhere, the hard form only above the budget.
# - `hwnas.search` is only a loop: ask, evaluate through any executor, store, tell in
#   ask order. That makes a search reproducible across executors, resumable after a
#   kill, and free of repeated training.
# - On a short search the difference between random search and evolution is within
#   the seed-to-seed spread; compare strategies over several seeds and say so.
#
# Next, {doc}`08_mnasnet_rl` replaces the mutation of evolution with a learned policy.

# %% [markdown]
# ## Exercises
#
# **1.** Add the point $(2.5, 2.5)$ to $\{(1,3),(2,2),(3,1)\}$ with reference $(4,4)$.
# By how much does the hypervolume grow? Check with `hypervolume`.
#
# :::{dropdown} Solution
# $(2.5, 2.5)$ is dominated by $(2, 2)$, so its box lies inside $(2,2)$'s and the
# hypervolume stays 6. A point such as $(1.5, 2.5)$ is not dominated and adds the box
# $[1.5, 2] \times [2.5, 3]$ of area $0.25$.
# :::

# %% tags=["hide-cell"]
assert hypervolume([(1, 3), (2, 2), (3, 1), (2.5, 2.5)], (4, 4)) == 6.0
assert abs(hypervolume([(1, 3), (2, 2), (3, 1), (1.5, 2.5)], (4, 4)) - 6.25) < 1e-12

# %% [markdown]
# **2.** Under the soft reward with $w = -0.07$, how much more accurate must a model
# three times slower than the budget be to tie a model exactly at the budget? And
# under the hard form?
#
# :::{dropdown} Solution
# Soft: $\text{ACC}' = \text{ACC} \cdot 3^{0.07} \approx 1.080\,\text{ACC}$.
# Hard: the factor above $T$ is $(\text{LAT}/T)^{-1} = 1/3$, so it needs three times
# the accuracy, which a correlation score rarely offers: the hard form is close to a
# cut-off.
# :::

# %% tags=["hide-cell"]
assert abs(mnas_reward(3 ** 0.07, 3.0, 1.0) - 1.0) < 1e-12
assert abs(mnas_reward(3.0, 3.0, 1.0, hard=True) - 1.0) < 1e-12

# %% [markdown]
# **3.** Why does the loop tell results in the order it asked, not in the order the
# workers finish? What would break otherwise?
#
# :::{dropdown} Solution
# A strategy's next ask depends on what it was told (evolution's population, the
# Optuna study's trials). If results were told as they complete, the order would
# depend on worker speed and scheduling, so the same seed would give different
# searches on different executors and a resumed search could not replay the state it
# saved. Telling in ask order makes the sequence of tells a function of the seed and
# the (deterministic) evaluations only.
# :::
