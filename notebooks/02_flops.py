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
# # 02 · Counting FLOPs
#
# A search compares thousands of candidate networks, most of which it will never train
# or time. It needs a cost it can compute from the architecture alone, in
# microseconds. The oldest such cost is the number of floating-point operations of one
# forward pass, the {term}`FLOPs`. This chapter derives the FLOP count of every
# operation in the course, checks each formula against PyTorch's own counter, and
# shows what FLOPs leave out.
#
# **You will learn**
#
# - the counting convention (one multiply-add is two FLOPs) and the formulas for
#   convolutions, depthwise convolutions, fully connected layers and self-attention,
#   in their 1-D form for time series;
# - how to read a per-layer cost table (`cost_breakdown`) and verify it exactly against
#   `torch.utils.flop_counter.FlopCounterMode`;
# - why depthwise separable convolutions are cheap (a ratio of $1/C_{\mathrm{out}} + 1/K$)
#   and why attention becomes expensive as the lookback grows;
# - which work FLOP counts ignore, and why that matters for latency.
#
# **Prerequisites**: {doc}`01_search_space` (layers, architectures, search spaces).

# %%
import dataclasses
import random
from fractions import Fraction

import numpy as np
import pandas as pd
import torch
from myst_nb import glue
from torch.utils.flop_counter import FlopCounterMode

import hwnas
from hwnas import plots
from hwnas.architecture import Architecture, LayerSpec, OpType
from hwnas.cost import cost_breakdown, count_flops, layer_flops
from hwnas.cost_measure import OperatorLog, measure_flops
from hwnas.latency import TimingSpec, time_module
from hwnas.model import build_layer, build_model
from hwnas.space import SearchSpace

SEED = 2024
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
print(f"hwnas {hwnas.__version__}, torch {torch.__version__}, seed {SEED}")

# %% [markdown]
# ## The convention: a multiply-add is two FLOPs
#
# Almost all the arithmetic of a neural network is multiply-accumulate: $y \mathrel{+}= w \cdot x$.
# The course counts each as **two** FLOPs (one multiply, one add), the convention of
# `torch.utils.flop_counter` and of most papers; some hardware data sheets count
# multiply-accumulates (MACs) instead, which halves every number, so always check which
# one a figure uses. A linear map from 64 to 32 values performs $64 \cdot 32 = 2048$
# multiply-adds; `hwnas.measure_flops(module, x)` runs `module(x)` under PyTorch's
# `FlopCounterMode` and returns its count:

# %%
# NBVAL_CHECK_OUTPUT
linear = torch.nn.Linear(64, 32, bias=False)
print("multiply-adds:", 64 * 32, "| FlopCounterMode:", measure_flops(linear, torch.randn(1, 64)))
assert measure_flops(linear, torch.randn(1, 64)) == 2 * 64 * 32

# %% [markdown]
# ## The four formulas
#
# The reference chapter gives the cost of the common operations for images, with an
# output of $H_{\mathrm{out}} \times W_{\mathrm{out}}$ positions, kernels of
# $K \times K$, $C_{\mathrm{in}}$ input and $C_{\mathrm{out}}$ output channels:
#
# $$
# \begin{aligned}
# \text{convolution:}\quad & 2\, H_{\mathrm{out}} W_{\mathrm{out}}\, K^2 C_{\mathrm{in}} C_{\mathrm{out}} \\
# \text{depthwise convolution:}\quad & 2\, H_{\mathrm{out}} W_{\mathrm{out}}\, K^2 C \\
# \text{fully connected:}\quad & 2\, C_{\mathrm{in}} C_{\mathrm{out}} \\
# \text{self-attention:}\quad & 4 n^2 d + 2 n d^2
# \end{aligned}
# $$
#
# A time series is a one-row image: $H_{\mathrm{out}} = 1$, $W_{\mathrm{out}}$ is the
# output length $L_{\mathrm{out}}$ and a kernel has $K$ taps, not $K^2$. The 1-D forms
# the library uses are therefore
#
# $$
# \begin{aligned}
# \mathrm{FLOPs}_{\mathrm{conv}} &= 2\, L_{\mathrm{out}}\, K\, C_{\mathrm{in}} C_{\mathrm{out}} \\
# \mathrm{FLOPs}_{\mathrm{dw}} &= 2\, L_{\mathrm{out}}\, K\, C \\
# \mathrm{FLOPs}_{\mathrm{dwsep}} &= 2\, L_{\mathrm{out}}\, K\, C_{\mathrm{in}}
#   + 2\, L_{\mathrm{out}}\, C_{\mathrm{in}} C_{\mathrm{out}} \\
# \mathrm{FLOPs}_{\mathrm{fc}} &= 2\, L\, C_{\mathrm{in}} C_{\mathrm{out}} \\
# \mathrm{FLOPs}_{\mathrm{attn}} &= 4 n^2 d + 8 n d^2 .
# \end{aligned}
# $$
#
# Dilation moves a convolution's taps apart and adds none; the separable convolution is
# a depthwise step followed by a $1 \times 1$ pointwise mix; the linear map of `fc` is
# applied at each of the $L$ steps (the head applies it once).
#
# The attention line needs a word. In multi-head self-attention
# {cite:p}`vaswani2017attention` over $n$ steps of width $d$, the scores
# $QK^\top$ cost $2n^2d$ and the weighted sum of the values another $2n^2d$: that is
# the chapter's $4n^2d$, and it does not depend on the number of heads. The $2nd^2$
# term is one $d \times d$ projection of all $n$ steps. A real attention layer has
# **four** of them, for the queries, keys, values and the output, so our layer costs
# $4 \cdot 2nd^2 = 8nd^2$. The chapter's formula counts one.
#
# Two more operations complete the course's set. The gated temporal convolution
# `gated_tcn`, $\tanh(\text{conv}_f(x)) \odot \sigma(\text{conv}_g(x))$
# {cite:p}`oord2016wavenet`, is two convolutions of the same shape, so it costs twice a
# convolution. A recurrent layer of hidden size $H$ updates its state at each of the $L$
# steps from $G$ gate pre-activations, each a projection of the current step
# ($W_{ih} x_t$, $C_{\mathrm{in}} \to GH$) plus a projection of the previous state
# ($W_{hh} h_{t-1}$, $H \to GH$); a GRU {cite:p}`cho2014gru` has $G = 3$ (reset, update,
# candidate), an LSTM {cite:p}`hochreiter1997lstm` $G = 4$ (input, forget, cell, output):
#
# $$
# \begin{aligned}
# \mathrm{FLOPs}_{\mathrm{gated}} &= 2 \cdot 2\, L_{\mathrm{out}}\, K\, C_{\mathrm{in}} C_{\mathrm{out}} \\
# \mathrm{FLOPs}_{\mathrm{rec}} &= \underbrace{2\, L\, G H\, C_{\mathrm{in}}}_{\text{input projections}}
#   + \underbrace{2\, L\, G H^2}_{\text{recurrent projections}} = 2\, L\, G H \,(C_{\mathrm{in}} + H) .
# \end{aligned}
# $$
#
# The convention for the gates is the one for every activation in this chapter: only
# the matrix products count. The sigmoids, tanhs and element-wise products that mix the
# gates (per unit and step: a GRU's 2 sigmoids, 1 tanh and 3 products, an LSTM's 3
# sigmoids, 2 tanhs and 3 products) are not FLOPs here, exactly as `FlopCounterMode`
# does not count them. One practical snag: on a CPU PyTorch runs an LSTM as a single
# oneDNN kernel that the counter has no formula for, so it reports **zero** FLOPs.
# `hwnas.cost_measure.measure_flops` therefore counts under `countable_ops()`, which
# switches oneDNN off so that the same layer runs as the per-step matrix products above.
#
# Here are the formulas as code, next to the library (`hwnas.cost.layer_flops`) and
# PyTorch's counter running the very module the model would run (`build_layer`).

# %%
def formula_flops(spec: LayerSpec, length: int) -> int:
    """FLOPs of one layer's main operation by the 1-D formulas above (batch of one)."""
    l_out, k = spec.output_length(length), spec.kernel_size
    c_in, c_out = spec.in_channels, spec.out_channels
    if spec.op in (OpType.CONV, OpType.DILATED_CONV):
        return 2 * l_out * k * c_in * c_out
    if spec.op == OpType.DWSEP_CONV:
        return 2 * l_out * k * c_in + 2 * l_out * c_in * c_out
    if spec.op == OpType.FC:
        return 2 * length * c_in * c_out
    if spec.op == OpType.ATTENTION:
        n, d = length, c_in
        return 4 * n**2 * d + 8 * n * d**2
    if spec.op == OpType.GATED_TCN:
        return 2 * (2 * l_out * k * c_in * c_out)
    if spec.op in (OpType.GRU, OpType.LSTM):
        gates = 3 if spec.op == OpType.GRU else 4
        return 2 * length * gates * c_out * (c_in + c_out)
    return 0  # identity and pooling: no multiply-adds


L = 64
examples = [
    LayerSpec(OpType.CONV, 32, 64, kernel_size=5),
    LayerSpec(OpType.DILATED_CONV, 32, 64, kernel_size=5, dilation=2),
    LayerSpec(OpType.DWSEP_CONV, 32, 64, kernel_size=5),
    LayerSpec(OpType.FC, 32, 64),
    LayerSpec(OpType.ATTENTION, 64, 64, heads=4),
    LayerSpec(OpType.MAX_POOL, 64, 64, kernel_size=2, stride=2, activation="none"),
    LayerSpec(OpType.IDENTITY, 64, 64, activation="none"),
    LayerSpec(OpType.GATED_TCN, 32, 64, kernel_size=5, dilation=2, activation="none"),
    LayerSpec(OpType.GRU, 32, 64, activation="none"),
    LayerSpec(OpType.LSTM, 32, 64, activation="none"),
]
rows = []
for spec in examples:
    x = torch.randn(1, spec.in_channels, L)
    rows.append({"op": spec.op.value, "formula": formula_flops(spec, L),
                 "hwnas": layer_flops(spec, L), "torch": measure_flops(build_layer(spec), x)})
single = pd.DataFrame(rows).set_index("op")
assert (single["formula"] == single["hwnas"]).all() and (single["hwnas"] == single["torch"]).all()

# %%
# NBVAL_CHECK_OUTPUT
print(f"one layer on a sequence of L = {L} steps")
print(single.to_string())

# %% [markdown]
# All three columns agree to the FLOP. Note the pooling and identity rows: they count as
# zero, because neither performs a multiply-add. We come back to that below.
#
# Without `countable_ops()` the counter misses the LSTM entirely, and a recurrent layer
# costs as much as a convolution with $K = G(C_{\mathrm{in}} + H)/C_{\mathrm{out}}$ taps:
# for equal widths, $2G$ taps.

# %%
lstm_spec = LayerSpec(OpType.LSTM, 64, 64, activation="none")
with FlopCounterMode(display=False) as counter, torch.inference_mode():
    build_layer(lstm_spec)(torch.randn(1, 64, L))  # oneDNN on: one opaque kernel
lstm_onednn = counter.get_total_flops()
assert lstm_onednn in (0, layer_flops(lstm_spec, L))  # 0 where torch uses its oneDNN LSTM
equal_taps = {op: layer_flops(LayerSpec(op, 64, 64, activation="none"), L)
              // layer_flops(LayerSpec(OpType.CONV, 64, 64, kernel_size=1), L) for op in (OpType.GRU, OpType.LSTM)}
assert equal_taps == {OpType.GRU: 6, OpType.LSTM: 8}
print(f"LSTM 64->64 over {L} steps: {layer_flops(lstm_spec, L):,} FLOPs; FlopCounterMode with oneDNN on: "
      f"{lstm_onednn:,}")
print("a 64->64 recurrent layer costs a 64->64 convolution of", equal_taps[OpType.GRU], "(GRU) or",
      equal_taps[OpType.LSTM], "(LSTM) taps")
glue("lstm_onednn_flops", int(lstm_onednn), display=False)
glue("gru_taps", equal_taps[OpType.GRU], display=False)
glue("lstm_taps", equal_taps[OpType.LSTM], display=False)

# %% [markdown]
# With oneDNN the counter saw {glue:text}`lstm_onednn_flops:,d` FLOPs in the LSTM. In FLOPs a
# width-64 GRU is a {glue:text}`gru_taps`-tap convolution and an LSTM an
# {glue:text}`lstm_taps`-tap one, linear in $L$ like any convolution. What FLOPs
# hide is that the recurrent products come one step at a time, each waiting for the
# previous state: $L$ small sequential products instead of one large one, which is what
# the latency tables of {doc}`04_latency_lut` and the GPU model of
# {doc}`05_hardware_targets` see.
#
# The attention layer can be taken apart too: `FlopCounterMode` records FLOPs per
# module. The fused Q/K/V projection (submodule `qkv`) is three $d \times d$
# projections ($6nd^2$), the output projection (`out`) the fourth $2nd^2$, and what the
# attention module computes outside those two, the scores and the weighted sum, is the
# $4n^2d$ term.

# %%
# NBVAL_CHECK_OUTPUT
n, d = L, 64
attention = build_layer(LayerSpec(OpType.ATTENTION, d, d, heads=4))
with FlopCounterMode(display=False) as counter, torch.inference_mode():
    attention(torch.randn(1, d, n))
module_flops = {name: sum(per_op.values()) for name, per_op in counter.get_flop_counts().items()}
projections = module_flops["Layer.op.qkv"] + module_flops["Layer.op.out"]
parts = {
    "Q, K, V projections (6 n d^2)": (module_flops["Layer.op.qkv"], 6 * n * d**2),
    "scores and weighted sum (4 n^2 d)": (module_flops["Layer.op"] - projections, 4 * n**2 * d),
    "output projection (2 n d^2)": (module_flops["Layer.op.out"], 2 * n * d**2),
}
for what, (counted, expected) in parts.items():
    assert counted == expected, what
    print(f"{what:<36} {counted:>9,}")
print(f"{'total':<36} {sum(c for c, _ in parts.values()):>9,}")

# %% [markdown]
# ## A whole architecture, layer by layer
#
# `cost_breakdown(arch)` applies the formulas to every layer (a skip with a projection
# adds its $1\times1$ convolution, $2 L_{\mathrm{out}} C_{\mathrm{in}} C_{\mathrm{out}}$)
# and to the head ($2 C_{\mathrm{in}} C_{\mathrm{out}}$), and `count_flops` sums them.
# Here is the hand-built architecture of {doc}`01_search_space`:

# %%
arch = Architecture(
    [
        LayerSpec(OpType.FC, 8, 32),
        LayerSpec(OpType.DWSEP_CONV, 32, 32, kernel_size=5, use_skip=True),
        LayerSpec(OpType.DILATED_CONV, 32, 64, kernel_size=3, dilation=4, use_skip=True),
        LayerSpec(OpType.MAX_POOL, 64, 64, kernel_size=2, stride=2, activation="none"),
        LayerSpec(OpType.ATTENTION, 64, 64, heads=4, activation="gelu", use_skip=True),
    ],
    input_features=8,
    lookback=64,
)
breakdown = cost_breakdown(arch)
table = pd.DataFrame(
    {"in": [str(r.in_shape) for r in breakdown], "out": [str(r.out_shape) for r in breakdown],
     "FLOPs": [r.flops for r in breakdown], "params": [r.params for r in breakdown]},
    index=pd.Index([r.name for r in breakdown], name="layer"),
)
table["share %"] = (100 * table["FLOPs"] / table["FLOPs"].sum()).round(1)

# %%
# NBVAL_CHECK_OUTPUT
print(table.to_string())
print(f"count_flops = {count_flops(arch):,}")
assert table["FLOPs"].sum() == count_flops(arch)
flop_shares = (table["FLOPs"] / table["FLOPs"].sum()).nlargest(2)
glue("flops_total", int(table["FLOPs"].sum()), display=False)
glue("flops_top_share", float(flop_shares.iloc[0]), display=False)
glue("flops_second_share", float(flop_shares.iloc[1]), display=False)

# %% [markdown]
# `FlopCounterMode` attributes FLOPs to modules by name (`TradingNet.layers.2` is layer
# 2, skip projection included), so the check can be made layer by layer, not only in
# total:

# %%
model = build_model(arch, seed=SEED)
with FlopCounterMode(display=False) as counter, torch.inference_mode():
    model(torch.randn(1, arch.input_features, arch.lookback))
by_module = counter.get_flop_counts()
for i, row in enumerate(breakdown[:-1]):
    assert sum(by_module.get(f"TradingNet.layers.{i}", {}).values()) == row.flops, row.name
assert sum(by_module["TradingNet.head"].values()) == breakdown[-1].flops
assert counter.get_total_flops() == count_flops(arch)
print("every layer and the head agree with FlopCounterMode")

# %% mystnb={"figure": {"caption": "On 32 pooled steps the attention layer is already the most expensive ({glue:text}`flops_top_share:.1%` of the {glue:text}`flops_total:,d` FLOPs), and the dilated convolution that widens to 64 channels comes second ({glue:text}`flops_second_share:.1%`); pooling and the head cost next to nothing."}, "image": {"alt": "Bar chart of FLOPs for a batch of one (linear y axis up to about 1.3 million) for six layers: 0:fc, 1:dwsep_conv, 2:dilated_conv, 3:max_pool, 4:attention and head:gap. The blue bars are small for fc and dwsep_conv, tall for dilated_conv (about 1.05 million) and empty for max_pool and the head; the attention bar, the tallest at about 1.31 million, is red and labelled largest."}}
ax = plots.layer_bars(table.index, table["FLOPs"], highlight=int(np.argmax(table["FLOPs"])),
                      highlight_label="largest", ylabel="FLOPs (batch of one)")
ax.set_title("Where the FLOPs of the example architecture go");

# %% [markdown]
# On 32 pooled steps the attention layer is already the most expensive, and the dilated
# convolution is second, mostly because it doubles the width to 64 channels: FLOPs grow
# with the *product* of input and output channels.
#
# ### The check on many architectures
#
# One example proves little. The cell below samples 50 architectures from the default
# space and 10 from each of the mobile, FPGA and GPU spaces, runs each model under
# `FlopCounterMode` and demands exact equality, for a batch of one and a batch of 8
# (FLOPs scale linearly with the batch).

# %%
rng = np.random.default_rng(SEED)
draws = [("default", 50), ("mobile", 10), ("fpga", 10), ("gpu", 10)]
ours, theirs = [], []
for name, count in draws:
    space = SearchSpace.named(name)
    for _ in range(count):
        a = space.sample(rng)
        m = build_model(a, seed=SEED)
        ours.append(count_flops(a))
        theirs.append(measure_flops(m, torch.randn(1, a.input_features, a.lookback)))
        assert ours[-1] == theirs[-1], a.summary()
        batch = torch.randn(8, a.input_features, a.lookback)
        assert count_flops(a, batch_size=8) == measure_flops(m, batch) == 8 * ours[-1]
print(f"{len(ours)} architectures: count_flops == FlopCounterMode for all of them")
print(f"FLOPs range from {min(ours):,} to {max(ours):,}")

# %% mystnb={"figure": {"caption": "`count_flops` agrees with PyTorch's `FlopCounterMode` to the FLOP on all 80 random architectures, from 141,376 to 25,034,880 FLOPs: every point lies on the diagonal."}, "image": {"alt": "Scatter plot on log-log axes of count_flops (hwnas) on the y axis against FlopCounterMode (PyTorch) on the x axis, both from about 10^5 to 3 x 10^7 FLOPs, with a grey dashed y = x line; all 80 blue points sit exactly on the line."}}
ax = plots.parity(theirs, ours, xlabel="FlopCounterMode (PyTorch)", ylabel="count_flops (hwnas)")
ax.set_title("FLOPs of 80 random architectures");

# %% [markdown]
# Every point lies on the diagonal, across more than two orders of magnitude. From here on the
# course trusts `count_flops` without running a model, which is what makes it useful
# inside a search: it costs microseconds and needs no weights.

# %% [markdown]
# ## Depthwise separable convolution: the cheap convolution
#
# A standard convolution mixes time and channels in one step. A depthwise separable
# convolution splits the work: a $K$-tap filter per channel, then a $1\times1$
# convolution that mixes channels {cite:p}`howard2017mobilenets`. Dividing the two
# formulas,
#
# $$
# \frac{\mathrm{FLOPs}_{\mathrm{dwsep}}}{\mathrm{FLOPs}_{\mathrm{conv}}}
# = \frac{2 L_{\mathrm{out}} K C_{\mathrm{in}} + 2 L_{\mathrm{out}} C_{\mathrm{in}} C_{\mathrm{out}}}
#        {2 L_{\mathrm{out}} K C_{\mathrm{in}} C_{\mathrm{out}}}
# = \frac{1}{C_{\mathrm{out}}} + \frac{1}{K} ,
# $$
#
# independent of the sequence length and of $C_{\mathrm{in}}$. The identity is exact,
# which the cell checks with fractions.

# %%
# NBVAL_CHECK_OUTPUT
ratios = {}
for k in (3, 5, 7):
    for c_out in (16, 32, 64):
        conv = LayerSpec(OpType.CONV, 32, c_out, kernel_size=k)
        dwsep = LayerSpec(OpType.DWSEP_CONV, 32, c_out, kernel_size=k)
        ratio = Fraction(layer_flops(dwsep, L), layer_flops(conv, L))
        assert ratio == Fraction(1, c_out) + Fraction(1, k)
        ratios[(f"K={k}", f"C_out={c_out}")] = float(ratio)
savings = pd.Series(ratios).unstack().round(3)
print("FLOPs of dwsep_conv / conv (same K, C_in = 32, C_out, L)")
print(savings.to_string())

# %% [markdown]
# With $K = 7$ and 64 output channels the separable version needs
# $1/64 + 1/7 \approx 0.16$ of the FLOPs.
# The saving is bounded by $1/K$: once $C_{\mathrm{out}}$ is large, the pointwise
# $1\times1$ step dominates and a larger kernel is almost free. This is why depthwise
# separable blocks are the workhorse of mobile networks and of the FPGA space of
# {doc}`01_search_space`. Whether they are also *faster* is another question: they do
# less arithmetic per byte moved, and {doc}`04_latency_lut` measures them.

# %% [markdown]
# ## Lookback length: convolution against attention
#
# For a layer of width $d$ on $n$ steps, a same-width convolution costs $2nKd^2$,
# linear in $n$. Attention costs $4n^2d + 8nd^2$, quadratic in $n$. Setting the two
# equal and dividing by $2nd$ gives the length at which they cross:
#
# $$
# 2n^\star d + 4 d^2 = K d^2
# \quad\Longrightarrow\quad
# n^\star = \frac{d\,(K - 4)}{2} .
# $$
#
# Below $n^\star$ attention is the cheaper layer; above it, the convolution. For
# $K \le 4$ there is no crossover: attention's four projections alone already cost more
# than the convolution. With the chapter's one-projection formula the crossover would
# be at $d(K-1)/2$, later than in a real layer.

# %%
d, K = 64, 7
conv_spec = LayerSpec(OpType.CONV, d, d, kernel_size=K)
dwsep_spec = LayerSpec(OpType.DWSEP_CONV, d, d, kernel_size=K)
attn_spec = LayerSpec(OpType.ATTENTION, d, d, heads=4)
lengths = np.unique(np.geomspace(8, 2048, 33).round().astype(int))
curves = {
    f"attention (d={d})": [layer_flops(attn_spec, int(n)) for n in lengths],
    f"conv (K={K}, d={d})": [layer_flops(conv_spec, int(n)) for n in lengths],
    f"dwsep_conv (K={K}, d={d})": [layer_flops(dwsep_spec, int(n)) for n in lengths],
}
crossover = d * (K - 4) / 2
assert layer_flops(attn_spec, int(crossover)) == layer_flops(conv_spec, int(crossover))
assert all(
    (layer_flops(attn_spec, n) > layer_flops(conv_spec, n)) == (n > crossover) for n in range(2, 1024)
)
print(f"crossover at n* = {crossover:g} steps: both cost {layer_flops(conv_spec, int(crossover)):,} FLOPs")
for n in (96, 672):  # a day and a week of 15-minute bars
    print(f"n = {n}: attention / conv = {layer_flops(attn_spec, n) / layer_flops(conv_spec, n):.2f}, "
          f"attention / dwsep_conv = {layer_flops(attn_spec, n) / layer_flops(dwsep_spec, n):.1f}")
glue("week_attn_conv", layer_flops(attn_spec, 672) / layer_flops(conv_spec, 672), display=False)
glue("week_attn_dwsep", layer_flops(attn_spec, 672) / layer_flops(dwsep_spec, 672), display=False)
for n in (128, 1024):
    print(f"doubling n from {n} to {2 * n}: attention x{layer_flops(attn_spec, 2 * n) / layer_flops(attn_spec, n):.2f}, "
          f"conv x{layer_flops(conv_spec, 2 * n) / layer_flops(conv_spec, n):.2f}")

# %% mystnb={"figure": {"caption": "Attention's cost grows quadratically with the lookback and overtakes a same-width $K=7$ convolution at $n^\\star = 96$ steps; for a week of bars ($n = 672$) it costs {glue:text}`week_attn_conv:.2f` times the convolution and {glue:text}`week_attn_dwsep:.1f` times the separable one."}, "image": {"alt": "Line chart on log-log axes of FLOPs per sequence (about 10^5 to 10^9) against the sequence length n in steps (2^3 to 2^11). Three lines with dot markers: conv (K=7, d=64, orange) and dwsep_conv (K=7, d=64, green) are straight parallel lines, dwsep about six times lower; attention (d=64, blue) starts below conv and climbs more steeply, crossing it at a dotted vertical line labelled crossover n = 96."}}
ax = plots.flops_vs_length(lengths, curves, crossover=crossover)
ax.set_title("One layer of width 64: FLOPs against the lookback");

# %% [markdown]
# On a log-log plot a linear cost is a line of slope 1 and a quadratic one bends
# towards slope 2. For a day of 15-minute bars ($n = 96$) a width-64 attention layer
# costs as much as a $K=7$ convolution; for a week ($n = 672$) it costs three and a half
# times as much, and more than twenty times as much as the separable convolution. This is the
# reference chapter's warning in numbers: attention-based models get expensive for long
# lookback windows, and a search space with attention must search the lookback too.

# %% [markdown]
# ## What the FLOP count leaves out
#
# `FlopCounterMode` counts matrix products and convolutions and nothing else: bias
# additions, activation functions, the softmax and scaling inside attention, pooling,
# residual additions and memory copies are all zero FLOPs. We can see this work by
# recording every low-level (`aten`) operator PyTorch dispatches while the model runs,
# with the number of values each one writes. Operators in
# `torch.utils.flop_counter.flop_registry` are the counted ones; views (transposes,
# reshapes) write nothing and are left out. Which operators appear depends on the
# PyTorch version (a 1-D max pooling runs as a 2-D one here, for instance); the
# picture does not. `hwnas.cost_measure.OperatorLog` is such a recorder: a PyTorch dispatch
# mode whose `values` counts the values each operator writes and whose `counted` holds
# the operators `FlopCounterMode` counts.

# %%
log = OperatorLog()
x = torch.randn(1, arch.input_features, arch.lookback)
with torch.no_grad(), log:  # no_grad, not inference_mode: we want the aten operators
    model(x)
ops = pd.DataFrame({"values written": pd.Series(log.values)})
ops["counted as FLOPs"] = [name in log.counted for name in ops.index]
ops = ops.sort_values(["counted as FLOPs", "values written"], ascending=False)

# %%
print(ops.to_string())
uncounted = ops.loc[~ops["counted as FLOPs"], "values written"].sum()
print(f"uncounted operators write {uncounted:,} values; the counted ones perform "
      f"{count_flops(arch):,} FLOPs")

# %% [markdown]
# The uncounted operators do little arithmetic, but each value they write was first
# read from memory and must be written back: they are limited by memory bandwidth, not
# by the multipliers. On a CPU or GPU a layer that does nothing but an activation, a
# softmax or a pooling step still takes time, and every operator call has a fixed
# overhead (a kernel launch on a GPU, dispatch in PyTorch) whatever its size. A quick
# side-by-side timing on this machine with the library's timing harness
# (`hwnas.latency.time_module`: one thread, warm-up, then the median of 300 timed runs;
# the numbers vary from machine to machine and run to run):

# %%
timed = {
    "identity": LayerSpec(OpType.IDENTITY, 64, 64, activation="none"),
    "max_pool": LayerSpec(OpType.MAX_POOL, 64, 64, kernel_size=2, stride=2, activation="none"),
    "fc 64->64 + relu": LayerSpec(OpType.FC, 64, 64),
    "conv k7 64->64 + relu": LayerSpec(OpType.CONV, 64, 64, kernel_size=7),
}
x = torch.randn(1, 64, 128)
FIXED_300 = TimingSpec.CALL.replace(min_reps=300, max_reps=300)  # exactly 300 timed runs
for what, spec in timed.items():
    timing = time_module(build_layer(spec), x, threads=1, timing=FIXED_300)
    print(f"{what:<22} {layer_flops(spec, 128):>10,} FLOPs  {timing.median_us:8.1f} µs")

# %% [markdown]
# Zero FLOPs is not zero microseconds, and FLOPs and time are not even proportional:
# the small layers are dominated by fixed per-call overhead. For the tiny networks of
# trading (kilo- to mega-FLOPs), that overhead is a large part of the total. This is the
# reference chapter's "FLOPs alone are insufficient" in practice, and the reason
# {doc}`04_latency_lut` replaces FLOPs by a latency lookup table measured on the target device
# {cite:p}`wu2019fbnet,zhang2021nnmeter`.

# %% [markdown]
# ## Summary
#
# - One multiply-add is two FLOPs. In 1-D: convolution $2L_{\mathrm{out}}KC_{\mathrm{in}}C_{\mathrm{out}}$,
#   depthwise $2L_{\mathrm{out}}KC$, fully connected $2C_{\mathrm{in}}C_{\mathrm{out}}$
#   per step, self-attention $4n^2d + 8nd^2$ (four projections; the reference chapter's
#   $2nd^2$ counts one), a gated convolution two convolutions, a GRU ($G = 3$) or LSTM
#   ($G = 4$) $2LGH(C_{\mathrm{in}} + H)$: matrix products only, the gate arithmetic is
#   not counted.
# - `cost_breakdown` and `count_flops` reproduce `FlopCounterMode` exactly, per layer and
#   in total, for any architecture and batch size, without running a model.
# - A depthwise separable convolution costs $1/C_{\mathrm{out}} + 1/K$ of a standard
#   one.
# - Attention overtakes a same-width convolution at $n^\star = d(K-4)/2$ steps and grows
#   quadratically after that: long lookbacks and attention do not mix cheaply.
# - FLOPs ignore activations, softmax, pooling, adds and copies, and every operator's
#   fixed overhead, so they rank architectures only roughly by latency.
#
# Next, {doc}`03_memory` asks the other hardware question: does the model fit?

# %% [markdown]
# ## Exercises
#
# **1.** Compute by hand the FLOPs of a `conv` layer with $K=5$, stride 2,
# $C_{\mathrm{in}} = 32$, $C_{\mathrm{out}} = 64$ on 64 steps (the layer pads 2 steps
# on each side). Then check your number with `layer_flops` and `FlopCounterMode`.
#
# :::{dropdown} Solution
# The output length is $\lfloor (64 + 2\cdot 2 - 5)/2 \rfloor + 1 = 32$, so the layer
# costs $2 \cdot 32 \cdot 5 \cdot 32 \cdot 64 = 655{,}360$ FLOPs, half of the stride-1
# layer: a stride divides the number of output positions, and with it the work.
# :::

# %% tags=["hide-cell"]
strided = LayerSpec(OpType.CONV, 32, 64, kernel_size=5, stride=2)
assert strided.output_length(64) == 32
assert layer_flops(strided, 64) == 2 * 32 * 5 * 32 * 64 == measure_flops(build_layer(strided), torch.randn(1, 32, 64))
print(f"{layer_flops(strided, 64):,} FLOPs")

# %% [markdown]
# **2.** A 128-bar lookback, a layer of width $d$: for which widths is a 4-head
# attention layer cheaper than a $K=7$ convolution of the same width? Use the crossover
# formula, then confirm with `layer_flops` for $d \in \{64, 80, 96, 128\}$.
#
# :::{dropdown} Solution
# Attention is cheaper when $n < d(K-4)/2$, i.e. when $d > 2n/(K-4) = 256/3 \approx 85.3$.
# So at $n = 128$ attention is more expensive for $d = 64$ and $80$ and cheaper for
# $d = 96$ and $128$: wide, short models favour attention, narrow, long ones favour
# convolutions.
# :::

# %% tags=["hide-cell"]
for width in (64, 80, 96, 128):
    a_cost = layer_flops(LayerSpec(OpType.ATTENTION, width, width, heads=4), 128)
    c_cost = layer_flops(LayerSpec(OpType.CONV, width, width, kernel_size=7), 128)
    assert (a_cost < c_cost) == (width > 256 / 3)
    print(f"d={width:<4} attention {a_cost:>10,}  conv {c_cost:>10,}  cheaper: {'attention' if a_cost < c_cost else 'conv'}")

# %% [markdown]
# **3.** The head of the example architecture uses global average pooling (`gap`). How
# many FLOPs would a `flatten` head add instead, and how many parameters? Build the
# variant with `dataclasses.replace(arch, head="flatten")` and compare the last rows of
# `cost_breakdown`.
#
# :::{dropdown} Solution
# The last layer outputs 64 channels by 32 steps. `gap` averages over time and feeds 64
# numbers to the linear layer: $2 \cdot 64 = 128$ FLOPs and 65 parameters. `flatten`
# feeds all $64 \cdot 32 = 2048$ numbers: $4096$ FLOPs and $2049$ parameters. Still
# small here, but the flatten head grows with the lookback, which is why the search
# spaces of this course only offer `gap` and `last`.
# :::

# %% tags=["hide-cell"]
flat = dataclasses.replace(arch, head="flatten")
head_gap, head_flat = cost_breakdown(arch)[-1], cost_breakdown(flat)[-1]
assert (head_gap.flops, head_gap.params) == (128, 65)
assert (head_flat.flops, head_flat.params) == (4096, 2049)
print(head_gap, head_flat, sep="\n")
