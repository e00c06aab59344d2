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
# # 01 · A search space for trading models
#
# Before a search can look for a good architecture it needs a precise answer to
# *which architectures exist*. This chapter builds that answer for models that read a
# window of market bars and predict the next move: the operations a layer may use,
# how a network is written down and validated, how large the resulting space is, how
# a hardware target shrinks it, and how to draw, change and run its members.
#
# **You will learn**
#
# - why a search for trading models is a *constrained* problem, and what the
#   constraint looks like;
# - the seven operations of the course (1-D convolution, depthwise separable and
#   dilated convolution, a per-step fully connected layer, multi-head self-attention,
#   identity and pooling) and how much of the lookback window each one sees;
# - how `LayerSpec` and `Architecture` describe a network, round-trip through JSON and
#   reject impossible designs with a clear message;
# - how big `SearchSpace.default()` is, how fast it grows with depth, and what the
#   FPGA-friendly subset removes;
# - how to sample and mutate architectures reproducibly and turn one into a PyTorch
#   model.
#
# **Prerequisites**: Python, NumPy and the basics of PyTorch modules; the
# {doc}`course introduction </book/intro>`. Symbols follow {doc}`/book/notation`.

# %%
import dataclasses
import random

import numpy as np
import pandas as pd
import torch
from myst_nb import glue

import hwnas
from hwnas import plots
from hwnas.architecture import Architecture, LayerSpec, OpType
from hwnas.model import build_model
from hwnas.space import SearchSpace

SEED = 2024
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
print(f"hwnas {hwnas.__version__}, torch {torch.__version__}, seed {SEED}")

# %% [markdown]
# ## The problem: accuracy under a budget
#
# Plain neural architecture search looks for the architecture with the best validation
# score, $a^\star = \arg\max_{a \in \mathcal{A}} \mathrm{ACC}(a)$. A trading system
# cannot use an answer that arrives too late, so the hardware-aware version adds the
# target device to the question:
#
# $$
# a^\star = \arg\max_{a \in \mathcal{A}} \mathrm{ACC}(a)
# \quad \text{subject to} \quad \mathrm{LAT}(a) \le T ,
# $$
#
# with $\mathrm{LAT}(a)$ the latency of architecture $a$ on the target hardware and $T$
# the latency budget, the share of the strategy's {term}`latency SLA` granted to the
# model. A market maker that must answer a quote update within 50 µs might give 20 µs
# to features, 20 µs to the model and 10 µs to building the order, so $T = 20$ µs: a
# more accurate network that needs more than that is not a slower option, it is no option.
# MnasNet {cite:p}`tan2019mnasnet` made this formulation popular for phones; this
# course adapts it to trading hardware.
#
# Everything in that formula ranges over $\mathcal{A}$, the {term}`search space`. If
# it contains no fast architecture, no search will find one; if it is needlessly large,
# the search wastes its budget. Designing $\mathcal{A}$ is the first decision, and the
# subject of this chapter.

# %% [markdown]
# ## Operations for trading time series
#
# A model sees a window of the last $n$ bars (the {term}`lookback`) with a few features
# per bar, a tensor of shape `(batch, features, lookback)`. Every layer maps a
# `(channels, length)` sequence to another. The operations of the course:
#
# | operation | `OpType` | what one output step computes |
# |---|---|---|
# | 1-D convolution | `conv` | a weighted sum over $K$ neighbouring steps and all channels |
# | depthwise separable convolution | `dwsep_conv` | a $K$-step filter per channel, then a $1 \times 1$ mix of channels ({term}`depthwise separable convolution`) |
# | dilated convolution | `dilated_conv` | a convolution whose $K$ taps are $\delta$ steps apart ({term}`dilation`) |
# | per-step fully connected | `fc` | a linear map of the channels of one step (a $1 \times 1$ convolution) |
# | multi-head self-attention | `attention` | a weighted average over *all* steps, with weights computed from the data |
# | identity | `identity` | nothing: the step passes through (lets a search make a network shallower) |
# | max / average pooling | `max_pool`, `avg_pool` | the max or mean of 2 neighbouring steps, halving the length |
# | GRU / LSTM layer | `gru`, `lstm` | a hidden state of `out_channels` values updated step by step from the previous state and the current step, through sigmoid gates and a tanh ({cite:t}`cho2014gru`, {cite:t}`hochreiter1997lstm`) |
# | gated temporal convolution | `gated_tcn` | $\tanh(\text{conv}_f(x)) \odot \sigma(\text{conv}_g(x))$: two $K$-tap (dilated) convolutions, one gating the other, as in WaveNet {cite:p}`oord2016wavenet` |
#
# The recurrent layers return the whole sequence of hidden states, so any layer or
# head can follow them; the `last` head reads the final state, the summary a
# classic LSTM forecaster uses. Both recurrent and gated layers end in their own
# bounded nonlinearity, so the search spaces offer them without a ReLU or GELU after.
#
# What an output step can depend on is its **receptive field**: the number of input
# bars that reach it. A kernel of size $K$ with dilation $\delta$ spans
# $\delta (K - 1) + 1$ steps (`LayerSpec.span`). Stacking layers adds spans, scaled by
# the product of the strides $s_j$ of the layers below (pooling has stride 2):
#
# $$
# R_\ell = R_{\ell-1} + \bigl(\mathrm{span}_\ell - 1\bigr) \prod_{j < \ell} s_j ,
# \qquad R_0 = 1 .
# $$
#
# Self-attention {cite:p}`vaswani2017attention` is the exception: a single layer already
# sees the whole window. So does a recurrent layer, through its state: its last step has
# seen every bar (its first step only the first bar, which is why the `last` head suits it). `hwnas.receptive_fields(layers, lookback)` applies the recursion to a
# list of `LayerSpec`s and returns the field after each layer.

# %%
LOOKBACK, WIDTH, DEPTH = 128, 32, 6
conv3 = LayerSpec(OpType.CONV, WIDTH, WIDTH, kernel_size=3)
stacks = {
    "fc (1x1)": [LayerSpec(OpType.FC, WIDTH, WIDTH)] * DEPTH,
    "conv k=3": [conv3] * DEPTH,
    "conv k=7": [LayerSpec(OpType.CONV, WIDTH, WIDTH, kernel_size=7)] * DEPTH,
    "dilated k=3, d=4": [LayerSpec(OpType.DILATED_CONV, WIDTH, WIDTH, kernel_size=3, dilation=4)] * DEPTH,
    "conv k=3 + max_pool": [conv3, LayerSpec(OpType.MAX_POOL, WIDTH, WIDTH, kernel_size=2, stride=2,
                                             activation="none")] * (DEPTH // 2),
    "attention": [LayerSpec(OpType.ATTENTION, WIDTH, WIDTH, heads=4)] * DEPTH,
}
fields = {name: hwnas.receptive_fields(layers, LOOKBACK) for name, layers in stacks.items()}
print(pd.DataFrame(fields, index=pd.RangeIndex(1, DEPTH + 1, name="layers")).T)

# %% [markdown]
# Checking the table against the closed form: $L$ stacked convolutions of kernel $K$
# and dilation $\delta$ see $1 + L\,\delta\,(K - 1)$ steps.

# %%
for name, K, d in [("conv k=3", 3, 1), ("conv k=7", 7, 1), ("dilated k=3, d=4", 3, 4)]:
    assert fields[name] == [1 + L * d * (K - 1) for L in range(1, DEPTH + 1)], name
assert fields["attention"] == [LOOKBACK] * DEPTH and fields["fc (1x1)"] == [1] * DEPTH
assert hwnas.receptive_fields([LayerSpec(OpType.GRU, WIDTH, WIDTH)] * DEPTH, LOOKBACK) == [LOOKBACK] * DEPTH
print("receptive fields match 1 + L*d*(K-1); attention and a GRU see the whole window")
glue("rf_conv3", fields["conv k=3"][-1], display=False)
glue("rf_lookback", LOOKBACK, display=False)
glue("rf_hours", fields["conv k=3"][-1] * 15 / 60, display=False)
glue("rf_window_hours", LOOKBACK * 15 / 60, display=False)

# %% mystnb={"figure": {"caption": "Six stacked $k=3$ convolutions see only {glue:text}`rf_conv3` of the {glue:text}`rf_lookback` bars; dilation ($\\delta = 4$: 49 bars) and pooling widen the view with the same weights, and a single attention layer already sees the whole window."}, "image": {"alt": "Line chart of the receptive field in time steps (log scale, base 2, from 1 to 128) against the number of layers stacked (1 to 6), one line with circle markers per stack: fc (1x1) flat at 1; conv k=3 rising to 13; conv k=7 to 37; dilated k=3, d=4 to 49; conv k=3 + max_pool, alternating, to 22; attention flat at 128 on the grey dashed line marked lookback = 128."}}
ax = plots.receptive_field_growth(fields, lookback=LOOKBACK)
ax.set_title("How much of a 128-bar window one output step sees");

# %% [markdown]
# Six plain $k=3$ convolutions see {glue:text}`rf_conv3` of {glue:text}`rf_lookback` bars:
# with 15-minute candles, {glue:text}`rf_hours:.2f` hours of a
# {glue:text}`rf_window_hours:.0f`-hour window. A model built only from them
# cannot react to anything older, however long its lookback. Dilation and pooling widen the view
# cheaply (the same weights, further apart), and attention sees everything at once, at
# a price that grows with the square of the window (chapter {doc}`02_flops`). A search
# space that mixes these operations lets the search trade reach against cost.

# %% [markdown]
# ## Writing an architecture down
#
# A `LayerSpec` is one layer: an operation, its input and output channels, kernel,
# stride, dilation, number of attention heads, a skip flag and the activation. With
# `use_skip=True` the layer computes $y = \mathrm{act}(\mathrm{op}(x)) + \mathrm{shortcut}(x)$,
# where the shortcut is the identity when shapes agree and a strided $1 \times 1$
# projection when they do not. An `Architecture` chains layers over an input of
# `input_features` channels and `lookback` steps and ends in a head (`gap`: mean over
# time, `last`: the last step, `flatten`: everything), followed by one linear layer.
#
# Here is a small network built by hand: a per-step stem that lifts 8 features to 32
# channels, a depthwise separable convolution with an identity skip, a dilated
# convolution that widens to 64 channels (so its skip needs a projection), a pooling
# layer and an attention layer over the pooled sequence.

# %%
layers = [
    LayerSpec(OpType.FC, 8, 32),
    LayerSpec(OpType.DWSEP_CONV, 32, 32, kernel_size=5, use_skip=True),
    LayerSpec(OpType.DILATED_CONV, 32, 64, kernel_size=3, dilation=4, use_skip=True),
    LayerSpec(OpType.MAX_POOL, 64, 64, kernel_size=2, stride=2, activation="none"),
    LayerSpec(OpType.ATTENTION, 64, 64, heads=4, activation="gelu", use_skip=True),
]
arch = Architecture(layers, input_features=8, lookback=64, head="gap")

# %%
# NBVAL_CHECK_OUTPUT
print(arch.summary())
print("shapes (channels, length):", arch.shapes())
print("skip projections:", [layer.needs_projection for layer in arch.layers])

# %% [markdown]
# Architectures are frozen (hashable, comparable) and travel as JSON, so a search can
# log every candidate and a deployment can rebuild exactly the network that was chosen.
# The round trip must give back an equal object:

# %%
# NBVAL_CHECK_OUTPUT
text = arch.to_json()
assert Architecture.from_json(text) == arch
assert Architecture.from_dict(arch.to_dict()) == arch
print(f"{len(text)} characters of JSON; layer 2 is stored as")
print(arch.layers[2].to_dict())

# %% [markdown]
# ### Impossible designs are rejected where they are made
#
# Validation happens in the constructors, and each message names the field and what
# would be allowed. A kernel that spans more steps than the sequence has, attention
# heads that do not divide the width, a layer whose input width does not match the
# previous output, and a misspelt operation:

# %%
# NBVAL_CHECK_OUTPUT
attempts = {
    "kernel longer than the sequence": lambda: Architecture(
        [LayerSpec(OpType.FC, 8, 16), LayerSpec(OpType.CONV, 16, 16, kernel_size=7)],
        input_features=8, lookback=4),
    "heads do not divide the width": lambda: LayerSpec(OpType.ATTENTION, 32, 32, heads=3),
    "widths do not chain": lambda: Architecture(
        [LayerSpec(OpType.FC, 8, 16), LayerSpec(OpType.CONV, 32, 32, kernel_size=3)],
        input_features=8, lookback=64),
    "unknown operation": lambda: LayerSpec("transformer", 8, 8),
}
for what, make in attempts.items():
    try:
        make()
    except ValueError as err:
        print(f"{what}:\n  ValueError: {err}")
    else:
        raise AssertionError(f"{what} was accepted")

# %% [markdown]
# ## The default search space
#
# A `SearchSpace` turns the operations into a menu. Every architecture it produces has
# the same shape: a fixed stem (a per-step fully connected layer from the input
# features to `stem_width` channels), then `depth` searchable layers, each picking one
# **candidate block** and, independently, whether to add a skip, then a head. A
# candidate block is an operation with all its settings fixed (`conv k5 w32`: a
# convolution of kernel 5 with 32 output channels). The lookback window and the head
# type are searched as well.

# %%
space = SearchSpace.default()
print(space.summary())
candidates = space.candidates()
print("the first candidates:", ", ".join(c.label() for c in candidates[:7]), "...")
print("the last candidates: ", ", ".join(c.label() for c in candidates[-7:]))

# %% [markdown]
# With $|\mathcal{O}|$ candidate blocks, $|S|$ skip choices, a set $D$ of depths,
# $|N|$ lookbacks and $|H|$ head types, the number of distinct choice sequences is
#
# $$
# |\mathcal{A}| = |N| \cdot |H| \cdot \sum_{d \in D} \bigl(|\mathcal{O}|\,|S|\bigr)^{d} .
# $$
#
# It is an upper bound on the number of distinct networks: a few sequences are
# infeasible (pooling a sequence that is already short) and are never sampled.

# %%
# NBVAL_CHECK_OUTPUT
per_layer = len(space.candidates()) * len(space.skip_choices)
by_hand = len(space.lookbacks) * len(space.head_types) * sum(per_layer**d for d in space.depths)
assert by_hand == space.size()
print(f"{len(space.candidates())} blocks x {len(space.skip_choices)} skip choices = {per_layer} choices per layer")
print(f"|A| = {space.size():,}")
print(f"log10 |A| = {space.log10_size():.2f}")
glue("space_blocks", len(space.candidates()), display=False)
glue("space_choices", per_layer, display=False)
glue("space_log10", space.log10_size(), display=False)

# %% [markdown]
# About $10^{N}$ architectures, $N = \log_{10}|\mathcal{A}| \approx$ {glue:text}`space_log10:.1f`: far
# too many to train even a tiny fraction, which is
# why the later chapters need cheap cost models ({doc}`02_flops`, {doc}`03_memory`,
# {doc}`04_latency_lut`) and clever search strategies. Almost
# all of them are the deepest ones, because every extra layer multiplies the count by
# {glue:text}`space_choices`. The figure below shows the size of each named space if it allowed a single
# depth $d$.

# %% mystnb={"figure": {"caption": "Each extra searchable layer multiplies the default space by its {glue:text}`space_choices` choices per layer, a straight line on the log scale, so almost all of its architectures are the deepest ones; the mobile space grows almost as fast, the FPGA space far more slowly."}, "image": {"alt": "Line chart with a log-scaled y axis of architectures (about 10^1 to 10^20) against searchable layers, depth 1 to 8, one line with circle markers per search space: default (blue) and mobile (cyan) almost on top of each other, rising steeply to about 10^20 at depth 8, and fpga (red) rising along a much flatter straight line to about 10^9."}}
names = ["default", "mobile", "fpga"]
sizes = {name: {d: SearchSpace.named(name, depths=(d,)).size() for d in range(1, 9)} for name in names}
ax = plots.space_size_by_depth(sizes)
ax.set_title("Architectures with exactly d searchable layers");

# %% [markdown]
# ## A space for a hardware target: the FPGA subset
#
# Not every operation suits every device. For FPGAs, which serve the fastest trading
# strategies in fixed-point arithmetic, the reference chapter recommends small
# convolutions ($1\times1$, $3\times3$), depthwise separable convolutions, ReLU rather
# than GELU or Swish, and skip connections with a fixed topology; softmax over long
# dimensions, large matrix products and anything data-dependent in shape are expensive
# or impossible to synthesise. `SearchSpace.fpga()` encodes exactly that: kernels 1
# and 3, ReLU only, a residual on every compute block, no attention, no dilation, and
# the `last` head. It has no recurrent or gated layers either: the reference's
# operation-support rule says to avoid complex nonlinearities, and their sigmoid and tanh
# gates are exactly that; a recurrent layer also makes every step wait for the previous
# one (chapter {doc}`05_hardware_targets` shows the FPGA model refusing them with that
# reason). `SearchSpace.mobile()` (retail-app CPUs) drops attention and max
# pooling (average pooling stays) and keeps narrow widths; it keeps the gated
# convolution, which ExecuTorch's XNNPACK backend runs as one delegated unit, and drops
# GRU and LSTM, which XNNPACK has no operator for (an exported recurrence becomes one
# small matrix product per step).

# %%
def ops_histogram(space: SearchSpace) -> dict[str, int]:
    """Candidate blocks per operation."""
    counts: dict[str, int] = {}
    for choice in space.candidates():
        counts[choice.op.value] = counts.get(choice.op.value, 0) + 1
    return counts


spaces = {name: SearchSpace.named(name) for name in names}
counts = {name: ops_histogram(s) for name, s in spaces.items()}
fpga = spaces["fpga"]
assert not any(c.op == OpType.ATTENTION for c in fpga.candidates())
assert {c.activation.value for c in fpga.candidates()} <= {"relu", "none"}
assert max(c.kernel_size for c in fpga.candidates()) <= 3
assert not {OpType.GRU, OpType.LSTM, OpType.GATED_TCN} & {c.op for c in fpga.candidates()}
print(fpga.summary())
glue("fpga_blocks", len(fpga.candidates()), display=False)
glue("fpga_log10", fpga.log10_size(), display=False)

# %% mystnb={"figure": {"caption": "The FPGA space keeps {glue:text}`fpga_blocks` of the default space's {glue:text}`space_blocks` candidate blocks: no attention, no recurrent or gated layers, no dilated convolutions, only small kernels; the mobile space drops attention, max pooling and the recurrent layers but keeps every convolution, the gated one included."}, "image": {"alt": "Grouped bar chart of candidate blocks (y axis, 0 to about 37) for eleven operations on the x axis (conv, dwsep_conv, dilated_conv, fc, attention, identity, max_pool, avg_pool, gru, lstm, gated_tcn), three bars per operation, each labelled with its count: default (blue) 18, 18, 36, 6, 4, 1, 1, 1, 3, 3, 27; mobile (cyan) 18, 18, 36, 6, 0, 1, 0, 1, 0, 0, 27; fpga (red) 4, 4, 0, 2, 0, 1, 1, 0, 0, 0, 0."}}
ax = plots.grouped_counts(counts, ylabel="candidate blocks")
ax.set_title("Candidate blocks per operation in three search spaces");

# %% [markdown]
# The FPGA space has {glue:text}`fpga_blocks` blocks instead of {glue:text}`space_blocks` and a
# single skip choice, so $\log_{10}|\mathcal{A}|$ is {glue:text}`fpga_log10:.1f` instead of
# {glue:text}`space_log10:.1f`: restricting the space to what the
# hardware does well is itself a large part of hardware-aware search.

# %% [markdown]
# ## Sampling and mutating
#
# Search strategies need two moves: draw a random member of the space, and change an
# existing member a little. Both take a `numpy.random.Generator`, so a seed fixes every
# random choice. Sampling proceeds one decision at a time, **op first**: the lookback,
# the depth, then for each layer the operation (uniform over the operations with a
# block that fits the current sequence length), then that operation's parameters
# (uniform over its blocks that fit), then the skip; the head last. Every sample is
# therefore a valid architecture. Drawing the operation first gives every operation
# the same share whatever its number of variants. A flat draw over the 85 blocks
# would pick the identity, which has one variant, once in 85 layers, and the
# convolutions, which have 18 to 36 variants each, far more often. `SearchSpace.prior()`
# states these probabilities, and the next cell measures them.

# %%
rng = np.random.default_rng(SEED)
sampled = [space.sample(rng) for _ in range(3)]
for a in sampled:
    print(a.summary(), end="\n\n")
again = np.random.default_rng(SEED)
assert [space.sample(again) for _ in range(3)] == sampled, "same seed, same architectures"

# %%
prior = space.prior()
share_rng = np.random.default_rng(SEED + 1)
genomes = [space.sample_genome(share_rng) for _ in range(10_000)]
layer_ops = [space.candidates()[b].op for g in genomes for b in g.blocks]
first_ops = [space.candidates()[g.blocks[0]].op for g in genomes]  # the first layer: every op fits
print(f"{'op':<13}{'prior':>7}{'first layer':>13}{'all layers':>12}{'flat draw':>11}")
for op in space.ops:
    flat = sum(c.op == op for c in space.candidates()) / len(space.candidates())
    print(f"{op.value:<13}{prior['op'][op]:>7.3f}{first_ops.count(op) / len(first_ops):>13.3f}"
          f"{layer_ops.count(op) / len(layer_ops):>12.3f}{flat:>11.3f}")
depths = [len(g.blocks) for g in genomes]
print("depth shares:", {d: round(depths.count(d) / len(depths), 3) for d in space.depths},
      "prior", {d: round(p, 3) for d, p in prior["depth"].items()})
glue("identity_share", first_ops.count(hwnas.OpType.IDENTITY) / len(first_ops), display=False)
glue("identity_flat", sum(c.op == hwnas.OpType.IDENTITY for c in space.candidates())
     / len(space.candidates()), display=False)

# %% [markdown]
# In 10,000 draws the identity fills {glue:text}`identity_share:.3f` of first layers,
# against {glue:text}`identity_flat:.3f` under a flat draw over the blocks. Deeper
# layers give the ops that fit there a little more than $1/8$ each, because a pooling
# step no longer fits once the sequence is short.
#
# Internally an architecture is a `Genome`: the lookback, one candidate index and one
# skip flag per searchable layer, and the head. `mutate` changes exactly one **gene**
# of it: a layer's operation (its parameters drawn anew), one parameter of a layer's
# operation (its kernel, dilation, width, heads or activation), a skip, the depth, the
# lookback or the head. It returns a valid neighbour. Evolutionary search ({doc}`07_pareto`) is little more than this move
# plus selection.

# %%
parent = sampled[0]
child = space.mutate(parent, rng)
g_parent, g_child = space.encode(parent), space.encode(child)
assert space.decode(g_parent) == parent and g_child != g_parent
for field in dataclasses.fields(g_parent):
    before, after = getattr(g_parent, field.name), getattr(g_child, field.name)
    before, after = (getattr(v, "value", v) for v in (before, after))  # enums as plain text
    flag = "  <- changed" if before != after else ""
    print(f"{field.name:<9} {before!s:<40} {after!s}{flag}")

# %% [markdown]
# ## From an architecture to a model
#
# `build_model` turns any architecture into a PyTorch module (in eval mode) that maps a
# float tensor of shape `(batch, features, lookback)` to `(batch, outputs)`; the
# `seed` argument makes the initial weights reproducible. The values of the input do
# not matter for this chapter (costs depend only on shapes), so a random tensor stands
# in for a batch of windows; real BTCUSDT windows come in
# {doc}`06_bybit_data`.

# %%
# NBVAL_CHECK_OUTPUT
model = build_model(arch, seed=SEED)
x = torch.randn(16, arch.input_features, arch.lookback)
with torch.inference_mode():
    y = model(x)
print("input ", tuple(x.shape), "-> output", tuple(y.shape))
print("layers:", [type(layer.op).__name__ for layer in model.layers])
assert y.shape == (16, arch.num_outputs)

# %% [markdown]
# The model checks its input shape too, so a window of the wrong length fails loudly
# instead of silently producing a number:

# %%
# NBVAL_CHECK_OUTPUT
try:
    model(torch.randn(16, arch.input_features, 32))
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# Every sampled architecture builds and runs the same way:

# %%
for a in sampled:
    out = build_model(a, seed=SEED)(torch.randn(4, a.input_features, a.lookback))
    assert out.shape == (4, 1) and torch.isfinite(out).all()
print(f"{len(sampled)} sampled architectures built and run")

# %% [markdown]
# ## Summary
#
# - Hardware-aware NAS maximises accuracy *subject to* a latency budget $T$ (and, in
#   chapter {doc}`03_memory`, a memory budget). The search space $\mathcal{A}$ decides
#   what the search can possibly find.
# - The operations differ in how much of the lookback they see: convolutions grow
#   their receptive field linearly with depth; dilation $\delta$ multiplies the growth
#   *per layer* by $\delta$, so the field still grows linearly (the table's dilated
#   row); pooling lengthens the step of every later layer, so the field grows faster
#   with each pool; attention sees the whole window in one layer.
# - `LayerSpec` and `Architecture` are validated on construction and round-trip
#   through JSON; mistakes are caught where they are made, with the field named.
# - `SearchSpace.default()` offers 85 blocks per layer, about $1.5 \times 10^{14}$
#   architectures, growing by a factor of 170 per extra layer; the FPGA subset keeps
#   12 blocks and about $10^7$ architectures.
# - `sample` and `mutate` take a seeded generator, and `build_model` turns any
#   architecture into a PyTorch module.
#
# Next, {doc}`02_flops` counts what each of these operations costs.

# %% [markdown]
# ## Exercises
#
# **1.** How many layers of `dilated_conv` with $K=3$ and $\delta=4$ does it take for
# one output step to see a whole 128-bar window? How many with dilations that double
# from layer to layer ($\delta = 2, 4, 8, \dots$; the library accepts any
# $\delta \ge 2$)?
#
# :::{dropdown} Solution
# With a fixed $\delta=4$ every layer adds $\delta(K-1) = 8$ steps, so
# $1 + 8L \ge 128$ needs $L = 16$ layers. With doubling dilations layer $\ell$ adds
# $2 \cdot 2^\ell$ steps, so after $L$ layers the field is $1 + \sum_{\ell=1}^{L} 2^{\ell+1} = 2^{L+2} - 3$,
# which passes 128 at $L = 6$ ($253$ steps; $L = 5$ gives $125$). This is why
# WaveNet {cite:p}`oord2016wavenet` doubles its dilation from layer to layer. The cell
# below checks both numbers with `receptive_fields`.
# :::

# %% tags=["hide-cell"]
fixed = [LayerSpec(OpType.DILATED_CONV, 8, 8, kernel_size=3, dilation=4)] * 20
assert next(i for i, r in enumerate(hwnas.receptive_fields(fixed, 128), 1) if r >= 128) == 16
doubling = [LayerSpec(OpType.DILATED_CONV, 8, 8, kernel_size=3, dilation=2**i) for i in range(1, 9)]
assert hwnas.receptive_fields(doubling, 128)[:6] == [2 ** (L + 2) - 3 for L in range(1, 7)]
print("fixed d=4: 16 layers; doubling: 6 layers ->", hwnas.receptive_fields(doubling, 128)[5], "steps")

# %% [markdown]
# **2.** A colleague wants a space with kernels 3, 5, 7, 9, 11 instead of 3, 5, 7.
# Predict the new number of candidate blocks and $\log_{10}|\mathcal{A}|$ before
# computing them with `SearchSpace.default(kernel_sizes=...)`.
#
# :::{dropdown} Solution
# Kernels enter four operations: `conv` and `dwsep_conv` have
# $|K| \cdot |W| \cdot |\text{act}|$ blocks each, `dilated_conv`
# $|K| \cdot |\delta| \cdot |W| \cdot |\text{act}|$, and `gated_tcn` (no activation
# variants, dilation 1 or one of the space's) $|K| \cdot (1 + |\delta|) \cdot |W|$.
# With 5 kernels instead of 3 that is $30 + 30 + 60 + 45 = 165$ blocks instead of 99, so
# 184 blocks in all (the 19 others do not depend on kernels), 368 choices per layer and
# $|\mathcal{A}| = 5 \cdot 2 \cdot \sum_{d=2}^{6} 368^d \approx 2.5 \times 10^{16}$, one
# more order of magnitude.
# :::

# %% tags=["hide-cell"]
wide = SearchSpace.default(kernel_sizes=(3, 5, 7, 9, 11))
assert len(wide.candidates()) == 184 and round(wide.size() / 1e16, 1) == 2.5
print(f"{len(wide.candidates())} blocks, log10 |A| = {wide.log10_size():.2f}")

# %% [markdown]
# **3.** Draw 200 architectures from `SearchSpace.fpga()`. Are they all free of
# attention and GELU, and does every compute layer after the stem carry a skip?
#
# :::{dropdown} Solution
# Yes: sampling only offers the space's candidates, none of which is attention or
# uses GELU, and the only skip choice is `True`. Identity and pooling layers never
# get a skip (there is nothing to add a residual to), so the check below skips them.
# :::

# %% tags=["hide-cell"]
check_rng = np.random.default_rng(SEED)
for _ in range(200):
    a = fpga.sample(check_rng)
    for layer in a.layers[1:]:
        assert layer.op != OpType.ATTENTION and layer.activation.value != "gelu"
        assert layer.use_skip or layer.op in (OpType.IDENTITY, OpType.MAX_POOL)
print("200 FPGA samples: no attention, no GELU, a skip on every compute layer")
