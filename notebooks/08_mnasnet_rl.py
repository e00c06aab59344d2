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
# # 08 · MnasNet: a controller that learns which trading architectures meet the SLA
#
# MnasNet {cite:p}`tan2019mnasnet` turned hardware-aware search into a learning problem:
# a recurrent **controller** samples an architecture one decision at a time, the
# architecture is scored on the target device, and the controller is trained by
# reinforcement learning to make high-scoring, fast architectures more likely. This
# chapter builds that controller for trading models (`strategy="mnasnet"` of
# `hwnas.search`), trains it on the recorded BTCUSDT candles of {doc}`06_bybit_data`
# under the 1-thread CPU latency table of {doc}`04_latency_lut`, and compares the front it
# finds with random search's at the same budget, as {doc}`07_pareto` compared evolution.
#
# **You will learn**
#
# - MnasNet's reward $\mathrm{ACC}\cdot[\mathrm{LAT}/T]^{w}$, its soft and hard forms and
#   their iso-lines, and the memory term;
# - how the reference chapter's §5.1 adapts MnasNet to trading: which "accuracy" a search
#   can trust here (and why direction accuracy and the Sharpe ratio are not it), latency
#   tables of trading hardware, memory as an objective, and a restricted space;
# - how an LSTM policy encodes an architecture, and how masking keeps every sample valid;
# - REINFORCE with a moving-average baseline and an entropy bonus, and PPO's clipped
#   objective; why the baseline matters;
# - how to read the controller's learning curves and decision probabilities, and whether
#   it beats random search (measured, with its spread over seeds).
#
# **Prerequisites**: {doc}`01_search_space` (genomes, candidates), {doc}`04_latency_lut`
# (latency tables), {doc}`06_bybit_data` (the proxy task), {doc}`07_pareto` (fronts,
# hypervolume, the search loop); the chain rule and $\nabla \log p = \nabla p / p$.

# %%
import json
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import display
from myst_nb import glue

import hwnas
from hwnas import plots
from hwnas.architecture import UNGATED_OPS, OpType
from hwnas.data import load_klines
from hwnas.hardware import HardwareProfile
from hwnas.pareto import mnas_reward
from hwnas.proxy import make_proxy_task
from hwnas.proxy_study import NoiseStudy
from hwnas.search import INFEASIBLE_REWARD, Metrics, SearchProblem
from hwnas.search.controller import decision_layout
from hwnas.search.mnasnet import MnasNetStrategy
from hwnas.space import SearchSpace

SEED = 2024
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
pd.set_option("display.precision", 4)
RESULTS = Path(hwnas.__file__).resolve().parents[1] / "benchmarks" / "results"

# %% [markdown]
# ## 1 · The reward: accuracy, discounted by latency
#
# MnasNet maximises one number per architecture $a$ (the reference chapter's §2.4):
#
# $$R(a) = \mathrm{ACC}(a)\cdot\left[\frac{\mathrm{LAT}(a)}{T}\right]^{w}
#   \cdot\left[\frac{\mathrm{MEM}(a)}{M}\right]^{w_2},
#   \qquad w = \begin{cases} -0.07 & \text{soft} \\ 0 \text{ if } \mathrm{LAT}\le T,
#   \text{ else } -1 & \text{hard} \end{cases}$$
#
# with $T$ the latency budget, $M$ the memory budget (the last factor only when one is
# set) and $w, w_2 \le 0$. With the soft exponent a model twice as slow as another needs
# $2^{0.07} \approx 1.05$ times its accuracy for the same reward: latency is a
# price, not a wall. The hard form leaves models within the budget alone and divides the
# reward of a slower one by how much it overshoots. `hwnas.pareto.mnas_reward` computes
# both; `SearchProblem.reward` is what every single-objective strategy maximises.

# %%
# NBVAL_CHECK_OUTPUT
same_reward = mnas_reward(2 ** 0.07 * 0.30, 2.0, 1.0) / mnas_reward(0.30, 1.0, 1.0)
print(f"twice as slow needs {2 ** 0.07:.4f}x the accuracy: reward ratio {same_reward:.6f}")
assert abs(same_reward - 1.0) < 1e-12
print(f"hard constraint: within budget {mnas_reward(0.3, 0.9, 1.0, hard=True):.3f}, "
      f"50% over {mnas_reward(0.3, 1.5, 1.0, hard=True):.3f} (= 0.3 / 1.5)")
assert mnas_reward(0.3, 1.5, 1.0, hard=True) == 0.3 / 1.5

# %% [markdown]
# Iso-lines show what the controller is asked to trade. Each line is one reward value:
# under the soft constraint (red) the lines lean gently, so a model that takes
# $0.9$ of the time may lose $1 - 0.9^{0.07} \approx 0.007$ of its accuracy; under the hard constraint (blue, dashed) they are flat up to
# $T$ and fall steeply after it.

# %% mystnb={"figure": {"caption": "Each line is one reward value. Under the soft constraint (red) the lines lean gently, so a model that takes $0.9$ of the time may give up $1 - 0.9^{0.07} \\approx 0.007$ of its accuracy for the same reward; under the hard constraint (blue, dashed) they are flat up to $T$ and rise in proportion to $\\mathrm{LAT}/T$ beyond it."}, "image": {"alt": "Contour plot of the MnasNet reward with latency over budget LAT/T on the x axis (linear, 0.25 to 2.5) and the accuracy term ACC on the y axis (0.05 to 0.6). Solid red iso-lines of the soft reward at levels 0.1 to 0.5 rise slightly from left to right; dashed blue iso-lines of the hard reward at the same levels are horizontal up to a grey vertical line at LAT/T = 1 and then rise steeply as straight lines."}}
ratio = np.linspace(0.25, 2.5, 120)
acc = np.linspace(0.05, 0.6, 100)
R, A = np.meshgrid(ratio, acc)
rewards = {"soft, w = -0.07": mnas_reward(A, R, 1.0),
           "hard (w = 0 / -1)": mnas_reward(A, R, 1.0, hard=True)}
ax = plots.reward_isolines(ratio, acc, rewards, levels=[0.1, 0.2, 0.3, 0.4, 0.5])
ax.set_title("MnasNet reward: soft against hard constraint");

# %% [markdown]
# ## 2 · MnasNet for trading (the reference chapter's §5.1)
#
# The reference chapter adapts MnasNet in four ways. Here is what each becomes in `hwnas`,
# with the evidence.
#
# **ACC: a trading metric the search can trust.** §5.1 suggests the Sharpe ratio or P&L
# prediction accuracy. {doc}`06_bybit_data` measured whether those rank architectures or
# random seeds: for next-bar direction they rank seeds. The proxy's **volatility**
# correlation (the Pearson correlation of predicted and realised next-window log
# volatility, on the validation split) does rank architectures. The study's summary:

# %%
study = NoiseStudy.load(RESULTS / "proxy_noise_study.json")
summary = study.summary()
print(f"data: {study.info['data']['description']}")
glue("icc_vol", float(summary.loc[("volatility", "pearson"), "icc"]), display=False)
glue("icc_dir", float(summary.loc[("direction", "ic"), "icc"]), display=False)
summary[["icc", "p", "short_long", "val_test", "verdict"]]

# %% [markdown]
# An intraclass correlation (ICC) of {glue:text}`icc_vol:.2f` for volatility means most of
# the variance of one run is due to the architecture; {glue:text}`icc_dir:.2f` for direction
# means the seed decides. A
# controller trained on direction would learn the luck of its samples, so the reward's
# ACC is $\max(\text{volatility correlation}, 0)$ (a negative correlation is no better
# than a constant forecast). The Sharpe ratio stays a reported metric, not a reward.
#
# **Latency tables of trading hardware.** LAT is the 1-thread CPU profile of
# {doc}`04_latency_lut` (a table measured on this course's machine for every block of the
# default space), the retail-app or co-located CPU of the reference chapter's §3.3; the
# FPGA cycle model of {doc}`05_hardware_targets` is used below.
#
# **Memory as an objective.** Given a memory budget $M$, `SearchProblem.reward` multiplies
# by $[\mathrm{MEM}/M]^{w_2}$, and the loop adds memory as a third objective of the front.
# A check of the formula through the strategy's own reward:

# %%
# NBVAL_CHECK_OUTPUT
space_fpga = SearchSpace.fpga(input_features=10)
fpga = hwnas.fpga_profile(hwnas.ZU3EG)
with_memory = SearchProblem(space_fpga, fpga, 10.0, 1, memory_budget_bytes=64_000)
m = Metrics(score=0.40, latency_us=8.0, memory_bytes=96_000, flops=1, params=1)
expected = 0.40 * (8.0 / 10.0) ** -0.07 * (96_000 / 64_000) ** -0.07
print(f"reward with the memory term: {with_memory.reward(m):.5f} (formula {expected:.5f})")
assert abs(with_memory.reward(m) - expected) < 1e-12
infeasible = Metrics(score=float("nan"), latency_us=5.0, memory_bytes=10**9, flops=1, params=1,
                     feasible=False, reasons=("over the block RAM",))
print(f"an architecture the target cannot run: reward {with_memory.reward(infeasible)} "
      f"(INFEASIBLE_REWARD = {INFEASIBLE_REWARD}); the evaluator never trains it")

# %% [markdown]
# **A restricted space.** §5.1's last point: search only what the target can run. The FPGA
# space of {doc}`01_search_space` has no attention, no dilation, ReLU only and a residual on
# every block. What the controller cannot choose it never samples; what the *target*
# still rejects (too many DSP slices or too much block RAM for the small ZU3EG) gets the
# infeasible reward above, so the controller learns to avoid it without training it. An
# untrained controller's samples on that space:

# %%
fpga_controller = MnasNetStrategy(SearchProblem(space_fpga, fpga, 10.0, 1), seed=SEED)
_, fpga_archs = fpga_controller.sample(300)
ops = {layer.op for a in fpga_archs for layer in a.layers}
rejected = [a for a in fpga_archs if fpga.check(a)]
assert OpType.ATTENTION not in ops and all(layer.use_skip for a in fpga_archs for layer in a.layers[1:]
                                           if layer.op not in (OpType.IDENTITY, OpType.MAX_POOL))
print(f"operations sampled: {sorted(o.value for o in ops)}")
print(f"{len(rejected)} of 300 samples exceed the ZU3EG's resources (reward {INFEASIBLE_REWARD}), e.g.")
print(fpga.check(rejected[0])[0][:100], "...")

# %% [markdown]
# Can the controller learn to stay inside the chip from the infeasible reward alone? A
# quick experiment with no training at all: every feasible architecture gets the same
# constant score (so only feasibility and the FPGA model's latency matter), the infeasible ones
# $-1$. Ten updates of ten samples:

# %%
fit_problem = SearchProblem(space_fpga, fpga, 10.0, 100)
learner = MnasNetStrategy(fit_problem, seed=SEED, batch_size=10, lr=0.05)
while batch := learner.ask(10):
    for a in batch:
        reasons = tuple(fpga.check(a))
        learner.tell(a, Metrics(score=float("nan") if reasons else 0.3, latency_us=fpga.predict_latency(a),
                                memory_bytes=0, flops=0, params=0, feasible=not reasons, reasons=reasons))
share = [h["infeasible"] / 10 for h in learner.history]
print("infeasible share per batch: " + " ".join(f"{x:.0%}" for x in share))
assert np.mean(share[-3:]) < np.mean(share[:3])

# %% [markdown]
# ## 3 · The policy: an LSTM that writes a genome
#
# An architecture of a `SearchSpace` is a genome (chapter {doc}`01_search_space`): a
# lookback, a depth, a head, and per layer a candidate block and a skip flag. The
# controller emits these as a sequence of decisions. Each block is split in two
# decisions, the **operation** first and then its **variant** (kernel, width, dilation,
# heads, activation), so that "convolutions are good here" is one probability to learn
# rather than eighteen. The layout for the default space:

# %%
# NBVAL_CHECK_OUTPUT
space_default = SearchSpace.default(input_features=10)
layout = decision_layout(space_default)
print(f"{len(layout)} decisions: " + ", ".join(f"{d.name} ({d.size})" for d in layout[:6]) + ", ...")
controller = MnasNetStrategy(SearchProblem(space_default, fpga, 10.0, 1), seed=SEED)
n_params = sum(p.numel() for p in controller.policy.parameters())
print(f"controller: LSTM of hidden size {controller.hidden}, {n_params:,} parameters")
glue("controller_kparams", n_params / 1000, display=False)

# %% [markdown]
# At step $t$ the LSTM reads the embedding of decision $t-1$ and its hidden state, and a
# linear head of that kind of decision gives logits $z_t$; choices that cannot follow what
# was already chosen (a kernel longer than the sequence, pooling below the minimum
# length, a skip on an even kernel) get $-\infty$:
#
# $$\pi_\theta(a) = \prod_t \operatorname{softmax}\big(z_t + \log m_t\big)_{a_t},
#   \qquad m_t \in \{0, 1\}^{|\text{choices}_t|},$$
#
# so every sample is a valid architecture and $\log \pi_\theta(a)$ is the log-probability
# of the masked distribution (the one it was drawn from). Layers beyond the sampled depth
# are padding with no probability. Why an LSTM and not a factorised categorical (one
# independent distribution per decision)? The decisions interact: whether a dilated
# kernel fits depends on the lookback and on earlier pooling, and whether a wide layer is
# affordable depends on the depth. The LSTM conditions each decision on all earlier ones
# (as MnasNet and NNI's `PolicyBasedRL` do) at a small cost: {glue:text}`controller_kparams:.0f`
# thousand parameters and a few milliseconds per batch. A check: the probabilities the policy assigns to the
# architectures it sampled are those it sampled them with.

# %%
actions, archs = controller.sample(1000)
counts = pd.Series([a.to_json() for a in archs]).value_counts()
top = [hwnas.Architecture.from_json(k) for k in counts.index[:3]]
p_first = float(np.exp(controller.log_prob(archs[:1]))[0])
print(f"{counts.size} distinct architectures in 1,000 samples; the first one's probability {p_first:.2e}")
assert all(controller.actions_of(a) == row for a, row in zip(archs[:50], actions.tolist()))

# %% [markdown]
# ## 4 · Training: REINFORCE with a baseline, or PPO
#
# The controller maximises the expected reward $J(\theta) = \mathbb{E}_{a\sim\pi_\theta}[R(a)]$.
# Its gradient is $\mathbb{E}[R(a)\,\nabla_\theta \log\pi_\theta(a)]$ (REINFORCE
# {cite:p}`williams1992reinforce`), estimated
# from a batch of $B$ sampled architectures, minus a baseline $b$ that does not change the
# expectation but removes the part of the reward every sample shares:
#
# $$\widehat{\nabla J} = \frac{1}{B}\sum_{i=1}^{B} \big(R(a_i) - b\big)\,
#   \nabla_\theta \log \pi_\theta(a_i) + \beta\,\nabla_\theta \frac{1}{B}\sum_i H_i,
#   \qquad b \leftarrow \gamma\, b + (1-\gamma)\,\bar R_{\text{batch}},$$
#
# with $H_i$ the entropy of the policy along sample $i$ (a bonus $\beta$ keeps it
# exploring) and $\gamma$ the baseline's decay. MnasNet itself used PPO
# {cite:p}`schulman2017ppo`, whose clipped
# objective $\min\big(r_i A_i, \operatorname{clip}(r_i, 1-\epsilon, 1+\epsilon) A_i\big)$ with
# $r_i = \pi_\theta(a_i)/\pi_{\text{old}}(a_i)$ allows several gradient steps per batch
# without moving far; `algorithm="ppo"` offers it. At a few hundred evaluations REINFORCE
# suffices: each batch costs minutes of training, so re-using it for more steps saves
# little, and a dozen updates hardly leave the trust region PPO protects.
#
# Why the baseline matters, on a toy reward: $R = 5 + [\text{layer 1 is a convolution}]$.
# The large common part carries no information, yet without a baseline it multiplies
# every sample's gradient.

# %%
tiny_actions, tiny_archs = controller.sample(32)
toy = torch.tensor([5.0 + (a.layers[1].op == OpType.CONV) for a in tiny_archs])
params = list(controller.policy.parameters())


def gradient_rows(advantage: torch.Tensor) -> np.ndarray:
    """One gradient estimate per sample, from the strategy's own loss."""
    rows = []
    for i in range(len(advantage)):
        loss, _ = controller.loss(tiny_actions[i:i + 1], advantage[i:i + 1])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads if g is not None]).numpy())
    return np.array(rows)


var_plain = gradient_rows(toy).var(axis=0).sum()
var_base = gradient_rows(toy - toy.mean()).var(axis=0).sum()
print(f"variance of the gradient estimate: without baseline {var_plain:.3g}, "
      f"with b = mean reward {var_base:.3g} ({var_plain / var_base:.0f}x lower)")
assert var_base < var_plain
glue("baseline_variance_ratio", float(var_plain / var_base), display=False)

# %% [markdown]
# ## 5 · A search on BTCUSDT: the controller against random search
#
# A **reduced** version of the benchmark, so the chapter runs in about a minute: 8,000
# recent 15-minute candles, candidates trained on 384 windows and scored on every 8th
# validation window, lookbacks 32 and 64, depths 2 to 4, and 64 evaluations per strategy
# (the controller takes 8 updates of 8 samples, at a learning rate raised to `lr=0.05` to
# move in so few; the defaults are `batch_size=10, lr=0.02`). The benchmark below runs the
# full task. $T$ is the median latency of random architectures of the space, as in
# {doc}`07_pareto`.

# %%
data = load_klines("BTCUSDT", "15", limit=8_000)
print(data.summary())
# the operations the committed table prices (it predates the recurrent and gated ones, chapter 07)
space = SearchSpace.default(input_features=10, lookbacks=(32, 64), depths=(2, 3, 4), ops=UNGATED_OPS)
task = make_proxy_task(data.frame, lookback=64, interval=data.interval, source=data.description,
                       max_train_windows=384, eval_stride=8)
print(task.describe())
profile_file = RESULTS / "search_profile_cpu_1thread.json"
profile = HardwareProfile.load(profile_file) if profile_file.is_file() else hwnas.profile_cpu(
    space, threads=1, progress=False)
rng = np.random.default_rng(SEED)
T = float(np.median([profile.predict_latency(space.sample(rng)) for _ in range(200)]))
print(f"profile: {profile.label}; latency budget T = {T:,.0f} µs")

# %%
N, BATCH = 64, 8
started = time.perf_counter()
mnas = MnasNetStrategy(SearchProblem(space, profile, T, N), seed=SEED, batch_size=8, lr=0.05)
found = {"mnasnet": hwnas.search(space, profile, T, N, strategy=mnas, task=task, seed=SEED,
                                 batch_size=BATCH, progress=False)}
found["random"] = hwnas.search(space, profile, T, N, strategy="random", task=task, seed=SEED,
                               batch_size=BATCH, progress=False)
print(f"two searches of {N} evaluations in {time.perf_counter() - started:.0f} s")
for name, result in found.items():
    distinct = len({s.arch for s in result.history})
    best = max(mnas.problem.reward(s.metrics) for s in result.history)
    print(f"{name:>8}: hypervolume {result.hypervolume():.4f}, front of {len(result)}, best reward "
          f"{best:.4f}, {distinct} distinct architectures")

# %% [markdown]
# **Learning curves.** The batch's mean reward (solid) against the baseline (dashed): the
# controller improves while the mean reward runs above the baseline. The entropy of one
# sample's decisions (grey, right axis) falls as the policy commits.

# %% mystnb={"figure": {"caption": "The controller improves while the batch's mean reward (red) runs above the moving-average baseline $b$ (brown, dashed) that trails it, and the entropy of a sample (grey, right axis) falls as the policy commits within its 8 updates."}, "image": {"alt": "Line chart over policy updates 1 to 8 on the x axis. Left axis, reward: a red line with circles for the batch's mean reward (a dotted red line for feasible samples only is hidden under it when every sample is feasible) and a brown dashed line with squares for the baseline b, which starts at the first mean reward and climbs more slowly. Right axis, entropy of a sample in nats: a grey line that falls steeply over the first updates and then levels off."}}
ax = plots.controller_learning_curves(mnas.history)
ax.set_title("REINFORCE on BTCUSDT volatility, 1-thread CPU latency");

# %% [markdown]
# **The policy sharpening.** After each update (column), the probability of the most
# likely choice of each decision (row), along the policy's most likely path. The uniform
# policy it starts from would be dark (1/8 for an operation, 1/85 for a variant); already
# the first update moves it well above that, and the cells brighten as it commits.

# %% mystnb={"figure": {"caption": "The probability of each decision's most likely choice (rows, along the policy's most likely path) after each update (columns): the cells brighten towards 1 as the policy commits, for most decisions within a few of the 8 updates."}, "image": {"alt": "Heatmap with 15 rows, labelled lookback, depth, head, then op, variant and skip for each of layers 1 to 4, and 8 columns for policy updates 1 to 8; the colour is the probability of the most likely choice on a viridis scale from 0 (dark purple) to 1 (yellow). The first column is mostly blue and green, and from about the fourth update most rows are yellow, the variant and skip rows a little less bright."}}
top_p = np.array([h["top_probability"] for h in mnas.history]).T
ax = plots.decision_heatmap(top_p, [d.name for d in mnas.layout],
                            column_labels=[h["update"] for h in mnas.history],
                            colorbar_label="probability of the most likely choice")
ax.set_title("per-decision probabilities over updates");

# %%
_, (mode,) = mnas.sample(1, greedy=True)
print("the controller's most likely architecture now:")
print(mode.describe())
print(f"predicted latency {profile.predict_latency(mode):,.0f} µs (T = {T:,.0f} µs)")

# %% [markdown]
# **The fronts.** Score up, latency down; every evaluated candidate faint, the front bold.

# %% mystnb={"figure": {"caption": "The controller's front (red) against random search's (grey) after 64 evaluations each on the reduced task, every evaluated candidate drawn faintly: one seed of a short run, so the difference is mostly which candidates each search happened to draw; the benchmark below answers with 5 seeds."}, "image": {"alt": "Scatter plot of validation score (y) against predicted latency in µs (x, log scale). Faint red and grey dots are every feasible candidate of the MnasNet controller and of random search; bold dots joined by step lines are each one's Pareto front, red for mnasnet and grey for random, with the number of front members in the legend; a dashed grey vertical line marks the budget T."}}
fronts = {name: [(m.latency_us, m.score) for _, m in result] for name, result in found.items()}
clouds = {name: [(s.metrics.latency_us, s.metrics.score) for s in result.history
                 if s.metrics.feasible and np.isfinite(s.metrics.score)] for name, result in found.items()}
ax = plots.fronts_by_strategy(fronts, clouds=clouds, budget=T)
ax.set_title(f"{N} evaluations each, reduced task");

# %% [markdown]
# Two things to read here. The controller's count of distinct architectures is below its
# evaluations: at this learning rate its policy commits within a few updates and samples
# some architectures again (the store serves the repeats at no cost, but they add nothing
# to the front), the exploration it gives up for a fast start. And one reduced run of
# one seed says little: the difference between two searches of 64 evaluations is mostly
# which candidates each happened to draw. The benchmark answers the
# question with the full task, 300 evaluations and 5 seeds per strategy.
#
# (ch08-benchmark)=
# ## 6 · The benchmark: mnasnet, random and evolution at equal budgets
#
# `benchmarks/bench_mnasnet.py` runs `mnasnet` with its defaults (`batch_size=10`, Adam at
# `lr=0.02`, entropy bonus $10^{-3}$, baseline decay $\gamma = 0.8$), `random` and `evolution` (aging
# evolution of {doc}`07_pareto`) at equal budgets and seeds, on the recorded BTCUSDT
# 15-minute candles under the 1-thread CPU profile, and records hypervolume and the best
# feasible reward after every evaluation. The full run (the whole proxy task, 300
# evaluations, 5 seeds) shares its evaluation store with `benchmarks/bench_search.py`, so
# an architecture any strategy trained is not trained again; it is what is shown below
# when its output is committed, and otherwise its `--reduced` version (this chapter's
# task and space), which the printout names.

# %%
def load_bench(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


full_bench, reduced_bench = load_bench("mnasnet"), load_bench("mnasnet_reduced")
bench = full_bench if "hypervolume" in full_bench else reduced_bench
if "hypervolume" in bench:
    hv = bench["hypervolume"]["strategies"]
    best = bench["best_reward"]
    table = pd.DataFrame({name: {"runs": e["runs"], "HV mean": e["final_mean"], "HV std": e["final_std"],
                                 "x random": e.get("ratio_to_random"),
                                 "best reward mean": best[name]["final_mean"],
                                 "best reward std": best[name]["final_std"]}
                          for name, e in hv.items()}).T
    settings = bench["settings"]
    print(f"{'REDUCED task' if settings.get('reduced') else 'full task'}: {settings['evals']} evaluations "
          f"per run, T = {settings['budget_us']} µs, {settings['profile']}; data: {settings.get('data')}")
    display(table)
else:
    print("no benchmark output in benchmarks/results: run benchmarks/bench_mnasnet.py")
cost = (full_bench or reduced_bench).get("controller_cost")
if cost:
    print(f"controller cost per sampled architecture (full space): median {cost['median_ms']:.1f} ms wall, "
          f"{cost.get('median_cpu_ms', float('nan')):.1f} ms CPU (load average {cost['load_average'][0]:.1f})")

# %% [markdown]
# The table answers "does the controller beat random search here?", and the spread over
# seeds says whether a difference is larger than the luck of a seed. The cell below puts
# the two together: the difference of the mean final hypervolumes against its standard
# error over seeds.

# %%
compare = {}
if "hypervolume" in bench:
    for other in ("random", "evolution"):
        a_runs, b_runs = np.array(hv["mnasnet"]["finals"]), np.array(hv[other]["finals"]) if other in hv else []
        if len(a_runs) < 2 or len(b_runs) < 2:
            print(f"mnasnet against {other}: fewer than 2 seeds each, no verdict")
            continue
        diff = a_runs.mean() - b_runs.mean()
        se = np.sqrt(a_runs.var(ddof=1) / len(a_runs) + b_runs.var(ddof=1) / len(b_runs))
        verdict = ("better" if diff > 2 * se else "worse" if diff < -2 * se
                   else "not distinguishable (within 2 standard errors)")
        print(f"mnasnet against {other}: final HV {a_runs.mean():.4f} vs {b_runs.mean():.4f} "
              f"({a_runs.mean() / b_runs.mean():.3f}x), difference {diff:+.4f} +/- {se:.4f} "
              f"over {len(a_runs)} and {len(b_runs)} seeds: {verdict}")
        compare[other] = (float(a_runs.mean() / b_runs.mean()), float(diff / se), verdict)
    none = (float("nan"), float("nan"), "no verdict (fewer than 2 seeds)")
    glue("hv_ratio_random", compare.get("random", none)[0], display=False)
    glue("hv_se_random", compare.get("random", none)[1], display=False)
    glue("hv_verdict_random", compare.get("random", none)[2], display=False)
    glue("hv_ratio_evolution", compare.get("evolution", none)[0], display=False)
    glue("hv_se_evolution", compare.get("evolution", none)[1], display=False)
    glue("hv_verdict_evolution", compare.get("evolution", none)[2], display=False)
    glue("best_reward_mnasnet", float(best["mnasnet"]["final_mean"]), display=False)
    glue("best_reward_random", float(best["random"]["final_mean"]), display=False)
    glue("best_reward_evolution", float(best.get("evolution", {}).get("final_mean", float("nan"))),
         display=False)
    glue("bench_task", ("the REDUCED task" if settings.get("reduced") else "the full proxy task")
         + f", {settings['evals']} evaluations x {settings.get('seeds', len(hv['mnasnet']['finals']))} seeds, "
         + f"load average {settings.get('load_average_start', ['?'])[0]:.1f} at its start", display=False)
    runs = bench.get("mnasnet_runs", [])
    if runs:
        print("mnasnet distinct architectures per run: "
              + ", ".join(f"{r['distinct']} of {r['evaluations']}" for r in runs))

# %% [markdown]
# In the committed benchmark ({glue:text}`bench_task`) the controller's final hypervolume
# is {glue:text}`hv_ratio_random:.3f` times random search's, a difference of
# {glue:text}`hv_se_random:.1f` standard errors: {glue:text}`hv_verdict_random`; against
# evolution the ratio is {glue:text}`hv_ratio_evolution:.3f`, {glue:text}`hv_se_evolution:.1f`
# standard errors: {glue:text}`hv_verdict_evolution`. Its mean *best reward* is
# {glue:text}`best_reward_mnasnet:.4f`, against random search's
# {glue:text}`best_reward_random:.4f` and evolution's {glue:text}`best_reward_evolution:.4f`;
# compare the gaps with the seeds' spread in the table. Where the front gains more than
# the best reward,
# the soft reward pulls the policy towards a region of cheap, good-enough models
# and fills the front there, rather than finding a single better model. Read the verdict
# with the count of distinct architectures: a controller whose policy has collapsed
# spends the rest of its budget on repeats, which the store serves for free but which
# add nothing to the front. Real et al. found aging evolution as good as RL on
# image spaces with thousands of models; at a few hundred evaluations a policy needs
# batches of samples before it learns anything, Adam moves it by about the learning rate
# per update whatever the size of the reward differences, and those differences are
# close to the proxy's seed noise: a fast start and an early collapse come together. A
# larger entropy bonus, a lower learning rate or larger batches trade one for the other
# (exercise 4).
#
# ## Summary
#
# - MnasNet's reward $\mathrm{ACC}\cdot[\mathrm{LAT}/T]^{-0.07}$ prices latency softly; the
#   hard form only punishes overshooting $T$; a memory budget adds $[\mathrm{MEM}/M]^{w_2}$.
# - For trading, ACC is the volatility forecast's validation correlation (direction and
#   Sharpe ratio rank seeds, not architectures: chapter 06's ICC), LAT comes from the
#   target's latency table, and the space is restricted to what the target can run; what it
#   still rejects gets a fixed reward of $-1$ and is never trained.
# - The controller is an LSTM writing the genome decision by decision, with impossible
#   choices masked, so every sample is valid and its probability exact.
# - REINFORCE with a moving-average baseline and an entropy bonus trains it; the baseline
#   removes the variance that the part of the reward all samples share adds to the
#   gradient ({glue:text}`baseline_variance_ratio:.0f` times on the toy reward); PPO's clipped objective is an option.
# - Whether it beats random search and evolution is a measured question, answered with the
#   spread over seeds in the benchmark table.
#
# Next, {doc}`09_efficientnet_scaling` scales one good architecture instead of searching
# many, and {doc}`10_fbnet` makes the search differentiable.

# %% [markdown]
# ## Exercises
#
# **1.** Under the soft constraint with $w = -0.07$, how much validation correlation must a
# model that is 3 times faster than another give up to lose no reward? And under $w=-0.5$?
#
# :::{dropdown} Solution
# Equal reward means $\mathrm{ACC}_1 (1/3)^{w} = \mathrm{ACC}_2$, so the faster model may
# have $3^{w}$ times the accuracy: $3^{-0.07} = 0.926$ ($1 - 0.926 = 0.074$ less) and
# $3^{-0.5} = 0.577$ ($0.423$ less). The cell below checks it with `mnas_reward`.
# :::

# %% tags=["hide-cell"]
for w in (-0.07, -0.5):
    slower = mnas_reward(0.3, 3.0, 1.0, w=w)
    faster = mnas_reward(0.3 * 3 ** w, 1.0, 1.0, w=w)
    print(f"w = {w}: the faster model may have {3 ** w:.3f}x the accuracy (rewards {slower:.4f} = {faster:.4f})")

# %% [markdown]
# **2.** The baseline is the mean of earlier batches' rewards. Why would using the mean of
# the *current* batch (including sample $i$'s own reward) bias the gradient, and how large
# is the bias for a batch of $B$?
#
# :::{dropdown} Solution
# With $b = \frac{1}{B}\sum_j R_j$ the term $-\frac{1}{B} R_i \nabla\log\pi(a_i)$ depends on
# the sample's own action, and $\mathbb{E}[R_i\nabla\log\pi(a_i)] = \nabla J \ne 0$: the
# estimate becomes $(1 - 1/B)\nabla J$, shrunk by $1/B$ ($0.1$ at $B = 10$). The direction is
# unchanged, so it slows learning rather than misleading it; a leave-one-out mean
# $b_i = \frac{1}{B-1}\sum_{j\ne i} R_j$ removes the bias. `MnasNetStrategy` uses the
# batch mean only for the first batch, when there is nothing earlier.
# :::
#
# **3.** Run the reduced search of section 5 again with `constraint="hard"` (pass it to
# `hwnas.search` and to the strategy's `SearchProblem`). What happens to the latency of the
# controller's most likely architecture, and why?
#
# :::{dropdown} Solution
# Under the hard constraint every architecture within $T$ gets its plain accuracy, so the
# controller has no reason to prefer faster ones among them: its mode drifts towards the
# most accurate blocks that still fit, usually closer to $T$ than under the soft
# constraint, which keeps paying $1 - 0.9^{0.07} \approx 0.007$ of reward for a model that
# takes $0.9$ of the time. Above $T$
# the reward falls as $T/\mathrm{LAT}$, so slow samples are pushed back hard.
# :::
#
# **4.** The controller's policy can collapse onto a few architectures within 20 updates.
# Which of the strategy's options would you change to keep it exploring longer, and how
# would you check that the change helped rather than hurt?
#
# :::{dropdown} Solution
# Raise `entropy` (the bonus pulls each decision's distribution back towards uniform), lower
# `lr` (Adam's steps are about `lr` per update whatever the reward differences), or raise
# `batch_size` (fewer, less noisy updates). Count distinct architectures per run and watch
# the entropy curve; then compare the final hypervolume and best reward over at least 5
# seeds with `benchmarks/bench_mnasnet.py`, at the same budget, against the defaults. A
# change whose mean difference is within two standard errors has not been shown to help.
# :::
