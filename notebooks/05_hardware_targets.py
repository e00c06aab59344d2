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
# # 05 · Hardware targets
#
# **Purpose.** One architecture can take a few microseconds on one chip and a
# hundred on another. The reference chapter names three deployment targets
# for trading models, each with its own rules: an **FPGA** for high-frequency
# trading, a **GPU** for batch inference, and a **CPU or phone** for retail
# apps. This chapter puts the same architectures on all three and watches the
# ranking change.
#
# **What you will learn**
#
# - what each target rewards and punishes, as the reference chapter lists it;
# - a *roofline model* of a GPU: kernel-launch overhead, memory bandwidth,
#   tensor-core alignment, and why batch 256 costs barely more than batch 1;
# - a *cycle model* of an FPGA dataflow design: DSP slices, block RAM,
#   pipeline fill, and why attention is rejected;
# - how strongly (or weakly) latencies on different targets agree, and how
#   the best architecture differs per target;
# - how to check a 50 µs market-making budget and the 10 MB retail size limit.
#
# **Prerequisites.** Chapters 01–04: the search space, FLOPs, memory and the
# measured latency lookup table (LUT) of `hwnas.latency`.
#
# **Models, not measurements.** Only the CPU profile here is measured, on the
# machine that ran this notebook. The GPU and FPGA numbers come from
# *analytical models* in `hwnas.targets`, built from datasheet figures and
# assumptions that are printed below. Every GPU or FPGA number in this chapter
# is a model estimate and is labelled as one.

# %%
import dataclasses
import math
import random

import numpy as np
import pandas as pd
import torch
from myst_nb import glue
from scipy.stats import spearmanr

import hwnas
from hwnas import plots
from hwnas.architecture import Architecture, LayerSpec
from hwnas.cost import count_flops, count_params, memory_footprint
from hwnas.latency import EDGE_MEMORY_BUDGET, TimingSpec, calibration_archs, profile_cpu_edge
from hwnas.opspec import OpSpec, arch_op_specs
from hwnas.space import SearchSpace
from hwnas.targets import (
    A100_40GB,
    T4,
    ZU3EG,
    ZU9EG,
    fpga_engines,
    fpga_profile,
    fpga_resources,
    gpu_kernel_time_us,
    gpu_kernels,
    gpu_profile,
)

SEED = 5
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)
print(f"hwnas {hwnas.__version__}, torch {torch.__version__}; no market data is used in this chapter")

# %% [markdown]
# ## Three targets, three sets of rules
#
# The reference chapter's section 3 lists what each target demands:
#
# | target | used for | what the architecture must respect |
# |---|---|---|
# | FPGA | high-frequency trading, sub-µs to µs decisions | fixed-point (INT8) arithmetic; a budget of DSP slices and block RAM (BRAM); pipeline depth adds latency; only simple operations (small convolutions, ReLU, fixed skips) |
# | GPU | batch inference: portfolios, risk, medium frequency | batch efficiency; memory bandwidth (arithmetic intensity); tensor-core alignment (multiples of 8 for FP16, 16 for INT8); kernel-launch overhead (few, large operations) |
# | CPU / mobile | retail trading apps | single-thread speed; cache locality; power; model size under about 10 MB |
#
# The CPU is the one we can measure. For the other two, `hwnas.targets`
# gives `gpu_profile` and `fpga_profile`: ordinary
# `hwnas.hardware.HardwareProfile` objects whose `latency_model` computes each
# operation's time instead of looking it up. A search uses them exactly like
# the measured CPU profile: `predict_latency(arch)`, `check(arch)`,
# `tabulate(space)`, `save`/`load`.

# %% [markdown]
# ## The GPU as a roofline
#
# Eager PyTorch runs a layer as a few *kernels*: a convolution is one implicit
# matrix product (GEMM), a depthwise-separable block two, self-attention eight
# (QKV projection, scores, scale, softmax, weighted sum, a copy, output
# projection, and a copy back to channels-first), a gated convolution five (two
# GEMMs, tanh, sigmoid and their product), and every activation and residual add one more element-wise
# kernel. A GRU or LSTM over $L$ steps is the odd one out: its input projections for all
# steps are one GEMM, but each step's recurrent product needs the previous step's state,
# so it runs as $L$ small sequential GEMMs, each followed by one fused kernel for the
# gate arithmetic, the layout of cuDNN's recurrent layers {cite:p}`appleyard2016rnn`:
# $2L + 3$ kernels with the two layout copies. Each kernel is bounded by compute or by memory traffic, whichever is
# slower (the *roofline* of {cite:t}`williams2009roofline`), plus the fixed cost
# of launching it:
#
# $$
# t_{\text{kernel}} = t_{\text{launch}} + \max\!\left(
#   \frac{\lceil \text{tiles} / n_{\text{SM}} \rceil \cdot W_{\text{tile}}}{P \,\eta \,/\, n_{\text{SM}}},\;
#   \frac{\text{bytes}}{B \,\eta_{\text{mem}}} \right),
# \qquad
# \text{LAT}(a) = t_{\text{sync}} + \sum_{\text{layers}} \sum_{\text{kernels}} t_{\text{kernel}}
# $$
#
# $P$ is the peak rate: the tensor-core rate when the precision is FP16 and
# the channel counts are multiples of 8 (INT8: 16), the CUDA-core FP32 rate
# otherwise {cite:p}`nvidia2023matmul`. The output is cut into tiles; each of
# the $n_{\text{SM}}$ streaming multiprocessors computes one tile of
# $W_{\text{tile}}$ FLOPs per wave, and a half-empty tile costs a full one
# (tile and wave quantisation). A residual branch runs on its own CUDA stream,
# so a skip layer costs the chapter's $\max$ over parallel paths plus the add.
# The card's figures come from the datasheets {cite:p}`nvidia2020a100,nvidia2019t4`;
# the launch overhead, efficiencies and tile size are stated assumptions.

# %%
gpu = gpu_profile(A100_40GB, "fp16", measure=False)  # measure=False: the same model on every machine
print(gpu.summary())
print()
for key, value in gpu.conditions["sources"].items():
    print(f"- {key}: {value}")

# %% [markdown]
# One convolution (kernel 5, 64 → 64 channels, 64 steps, ReLU) as the model
# sees it, at batch 1 and at batch 256:

# %%
# NBVAL_CHECK_OUTPUT
def kernel_table(op: OpSpec, spec=A100_40GB, precision="fp16") -> pd.DataFrame:
    rows = []
    for k in gpu_kernels(op, precision):
        rows.append({
            "kernel": k.name,
            "MFLOP": round(k.flops / 1e6, 3),
            "kB moved": round(k.bytes / 1e3, 1),
            "tensor cores": k.uses_tensor_cores(precision),
            "blocks": k.tiles(spec.tile),
            "µs (model)": round(gpu_kernel_time_us(k, spec, precision), 3),
        })
    return pd.DataFrame(rows)


conv = OpSpec("conv", 64, 64, 64, kernel_size=5, activation="relu")
conv256 = OpSpec("conv", 64, 64, 64, kernel_size=5, activation="relu", batch=256)
print("batch 1\n", kernel_table(conv).to_string(index=False))
print("batch 256\n", kernel_table(conv256).to_string(index=False))
print(f"model estimate: {gpu.op_latency(conv):.2f} µs at batch 1, "
      f"{gpu.op_latency(conv256):.2f} µs at batch 256 ({gpu.op_latency(conv256) / 256:.3f} µs per sample)")
glue("a100_launch_us", float(A100_40GB.launch_overhead_us), display=False)
glue("a100_conv_b1_us", float(gpu.op_latency(conv)), display=False)
glue("a100_conv_b256_us", float(gpu.op_latency(conv256)), display=False)
glue("batch256_extra_us", float(gpu.op_latency(conv256) - gpu.op_latency(conv)), display=False)
glue("batch256_per_sample_gain", float(gpu.op_latency(conv) / (gpu.op_latency(conv256) / 256)), display=False)

# %% [markdown]
# (ch05-batch)=
# At batch 1 the GEMM has one 64×64 output tile, so one of the 108
# multiprocessors works and the {glue:text}`a100_launch_us:.0f` µs launch is most of the
# time. At batch 256 the same kernel has 256 tiles (three waves) and moves 4 MB; the
# layer costs {glue:text}`batch256_extra_us:.1f` µs more in total, yet
# {glue:text}`batch256_per_sample_gain:.0f` times less per sample. Let us check the GEMM's
# figure by hand from the formula:

# %%
spec = A100_40GB
tiles = math.ceil(256 * 64 / spec.tile) * math.ceil(64 / spec.tile)  # M = batch x L_out, N = C_out
waves = math.ceil(tiles / spec.sm_count)
w_tile = 2 * spec.tile * spec.tile * (5 * 64)  # one tile's FLOPs, K = kernel x C_in
compute_us = waves * w_tile / (spec.peak_flops_fp16_tensor * spec.compute_efficiency / spec.sm_count) * 1e6
traffic = 2 * (256 * 64 * 64 + 256 * 64 * 64 + 5 * 64 * 64 + 64)  # fp16 input, output, weights, bias
memory_us = traffic / (spec.mem_bandwidth_bytes_s * spec.memory_efficiency) * 1e6
by_hand = spec.launch_overhead_us + max(compute_us, memory_us)
(gemm,) = [k for k in gpu_kernels(conv256, "fp16") if k.gemm is not None]
assert math.isclose(gpu_kernel_time_us(gemm, spec, "fp16"), by_hand)
print(f"tiles {tiles}, waves {waves}: compute {compute_us:.2f} µs, memory {memory_us:.2f} µs "
      f"-> {by_hand:.2f} µs with the launch (model estimate)")

# %% [markdown]
# The figure below sweeps the batch size for that layer. Three regimes
# appear: a flat launch floor at small batches, then a rise once the
# multiprocessors are full, with the misaligned width (63 channels) and FP32
# falling off the tensor cores and paying up to 16 times more per FLOP. (The
# dashed 63-channel curve lies on the FP32 one: off the tensor cores both run
# at the CUDA-core rate, and both are compute-bound there.)

# %% mystnb={"figure": {"caption": "In the A100 model one kernel-5 convolution costs {glue:text}`a100_conv_b1_us:.2f` µs at batch 1 and only {glue:text}`a100_conv_b256_us:.2f` µs at batch 256, so the cost per sample (right) falls {glue:text}`batch256_per_sample_gain:.0f`-fold; FP32 and the misaligned 63-channel width fall off the tensor cores and cost several times more once the layer is compute-bound (all model estimates)."}, "image": {"alt": "Two line charts on log-log axes against batch size (1 to about 4000). Left, µs per call (model estimate): A100 fp16 with 64 channels (blue, solid) flat near 9 µs up to about batch 100, then rising to about 120 µs; A100 fp32 (orange) and A100 fp16 with 63 channels (green, dashed) almost identical, flat near 28 µs, then jumping and rising to about 900 µs; T4 fp16 (red) in between; a grey dotted line near 8 µs marked 2 launches (conv + ReLU). Right, µs per sample: all four lines fall steeply and level off, A100 fp16 with 64 channels lowest, near 0.03 µs."}}
batches = np.unique(np.logspace(0, 12, 40, base=2).astype(int))
curves = {
    "A100 fp16, 64 channels": (A100_40GB, "fp16", 64, "-"),
    "A100 fp32, 64 channels": (A100_40GB, "fp32", 64, "-"),
    "A100 fp16, 63 channels": (A100_40GB, "fp16", 63, "--"),
    "T4 fp16, 64 channels": (T4, "fp16", 64, "-"),
}
totals, styles = {}, {}
for label, (card, precision, width, style) in curves.items():
    prof = gpu_profile(card, precision, measure=False)
    totals[label] = [prof.op_latency(OpSpec("conv", width, width, 64, kernel_size=5, activation="relu", batch=int(b)))
                     for b in batches]
    styles[label] = style
fig = plots.batch_sweep(batches, totals, styles=styles, title="conv k5 + ReLU, 64 steps: whole batch",
                        floor=A100_40GB.launch_overhead_us * 2, floor_label="2 launches (conv + ReLU)", bottom=5);

# %% [markdown]
# The same comparison for the recurrent and gated layers of the same width on the same 64
# steps shows what the step-by-step recurrence costs a GPU: its kernels cannot be
# batched across time, so each of the $L$ steps pays a launch whatever the batch.

# %%
# NBVAL_CHECK_OUTPUT
same_width = {
    "conv k5": OpSpec("conv", 64, 64, 64, kernel_size=5, activation="relu"),
    "gated_tcn k5": OpSpec("gated_tcn", 64, 64, 64, kernel_size=5),
    "gru": OpSpec("gru", 64, 64, 64),
    "lstm": OpSpec("lstm", 64, 64, 64),
}
gpu_rows = []
for what, key in same_width.items():
    wide = dataclasses.replace(key, batch=256)
    gpu_rows.append({"layer (64->64, L=64)": what, "MFLOPs": key.flops / 1e6, "kernels": len(gpu_kernels(key)),
                     "µs batch 1": gpu.op_latency(key), "µs per sample, batch 256": gpu.op_latency(wide) / 256})
gpu_rec = pd.DataFrame(gpu_rows).set_index("layer (64->64, L=64)")
assert gpu_rec.loc["lstm", "kernels"] == 2 * 64 + 3
print(gpu_rec.round(3).to_string())
glue("gpu_lstm_kernels", int(gpu_rec.loc["lstm", "kernels"]), display=False)
glue("gpu_lstm_vs_conv", float(gpu_rec.loc["lstm", "µs batch 1"] / gpu_rec.loc["conv k5", "µs batch 1"]),
     display=False)

# %% [markdown]
# With {glue:text}`gpu_lstm_kernels` launches the LSTM costs
# {glue:text}`gpu_lstm_vs_conv:.0f` times the convolution at batch 1 in this model
# (an estimate: a persistent kernel that keeps the weights on chip would launch once,
# and is not modelled), while its FLOPs are of the same order: on a GPU the recurrence,
# not the arithmetic, is the cost.

# %% [markdown]
# ## The FPGA as a cycle count
#
# On an FPGA each layer becomes its own engine in the fabric, and data
# streams from one engine to the next (a dataflow design, as HLS tools such as
# hls4ml build them {cite:p}`duarte2018hls4ml`). An engine whose output step
# needs a dot product of length $D_i$ ($K C_{\text{in}} C_{\text{out}}$ for a
# convolution) gets $P_i$ parallel multipliers, limited by the DSP slices we
# give one engine; a DSP48E2 slice does $m = 2$ INT8 multiply-adds per cycle
# {cite:p}`fu2016wp486`. With batch $B$, output length $L_{\text{out}}$,
# pipeline fill $d$ and clock $f$:
#
# $$
# P_i = \min\left(D_i,\; m \cdot n_{\text{DSP/engine}}\right),\qquad
# \text{cycles}_i = \left\lceil \frac{B\, L_{\text{out}}\, D_i}{P_i} \right\rceil + d,\qquad
# \text{LAT}(a) = \frac{\text{cycles}_{\text{I/O}} + \sum_i \text{cycles}_i}{f}
# $$
#
# and the design fits if
# $\sum_i \lceil P_i / m \rceil \le N_{\text{DSP}}$ and the weights (one byte
# per parameter at INT8) plus one input buffer per engine, the shortcut FIFOs
# and activation tables fit in block RAM. The part is a Zynq UltraScale+
# ZU9EG (2,520 DSP slices, 912 block RAMs of 36 Kb) and, for contrast, the
# small ZU3EG (360 DSPs, 216 block RAMs) {cite:p}`xilinx2019zynqusp`. The
# 300 MHz clock, 128 DSPs per engine and 10-cycle fill are assumptions.
#
# Two design decisions follow the reference chapter. **Attention is rejected**:
# its softmax over the sequence and its $n \times n$ score matrix are computed
# at run time, which has no efficient fixed dataflow, so `check` names the
# layer and the latency is infinite (no budget accepts it). **GELU is allowed
# but penalised**: at INT8 any point-wise function is a 256-entry table in
# block RAM, exactly the chapter's "lookup-table-based activation functions";
# it costs a table read (2 cycles) and 256 bytes per channel, where ReLU is a
# free comparator.

# %%
fpga = fpga_profile(ZU9EG)
print(fpga.summary())
print()
for key, value in fpga.conditions["sources"].items():
    print(f"- {key}: {value}")

# %%
# NBVAL_CHECK_OUTPUT
example = SearchSpace.fpga().sample(np.random.default_rng(SEED + 1))
print(example.summary())
print()
rows = []
for index, key in enumerate(arch_op_specs(example)):
    parts = [key.main_branch()] + ([key.shortcut_branch(), key.add_op()] if key.use_skip else [])
    for part in parts:
        for engine in fpga_engines(part, ZU9EG):
            rows.append({"layer": "head" if key.is_head else index, "engine": engine.name,
                         "dot D": engine.dot_length, "parallel P": engine.parallel_macs,
                         "DSPs": engine.dsps, "cycles": engine.cycles})
print(pd.DataFrame(rows).to_string(index=False))
res = fpga_resources(example, ZU9EG)
print(f"\nmodel estimate: {fpga.predict_latency(example):.3f} µs at 300 MHz; "
      f"{res.dsps} of {ZU9EG.dsp_slices} DSPs, {res.bram_bytes:,} of {ZU9EG.bram_bytes:,} BRAM bytes; "
      f"feasible: {fpga.is_feasible(example)}")

# %% [markdown]
# A hand check of one engine: a 3-tap convolution from 32 to 32 channels over
# 64 steps has $D = 3 \cdot 32 \cdot 32 = 3072$ multiply-adds per step; 128
# DSPs give $P = 256$, so it needs $64 \cdot 3072 / 256 + 10 = 778$ cycles,
# $778 / 300\,\text{MHz} = 2.59\,\mu\text{s}$.

# %%
conv_fpga = OpSpec("conv", 32, 32, 64, kernel_size=3, activation="relu")
cycles = math.ceil(64 * 3072 / min(3072, 128 * 2)) + 10
assert cycles == 778 and math.isclose(fpga.op_latency(conv_fpga), cycles / 300e6 * 1e6)
print(f"{cycles} cycles = {fpga.op_latency(conv_fpga):.3f} µs (model estimate)")

attention_arch = Architecture((LayerSpec("fc", 8, 32), LayerSpec("attention", 32, 32, heads=2)),
                              input_features=8, lookback=32)
for reason in fpga.check(attention_arch):
    print("infeasible:", reason)
print("latency:", fpga.predict_latency(attention_arch))

# %% [markdown]
# The recurrent and gated layers are refused too, and the reason is the reference
# chapter's operation-support rule: avoid complex nonlinearities and what does not map
# to a fixed dataflow. Their sigmoid and tanh gates are such nonlinearities (a lookup
# table on every value in fixed point), the gated layer multiplies two data-dependent
# maps, and a recurrent layer makes each step wait for the previous step's state, a
# loop-carried dependence that stops the layer's pipeline from overlapping its steps.
# `SearchSpace.fpga()` never offers them; a profile asked about one says why.

# %%
for op in ("gru", "lstm", "gated_tcn"):
    layer = LayerSpec(op, 32, 32, kernel_size=3 if op == "gated_tcn" else 1, activation="none")
    reasons = fpga.check(Architecture((LayerSpec("fc", 8, 32), layer), input_features=8, lookback=32))
    assert any(f"op '{op}' is not supported on the FPGA" in r for r in reasons)
    print(f"{op}: {reasons[0]}")

# %% [markdown]
# ## The CPU, measured
#
# The retail target is the machine itself: one thread and the 10 MB budget
# of a phone app (`profile_cpu_edge`). Measuring a whole space would take
# minutes, so we time only the operations our sample of architectures uses
# (`specs=`), plus those of the models that calibrate the per-inference
# Python overhead.

# %%
space_default, space_fpga = SearchSpace.default(), SearchSpace.fpga()
archs = [space_default.sample(rng) for _ in range(300)] + [space_fpga.sample(rng) for _ in range(100)]
source = ["default"] * 300 + ["fpga"] * 100
calibration = calibration_archs(space_default, 8)  # the overhead calibration models need their keys too
keys = sorted({k for a in archs + calibration for k in arch_op_specs(a)}, key=OpSpec.sort_key)
cpu = profile_cpu_edge(space_default, specs=keys, timing=TimingSpec.QUICK, calibration=8, progress=False)
print(f"{len(archs)} architectures, {len(keys)} distinct operations timed in "
      f"{cpu.conditions['build_seconds']} s")
print(cpu.summary())

# %% [markdown]
# ## One set of architectures, three targets
#
# Now every architecture gets a latency on each target: the CPU (measured,
# batch 1), the A100 model at batch 1 and at batch 256 (per sample), and the
# ZU9EG model. FPGA-infeasible architectures (attention, recurrent or gated layers,
# or resources) get no FPGA latency.

# %%
def row(arch, where):
    fpga_ok = fpga.is_feasible(arch)
    return {
        "space": where,
        "MFLOPs": count_flops(arch) / 1e6,
        "params": count_params(arch),
        "cpu_us": cpu.predict_latency(arch),
        "gpu_b1_us": gpu.predict_latency(arch),
        "gpu_b256_us_per_sample": gpu.predict_latency(arch, 256) / 256,
        "fpga_us": fpga.predict_latency(arch) if fpga_ok else np.nan,
        "fpga_feasible": fpga_ok,
        "kernels": sum(len(gpu_kernels(p)) for k in arch_op_specs(arch)
                       for p in ([k.main_branch(), k.shortcut_branch(), k.add_op()] if k.use_skip else [k])),
    }


df = pd.DataFrame([row(a, s) for a, s in zip(archs, source)])
print(df.drop(columns=["space"]).describe(percentiles=[0.5]).round(2).to_string())

# %%
# NBVAL_CHECK_OUTPUT
print(f"FPGA-feasible: {df.fpga_feasible.sum()} of {len(df)} "
      f"(all {int((df.space == 'fpga').sum())} of the fpga space, "
      f"{int(df.fpga_feasible[df.space == 'default'].sum())} of 300 from the default space)")
print(f"GPU b1 (model): {df.gpu_b1_us.min():.1f} to {df.gpu_b1_us.max():.1f} µs; "
      f"b256 per sample: {df.gpu_b256_us_per_sample.min():.3f} to {df.gpu_b256_us_per_sample.max():.3f} µs")
print(f"FPGA (model): {df.fpga_us.min():.2f} to {df.fpga_us.max():.2f} µs")
assert df.fpga_feasible[df.space == "fpga"].all()

# %% [markdown]
# Latency against FLOPs on each target: the FPGA model is a near-straight
# line (cycles are multiply-adds over parallelism), the GPU at batch 1 is a
# staircase in the number of kernels and barely cares about FLOPs, and the
# measured CPU sits in between, with Python overhead per layer and real
# arithmetic both showing.

# %% mystnb={"figure": {"caption": "The same architectures on three targets: the FPGA model is a near-straight line (cycles follow multiply-adds), the A100 at batch 1 hardly cares about FLOPs because it counts kernel launches, and the measured CPU sits in between, showing both per-layer Python overhead and arithmetic."}, "image": {"alt": "Four log-log scatter panels sharing an x axis of MFLOPs at batch 1 (about 0.01 to 25), latency in µs on the y axis: CPU, 1 thread (measured); A100 batch 1 (model estimate); A100 batch 256, per sample (model estimate); ZU9EG INT8 (model estimate). Points are coloured by search space, the default space in the CPU colour (blue) and the fpga space in the FPGA colour (red). The CPU and A100 panels show broad rising clouds; the ZU9EG panel, which holds only FPGA-feasible architectures, a narrow straight line."}}
panels = {"cpu_us": "CPU, 1 thread (measured)", "gpu_b1_us": "A100 batch 1 (model estimate)",
          "gpu_b256_us_per_sample": "A100 batch 256, per sample (model estimate)",
          "fpga_us": "ZU9EG INT8 (model estimate)"}
fig = plots.latency_vs_flops(df, panels, x="MFLOPs", group="space");

# %% [markdown]
# How much do the targets agree? Spearman's rank correlation over the
# FPGA-feasible architectures (so every column has a value):

# %% mystnb={"figure": {"caption": "The targets disagree on which architecture is fast: over the FPGA-feasible architectures the FPGA model ranks them as FLOPs do (ρ = {glue:text}`rho_fpga_flops:.2f`), while the batch-1 GPU follows its number of kernels ({glue:text}`rho_gpu_kernels:.2f`) and hardly FLOPs ({glue:text}`rho_gpu_flops:.2f`) or the FPGA ({glue:text}`rho_gpu_fpga:.2f`)."}, "image": {"alt": "Heat map of Spearman rank correlations between six variables, FLOPs, CPU, GPU b1, GPU b256, FPGA and kernels, on both axes, every cell written to two decimals and coloured on a blue-white-red scale from -1 to 1 shown in a colour bar. All cells are positive: dark red on the diagonal, for FLOPs with FPGA and for GPU b1 with kernels; pale for FLOPs and FPGA against GPU b1 and kernels."}}
cols = {"MFLOPs": "FLOPs", "cpu_us": "CPU", "gpu_b1_us": "GPU b1", "gpu_b256_us_per_sample": "GPU b256",
        "fpga_us": "FPGA", "kernels": "kernels"}
feasible = df[df.fpga_feasible]
rho = pd.DataFrame(spearmanr(feasible[list(cols)]).statistic, index=cols.values(), columns=cols.values())
glue("rho_fpga_flops", float(rho.loc["FPGA", "FLOPs"]), display=False)
glue("rho_gpu_kernels", float(rho.loc["GPU b1", "kernels"]), display=False)
glue("rho_gpu_flops", float(rho.loc["GPU b1", "FLOPs"]), display=False)
glue("rho_gpu_fpga", float(rho.loc["GPU b1", "FPGA"]), display=False)
ax = plots.correlation_heatmap(rho, title="rank agreement (GPU, FPGA: model estimates)", label="Spearman ρ");

# %%
# NBVAL_CHECK_OUTPUT
model_cols = ["MFLOPs", "gpu_b1_us", "gpu_b256_us_per_sample", "fpga_us", "kernels"]
rho_models = spearmanr(feasible[model_cols]).statistic
print(f"rank correlation, FPGA vs FLOPs: {rho_models[3, 0]:.2f}; GPU b1 vs FLOPs: {rho_models[1, 0]:.2f}; "
      f"GPU b1 vs kernels: {rho_models[1, 4]:.2f}; GPU b1 vs FPGA: {rho_models[1, 3]:.2f}")
assert rho_models[3, 0] > rho_models[1, 0]  # the FPGA follows FLOPs, the batch-1 GPU follows launches

# %% [markdown]
# ## The winner differs per target
#
# Without an accuracy signal (that comes with the proxy task in later
# chapters) we use a crude capacity-per-latency proxy: the feasible
# architecture that does the most FLOPs per microsecond on each target.

# %%
targets = {"CPU (measured)": "cpu_us", "GPU batch 1 (model)": "gpu_b1_us",
           "GPU batch 256 (model)": "gpu_b256_us_per_sample", "FPGA ZU9EG (model)": "fpga_us"}
winners = {}
for label, col in targets.items():
    rate = df.MFLOPs / df[col]  # MFLOP per µs; NaN where infeasible
    winners[label] = int(rate.idxmax())
    best = df.loc[winners[label]]
    print(f"== {label}: architecture #{winners[label]}, {best.MFLOPs:.2f} MFLOPs in {best[col]:.2f} µs "
          f"({rate.max() * 1e3:.1f} GFLOP/s)")  # MFLOP per µs = 1e12 FLOP/s
    print(archs[winners[label]].summary(), "\n")

# %%
# NBVAL_CHECK_OUTPUT
gpu_winner, fpga_winner = winners["GPU batch 1 (model)"], winners["FPGA ZU9EG (model)"]
print(f"GPU winner #{gpu_winner}: {df.kernels[gpu_winner]} kernels, lookback {archs[gpu_winner].lookback}, "
      f"on the FPGA: {df.fpga_us[gpu_winner]:.2f} µs")
print(f"FPGA winner #{fpga_winner}: {df.kernels[fpga_winner]} kernels, on the GPU at batch 1: "
      f"{df.gpu_b1_us[fpga_winner]:.1f} µs")
assert gpu_winner != fpga_winner
winner = archs[fpga_winner]
shapes = winner.shapes()
projection_mflops = sum(2 * layer.output_length(shapes[i][1]) * layer.in_channels * layer.out_channels
                        for i, layer in enumerate(winner.layers) if layer.needs_projection) / 1e6
print(f"FPGA winner: {projection_mflops:.2f} of its {df.MFLOPs[fpga_winner]:.2f} MFLOPs are in projection "
      f"shortcuts, which run beside the main branch")

# %% [markdown]
# The batch-1 GPU charges per kernel, almost whatever the kernel computes, so
# its winner is simply one of the heaviest architectures in the sample (long
# lookback, wide convolutions), a model that costs the FPGA over a hundred
# microseconds. The FPGA runs one layer after another at a few hundred
# multiply-adds per cycle, so FLOPs cost time there; its winner gets extra work
# for free from projection shortcuts, which run as parallel engines beside the
# main branch (they cost DSP slices instead of cycles).

# %% [markdown]
# ## A latency budget for market making
#
# The reference chapter's worked example: a market maker has 50 µs from
# market-data tick to order, split into 20 µs of feature computation, **20 µs
# of model inference** and 10 µs of order construction. The search then
# constrains the model to the 20 µs slice on the target. Which of our
# architectures fit that slice on each target?

# %% mystnb={"figure": {"caption": "Of the 50 µs from tick to order, 20 µs are the model's slice, and only the FPGA model has architectures within it ({glue:text}`fpga_fits` of {glue:text}`n_archs`): the GPU model's synchronisation and launches alone exceed it, and the measured CPU is slower still."}, "image": {"alt": "Two panels. Left: one horizontal stacked bar of µs from tick to order (0 to 50), split into features, 20 µs (grey), model inference, 20 µs (green) and order construction, 10 µs (purple). Right: horizontal bars of the fastest architecture's latency in µs on a log axis for CPU (measured, blue), GPU batch 1 (model, green) and FPGA ZU9EG (model, red), each labelled with how many architectures fit; a green dashed vertical line marks the 20 µs model slice, and only the short FPGA bar ends left of it."}}
BUDGET = {"features": 20.0, "model inference": 20.0, "order\nconstruction": 10.0}
MODEL_SLICE = BUDGET["model inference"]
fits = {label: int((df[col] <= MODEL_SLICE).sum()) for label, col in targets.items() if "256" not in label}
fastest = {label: df[col].min() for label, col in targets.items() if "256" not in label}
glue("fpga_fits", int(fits["FPGA ZU9EG (model)"]), display=False)
glue("n_archs", len(df), display=False)
fig = plots.decision_budget(BUDGET, fastest, fits, slice_part="model inference");

# %%
# NBVAL_CHECK_OUTPUT
for label in ("GPU batch 1 (model)", "FPGA ZU9EG (model)"):
    print(f"{label}: {fits[label]} of {len(df)} architectures fit 20 µs")
floor = A100_40GB.sync_overhead_us + 2 * A100_40GB.launch_overhead_us + A100_40GB.launch_overhead_us
print(f"GPU floor for the smallest model (sync + stem fc and ReLU + head): {floor:.0f} µs > 20 µs")
assert fits["GPU batch 1 (model)"] == 0 and fits["FPGA ZU9EG (model)"] > 0

# %% [markdown]
# Only the FPGA has room in the slice: the GPU model's synchronisation and
# launches alone exceed it, and the measured CPU pays tens of µs of Python per
# layer. Among the FPGA architectures that fit, the one a search with no
# accuracy signal would keep is the largest (most parameters, a crude capacity
# proxy):

# %%
# NBVAL_CHECK_OUTPUT
in_slice = df[(df.fpga_us <= MODEL_SLICE)]
pick = int(in_slice.params.idxmax())
print(f"#{pick}: {df.params[pick]:,} parameters, {df.MFLOPs[pick]:.2f} MFLOPs, "
      f"{df.fpga_us[pick]:.2f} µs on the ZU9EG (model estimate), "
      f"{fpga_resources(archs[pick], ZU9EG).dsps} DSPs")
print(archs[pick].summary())

# %% [markdown]
# The resource checks matter as much as the clock. The DSP slices each FPGA
# architecture of our sample needs, against the two parts:

# %% mystnb={"figure": {"caption": "Resources decide feasibility as much as the clock: every FPGA-feasible design fits the ZU9EG's 2,520 DSP slices, but almost all need more than the small ZU3EG's 360, where only {glue:text}`zu3eg_feasible` of the {glue:text}`n_archs` architectures are feasible."}, "image": {"alt": "Histogram (orange, 40 bins) of the DSP slices each FPGA-feasible design needs (x axis, 0 to about 2,600) counting architectures (y axis); the designs range from about 100 to 1,650 DSPs, most between 500 and 1,100. A red dashed vertical line marks ZU3EG: 360 DSPs at the left edge of the distribution, a green dashed one ZU9EG: 2520 DSPs far to its right."}}
dsps = np.array([fpga_resources(a, ZU9EG).dsps for a, ok in zip(archs, df.fpga_feasible) if ok])
limits = {f"{part.name.split()[-1]}: {part.dsp_slices} DSPs": part.dsp_slices for part in (ZU3EG, ZU9EG)}
ax = plots.histogram_with_limits(dsps, limits, bins=40, xlabel="DSP slices the design needs (model)",
                                 ylabel="architectures", title="one engine per layer, 128 DSPs max each");

# %%
# NBVAL_CHECK_OUTPUT
small = fpga_profile(ZU3EG)
glue("zu3eg_feasible", sum(small.is_feasible(a) for a in archs), display=False)
print(f"feasible on the ZU3EG: {sum(small.is_feasible(a) for a in archs)} of {len(archs)}; "
      f"on the ZU9EG: {int(df.fpga_feasible.sum())}")
failing = next(a for a, ok in zip(archs, df.fpga_feasible) if ok and not small.is_feasible(a))
print("a typical reason on the ZU3EG:", small.check(failing)[0][:100], "...")

# %% [markdown]
# ## The retail limit: 10 MB
#
# App stores and download times keep retail models "typically under 10 MB"
# (reference chapter, section 3.3); the edge CPU profile carries that budget
# and `check` applies it to parameters plus peak activations. Our trading
# models are tiny next to it: the largest in the sample has well under a
# megabyte of FP32 weights. The limit bites only when widths grow, as the
# sweep below shows for a six-layer, kernel-7 convolutional stack.

# %%
# NBVAL_CHECK_OUTPUT
largest = int(df.params.idxmax())
print(f"largest sampled model: {df.params[largest]:,} parameters = "
      f"{memory_footprint(archs[largest], 'fp32').params_bytes / 1e6:.2f} MB at fp32; "
      f"edge check: {cpu.check(archs[largest]) or 'fits'}")


def conv_stack(width: int, depth: int = 6) -> Architecture:
    layers = [LayerSpec("fc", 8, width)] + [LayerSpec("conv", width, width, 7) for _ in range(depth)]
    return Architecture(tuple(layers), input_features=8, lookback=64)


widths = [32, 64, 128, 256, 384, 512, 768]
sizes = {p: [memory_footprint(conv_stack(w), p).total_bytes for w in widths] for p in ("fp32", "int8")}
first_fail = next(w for w in widths if cpu.check(conv_stack(w)))
print(f"the 6-layer k7 stack first breaks the {EDGE_MEMORY_BUDGET / 2**20:.0f} MiB edge budget at width "
      f"{first_fail}: {cpu.check(conv_stack(first_fail))[0][:60]}...")

# %% mystnb={"figure": {"caption": "The six-layer kernel-7 stack breaks the 10 MiB retail budget first at width 256 at fp32; stored as INT8 it needs a quarter of the memory and fits up to a wider width."}, "image": {"alt": "Line chart of parameters + activations in MiB (log y axis, about 0.05 to 100) against the width in channels (32 to 768, linear x axis): fp32 (blue) and int8 (orange) lines with circle markers rise in parallel, int8 four times lower. A red dashed horizontal line marks the 10 MiB app budget; the fp32 line reaches it at width 256, the int8 line at about 512."}}
ax = plots.memory_vs_width(widths, sizes, budget=EDGE_MEMORY_BUDGET, budget_label="app budget",
                           title="6 conv layers, kernel 7, lookback 64");

# %% [markdown]
# INT8 buys a factor of four: the same stack fits up to a wider width once
# quantised, which is why the chapter asks for architectures that "support
# aggressive quantization".
#
# ## Summary
#
# - The three targets reward different things. On the **GPU** model a batch-1
#   trading model is launch-bound: latency counts kernels, not FLOPs, and
#   batch 256 costs little more than batch 1, so per-sample cost falls by two
#   orders of magnitude. Misaligned widths and FP32 fall off the tensor cores.
# - On the **FPGA** model latency is multiply-adds over parallelism plus
#   pipeline fill, a near-perfect rank match with FLOPs; feasibility is set by
#   DSP slices and block RAM, and attention, GRU, LSTM and the gated convolution are
#   rejected outright (dynamic or complex nonlinear operations, the reference's
#   operation-support rule). A recurrent layer on the GPU model is $L$ sequential
#   launches: it pays for the recurrence, not for its FLOPs.
# - The **CPU**, measured, sits in between and is the only target here whose
#   numbers are not a model.
# - The best architecture differs per target, and only the FPGA meets the
#   20 µs model slice of a 50 µs market-making budget; the retail 10 MB limit
#   is far away for models of this size and comes into play only at widths in
#   the hundreds.
# - `gpu_profile` and `fpga_profile` are `HardwareProfile`s: searches call
#   `predict_latency` and `check` on them exactly as on a measured profile, and
#   `tabulate(space)` + `save` turn a model into a lookup table on disk.
#
# ## Exercises
#
# 1. **CUDA graphs.** Capturing the model in a CUDA graph cuts the per-kernel
#    launch cost to about $1\,\mu\text{s}$. Build a `GpuSpec` like the A100 with
#    `launch_overhead_us=1.0` and `sync_overhead_us=5.0`: how many of the 400
#    architectures fit the 20 µs slice at batch 1 now?
# 2. **Is the bigger card faster?** Compare the A100 and T4 models on the
#    400 architectures at batch 1 and at batch 256. Where does the A100 win,
#    and by how much?
# 3. **Fewer DSPs per engine.** Halve `dsp_per_engine` to 64 on the ZU3EG.
#    What happens to feasibility and to latency? Explain the trade.
# 4. **Pipelining.** A real dataflow design overlaps its layers: latency is
#    closer to the slowest engine's cycles plus every engine's fill than to the
#    sum of all engines' cycles. Why is the chapter's sum an upper bound, and
#    which architectures does it penalise most?

# %% tags=["hide-cell"]
# Solution 1: CUDA graphs
from dataclasses import replace

graphs = gpu_profile(replace(A100_40GB, launch_overhead_us=1.0, sync_overhead_us=5.0), "fp16", measure=False)
graph_lat = np.array([graphs.predict_latency(a) for a in archs])
print(f"with CUDA graphs (model): {int((graph_lat <= MODEL_SLICE).sum())} of {len(archs)} fit 20 µs; "
      f"fastest {graph_lat.min():.1f} µs")

# %% [markdown]
# :::{dropdown} Solution 1, discussed
# With $1\,\mu\text{s}$ launches the batch-1 GPU becomes a real candidate for the slice:
# small architectures with few kernels (pooling and identity layers, few
# activations) now fit. The ranking still follows the number of kernels, so a
# GPU-targeted search would favour fused, few-layer designs.
# :::

# %% tags=["hide-cell"]
# Solution 2: A100 vs T4
t4 = gpu_profile(T4, "fp16", measure=False)
for batch in (1, 256):
    ratio = np.array([t4.predict_latency(a, batch) / gpu.predict_latency(a, batch) for a in archs])
    print(f"batch {batch}: T4 / A100 latency, median {np.median(ratio):.2f}, max {ratio.max():.2f} (model)")
glue("t4_median_256", float(np.median(ratio)), display=False)
glue("t4_max_256", float(ratio.max()), display=False)
glue("a100_t4_peak", A100_40GB.peak_flops_fp16_tensor / T4.peak_flops_fp16_tensor, display=False)

# %% [markdown]
# :::{dropdown} Solution 2, discussed
# At batch 1 both cards are launch-bound and the model gives them nearly the
# same latency (the same assumed launch overhead): the bigger card buys
# almost nothing. At batch 256 the A100's {glue:text}`a100_t4_peak:.1f` times higher
# tensor-core rate and its bandwidth show up: the T4 takes {glue:text}`t4_median_256:.1f`
# times as long in the median and {glue:text}`t4_max_256:.1f` times for the heaviest
# architecture; never the full ratio of peaks, because the launches cost the same on both.
# :::

# %% tags=["hide-cell"]
# Solution 3: 64 DSPs per engine on the ZU3EG
narrow = fpga_profile(replace(ZU3EG, dsp_per_engine=64))
ok_narrow = [a for a in archs if narrow.is_feasible(a)]
print(f"feasible on the ZU3EG: {sum(small.is_feasible(a) for a in archs)} with 128 DSPs per engine, "
      f"{len(ok_narrow)} with 64")
slow = np.median([narrow.predict_latency(a) / fpga.predict_latency(a) for a in ok_narrow])
print(f"median latency ratio (64 vs 128 DSPs per engine, model): {slow:.2f}")

# %% [markdown]
# :::{dropdown} Solution 3, discussed
# Fewer multipliers per engine means more architectures fit the small part,
# but every layer whose dot product exceeded 128 multiply-adds per step now
# takes up to twice as many cycles. That is the area–latency trade of an
# HLS reuse factor: the search can pick the part and the parallelism together.
# :::
#
# :::{dropdown} Solution 4
# In a streaming pipeline engine $i+1$ starts as soon as engine $i$ emits its
# first outputs, so latency is about $\max_i \lceil B L_{\text{out}} D_i / P_i \rceil + \sum_i d_i$,
# never more than the sum. The sum penalises deep architectures whose layers
# are all of similar cost most: their overlap would hide almost all but one
# layer. Replacing the sum by this formula changes the reference chapter's
# $\text{LAT}(a) = \sum_i \text{LUT}(o_i, d_i)$ into a max-plus form, which a
# lookup table alone cannot express.
# :::
