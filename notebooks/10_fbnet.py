# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · FBNet: differentiable search with a Gumbel-softmax supernet
#
# The searches of {doc}`07_pareto` and {doc}`08_mnasnet_rl` train every candidate they
# look at. FBNet {cite}`wu2019fbnet` trains *one* network instead: a **supernet** that
# holds every candidate block of every layer, with architecture logits $\theta$ that
# choose between them. A Gumbel-softmax sample of $\theta$ {cite}`jang2017gumbel` makes
# the discrete choice differentiable, the latency lookup table of {doc}`04_latency_lut`
# makes the *expected* latency a differentiable function of $\theta$, and ordinary
# gradient descent then trades accuracy against latency. At the end, the most likely
# block of each layer is the architecture.
#
# **You will learn**
#
# - how the Gumbel-softmax trick turns a categorical choice into a differentiable
#   weight, and how its temperature $\tau$ moves it from a soft mixture to a hard pick;
# - the expected latency $\mathbb{E}[\text{LAT}]$ of the reference chapter (§2.1–2.2),
#   and how to compute it exactly when a layer's input width depends on earlier choices;
# - FBNet's loss $\text{CE}\cdot\alpha(\log\text{LAT})^\beta$ against the additive form
#   $\text{task} + \lambda\,\mathbb{E}[\text{LAT}]/T$, and which one our searches use;
# - how `hwnas.search(..., strategy="fbnet")` trains supernets, derives architectures
#   and hands them to the same loop and store as every other strategy, and how its
#   front compares with random search.
#
# **Prerequisites**: {doc}`04_latency_lut` (lookup tables), {doc}`06_bybit_data` (the
# proxy task), {doc}`07_pareto` (fronts, hypervolume, the search loop).

# %%
import random
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from myst_nb import glue

import hwnas
from hwnas import plots
from hwnas.architecture import Activation, HeadType, OpType
from hwnas.latency import TimingSpec, candidate_latencies, expected_latency
from hwnas.proxy import make_proxy_task
from hwnas.search import SearchProblem
from hwnas.search.fbnet import FBNet, FBNetConfig, expected_cost, supernet_loss, temperature_schedule
from hwnas.search.supernet import gumbel_softmax, supernet_spec
from hwnas.space import SearchSpace

SEED = 2024
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
CHAPTER_START = time.perf_counter()

# %% [markdown]
# ## Data, a reduced space, and its measured latency table
#
# To run in well under two minutes on two cores, this chapter uses a **reduced** task
# and space: lookback 32, 1,024 training windows, and a space of 12 blocks per layer
# (convolutions and depthwise-separable convolutions with kernels 3 and 5, per-step
# fully connected layers, one attention block and the identity, widths 16 and 32, up to
# 4 layers). Its latency profile is a **measured** 1-thread CPU table of this machine,
# built with a short harness (2 passes, 16 calibration models), so it is noisier than
# the full table of {doc}`04_latency_lut`. `benchmarks/bench_fbnet.py` runs the default
# FBNet search on the full default space and task.

# %%
data = hwnas.load_klines("BTCUSDT", "15")
print(data)
task = make_proxy_task(data.frame, lookback=32, interval=data.interval, source=data.description,
                       max_train_windows=1024)
print(task.describe())
space = SearchSpace(
    name="fbnet-small", input_features=task.num_features, lookbacks=(32,), depths=(1, 2, 3, 4),
    ops=(OpType.CONV, OpType.DWSEP_CONV, OpType.FC, OpType.IDENTITY, OpType.ATTENTION),
    kernel_sizes=(3, 5), dilations=(), widths=(16, 32), heads=(2,), activations=(Activation.RELU,),
    skip_choices=(False,), head_types=(HeadType.GAP,), stem_width=16)
print(space.summary())
profile = hwnas.profile_cpu(space, threads=1, progress=False, calibration=16,
                            timing=TimingSpec.QUICK.replace(target_ms=4.0))
print(profile.label, f"{len(profile.latency_table)} table entries")

# %% [markdown]
# ## Gumbel-softmax: a differentiable categorical choice
#
# A layer picks block $j$ with probability $\text{softmax}(\theta)_j$. Sampling that
# choice has no gradient. The Gumbel-max trick writes the sample as
# $\arg\max_j(\theta_j + g_j)$ with $g_j = -\log(-\log u_j)$, $u_j \sim U(0,1)$;
# replacing the argmax by a softmax at temperature $\tau$ gives weights
#
# $$m_j = \frac{\exp\big((\theta_j + g_j)/\tau\big)}{\sum_k \exp\big((\theta_k + g_k)/\tau\big)},$$
#
# differentiable in $\theta$. As $\tau \to 0$ they approach the one-hot sample; at large
# $\tau$ they are nearly uniform. The layer's output is $\sum_j m_j\,\text{block}_j(x)$.
# `hwnas.search.supernet.gumbel_softmax` draws $g$ from a private generator (a search
# must not touch the global random state); with the same draws it equals
# `torch.nn.functional.gumbel_softmax`:

# %%
# NBVAL_CHECK_OUTPUT
logits = torch.tensor([[1.0, 0.0, -1.0, 0.5]])
torch.manual_seed(7)
theirs = F.gumbel_softmax(logits, tau=0.5)
ours = gumbel_softmax(logits, 0.5, generator=torch.Generator().manual_seed(7))
assert torch.allclose(ours, theirs)
print("ours == torch.nn.functional.gumbel_softmax:", bool(torch.allclose(ours, theirs)))
for tau in (5.0, 1.0, 0.1):
    m = gumbel_softmax(logits, tau, generator=torch.Generator().manual_seed(7))
    print(f"tau {tau:>4}: weights {np.round(m.numpy()[0].astype(float), 3).tolist()}")

# %% [markdown]
# The same draws at falling temperature: the weights go from nearly uniform to nearly
# one-hot on the same block. With `hard=True` the forward pass uses the one-hot of the
# sample and the backward pass the soft weights' gradient (straight-through). The
# supernet's default `mode="hard"` uses that to run only the sampled block of each
# layer (as GDAS does): FBNet's soft mixture computes every block at every step, which
# for the {glue:text}`supernet_blocks` blocks per layer of this chapter's space costs about
# as many networks per step on a CPU.
# `mode="soft"` is FBNet's own mixture.
#
# (ch10-expected-latency)=
# ## The supernet and its expected latency
#
# Layer $i$ of the supernet holds every block of the space that keeps the sequence
# length (pooling halves it, so its output could not be added to the others': pooling
# is left out), the identity included, so a supernet of $\max(\text{depths})$ layers
# also searches depth. Blocks of different output widths are mixed as FBNetV2 masks
# channels: every block reads the widest width and its output is zero-padded to it.
# Lookback, head and skip connections are fixed per run (sweep them by running again).

# %%
spec = supernet_spec(space, profile, 32)
print(f"{len(spec.indices)} blocks per layer x {spec.depth} layers; widths {list(spec.widths)}; "
      f"left out: {spec.excluded or 'none'}")
print("blocks:", ", ".join(spec.labels))
glue("supernet_blocks", len(spec.indices), display=False)

# %% [markdown]
# The reference chapter (§2.2) predicts the latency of an architecture by summing its
# table entries, $\text{LAT}(a) = \sum_i \text{LUT}(o_i, d_i)$, and for the soft choice
# of §2.1 takes the expectation
#
# $$\mathbb{E}[\text{LAT}(a)] = \sum_{i=1}^{L} \sum_{j=1}^{|\mathcal{O}|} \frac{\exp(\alpha_{i,j})}{\sum_k \exp(\alpha_{i,k})} \cdot \text{LUT}(o_j, d_i).$$
#
# That formula needs $d_i$, the input dimensions of layer $i$, to be the same whatever
# was chosen before (FBNet's fixed macro-architecture). Here they are not: a block of
# width 32 feeds the next layer 32 channels, and the identity passes on whatever it
# received. The expectation stays exact if we carry the distribution $p_i(s)$ of the
# width entering layer $i$ along the chain:
#
# $$\mathbb{E}[\text{LAT}] = \text{LUT}_\text{stem} + \text{overhead} + \sum_{i} \sum_{s} p_i(s) \sum_j q_{ij}\, \text{LUT}(o_j, (s, L)) + \sum_s p_{D}(s)\,\text{LUT}_\text{head}(s),$$
#
# $$p_{i+1}(s') = \sum_j q_{ij} \sum_s p_i(s)\,[\,\text{block } j \text{ turns width } s \text{ into } s'\,], \qquad q_i = \text{softmax}(\theta_i).$$
#
# It is linear in each $q_i$, so differentiable, and for a one-hot $\theta$ it is the
# table sum of the derived architecture, i.e. `profile.predict_latency`. Check both: for
# one-hot choices it equals the profile's prediction; in a space of one width it equals
# the reference formula as `hwnas.latency.expected_latency` computes it.

# %%
rng = np.random.default_rng(SEED)
n_blocks = len(spec.indices)
gaps = []
for _ in range(50):
    choices = rng.integers(n_blocks, size=spec.depth)
    one_hot = F.one_hot(torch.as_tensor(choices), n_blocks).double()
    arch = spec.derive(choices.tolist())
    gaps.append(abs(float(expected_cost(spec, one_hot)) - profile.predict_latency(arch)))
assert max(gaps) < 1e-9
print(f"one-hot theta: E[LAT] = predict_latency(derived) for 50 random choices (largest gap {max(gaps):.1e} µs)")

one_width = replace(space, name="one-width", widths=(16,))
flat = supernet_spec(one_width, profile, 32)
theta = torch.randn(flat.depth, len(flat.indices), generator=torch.Generator().manual_seed(1)).double()
reference = expected_latency(theta, candidate_latencies(profile, one_width, flat.depth, 32))
ours = expected_cost(flat, torch.softmax(theta, -1)) - flat.fixed_us - float(flat.head_lut[0])
assert abs(float(ours) - float(reference)) < 1e-9
print(f"one width: chain {float(ours):.2f} µs = reference formula {float(reference):.2f} µs (layers only)")

# %% [markdown]
# ## The latency loss
#
# FBNet's loss is $\mathcal{L}(a, w) = \text{CE}(a, w)\cdot\alpha\,(\log \text{LAT}(a))^\beta$
# with $\alpha = 0.2$, $\beta = 0.6$. The logarithm needs a unit: in µs, every model
# here has $\log\text{LAT} > 0$ (their latencies are tens to thousands of µs); in ms,
# FBNet's unit, a sub-millisecond model has $\log\text{LAT} < 0$ and the power is
# undefined. Our task loss is not a cross-entropy but the mean squared error of
# standardised log volatility; it is positive too, so the product is still a loss, but
# two things follow. The latency pressure is proportional to the task loss, so it fades
# as the fit improves; and $\alpha$ is a common factor that Adam's per-parameter
# normalisation removes, so only $\beta$ prices latency. The additive form of
# ProxylessNAS {cite}`cai2019proxylessnas`, $\text{task} + \lambda\,\mathbb{E}[\text{LAT}]/T$,
# prices latency per budget's worth $T$ independently of the task loss's scale. The
# searches use it by default and sweep $\lambda$; `loss="fbnet"` selects the paper's
# form (sweeping $\beta$). A memory term $\mu\,\mathbb{E}[\text{parameter bytes}]/M$ can
# be added to either (parameters are the additive part of the footprint; the activation
# peak of {doc}`03_memory` is a maximum, left to the feasibility check).

# %%
# NBVAL_CHECK_OUTPUT
mse, lat = torch.tensor(0.8, dtype=torch.float64), torch.tensor(400.0, dtype=torch.float64)
fbnet_total, _ = supernet_loss(mse, lat, FBNetConfig(loss="fbnet", latency_weight=0.6), 500.0)
additive_total, _ = supernet_loss(mse, lat, FBNetConfig(latency_weight=0.5), 500.0)
assert abs(float(fbnet_total) - 0.8 * 0.2 * np.log(400.0) ** 0.6) < 1e-12
assert abs(float(additive_total) - (0.8 + 0.5 * 400.0 / 500.0)) < 1e-12
print(f"FBNet: 0.8 x 0.2 x log(400 µs)^0.6 = {float(fbnet_total):.4f}")
print(f"additive: 0.8 + 0.5 x 400/500 = {float(additive_total):.4f}")
print(f"FBNet form, 10x the latency costs x{(np.log(4000.0) / np.log(400.0)) ** 0.6:.3f} of the loss")
glue("fbnet_tenfold_extra", float((np.log(4000.0) / np.log(400.0)) ** 0.6 - 1), display=False)

# %% [markdown]
# The last line is worth a pause: in the paper's form a model ten times slower pays only
# {glue:text}`fbnet_tenfold_extra:.1%` more loss. Architectures of our space differ in validation MSE by a few percent,
# so that is a strong pull towards the fastest blocks.
#
# ## Training: alternating weights and $\theta$, annealing the temperature
#
# `train_supernets` follows FBNet's recipe, shortened: the weights train on the first
# four fifths of the training windows and $\theta$ on the last fifth (later in time, as the
# validation period is; the validation windows stay untouched for scoring), one epoch
# of each in turn after a weights-only warm-up; $\theta$ with Adam (weight decay
# $5\cdot 10^{-4}$). The temperature falls exponentially from $\tau_0 = 5$: FBNet
# multiplies it by $e^{-0.045}$ per epoch over 90 epochs; over our 8 epochs the rate is
# chosen to reach $\tau = 0.2$ at the end. One more change for a short run: FBNet's
# $\theta$ learning rate of $10^{-2}$ (the library's default) moves $\theta$ by about
# $10^{-2}$ per step, and we take about a hundred steps, not thousands, so this chapter
# uses $5\cdot 10^{-2}$.

# %%
# NBVAL_CHECK_OUTPUT
config = dict(epochs=8, warmup_epochs=2, tau0=5.0, tau_final=0.2, theta_lr=0.05, max_windows=1024)
taus = temperature_schedule(5.0, 0.2, 8)
print("temperatures:", [round(t, 3) for t in taus])
print(f"decay per epoch: exp(-{np.log(5.0 / 0.2) / 7:.3f}) (FBNet: exp(-0.045) over 90 epochs)")

# %% [markdown]
# The FBNet strategy trains one supernet per latency weight (they share the warm-up,
# which does not depend on it), derives the argmax architecture of each and one more
# drawn from $\text{softmax}(\theta)$, and hands them to `hwnas.search`, which retrains
# each from scratch with the proxy recipe, scores it on validation and stores it, as it
# does for every strategy. The budget $T$ is the median table latency of the space.

# %%
budget = float(np.median([profile.predict_latency(space.sample(np.random.default_rng(i))) for i in range(100)]))
weights = (0.0, 0.05, 1.0)
problem = SearchProblem(space, profile, budget, 20, task=task)
fbnet = FBNet(problem, seed=SEED, latency_weights=weights, samples=1, **config)
start = time.perf_counter()
fbnet_result = hwnas.search(space, profile, budget, 20, strategy=fbnet, task=task, seed=SEED, progress=False)
fbnet_seconds = time.perf_counter() - start
print(f"budget T = {budget:.0f} µs; FBNet: {len(fbnet.runs)} supernets and {len(fbnet_result.history)} "
      f"retrained architectures in {fbnet_seconds:.0f} s")

# %%
rows = []
for run in fbnet.runs:
    first, last = run.history[0], run.history[-1]
    rows.append((run.config.latency_weight, first["expected_latency_us"], last["expected_latency_us"],
                 float(np.max(run.probs(), axis=1).mean()), run.seconds))
print(f"{'lambda':>7} {'E[LAT] start':>13} {'E[LAT] end':>11} {'mean max prob':>14} {'seconds':>8}")
for lam, e0, e1, sharp, secs in rows:
    print(f"{lam:>7.2f} {e0:>13.1f} {e1:>11.1f} {sharp:>14.3f} {secs:>8.1f}")
assert rows[-1][2] < rows[0][2]  # a latency price lowers the expected latency

# %% [markdown]
# Without a latency price ($\lambda = 0$) the expected latency barely moves; with one it
# falls as $\theta$ shifts weight to cheap blocks. The heatmap shows one layer's
# distribution sharpening over the epochs for the largest $\lambda$ (the warm-up epochs
# keep it uniform), beside the temperature and the expected latency:

# %% mystnb={"figure": {"caption": "Left: layer 1's distribution $\\operatorname{softmax}(\\theta)$ over the 12 candidate blocks for the largest latency weight ($\\lambda = 1$) stays uniform through the two warm-up epochs and then concentrates on cheap blocks. Right: the temperature $\\tau$ falls exponentially from $5$ to $0.2$ over the 8 epochs while the expected latency $\\mathbb{E}[\\text{LAT}]$ drops."}, "image": {"alt": "Two panels. Left: a heatmap with the 12 candidate blocks of layer 1 as rows (conv and dwsep_conv with kernels 3 and 5, fc, each at widths 16 and 32, then identity and attention) and epochs 0 to 7 as columns, coloured by probability on a viridis scale; the first two columns are uniformly dark, later columns brighten in a few rows, and one row is bright yellow by the last epoch. Right: temperature τ per epoch on a log left axis, a purple line with circles falling straight from 5 to 0.2, and the expected latency in µs on the right axis, an orange line with squares that falls after the warm-up."}}
run = fbnet.runs[-1]
layer = 0
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
plots.theta_sharpening([row["probs"][layer] for row in run.history], run.spec.labels,
                       title=f"layer {layer + 1}, lambda = {run.config.latency_weight}", ax=left)
plots.temperature_and_latency([row["tau"] for row in run.history],
                              [row["expected_latency_us"] for row in run.history], ax=right);

# %% [markdown]
# ## What the derived architectures are worth
#
# Each derived architecture's predicted latency is checked against the budget and it
# is retrained from scratch, so its score is comparable with any other strategy's. It
# keeps its identity layers (depth $\max(\text{depths})$): the table times them, so its
# prediction is exactly the one-hot expected latency; the number of non-identity layers
# is its effective depth. As
# a baseline, random search runs on the same space for about the same wall time.

# %%
for step in fbnet_result.history:
    origin = fbnet.origins[step.arch.to_json()]
    depth = sum(layer.op != OpType.IDENTITY for layer in step.arch.layers[1:])
    print(f"lambda {origin['latency_weight']:<5} {origin['how']:<7} {depth} non-identity layers, "
          f"LUT {step.metrics.latency_us:7.1f} µs (within budget: {origin['within_budget']!s:<5}) "
          f"val score {step.metrics.score:.3f}")
per_eval = float(np.median([s.metrics.seconds for s in fbnet_result.history]))
start = time.perf_counter()
random_evals = min(60, max(6, int(fbnet_seconds / max(per_eval, 0.1))))  # about FBNet's wall time
random_result = hwnas.search(space, profile, budget, random_evals, strategy="random", task=task, seed=SEED,
                             progress=False)
random_seconds = time.perf_counter() - start
print(f"random: {len(random_result.history)} evaluations in {random_seconds:.0f} s (FBNet: {fbnet_seconds:.0f} s)")
hv = {"fbnet": fbnet_result.hypervolume(), "random": random_result.hypervolume()}
print("hypervolume (-score, LAT/T), reference (0, 1): " + ", ".join(f"{k} {v:.3f}" for k, v in hv.items()))

# %% mystnb={"figure": {"caption": "FBNet's argmax architectures (stars, labelled by $\\lambda$) move to cheaper latencies as the latency weight grows, the mechanism this one-seed run can show; whether FBNet's front (orange) beats random search's (grey) at equal wall time is a question for the benchmark."}, "image": {"alt": "Scatter plot of validation score (Pearson, y) against LUT latency in µs (x, log scale). Faint grey dots are random search's evaluations and faint orange dots FBNet's retrained architectures; a grey and an orange step line trace each one's front; three large orange stars with black edges, labelled λ=0.0, λ=0.05 and λ=1.0, lie at decreasing latencies from right to left; a black dotted vertical line marks the budget T."}}
evaluated = {name: ([s.metrics.latency_us for s in r.history], [s.metrics.score for s in r.history])
             for name, r in (("random", random_result), ("fbnet", fbnet_result))}
derived = [(s.metrics.latency_us, s.metrics.score,
            f"λ={fbnet.origins[s.arch.to_json()]['latency_weight']}")
           for s in fbnet_result.history if fbnet.origins[s.arch.to_json()]["how"] == "argmax"]
plots.fbnet_front(evaluated, derived, budget_us=budget);

# %% [markdown]
# Read the figure with the noise of {doc}`06_bybit_data` in mind: one proxy score has a
# seed spread of a few hundredths, and this is one seed on a reduced task, with random
# search given about FBNet's wall time (its supernet training included; at most 60
# evaluations). What the chapter can show is the mechanism: a
# latency price moves the argmax to cheaper architectures. Whether FBNet's front beats
# random search at equal wall time is a question for `benchmarks/bench_fbnet.py`, which
# runs the default space and task over several seeds and reports the hypervolumes side
# by side, with evolution too. In a two-minute CPU run the supernet's weights are
# trained for a few epochs on paths drawn from $10^4$ (here) to $10^{11}$ (the default
# space) architectures, so its task signal for $\theta$ is weak and the latency term
# does most of the steering: FBNet's promise, a search at the cost of one training,
# depends on that one training being long enough to rank blocks.

# %%
print(f"chapter ran in {time.perf_counter() - CHAPTER_START:.0f} s")

# %% [markdown]
# ## Summary
#
# - A supernet holds every block of every layer; Gumbel-softmax weights of the logits
#   $\theta$ mix them, differentiably, and annealing $\tau$ from $5$ towards $0.2$ moves the
#   mixture towards a single pick.
# - The expected latency is the reference chapter's softmax-weighted table sum; when a
#   layer's input width depends on earlier choices it stays exact by carrying the width
#   distribution along the layers, and for one-hot $\theta$ it is the table prediction of
#   the derived architecture.
# - FBNet's multiplicative loss needs latency in µs to keep $\log\text{LAT} > 0$, scales
#   the latency price with the task loss and loses $\alpha$ to Adam; the additive
#   $\text{task} + \lambda\,\mathbb{E}[\text{LAT}]/T$ is the default, and a sweep of
#   $\lambda$ gives architectures along the front.
# - The derived architectures are retrained and scored by the same loop, store and
#   metrics as every other strategy, so the comparison is fair; on a short CPU budget
#   the supernet's task signal is weak, and the benchmark says how it compares.
#
# ## Exercises
#
# **1.** Show that the Gumbel-max trick samples from $\text{softmax}(\theta)$: draw
# 20,000 argmax samples of $\theta + g$ for $\theta = (1, 0, -1)$ and compare the
# frequencies with the softmax.
#
# :::{dropdown} Solution
# $P(\arg\max_j(\theta_j + g_j) = k) = \exp(\theta_k)/\sum_j \exp(\theta_j)$ for
# independent standard Gumbel $g_j$: the cell below draws the samples with a seeded
# generator and the frequencies agree with the softmax to about $\pm 0.01$ (the
# binomial standard error at 20,000 draws is below $\sqrt{0.25/20000} < 0.004$).
# :::

# %% tags=["hide-cell"]
theta3 = torch.tensor([1.0, 0.0, -1.0])
g = torch.Generator().manual_seed(0)
picks = torch.stack([gumbel_softmax(theta3, 1.0, generator=g, hard=True) for _ in range(20_000)]).mean(0)
assert torch.allclose(picks, torch.softmax(theta3, -1), atol=0.015)
print("frequencies", np.round(picks.double().numpy(), 3).tolist(),
      "softmax", np.round(torch.softmax(theta3.double(), -1).numpy(), 3).tolist())

# %% [markdown]
# **2.** Why does FBNet's $\alpha$ not matter when $\theta$ is trained with Adam, and
# what would change with plain SGD?
#
# :::{dropdown} Solution
# $\alpha$ multiplies the whole loss, so it multiplies every gradient by the same
# factor. Adam divides each step by a running root-mean-square of that parameter's
# gradients, in which the factor cancels (up to the small $\epsilon$ in the
# denominator): the steps are the same. With SGD the step is proportional to the
# gradient, so $\alpha$ acts as a learning rate. In either case the trade-off between
# accuracy and latency is set by $\beta$ alone.
# :::
#
# **3.** In the default space a block's input width is 16, 32 or 64. Write the width
# distribution $p_2$ entering layer 2 when layer 1 picks "fc w32" with probability $0.5$,
# "identity" with $0.3$ and "conv k3 w64" with $0.2$, and the stem gives 32 channels.
#
# :::{dropdown} Solution
# The identity keeps the stem's 32, so $p_2(32) = 0.5 + 0.3 = 0.8$, $p_2(64) = 0.2$,
# $p_2(16) = 0$. Layer 2's expected latency is then $0.8$ times its table row at width
# 32 plus $0.2$ times its row at width 64, each weighted by $q_2$; that is what
# `chain_expected_latency` computes, layer after layer.
# :::
