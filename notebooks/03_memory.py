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
# # 03 · Memory footprint
#
# A model that does not fit on its device is as useless as one that answers too late.
# This chapter estimates how much memory an architecture needs for inference, before
# building it: the bytes of its parameters and the bytes of the activations that must
# be alive at the same time. It then checks the estimate against what PyTorch really
# allocates, and applies it to two budgets from trading: a 10 MB model in a retail app
# and an edge box with 4 GB shared with everything else.
#
# **You will learn**
#
# - the reference chapter's memory model, $\mathrm{MEM} = \mathrm{MEM}_{\mathrm{params}} + \mathrm{MEM}_{\mathrm{activations}}$,
#   and how precision (fp32, fp16, int8) enters it;
# - how to compute it with `memory_footprint`, layer by layer, and which layer sets the
#   peak;
# - how far the textbook schedule model is from what eager PyTorch holds, measured with
#   `measure_activation_peak`, and why attention widens the gap;
# - how to decide whether a model fits a size limit or a shared memory budget, and how
#   large a batch can be;
# - how parameter-efficient operations shrink a model.
#
# **Prerequisites**: {doc}`01_search_space` and {doc}`02_flops`.

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
from hwnas.cost import (
    bytes_per_value,
    cost_breakdown,
    count_params,
    max_batch_size,
    memory_footprint,
)
from hwnas.cost_measure import measure_activation_peak
from hwnas.model import build_model
from hwnas.space import SearchSpace

SEED = 2024
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
print(f"hwnas {hwnas.__version__}, torch {torch.__version__}, seed {SEED}")

# %% [markdown]
# ## Two kinds of memory
#
# Inference needs the weights, and room for the intermediate results (the
# activations). The reference chapter writes
#
# $$
# \mathrm{MEM}(a) = \mathrm{MEM}_{\mathrm{params}}(a) + \mathrm{MEM}_{\mathrm{activations}}(a),
# \qquad
# \mathrm{MEM}_{\mathrm{params}} = \sum_{i=1}^{L} \lvert\theta_i\rvert \cdot b ,
# $$
#
# where $\lvert\theta_i\rvert$ is the number of parameters of layer $i$ and $b$ the
# bytes per stored number: 4 for fp32, 2 for fp16, 1 for int8. Parameters stay in
# memory for the life of the model. Activations come and go: when layers run one after
# another, layer $i$ needs its input $x_i$ and its output $x_{i+1}$ at the same time,
# and everything older can be freed. The {term}`activation memory` is therefore set by
# the worst layer,
#
# $$
# \mathrm{MEM}_{\mathrm{activations}} = \max_i \bigl(\mathrm{size}(x_i) + \mathrm{size}(x_{i+1})\bigr) \cdot b ,
# $$
#
# with $\mathrm{size}(x)$ the number of values in a tensor (channels times length times
# batch). This is the *schedule model*: it depends only on the shapes, which the
# architecture knows.
#
# The example of this chapter is a deeper network with skip connections, on 128 bars:

# %%
arch = Architecture(
    [
        LayerSpec(OpType.FC, 8, 32),
        LayerSpec(OpType.CONV, 32, 64, kernel_size=5, use_skip=True),
        LayerSpec(OpType.DWSEP_CONV, 64, 64, kernel_size=3, use_skip=True),
        LayerSpec(OpType.MAX_POOL, 64, 64, kernel_size=2, stride=2, activation="none"),
        LayerSpec(OpType.DILATED_CONV, 64, 128, kernel_size=3, dilation=2),
        LayerSpec(OpType.ATTENTION, 128, 128, heads=4, activation="gelu", use_skip=True),
        LayerSpec(OpType.AVG_POOL, 128, 128, kernel_size=2, stride=2, activation="none"),
        LayerSpec(OpType.FC, 128, 64),
    ],
    input_features=8,
    lookback=128,
    head="gap",
)
print(arch.summary())

# %% [markdown]
# The parameter term by hand, from the per-layer parameter counts of
# `cost_breakdown`, checked against the built PyTorch model:

# %%
# NBVAL_CHECK_OUTPUT
per_layer_params = [row.params for row in cost_breakdown(arch)]
model = build_model(arch, seed=SEED)
assert sum(per_layer_params) == count_params(arch) == sum(p.numel() for p in model.parameters())
for precision in ("fp32", "fp16", "int8"):
    b = bytes_per_value(precision)
    assert memory_footprint(arch, precision).params_bytes == sum(per_layer_params) * b
    print(f"{precision}: {sum(per_layer_params):,} parameters x {b} B = {sum(per_layer_params) * b:,} B")

# %% [markdown]
# And the activation term, straight from the formula over `arch.shapes()`:

# %%
# NBVAL_CHECK_OUTPUT
def chapter_activation_values(arch: Architecture) -> int:
    """max_i size(x_i) + size(x_{i+1}), in values, for a batch of one."""
    sizes = [channels * length for channels, length in arch.shapes()]
    return max(a + b for a, b in zip(sizes, sizes[1:]))


values = chapter_activation_values(arch)
footprint = memory_footprint(arch, "fp32")
print(f"chapter formula : {values:,} values = {4 * values:,} B at fp32")
print(f"memory_footprint: {footprint.activation_bytes // 4:,} values = {footprint.activation_bytes:,} B "
      f"(peak at layer {footprint.peak_layer})")

# %% [markdown]
# The library's figure is larger, and the difference is the skip connections. The
# formula assumes a layer holds only its input and its output. A residual layer
# $y = \mathrm{act}(\mathrm{op}(x)) + \mathrm{shortcut}(x)$ also holds the branch result
# $\mathrm{act}(\mathrm{op}(x))$ until the addition, and, when the shortcut needs a
# $1\times1$ projection, the projected $x$ as well: one or two more tensors of the output
# size. `memory_footprint` adds them, and agrees with the formula on a chain without
# skips:

# %%
no_skips = Architecture(
    [dataclasses.replace(layer, use_skip=False) for layer in arch.layers],
    input_features=arch.input_features, lookback=arch.lookback,
)
assert memory_footprint(no_skips).activation_bytes == 4 * chapter_activation_values(no_skips)
i = footprint.peak_layer
peak = arch.layers[i]
sizes = [channels * length for channels, length in arch.shapes()]
extra = sizes[i + 1] * (2 if peak.needs_projection else 1)  # branch result (+ projection)
assert footprint.activation_bytes == 4 * (sizes[i] + sizes[i + 1] + extra)
print(f"without skips the formula and the library agree; layer {footprint.peak_layer} ({peak.op.value}) "
      f"keeps {extra:,} extra values for its skip")

# %% [markdown]
# ## One architecture at three precisions
#
# Precision multiplies both terms by $b$. `memory_footprint(arch, precision, batch_size)`
# returns the parameter bytes, the activation bytes of the schedule model, their sum
# `total_bytes` (the chapter's MEM), and `eager_activation_bytes`, a second activation
# estimate we meet in the next section.

# %%
# NBVAL_CHECK_OUTPUT
footprints = {p: memory_footprint(arch, p) for p in ("fp32", "fp16", "int8")}
table = pd.DataFrame(
    {p: {"bytes per value": bytes_per_value(p), "parameters": f.params_bytes,
         "activations (schedule)": f.activation_bytes, "total": f.total_bytes,
         "activations (eager)": f.eager_activation_bytes}
     for p, f in footprints.items()}
)
print(table.to_string())
share = footprints["fp32"].params_bytes / footprints["fp32"].total_bytes
print(f"parameters are {100 * share:.0f} % of the fp32 total")
assert footprints["fp32"].total_bytes == 2 * footprints["fp16"].total_bytes == 4 * footprints["int8"].total_bytes

# %% [markdown]
# About 580 kB at fp32, four fifths of it parameters. Trading models on a few hundred
# bars are small; the budgets below show when that stops being true. (The eager
# activation figure, more than twice the schedule model's, is explained in the next
# section.)
#
# Where does the activation peak come from? `per_layer_activation_bytes` holds the
# schedule model's live bytes while each layer runs.

# %% mystnb={"figure": {"caption": "The schedule model's peak, 114,688 B, sits in layer 1, the convolution that widens to 64 channels on all 128 steps with a projected skip; after the first pooling even 128 channels cost less, and what eager PyTorch really holds (dashed, 299,008 B) is more than twice as high."}, "image": {"alt": "Bar chart of live activation memory at fp32 (y axis in bytes, 0 B to 300 kB) for eight layers: 0:fc, 1:conv +skip, 2:dwsep_conv +skip, 3:max_pool, 4:dilated_conv, 5:attention +skip, 6:avg_pool and 7:fc. The red bar of layer 1, labelled peak, is the tallest at about 115 kB; layers 2 and 5 reach about 100 kB and the others 20 to 50 kB. A grey dashed horizontal line near 300 kB is labelled eager PyTorch peak."}}
labels = [f"{i}:{layer.op.value}{' +skip' if layer.use_skip else ''}" for i, layer in enumerate(arch.layers)]
ax = plots.layer_bars(labels, footprint.per_layer_activation_bytes, highlight=footprint.peak_layer,
                      ylabel="live activations (fp32)", byte_units=True,
                      reference=footprint.eager_activation_bytes, reference_label="eager PyTorch peak")
ax.set_title("Activation memory while each layer runs (batch of one)");

# %% [markdown]
# The peak sits in the convolution that widens to 64 channels on all 128 steps with a
# projected skip: widening early, before any pooling, is what costs activation memory.
# After the first pooling the sequence is half as long and even 128 channels cost less.
# The dashed line, what eager PyTorch actually holds, is more than twice as high.

# %% [markdown]
# ### Recurrent and gated layers: state and gate buffers
#
# A recurrent layer keeps its weights small and its state smaller. A GRU ($G = 3$ gate
# blocks) or LSTM ($G = 4$) of hidden size $H$ stores $W_{ih}$ ($GH \times C_{\mathrm{in}}$),
# $W_{hh}$ ($GH \times H$) and, in PyTorch, two bias vectors of $GH$:
#
# $$
# \lvert\theta_{\mathrm{rec}}\rvert = G H (C_{\mathrm{in}} + H) + 2 G H ,
# $$
#
# the same for any lookback. Run one step at a time, it holds besides its input and
# its output sequence the $GH$ gate pre-activations of the current step and, for the
# LSTM, the cell state $c_t$ ($H$ values; the hidden state $h_t$ is the output column
# being written): the schedule model adds $GH + (S - 1) H$ values, with $S$ the
# number of state vectors (GRU 1, LSTM 2). A gated convolution holds its two branch maps
# (the product overwrites one): one more tensor of the output size. These extra
# buffers are gone before a skip branch is added, so a layer holds the larger of the two
# extras. Eager PyTorch holds more for a recurrent layer: its whole sequence of states,
# the final state(s) it also returns ($SH$), and the channels-first copy the next layer
# reads, $2\,\mathrm{size}(x_{\mathrm{out}}) + SH$ beside the input; for the gated
# layer $\tanh$, $\sigma$ and their product, three output-sized tensors.

# %%
# NBVAL_CHECK_OUTPUT
H, C_IN, N = 64, 32, 128
rows = {}
for op in (OpType.GRU, OpType.LSTM, OpType.GATED_TCN):
    spec = LayerSpec(op, C_IN, H, kernel_size=3 if op == OpType.GATED_TCN else 1, activation="none")
    one = Architecture([spec], C_IN, N)
    f = memory_footprint(one)
    measured = measure_activation_peak(build_model(one, seed=SEED), torch.randn(1, C_IN, N))
    assert measured == f.eager_activation_bytes
    x_in, x_out = C_IN * N, H * N
    if op == OpType.GATED_TCN:
        params, inner = 2 * (3 * C_IN * H + H), x_out
    else:
        gates, states = (3, 1) if op == OpType.GRU else (4, 2)
        params, inner = gates * H * (C_IN + H) + 2 * gates * H, gates * H + (states - 1) * H
    assert cost_breakdown(one)[0].params == params and f.activation_bytes == 4 * (x_in + x_out + inner)
    rows[op.value] = {"parameters": params, "schedule buffers (values)": inner,
                      "schedule (B)": f.activation_bytes, "eager = measured (B)": measured}
rec_memory = pd.DataFrame(rows).T
print(f"one layer {C_IN} -> {H} channels on {N} steps, fp32, batch 1")
print(rec_memory.to_string())
glue("lstm_params", int(rec_memory.loc["lstm", "parameters"]), display=False)
glue("lstm_gate_values", int(rec_memory.loc["lstm", "schedule buffers (values)"]), display=False)
glue("lstm_eager_ratio", float(rec_memory.loc["lstm", "eager = measured (B)"] / rec_memory.loc["lstm", "schedule (B)"]),
     display=False)

# %% [markdown]
# The LSTM's {glue:text}`lstm_params:,d` parameters do not grow with the window, and
# its step buffers are only {glue:text}`lstm_gate_values:,d` values: a runtime that
# writes each step's state straight into the output needs little more than input plus
# output. Eager PyTorch holds {glue:text}`lstm_eager_ratio:.2f` times the schedule
# model's figure, the price of returning the sequence and then copying it to the
# channels-first layout.

# %% [markdown]
# ## The schedule model against eager PyTorch
#
# The schedule model is an idealisation: a runtime that computes each layer straight
# into its output buffer. Eager PyTorch creates more temporaries. An activation function
# writes a new tensor beside the operation's output; a depthwise separable layer keeps
# its depthwise result until the pointwise step is done; attention materialises the
# fused $Q, K, V$ tensor and score matrices of $h \cdot n^2$ values ($n \times n$ per
# head), and its softmax writes another set; and the caller still holds the model input.
# `eager_activation_bytes` models those temporaries too.
#
# `measure_activation_peak(model, x)` measures the truth: it watches every tensor the
# forward pass creates and frees, and reports the largest number of bytes alive at
# once (weights excluded, input included). Over 100 random architectures of the default
# space:

# %%
rng = np.random.default_rng(SEED)
space = SearchSpace.default()
records = []
for _ in range(100):
    a = space.sample(rng)
    f = memory_footprint(a)
    measured = measure_activation_peak(build_model(a, seed=SEED), torch.randn(1, a.input_features, a.lookback))
    records.append({"schedule": f.activation_bytes, "eager": f.eager_activation_bytes, "measured": measured,
                    "attention": any(layer.op == OpType.ATTENTION for layer in a.layers)})
memory = pd.DataFrame(records)
memory["schedule / measured"] = memory["schedule"] / memory["measured"]
exact = int((memory["eager"] == memory["measured"]).sum())
print(f"eager estimate == measured peak for {exact} of {len(memory)} architectures")
print(memory.groupby("attention")["schedule / measured"].describe()[["count", "min", "50%", "max"]].round(2))
assert exact == len(memory)
plain, with_attention = (memory.loc[memory["attention"] == flag, "schedule / measured"] for flag in (False, True))
glue("schedule_plain_median", float(plain.median()), display=False)
glue("schedule_plain_min", float(plain.min()), display=False)
glue("schedule_attention_median", float(with_attention.median()), display=False)
glue("schedule_attention_min", float(with_attention.min()), display=False)
glue("n_plain", len(plain), display=False)
glue("n_attention", len(with_attention), display=False)

# %% mystnb={"figure": {"caption": "The schedule model never sees the whole real peak: for the {glue:text}`n_plain` architectures without attention it sees a median {glue:text}`schedule_plain_median:.0%` of it (at worst {glue:text}`schedule_plain_min:.0%`), for the {glue:text}`n_attention` with attention a median {glue:text}`schedule_attention_median:.0%` (down to {glue:text}`schedule_attention_min:.0%`), because it misses the score matrices."}, "image": {"alt": "Overlaid histograms of the ratio schedule model / measured eager peak (x axis, 0 to 1.05) counting architectures (y axis): without attention (blue, most of them) piles up just below 1.0 with a smaller cluster between 0.5 and 0.8; with attention (orange, the fewer) is spread thinly from below 0.1 to about 0.8. A grey dashed vertical line marks a ratio of 1."}}
ax = plots.ratio_histogram(
    {"without attention": memory.loc[~memory["attention"], "schedule / measured"],
     "with attention": memory.loc[memory["attention"], "schedule / measured"]},
    bins=np.linspace(0, 1.05, 22), xlabel="schedule model / measured eager peak",
)
ax.set_title("How much of the real activation peak the chapter's model sees");

# %% [markdown]
# Two results. The eager estimate reproduces the measurement byte for byte on every
# architecture, so the library can predict PyTorch's real peak without running
# anything. And the chapter's schedule model *underestimates*: for convolutional
# networks it sees a median {glue:text}`schedule_plain_median:.0%` of the real peak, at
# worst {glue:text}`schedule_plain_min:.0%` (the copies that activation functions make);
# with attention a median {glue:text}`schedule_attention_median:.0%`,
# because the $h \cdot n^2$ score matrices are not inputs or outputs of any layer and the
# schedule model never sees them. On a runtime that fuses attention, computing the
# softmax tile by tile without ever storing the score matrix as FlashAttention does
# {cite:p}`dao2022flashattention`, the schedule model would be closer;
# for eager PyTorch, budget with `eager_activation_bytes`.

# %% [markdown]
# ## Budgets
#
# ### A retail app: 10 MB
#
# App stores and download times keep a retail trading app's model to roughly 10 MB.
# The default space is nowhere near that: its largest models need well under a
# megabyte.

# %%
LIMIT = 10 * 10**6  # bytes
rng = np.random.default_rng(SEED)
largest = max(memory_footprint(space.sample(rng)).eager_total_bytes for _ in range(1000))
print(f"largest of 1000 default-space models, eager total at fp32: {largest / 1e6:.2f} MB")

# %% [markdown]
# To see the limit bite, take a space a research team might start from: widths of
# 128, 256 and 512 channels, a 64-channel stem and lookbacks of 256 to 1024 bars (1024
# 15-minute bars are about ten and a half days). Everything else is as in the default
# space. For 1000 samples, the share that fits 10 MB at each precision:

# %%
wide = SearchSpace.default(widths=(128, 256, 512), lookbacks=(256, 512, 1024), stem_width=64)
rng = np.random.default_rng(SEED)
wide_archs = [wide.sample(rng) for _ in range(1000)]
shares = {}
for precision in ("fp32", "fp16", "int8"):
    fps = [memory_footprint(a, precision) for a in wide_archs]
    shares[precision] = float(np.mean([f.eager_total_bytes <= LIMIT for f in fps]))
    schedule_share = np.mean([f.fits(LIMIT) for f in fps])
    print(f"{precision}: {100 * shares[precision]:5.1f} % fit (eager), {100 * schedule_share:5.1f} % by the schedule model")
glue("share_fp32", shares["fp32"], display=False)
glue("share_fp16", shares["fp16"], display=False)
glue("share_int8", shares["int8"], display=False)

# %% mystnb={"figure": {"caption": "Of 1000 samples of the wide space, {glue:text}`share_fp32:.1%` fit 10 MB at fp32, {glue:text}`share_fp16:.1%` at fp16 and {glue:text}`share_int8:.1%` at int8 (eager estimate): fewer bytes per stored number is the memory argument for quantization."}, "image": {"alt": "Bar chart of the share of architectures within 10 MB (y axis, 0 to 100 %) for three precisions, each bar labelled with its percentage: fp32 68 %, fp16 94 %, int8 99 %."}}
ax = plots.share_bars(shares, ylabel="architectures within 10 MB")
ax.set_title("Wide space: share of 1000 samples that fit 10 MB");

# %% [markdown]
# Going from fp32 to fp16 takes the share from {glue:text}`share_fp32:.0%` to
# {glue:text}`share_fp16:.0%`, and int8 admits {glue:text}`share_int8:.0%`. That is the memory argument
# for {term}`quantization`; whether the int8 model still predicts as well is a separate
# question that {doc}`11_deployment` measures. Note also that the schedule model
# would admit more models than really fit: a budget check should use the conservative
# figure.
#
# ### An edge box: 4 GB, shared
#
# A co-located server or embedded box next to the exchange might have 4 GB in total,
# shared with the operating system, the market-data feed handlers and order management.
# Suppose they leave **1 GB** to the model. Parameters are paid once; activations are
# paid per window in the batch (the memory model is linear in the batch size $B$), so
# the largest batch that fits is
#
# $$
# B_{\max} = \left\lfloor \frac{M - \mathrm{MEM}_{\mathrm{params}}}{\mathrm{MEM}_{\mathrm{activations}}(B = 1)} \right\rfloor .
# $$
#
# The batch is how many windows (instruments, or horizons) the box scores in one call.
# First a check that the memory model is linear in $B$, measured on one wide model:

# %%
probe = wide_archs[0]
probe_model = build_model(probe, seed=SEED)
for batch in (1, 4):
    x = torch.randn(batch, probe.input_features, probe.lookback)
    measured = measure_activation_peak(probe_model, x)
    assert measured == memory_footprint(probe, batch_size=batch).eager_activation_bytes
assert memory_footprint(probe, batch_size=4).eager_activation_bytes == 4 * memory_footprint(probe).eager_activation_bytes
print(f"batch 1 and 4: measured = eager estimate; lookback {probe.lookback}, {count_params(probe):,} parameters")

# %% [markdown]
# Now $B_{\max}$ for the three wide-space samples with the smallest, median and largest
# per-window activation memory, at each precision, with the eager figure
# (`hwnas.max_batch_size(arch, precision, budget_bytes)`; `eager=False` gives the
# schedule model's $B_{\max}$ for comparison):

# %%
BUDGET = 10**9  # 1 GB of the box's 4 GB


by_activation = sorted(wide_archs, key=lambda a: memory_footprint(a).eager_activation_bytes)
picks = {"smallest": by_activation[0], "median": by_activation[len(by_activation) // 2],
         "largest": by_activation[-1]}
batches = pd.DataFrame(
    {name: {p: max_batch_size(a, p, BUDGET) for p in ("fp32", "fp16", "int8")} for name, a in picks.items()}
).T
batches["fp32 (schedule)"] = [max_batch_size(a, "fp32", BUDGET, eager=False) for a in picks.values()]
batches["params (MB, fp32)"] = [round(memory_footprint(a).params_bytes / 1e6, 1) for a in picks.values()]
batches["lookback"] = [a.lookback for a in picks.values()]
batches["attention"] = [any(layer.op == OpType.ATTENTION for layer in a.layers) for a in picks.values()]
print(batches.to_string())
big = picks["largest"]
assert memory_footprint(big, batch_size=int(batches.loc["largest", "fp32"])).eager_total_bytes <= BUDGET
assert memory_footprint(big, batch_size=int(batches.loc["largest", "fp32"]) + 1).eager_total_bytes > BUDGET
glue("batch_fp32", int(batches.loc["largest", "fp32"]), display=False)
glue("batch_fp16", int(batches.loc["largest", "fp16"]), display=False)
glue("batch_int8", int(batches.loc["largest", "int8"]), display=False)
glue("batch_schedule", int(batches.loc["largest", "fp32 (schedule)"]), display=False)

# %% mystnb={"figure": {"caption": "Memory grows linearly with the batch, so the 1 GB share limits how many windows one call can score: for the most activation-hungry wide model {glue:text}`batch_fp32` fit at fp32 ({glue:text}`batch_fp16` at fp16, {glue:text}`batch_int8` at int8), where the schedule model would promise {glue:text}`batch_schedule`."}, "image": {"alt": "Line chart on log-log axes of memory (10 MB to over 100 GB, decimal units) against batch size (2^0 to 2^12), four parallel straight lines with dot markers: fp32 (eager, blue) highest, then fp16 (eager, orange), int8 (eager, green) and fp32 (schedule model, red) lowest. A black dashed horizontal line at 1 GB is labelled budget 1 GB; the blue line crosses it between batch 16 and 32, the red one between 128 and 256."}}
batch_sizes = [2**k for k in range(0, 13)]
curves = {
    f"{p} (eager)": [memory_footprint(big, p, batch_size=b).eager_total_bytes for b in batch_sizes]
    for p in ("fp32", "fp16", "int8")
}
curves["fp32 (schedule model)"] = [memory_footprint(big, "fp32", batch_size=b).total_bytes for b in batch_sizes]
ax = plots.memory_vs_batch(batch_sizes, curves, budget=BUDGET)
ax.set_title("The most activation-hungry wide model against a 1 GB share");

# %% [markdown]
# For activation-heavy models the edge budget limits the *batch*, not the model: the
# parameters are a few megabytes, but every window of 1024 bars with attention costs
# tens of megabytes of scores. For that model the schedule model would promise a batch
# of {glue:text}`batch_schedule` where only {glue:text}`batch_fp32` fit, and a box that runs out of memory mid-session drops orders.
# The chapter's point stands: a 2 GB model is not deployable on a 4 GB box that
# must also run everything else, and the memory model tells you that before you build
# it.

# %% [markdown]
# ## Parameter-efficient operations
#
# The reference chapter's first recommendation for memory-bound edge devices is to use
# parameter-efficient operations such as depthwise separable convolutions
# {cite:p}`howard2017mobilenets`. Their
# parameter count is $K C_{\mathrm{in}} + C_{\mathrm{in}} C_{\mathrm{out}}$ (plus
# biases) instead of $K C_{\mathrm{in}} C_{\mathrm{out}}$, the same
# $\approx 1/C_{\mathrm{out}} + 1/K$ ratio as their FLOPs in {doc}`02_flops`. The cell
# below replaces every `conv` and `dilated_conv` of each wide-space sample by a
# `dwsep_conv` with the same kernel, dilation and width, and counts again.

# %%
def separable(arch: Architecture) -> Architecture:
    """``arch`` with every standard or dilated convolution made depthwise separable."""
    swap = (OpType.CONV, OpType.DILATED_CONV)
    layers = [dataclasses.replace(layer, op=OpType.DWSEP_CONV) if layer.op in swap else layer
              for layer in arch.layers]
    return dataclasses.replace(arch, layers=tuple(layers))


conv_heavy = [a for a in wide_archs if any(layer.op in (OpType.CONV, OpType.DILATED_CONV) for layer in a.layers)]
before = np.array([count_params(a) for a in conv_heavy])
after = np.array([count_params(separable(a)) for a in conv_heavy])
fit_before = np.mean([memory_footprint(a).eager_total_bytes <= LIMIT for a in conv_heavy])
fit_after = np.mean([memory_footprint(separable(a)).eager_total_bytes <= LIMIT for a in conv_heavy])
print(f"{len(conv_heavy)} wide samples with at least one convolution")
print(f"parameters after / before: median {np.median(after / before):.2f}, min {np.min(after / before):.2f}")
print(f"fit 10 MB at fp32: {100 * fit_before:.1f} % before, {100 * fit_after:.1f} % after")
assert (after <= before).all()

# %% [markdown]
# Making the convolutions separable shrinks the median wide model to about a third of
# its parameters, and nine in ten now fit 10 MB at fp32 without quantization. The
# activations barely change (a separable layer even holds one more intermediate), so
# this is a cure for parameter memory, not for the activation-bound edge case above.
# Whether the smaller model predicts as well is, again, for the search to find out:
# putting both kinds of operation in the space and a memory term in the objective lets
# it make that trade per layer.

# %% [markdown]
# ## Summary
#
# - $\mathrm{MEM} = \sum_i \lvert\theta_i\rvert\, b + \max_i(\mathrm{size}(x_i) + \mathrm{size}(x_{i+1}))\, b$,
#   with $b$ = 4, 2, 1 bytes for fp32, fp16, int8. `memory_footprint` computes it from
#   the architecture alone, per layer, at any precision and batch size; skips add the
#   tensors they keep alive.
# - The schedule model underestimates what eager PyTorch holds, mildly for
#   convolutional networks and badly with attention (score matrices);
#   `eager_activation_bytes` matches `measure_activation_peak` exactly.
# - A GRU or LSTM has $GH(C_{\mathrm{in}} + H) + 2GH$ parameters whatever the lookback;
#   run step by step it needs only its gate buffer ($GH$) and, for the LSTM, the cell
#   state beside input and output, while eager PyTorch also holds the returned sequence
#   and its channels-first copy.
# - Small trading models fit a 10 MB app budget easily; wide ones with long lookbacks
#   often do not at fp32, and fp16 or int8 storage, or depthwise separable convolutions,
#   bring most of them in.
# - On a shared edge box the activations, which grow with the batch and with $n^2$
#   under attention, decide how many windows can be scored at once.
#
# With FLOPs and memory in hand, the next chapter, {doc}`04_latency_lut`, turns to the
# quantity a trading SLA is written in: measured latency, collected into lookup tables.

# %% [markdown]
# ## Exercises
#
# **1.** Pool earlier: move the `max_pool` layer from position 3 to position 1, right
# after the stem, so that every later layer runs on 64 steps. Predict the new peak
# layer and by how much the schedule model's peak drops, then check with
# `memory_footprint`.
#
# :::{dropdown} Solution
# The old peak, the convolution widening from 32 to 64 channels with a projected skip,
# held $32 \cdot 128 + 3 \cdot 64 \cdot 128 = 28{,}672$ values. On 64 steps it holds
# half of that, and the largest layer is now the attention layer with its skip:
# input, output and branch result of $128 \cdot 64$ values each, $24{,}576$ values or
# 98,304 bytes at fp32, $1 - 24{,}576 / 28{,}672 \approx 0.14$ less. The peak drops by much less than half because the rest of
# the network was already running on 64 steps: pooling early helps only the layers it
# moves in front of.
# :::

# %% tags=["hide-cell"]
pool32 = dataclasses.replace(arch.layers[3], in_channels=32, out_channels=32)  # pools the 32-channel stem output
early = dataclasses.replace(arch, layers=(arch.layers[0], pool32, *arch.layers[1:3], *arch.layers[4:]))
f_early = memory_footprint(early)
print(f"peak {footprint.activation_bytes:,} B at layer {footprint.peak_layer} -> "
      f"{f_early.activation_bytes:,} B at layer {f_early.peak_layer} ({early.layers[f_early.peak_layer].op.value})")
assert f_early.activation_bytes == 4 * 3 * 128 * 64 and early.layers[f_early.peak_layer].op == OpType.ATTENTION

# %% [markdown]
# **2.** How many parameters can a model have to fit 10 MB at fp32, fp16 and int8 if
# its activation peak is 1 MB at fp32? Remember that activations scale with $b$ too.
#
# :::{dropdown} Solution
# At fp32: $(10 - 1)\,\text{MB} / 4\,\text{B} = 2.25$ million parameters. At fp16 the
# activations take $0.5\,\text{MB}$, leaving $9.5\,\text{MB} / 2\,\text{B} = 4.75$ million. At int8:
# $9.75\,\text{MB} / 1\,\text{B} = 9.75$ million. Quantizing to int8 quadruples the
# parameter budget and a bit more, because the activations shrink too.
# :::

# %% tags=["hide-cell"]
for precision in ("fp32", "fp16", "int8"):
    b = bytes_per_value(precision)
    activations = 10**6 * b // 4
    print(f"{precision}: {(LIMIT - activations) // b:,} parameters")

# %% [markdown]
# **3.** The attention layer of the example uses 4 heads. Using only
# `memory_footprint`, show how the eager activation peak grows with the number of heads
# (1, 2, 4, 8, 16, 32) while the schedule model does not move. Why?
#
# :::{dropdown} Solution
# Every head computes its own $n \times n$ score matrix, so the scores take
# $h \cdot n^2$ values however the width is split between heads; the projections and
# outputs do not depend on $h$. The schedule model only looks at layer inputs and
# outputs, which are the same for any $h$. Once the scores are the largest temporaries
# (here from 4 heads on), each extra head adds two score matrices (the scaled scores and
# the softmax) of $n^2 = 64^2$ values: 32 kB at fp32, so 32 heads need over a megabyte.
# :::

# %% tags=["hide-cell"]
def with_heads(arch: Architecture, heads: int) -> Architecture:
    """``arch`` with every attention layer split into ``heads`` heads."""
    layers = [dataclasses.replace(layer, heads=heads) if layer.op == OpType.ATTENTION else layer
              for layer in arch.layers]
    return dataclasses.replace(arch, layers=tuple(layers))


for heads in (1, 2, 4, 8, 16, 32):
    f = memory_footprint(with_heads(arch, heads))
    print(f"h={heads:<3} schedule {f.activation_bytes:>9,} B   eager {f.eager_activation_bytes:>9,} B")
