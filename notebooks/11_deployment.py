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
# # 11 · Deployment: ONNX, ONNX Runtime, quantisation and latency SLAs
#
# Every latency in chapters {doc}`04_latency_lut` to {doc}`10_fbnet` was eager
# PyTorch's. No trading system serves a model from eager PyTorch at batch 1: its
# per-operation dispatch costs more than these small networks compute. This chapter
# exports the chosen models to ONNX, runs them in ONNX Runtime {cite:p}`onnxruntime2021`,
# measures how much faster they are and whether their *order* changes, builds the
# latency table in the runtime the model is deployed on (nn-Meter predicts per
# inference framework for the same reason {cite:p}`zhang2021nnmeter`), shrinks the
# models to INT8 and FP16, and ends with the question a trading desk actually asks:
# **does this model answer within its share of the decision budget at p99?**
#
# **You will learn**
#
# - how to export a model to ONNX and `torch.export` and check the file against eager
#   PyTorch on real windows, to a stated tolerance;
# - how much faster ONNX Runtime runs the same models at batch 1, and why a search
#   against the eager table optimises an overhead the deployed model never pays;
# - how a lookup table is built *in the deployment runtime*, and where it is still off;
# - INT8 static post-training quantisation (QDQ graphs, per-channel weights) and FP16,
#   size, latency and proxy score;
# - the FPGA model in fixed point with hls4ml: per-layer precisions from calibration data,
#   the compiled C++ emulation's score beside float, and the HLS project a user synthesises;
# - latency SLA reports: p50, p99, p99.9 and max from raw samples, against a budget, and
#   what a shared machine does to a tail percentile.
#
# **Prerequisites**: {doc}`04_latency_lut` (the harness and the table),
# {doc}`06_bybit_data` (the proxy task), {doc}`05_hardware_targets` (the FPGA profile's
# INT8 assumption).

# %%
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from myst_nb import glue
from scipy import stats

import hwnas
from hwnas import plots
from hwnas.cost import count_flops
from hwnas.data import load_klines
from hwnas.deploy.coverage import coverage_architecture
from hwnas.deploy.export import export
from hwnas.deploy.hls import compile_hls, export_hls
from hwnas.deploy.onnx_graph import OPSET
from hwnas.deploy.quantize import HLS_FIXED_POINT, calibration_windows, compare_precisions, score_precisions
from hwnas.deploy.runtimes import OnnxRuntime
from hwnas.deploy.sla import sla_report
from hwnas.latency import TimingSpec, compare_with_flops, spread_archs, time_round_robin
from hwnas.latency.lut import model_callable
from hwnas.proxy import make_proxy_task
from hwnas.proxy.training import train_model
from hwnas.runtime import get_runtime
from hwnas.space import SearchSpace

SEED = 11
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
torch.set_num_threads(1)
START = time.perf_counter()
WORK = Path(tempfile.mkdtemp(prefix="hwnas11_"))
print(f"hwnas {hwnas.__version__}, torch {torch.__version__}, {OnnxRuntime().version()}, seed {SEED}")

# %% [markdown]
# ## Data: real BTCUSDT windows
#
# The equality checks and the quantisation scores use the proxy task of
# {doc}`06_bybit_data` on the recorded Bybit BTCUSDT 15-minute candles (the loader
# says which source it found). To keep the chapter under two minutes the task uses
# the last 6,000 candles and 64-step windows.

# %%
data = load_klines("BTCUSDT", "15", limit=6_000)
print(data)
task = make_proxy_task(data.frame, lookback=64, max_train_windows=1024, source=data.source)
print(task.describe())
windows = task.val.X[:256].contiguous()  # real validation windows for the export checks

# %% [markdown]
# ## Export, and the equality check
#
# An exported file is only useful if it computes what the eager model computes. For
# every checked window $x_i$ and output $j$ the reloaded model must satisfy
#
# $$
# \bigl|f_{\text{file}}(x_i)_j - f_{\text{eager}}(x_i)_j\bigr|
#   \le \text{atol} + \text{rtol}\,\bigl|f_{\text{eager}}(x_i)_j\bigr|,
#   \qquad \text{atol} = \text{rtol} = 10^{-5},
# $$
#
# the rule of `numpy.allclose`. `hwnas.deploy.export` traces the model with torch's
# TorchScript-based ONNX exporter (`dynamo=False`, opset 17, the batch dimension left
# free), loads the bytes back into ONNX Runtime, runs both on the windows and writes
# the file (atomically) only if the rule holds. The dynamo exporter was far slower per
# model when this chapter was written; TorchScript itself is deprecated in favour of
# `torch.export` {cite:p}`pytorch2024export`, the second format (`.pt2`).
#
# One architecture per named space covers every operation of the space, with an
# identity skip and a projection skip (`coverage_architecture`):

# %%
rows = []
for name in ("default", "fpga", "mobile", "gpu"):
    space = SearchSpace.named(name, input_features=task.num_features)
    arch = coverage_architecture(space, lookback=64)
    result = export(arch, WORK / f"{name}.onnx", check_inputs=windows)
    ops = sorted({layer.op.value for layer in arch.layers})
    rows.append((name, arch.depth, len(ops), result))
    print(f"{name:<8} {arch.depth:>2} layers, {len(ops)} op kinds, {result.size_bytes / 1e3:7.1f} kB, "
          f"max |error| {result.max_abs_error:.1e} (relative {result.max_rel_error:.1e}) on "
          f"{result.checked_windows} windows")
pt2 = export(coverage_architecture(SearchSpace.named("default", input_features=task.num_features), 64),
             WORK / "default.pt2", format="torch.export", check_inputs=windows)
print(f"torch.export: {pt2.size_bytes / 1e3:.1f} kB, max |error| {pt2.max_abs_error:.1e}, "
      f"exported in {pt2.export_seconds:.1f} s")

# %%
assert all(r.max_abs_error <= 1e-5 for *_, r in rows) and pt2.max_abs_error <= 1e-5
assert OPSET == 17
# NBVAL_CHECK_OUTPUT
print("every operation and both skip kinds of every space export within 1e-5 (opset 17)")

# %% [markdown]
# ## Eager PyTorch against ONNX Runtime
#
# `OnnxRuntime` is a `hwnas.runtime.Runtime`: `prepare(module, inputs)` exports the
# module, opens a session with one intra-op thread, sequential execution and every
# graph optimisation on, and returns a callable that runs it on inputs made once. The
# same 24 random architectures of the default space are prepared in both runtimes and
# timed **side by side** in one round-robin run (each timed call follows another
# model's, as in {doc}`04_latency_lut`), so both see the same machine. The speed-up of
# model $a$ is
#
# $$ s(a) = \frac{t_{\text{eager}}(a)}{t_{\text{ORT}}(a)} . $$

# %%
default = SearchSpace.default(input_features=task.num_features)
rng = np.random.default_rng(SEED)
archs = [default.sample(rng) for _ in range(24)]
eager_rt, ort_rt = get_runtime("eager", 1), get_runtime("onnxruntime", 1)
callables = {}
for i, arch in enumerate(archs):
    callables[("eager", i)] = model_callable(arch, 1, SEED, eager_rt)
    callables[("ort", i)] = model_callable(arch, 1, SEED, ort_rt)
timings = time_round_robin(callables, threads=1, timing=TimingSpec.COMPARE.replace(target_ms=16.0, seed=SEED))
eager_us = np.array([timings[("eager", i)].min_us for i in range(len(archs))])
ort_us = np.array([timings[("ort", i)].min_us for i in range(len(archs))])
speedup = eager_us / ort_us
rho = float(stats.spearmanr(eager_us, ort_us)[0])
flops = np.array([count_flops(a) for a in archs])
i, j = np.unravel_index(np.argmax((eager_us[:, None] - eager_us[None, :])
                                  * (ort_us[None, :] - ort_us[:, None])), (len(archs), len(archs)))
print(f"fastest call: eager {eager_us.min():.0f}-{eager_us.max():.0f} µs, "
      f"ONNX Runtime {ort_us.min():.0f}-{ort_us.max():.0f} µs")
print(f"speed-up: median {np.median(speedup):.1f}x (range {speedup.min():.1f}-{speedup.max():.1f}x); "
      f"Spearman rank correlation of the two latencies {rho:.2f}")
print(f"most flipped pair: {flops[i] / 1e6:.2f} MFLOP takes {eager_us[i]:.0f} µs eager but "
      f"{ort_us[i]:.0f} µs in ONNX Runtime; {flops[j] / 1e6:.2f} MFLOP takes {eager_us[j]:.0f} µs "
      f"eager and {ort_us[j]:.0f} µs")

# %% mystnb={"figure": {"caption": "Each point is one of the 24 models: below the dashed diagonal (equal times) it is faster in ONNX Runtime, and the dotted lines at three and ten times show that the speed-up varies from model to model, so the red pair swaps order between the two runtimes. The red dashed line is the market maker's 20 µs model budget."}, "image": {"alt": "Log-log scatter plot of each model's fastest call in ONNX Runtime (y, µs) against its fastest call in eager PyTorch (x, µs). Blue dots lie below a grey dashed diagonal labelled 1x, mostly between grey dotted lines labelled 3x and 10x; two larger red dots mark the pair whose order flips; a red dashed horizontal line at 20 µs lies below the points."}}
assert np.median(speedup) > 1.5  # the runtime is faster for almost every model
plots.runtime_speedup(eager_us, ort_us, highlight=[i, j], budget_us=20.0);

# %% [markdown]
# The speed-up is not one factor (see its range above), so the *ranking* changes: the
# printed pair swaps places between the two runtimes, and with such swaps the Pareto
# front a search would return changes too. A search against the eager table
# optimises an overhead the deployed model never pays. `benchmarks/bench_deploy.py`
# measures this on 200 architectures (rank correlation, flipped pairs, and how much of
# the eager Pareto front survives).
#
# ## A latency table in the deployment runtime
#
# The table of {doc}`04_latency_lut`, $\mathrm{LAT}(a) = c_0 + s \sum_i
# \mathrm{LUT}(o_i, d_i)$ with the overhead $c_0$ and scale $s$ calibrated on whole
# models, is built the same way in ONNX Runtime by passing `runtime="onnxruntime"`:
# every entry is its layer exported and run in a session. It is judged exactly as in
# chapter 04 and in `benchmarks/bench_deploy.py`, by the same library function,
# `compare_with_flops`: models spread over the space's sizes are timed twice *inside the
# same shuffled passes* as the table, the table holds each entry's fastest call, and the
# table and a cross-fitted FLOPs fit are scored on the same timings, beside the noise
# floor (the second timing against the first). To stay under two minutes the chapter
# uses a reduced space (lookback 32, width 16, kernel 3, depth 2-3, 16 calibration
# models); the benchmark builds the full default space.

# %%
small = SearchSpace.default(input_features=task.num_features, lookbacks=(32,), widths=(16,),
                            kernel_sizes=(3,), dilations=(2,), heads=(2,), depths=(2, 3))
test_archs = spread_archs(small, 24, seed=SEED)
ort = compare_with_flops(small, test_archs, runtime="onnxruntime", timing=TimingSpec.TABLE.replace(seed=SEED),
                         calibration=16, name="cpu-1thread-b1-onnxruntime")
ort_profile, fidelity = ort.profile, ort.report
print(f"{ort_profile.label}: {len(ort_profile.latency_table)} entries; table {ort.build.seconds:.0f} s, "
      f"validation models {ort.build.conditions['validation_seconds']} s; "
      f"runtime {ort_profile.conditions['runtime_version']!r}")
ort_profile.save(WORK / "ort_profile.json")
reloaded = hwnas.HardwareProfile.load(WORK / "ort_profile.json")
print(ort.summary())

# %% mystnb={"figure": {"caption": "In ONNX Runtime too, the lookup table (left) predicts the same models, timed in the same passes, better than a cross-fitted FLOPs fit (middle); the right panel is the noise floor, the second timing of each model against the first. Each title gives the acc10 and Spearman ρ measured on the machine that ran the chapter."}, "image": {"alt": "Three side-by-side scatter plots of a prediction against measured latency in µs in ONNX Runtime, log-scaled axes, the y axis shared, each with a grey dashed y = x line and a light green band for ±10 %. Left, LUT: the points follow the diagonal, most inside the band. Middle, FLOPs: the points scatter around the diagonal, many outside the band. Right, second timing: the points sit on the diagonal."}}
fig = plots.parity_panels(fidelity.measured_us, {
    f"LUT: acc10 {fidelity.acc10:.0%}, ρ = {fidelity.spearman:.3f}": fidelity.predicted_us,
    f"FLOPs: acc10 {fidelity.baseline_acc10:.0%}, ρ = {fidelity.baseline_spearman:.3f}": fidelity.baseline_us,
    f"2nd timing: acc10 {ort.repeat_acc10:.0%}, ρ = {ort.repeat_spearman:.3f}": ort.repeat_us,
}, band=0.1, xlabel="measured in ONNX Runtime (µs)", ylabel="predicted (µs)");

# %%
assert reloaded.conditions["runtime"] == "onnxruntime"
assert np.allclose([reloaded.predict_latency(a) for a in test_archs], fidelity.predicted_us)
# The course's claim in the deployment runtime: same models, same passes.
assert ort.table_wins, ort.summary()
glue("ort_lut_acc10", float(fidelity.acc10), display=False)
glue("ort_flops_acc10", float(fidelity.baseline_acc10), display=False)
glue("ort_lut_rho", float(fidelity.spearman), display=False)
glue("ort_flops_rho", float(fidelity.baseline_spearman), display=False)
glue("ort_repeat_acc10", float(ort.repeat_acc10), display=False)
glue("ort_n", fidelity.n, display=False)

# %% [markdown]
# The table predicted {glue:text}`ort_lut_acc10:.0%` of the {glue:text}`ort_n` models within
# ±10 % (the FLOPs fit: {glue:text}`ort_flops_acc10:.0%`) and ranked them with ρ
# {glue:text}`ort_lut_rho:.3f` (FLOPs: {glue:text}`ort_flops_rho:.3f`), beside a noise floor of
# {glue:text}`ort_repeat_acc10:.0%`: the cell above asserts that the table wins on both, so the
# chapter fails on a machine where it does not.

# %% [markdown]
# Read the table honestly. In ONNX Runtime a layer costs a few microseconds, and so
# does the call itself: every entry is one `session.run` and pays the runtime's fixed
# per-call cost, while a whole model pays it once. Summing raw entries would count it
# once per layer, a bias that grows with depth and that an overhead-plus-scale
# calibration cannot absorb. So the build times the runtime's empty call (an identity
# graph, `null_callable`) in the same passes as the table and takes its fastest call
# off every entry before calibrating; the calibrated overhead $c_0$ then holds the one
# call a model pays. `benchmarks/bench_deploy.py` shows the full table with and
# without this correction.

# %%
null_us = ort_profile.conditions["per_call_us_subtracted"]
print(f"ONNX Runtime per-call cost (identity graph, fastest call): {null_us:.1f} µs, taken off "
      f"every entry; calibrated overhead c0 = {ort_profile.conditions['overhead_calibration']['overhead_us']} µs; "
      f"median model here {np.median(fidelity.measured_us):.1f} µs")

# %%
assert 0 < null_us < np.median(fidelity.measured_us)  # a real cost, smaller than any model

# %% [markdown]
# ## The phone's runtime: ExecuTorch with XNNPACK
#
# A retail app on a phone does not ship ONNX Runtime from an x86 server: it ships
# PyTorch's on-device runtime, ExecuTorch, whose XNNPACK backend runs the convolutions
# and matrix products {cite:p}`executorch2025`. A model reaches it in three steps:
# `torch.export` captures the graph, `to_edge_transform_and_lower(...,
# partitioner=[XnnpackPartitioner()])` hands every subgraph XNNPACK supports to it (the
# *delegated* ops) and leaves the rest to ExecuTorch's portable C++ kernels, and
# `.to_executorch()` writes the `.pte` program that `executorch.runtime` loads.
# `export(..., format="pte")` does all three and checks the program against eager
# PyTorch with the same rule as above; `ExecuTorchRuntime` is a third
# `hwnas.runtime.Runtime` (`"executorch"`), so one architecture of the `mobile` space
# (every operation, both skip kinds) is timed in all three runtimes side by side.

# %%
from hwnas.deploy.executorch import ExecuTorchRuntime, delegation_table  # noqa: E402

mobile = SearchSpace.mobile(input_features=task.num_features)
phone_arch = coverage_architecture(mobile, lookback=64)
phone_model = hwnas.build_model(phone_arch, seed=SEED)
pte = export(phone_model, WORK / "mobile.pte", format="pte", check_inputs=windows[:64])
print(f"{phone_arch.label()}: .pte {pte.size_bytes / 1e3:.1f} kB, lowered in {pte.export_seconds:.1f} s, "
      f"max |error| {pte.max_abs_error:.1e} on {pte.checked_windows} windows")
et_rt = ExecuTorchRuntime(1)
x1 = windows[:1]
phone_calls = {"eager PyTorch": eager_rt.prepare(phone_model, (x1,)),
               "ONNX Runtime": ort_rt.prepare(phone_model, (x1,)),
               "ExecuTorch (XNNPACK)": et_rt.prepare_pte(WORK / "mobile.pte")}
phone_t = time_round_robin(phone_calls, threads=1, timing=TimingSpec.COMPARE.replace(seed=SEED))
for name, t in phone_t.items():
    print(f"{name:<22} fastest call {t.min_us:7.1f} µs   p99 {t.p99_us:8.1f} µs")
delegation = delegation_table(phone_arch)
print(f"\n{'op type (ExecuTorch name)':<34} {'XNNPACK':>8} {'portable':>9}  runs in")
for row in delegation:
    print(f"{row.op:<34} {row.delegated:>8} {row.portable:>9}  {row.runs_in}")
et_us, ort1_us, eager1_us = (phone_t[k].min_us for k in ("ExecuTorch (XNNPACK)", "ONNX Runtime", "eager PyTorch"))
glue("et_us", float(et_us), display=False)
glue("et_ort_us", float(ort1_us), display=False)
glue("et_eager_us", float(eager1_us), display=False)
glue("et_vs_eager", float(eager1_us / et_us), display=False)
glue("et_fallback_ops", ", ".join(r.op for r in delegation if r.runs_in != "XNNPACK") or "none", display=False)

# %%
assert pte.max_abs_error <= 1e-5
assert any(r.op == "aten_convolution_default" and r.runs_in == "XNNPACK" for r in delegation)
# NBVAL_CHECK_OUTPUT
print("the .pte reproduces eager PyTorch within 1e-5; XNNPACK runs every convolution")

# %% [markdown]
# On this machine the ExecuTorch program's fastest call was {glue:text}`et_us:.1f` µs,
# against {glue:text}`et_ort_us:.1f` µs in ONNX Runtime and {glue:text}`et_eager_us:.1f` µs in
# eager PyTorch ({glue:text}`et_vs_eager:.1f`× faster than eager). XNNPACK ran the
# convolutions, the products and the skip sums; what it did not take falls back to the
# portable kernels ({glue:text}`et_fallback_ops`): each fallback splits the model into
# several delegate calls with a portable kernel between them. A table for the phone is
# built in this runtime exactly as for ONNX Runtime (`profile_cpu(space,
# runtime="executorch")`: the one-element delegated call's fixed cost taken off every
# entry, the overhead calibrated on whole models), but ExecuTorch lowers every distinct
# layer separately, in one to two seconds each, so the table is
# `benchmarks/bench_toolchains.py`'s work, not this chapter's. Its committed run:

# %%
TOOLCHAINS = Path(hwnas.__file__).resolve().parents[1] / "benchmarks" / "results" / "toolchains_executorch.json"
et_bench = json.loads(TOOLCHAINS.read_text(encoding="utf-8"))
et_table, ort_table = et_bench["table"]["executorch"], et_bench["table"]["onnxruntime"]
et_where = (f"{et_bench['settings']['processor']}, {et_bench['settings']['cpu_count']} cores, "
            f"{et_bench['settings']['date'][:10]}, load {et_table['load_avg_1min'][0]}-{et_table['load_avg_1min'][1]}")
glue("etb_acc10", float(et_table["lut_acc10"]), display=False)
glue("etb_rho", float(et_table["lut_spearman"]), display=False)
glue("etb_flops_rho", float(et_table["flops_spearman"]), display=False)
glue("etb_n", int(et_table["n_archs"]), display=False)
glue("etb_build_s", float(et_table["build_seconds"]), display=False)
glue("etb_ort_build_s", float(ort_table["build_seconds"]), display=False)
glue("etb_where", et_where, display=False)
ET_TARGET_RHO = 0.98  # the benchmark's Spearman target
glue("etb_target", ET_TARGET_RHO, display=False)
glue("etb_verdict", "meeting" if et_table["lut_spearman"] >= ET_TARGET_RHO else "short of", display=False)
ET_TARGET_ACC10 = 0.95  # the benchmark's acc10 target
glue("etb_acc10_verdict", "meeting" if et_table["lut_acc10"] >= ET_TARGET_ACC10 else "short of", display=False)
glue("etb_repeat_rho", float(et_table["repeat_spearman"]), display=False)
et_measured = np.asarray(et_table["measured_us"])
glue("etb_span", float(et_measured.max() / et_measured.min()), display=False)
glue("etb_lookbacks", ", ".join(str(v) for v in et_bench["space"]["lookbacks"]), display=False)
other_seeds = {k.removeprefix("table_seed"): v["executorch"] for k, v in et_bench.items() if k.startswith("table_seed")}
glue("etb_other_seeds", "; ".join(
    f"with seed {k} (other weights, shuffle and models) acc10 {v['lut_acc10']:.0%} and ρ {v['lut_spearman']:.3f}, "
    f"{'meeting both targets' if v['lut_acc10'] >= ET_TARGET_ACC10 and v['lut_spearman'] >= ET_TARGET_RHO else 'not meeting both targets'}"
    for k, v in sorted(other_seeds.items())) or "no other seed was run", display=False)
print(f"benchmark ({TOOLCHAINS.name}, {et_where}): ExecuTorch table acc10 {et_table['lut_acc10']:.0%}, "
      f"ρ {et_table['lut_spearman']:.3f} on {et_table['n_archs']} models, built in {et_table['build_seconds']:.0f} s "
      f"(ONNX Runtime's: {ort_table['build_seconds']:.0f} s)")

# %% [markdown]
# The benchmark's space is the `mobile` space's lookbacks ({glue:text}`etb_lookbacks`),
# depths, widths, seven ops and both heads, with ReLU only and no skips (each would double
# the layers to lower); its {glue:text}`etb_n` validation models are spread over the FLOPs
# range, so their measured latencies span {glue:text}`etb_span:.1f`× and a ranking is not
# decided by noise among near-equal models. On them ({glue:text}`etb_where`, a shared,
# loaded machine) the ExecuTorch table predicted {glue:text}`etb_acc10:.0%` within ±10 %
# ({glue:text}`etb_acc10_verdict` the 95 % target) and ranked them with ρ
# {glue:text}`etb_rho:.3f`, {glue:text}`etb_verdict` the {glue:text}`etb_target:.2f` target;
# the same models timed twice in the same passes agree to ρ {glue:text}`etb_repeat_rho:.3f`,
# the noise floor no predictor can beat, and the FLOPs fit reaches
# {glue:text}`etb_flops_rho:.3f`. Repeated: {glue:text}`etb_other_seeds`.
# Lowering the table's layers took {glue:text}`etb_build_s:.0f` s
# where ONNX Runtime's table took {glue:text}`etb_ort_build_s:.0f` s. That is why the
# capstone's quick run keeps ONNX Runtime's table and a full run uses ExecuTorch's.

# %% [markdown]
# ## Quantisation: INT8, FP16 and fixed point
#
# Static post-training quantisation {cite:p}`jacob2018quantization` maps a real value
# $r$ to an 8-bit integer $q$ with a scale $S$ and zero point $Z$,
#
# $$ q = \operatorname{clamp}\!\Bigl(\operatorname{round}\bigl(r / S\bigr) + Z,\,
#        -128,\, 127\Bigr), \qquad \hat r = S\,(q - Z), $$
#
# with one symmetric scale per output channel for the weights ($Z = 0$,
# $S_c = \max|w_c| / 127$) and a scale per tensor for the activations, set from their
# range on **training** windows (calibration never sees validation or test data).
# `quantize_int8` does this with ONNX Runtime's tools (QDQ graph: quantise and
# dequantise steps around convolutions and matrix products, which the runtime fuses
# into integer kernels); `convert_fp16` stores every float tensor in half precision.
# The FPGA's fixed point gets its own section below, through hls4ml; for an
# architecture hls4ml cannot convert (this one, from the default space, may hold
# attention or GELU) the table's fixed-point row is the stated fallback
# `fixed_point_model`, a torch simulation (INT8 weights per channel and every tensor
# between layers rounded to INT8 per channel). One architecture is
# trained once (one epoch of the proxy task) and scored in each precision:

# %%
arch_q = SearchSpace.default(input_features=task.num_features, lookbacks=(64,)).sample(np.random.default_rng(3))
print(arch_q.describe())
precisions = compare_precisions(arch_q, task, seed=0, calibration=256,
                                timing=TimingSpec.COMPARE.replace(target_ms=20.0))
base = precisions[0]
print(f"{'precision':<24}{'file':>9}{'weights':>9}{'fastest':>9}{'val':>9}{'Δval':>9}{'test':>9}{'Δtest':>9}")
for r in precisions:
    latency = f"{r.latency_us:.1f}" if r.latency_us is not None else "sim"
    print(f"{r.name:<24}{r.size_bytes / 1e3:>8.1f}k{r.weight_bytes / 1e3:>8.1f}k{latency:>9}"
          f"{r.val_score:>9.4f}{r.val_score - base.val_score:>+9.4f}"
          f"{r.test_score:>9.4f}{r.test_score - base.test_score:>+9.4f}")

# %% mystnb={"figure": {"caption": "Every ONNX graph is far faster than eager PyTorch, but at this model size INT8 (QDQ) and FP16 are no faster than FP32 in ONNX Runtime, and the validation score moves only in the third decimal: precision is not what limits this model."}, "image": {"alt": "Scatter plot with the fastest call at batch 1 in µs on the x axis (log scale) and the change in validation score from FP32 eager on the y axis, with a grey horizontal line at zero. Four points are labelled with their precision and weight size in kB, labels alternating above and below: fp32 eager far to the right on the zero line, and fp32 onnx, fp16 onnx and int8 onnx (QDQ) close together at the left, the INT8 point slightly off zero."}}
by_name = {r.name: r for r in precisions}
assert by_name["int8 onnx (QDQ)"].weight_bytes < 0.4 * by_name["fp32 onnx"].weight_bytes
assert abs(by_name["fp32 onnx"].val_score - base.val_score) < 1e-5
timed = {r.name: r.latency_us for r in precisions if r.latency_us is not None}
plots.precision_tradeoff(timed, {k: by_name[k].val_score - base.val_score for k in timed},
                         sizes={k: by_name[k].weight_bytes for k in timed});

# %% [markdown]
# Three things to read off the table. The **weights** shrink to a quarter in INT8 and to
# half in FP16 (bytes per number),
# but for a network of a few ten thousand parameters the ONNX graph itself (nodes,
# names, and in a QDQ model the quantise/dequantise steps) is a visible share of the
# file. The **latency** does not improve at this size on this CPU: quantising and
# dequantising the activations around every convolution costs about what the integer
# arithmetic saves, and FP16 runs through casts. The **score** (validation and test
# Pearson correlation of the volatility forecast) moves in the third decimal: for
# this model, precision is not what limits it. Quantisation pays on larger models
# and on hardware with integer datapaths (the FPGA of {doc}`05_hardware_targets`),
# the subject of the next section. One trained model and one seed: the
# score changes are a measurement of this model, not a law.
#
# ## The FPGA model in fixed point, with hls4ml
#
# An FPGA computes in fixed point: every value is an `ap_fixed<W,I>`, $W$ bits of
# which $I$ are integer bits (sign included), so it holds
#
# $$ v = k \cdot 2^{-(W-I)}, \qquad -2^{I-1} \le v < 2^{I-1}, \quad k \in \mathbb{Z}. $$
#
# hls4ml {cite:p}`duarte2018hls4ml` converts a PyTorch model into the HLS C++ that Vitis
# HLS synthesises, and compiles the same C++ with g++ into an emulation that is
# bit-accurate to the hardware, so the fixed-point score is *measured*. The precision
# must be chosen, not defaulted: too few integer bits and values saturate, too few
# fractional bits and they round away. `hwnas.deploy.hls.choose_precisions` applies one
# stated rule per layer: run the float model over 256 **training** windows, take each
# layer output's peak magnitude $p$, and give it
#
# $$ I = 1 + \max\bigl(0, \lfloor \log_2 p \rfloor + 1\bigr) + m $$
#
# integer bits (sign, magnitude, $m = 1$ bit of margin for values beyond the calibration
# range; weights, known exactly, get $m = 0$), the other $W - I$ of $W = 16$ bits
# fractional, with rounding to nearest and saturation. hls4ml's PyTorch front end has
# no layer for the `last` head's slice or for a depthwise convolution's groups, so
# `hls_ready_model` rewrites them (a full-width convolution whose only non-zero tap is
# the last step; a dense convolution with block-diagonal weights): exact zeros, the same
# function, and HLS removes multiplications by a constant zero. An FPGA-space model,
# trained once, compiled once:

# %%
arch_f = SearchSpace.fpga(input_features=task.num_features, lookbacks=(32,), depths=(3,)).sample(
    np.random.default_rng(4))
print(arch_f.describe())
model_f = train_model(arch_f, task, 0)
calib_f = calibration_windows(task, arch_f.lookback, 256, 0)
build_f = compile_hls(model_f, calib_f)
print(f"g++ compile of the emulation: {build_f.compile_s:.1f} s" + (" (from the cache)" if build_f.cached else ""))
print(f"{'layer':<16}{'peak':>8}  {'output type':<34}{'weight type'}")
for p in build_f.precisions.values():
    print(f"{p.layer:<16}{p.peak:>8.3f}  {p.result:<34}{p.weight or '-'}")

# %%
fixed_rows = score_precisions(model_f, arch_f, task, calib_f, precisions=("fp32 eager", HLS_FIXED_POINT),
                              timing=TimingSpec.COMPARE.replace(target_ms=5.0))
float_f, fixed_f = fixed_rows
print(f"{'precision':<22}{'weights':>9}{'val':>9}{'test':>9}{'max |Δ| val':>13}")
for r in fixed_rows:
    print(f"{r.name:<22}{r.weight_bytes / 1e3:>8.1f}k{r.val_score:>9.4f}{r.test_score:>9.4f}{r.max_abs_diff:>13.5f}")
glue("hls_test_float", float(float_f.test_score), display=False)
glue("hls_test_fixed", float(fixed_f.test_score), display=False)
glue("hls_max_diff", float(fixed_f.max_abs_diff), display=False)
project = export_hls(model_f, arch_f, WORK / "hls_project", calib_f)
print(f"HLS project at {project.name}/:")
for path in sorted(project.rglob("*")):
    rel = path.relative_to(project)
    if path.is_file() and len(rel.parts) <= 2 and "nnet_utils" not in rel.parts and "ap_types" not in rel.parts:
        print(f"  {rel}")

# %%
assert fixed_f.runtime == "hls4ml" and 0 < fixed_f.max_abs_diff < 0.05
assert (project / "build_prj.tcl").is_file() and (project / "firmware" / "myproject.cpp").is_file()

# %% [markdown]
# In 16-bit fixed point the test score is {glue:text}`hls_test_fixed:.4f` against
# {glue:text}`hls_test_float:.4f` in float, the largest gap of a validation prediction
# {glue:text}`hls_max_diff:.5f`: with precisions chosen from the data the fixed-point
# model is the float model for trading purposes. The folder is what a user takes to the
# FPGA tools: `vitis_hls -f build_prj.tcl` synthesises `firmware/myproject.cpp`
# (`parameters.h` holds the per-layer types, `weights/` the constants, `tb_data/` a
# testbench of 16 training windows with the float model's outputs), and `hwnas_hls.json` records the architecture, the precisions and the
# rule. The command line writes the same project: `hwnas export ARCH.json --weights
# W.pt --format hls --out DIR`. Ops hls4ml cannot convert (attention, GELU, the `gap`
# and `flatten` heads) are refused with the op and the target named; for those the
# precision table above falls back to the torch simulation.
#
# A search can score FPGA candidates at their deployed precision too:
# `Evaluator(task, profile, fixed_point="qat")` trains each candidate with fake fixed
# point (`hwnas.proxy.fixed_point`: every weight and layer output rounded to its grid,
# gradients passed straight through the rounding), `fixed_point="ptq"` compiles each
# trained candidate through hls4ml and scores the emulation. The second is exact but
# pays a g++ compile per candidate; `benchmarks/bench_toolchains.py --only hls` measures
# which of the two ranks candidates closer to their deployed fixed-point test score, and
# at what cost. Its committed run:

# %%
from hwnas.pipeline import PLANS  # noqa: E402
from hwnas.targets.fpga import ZU9EG  # noqa: E402

hls_bench = json.loads(TOOLCHAINS.with_name("toolchains_hls.json").read_text(encoding="utf-8"))
hls_rank = hls_bench["ranking"]
repeats = hls_rank["n"] - len({r["arch"] for r in hls_bench["ranking_rows"]})
ci_lo, ci_hi = hls_rank["qat_minus_float_spearman_val_ci90"]
glue("hlsb_n", int(hls_rank["n"]), display=False)
distinct = int(hls_rank.get("distinct_models", hls_rank["n"]))
glue("hlsb_distinct", (f"{distinct} distinct models: {repeats} draws repeat an architecture, and different labels "
                       "can compute the same function, a kernel-1 convolution being a dense layer"
                       if distinct < hls_rank["n"] else "all distinct models"), display=False)
glue("hlsb_rho_float", float(hls_rank["spearman_float_val_vs_deployed_val"]), display=False)
glue("hlsb_rho_qat", float(hls_rank["spearman_qat_val_vs_deployed_val"]), display=False)
glue("hlsb_ci", f"[{ci_lo:+.3f}, {ci_hi:+.3f}]", display=False)
glue("hlsb_edge", "QAT ranks the deployed model better beyond the draw of architectures" if ci_lo > 0 else
     "float ranks it better beyond the draw of architectures" if ci_hi < 0 else
     "neither proxy's edge exceeds the draw of architectures", display=False)
glue("hlsb_qat_cost", float(hls_rank["median_qat_s"] / hls_rank["median_float_s"]), display=False)
glue("hlsb_ptq_s", float(hls_rank["median_ptq_s"]), display=False)
level = {m: abs(hls_rank[f"{m}_test_minus_ptq_test_median"]) for m in ("qat", "float")}
glue("hlsb_level", "QAT's" if level["qat"] < level["float"] else "float's", display=False)
glue("fpga_plan_scoring", PLANS["fpga"].scoring(ZU9EG.bits), display=False)
print(f"{hls_rank['n']} FPGA architectures: Spearman with the deployed model's validation score, float "
      f"{hls_rank['spearman_float_val_vs_deployed_val']:.3f}, QAT {hls_rank['spearman_qat_val_vs_deployed_val']:.3f}; "
      f"QAT minus float, 90% bootstrap interval [{ci_lo:+.3f}, {ci_hi:+.3f}]; median seconds per candidate: float "
      f"{hls_rank['median_float_s']:.1f}, QAT {hls_rank['median_qat_s']:.1f}, PTQ {hls_rank['median_ptq_s']:.1f}")
print(f"the capstone's FPGA plan scores candidates in {PLANS['fpga'].scoring(ZU9EG.bits)}")

# %% [markdown]
# Over {glue:text}`hlsb_n` random FPGA architectures ({glue:text}`hlsb_distinct`), float
# training ranks them by the deployed 8-bit model's validation score with Spearman
# {glue:text}`hlsb_rho_float:.3f` and QAT with {glue:text}`hlsb_rho_qat:.3f`; the paired
# bootstrap interval of the difference is {glue:text}`hlsb_ci`, so
# {glue:text}`hlsb_edge`. {glue:text}`hlsb_level` scores sit closer to the deployed model's
# level, QAT costs {glue:text}`hlsb_qat_cost:.1f`× a float candidate and PTQ
# {glue:text}`hlsb_ptq_s:.0f` s. The capstone's FPGA plan scores its candidates in
# {glue:text}`fpga_plan_scoring`: the precision the part computes in, at a small price.
#
# (ch11-sla)=
# ## Latency SLA reports
#
# A trading system's question is not the median: it is whether the call that decides
# an order returns within its budget nearly every time. `sla_report` runs the
# deployed model the way it will be served, keeps every timed call (here 5,000 in 5
# bursts), and judges the $p$-th percentile against the budget $B$:
#
# $$ \text{pass} \iff \hat t_{(p)} \le B \ \text{ and memory} \le M, \qquad
#    \hat t_{(p)} = \text{the } p\text{-th percentile of the samples}. $$
#
# It reports p50, p99, p99.9 and max, the table's prediction beside them when a
# profile is given, and warns, as `torch.utils.benchmark`'s `Measurement` does, when
# the interquartile range exceeds a tenth of the median. On a shared machine a tail
# percentile includes other tenants' interference: the report records the load
# average and the p99 of each burst, and says when they disagree.

# %%
fastest = int(np.argmin(ort_us))
report_ort = sla_report(archs[fastest], 20.0, runtime="onnxruntime", repeats=5000, bursts=5,
                        memory_budget_bytes=10 * 1024**2)
report_eager = sla_report(archs[fastest], 20.0, runtime="eager", repeats=2000, bursts=4,
                          memory_budget_bytes=10 * 1024**2)
print(report_ort.summary())
print(report_eager.summary())

# %% mystnb={"figure": {"caption": "ONNX Runtime's calls (blue) gather well below eager PyTorch's (orange), yet the p99 and p99.9 of the ONNX Runtime samples lie far to the right of their p50 and of the 20 µs budget: on a shared machine the tail is set by the neighbours as much as by the model."}, "image": {"alt": "Histogram of latency per call in µs (x, log scale, log-spaced bins) with the number of calls on a log y axis: blue bars for 5,000 ONNX Runtime calls and translucent orange bars for 2,000 eager PyTorch calls, the orange peak about an order of magnitude to the right of the blue one, and both with a long tail of slow calls stretching to the right. Dotted vertical lines mark the ONNX Runtime p50 (green), p99 (orange) and p99.9 (purple), and a red dashed line marks the 20 µs budget at the far left."}}
assert report_ort.n == 5000 and report_ort.p50_us <= report_ort.p99_us <= report_ort.p999_us
assert report_ort.passed == (report_ort.p99_us <= 20.0 and report_ort.memory_bytes <= 10 * 1024**2)
ax = plots.sla_histogram(report_ort.samples_us, 20.0, label="ONNX Runtime")
ax.hist(report_eager.samples_us, bins=np.geomspace(min(report_ort.samples_us), max(report_eager.samples_us), 60),
        alpha=0.4, color="tab:orange", label="eager PyTorch")
ax.legend(fontsize="small");

# %% [markdown]
# ## The 50 µs market-making budget
#
# The reference chapter's market maker has 50 µs from market data to order: 20 µs
# for features, 20 µs for the model, 10 µs for the order,
#
# $$ t_{\text{features}} + t_{\text{model}} + t_{\text{order}}
#    = 20 + 20 + 10 = 50\ \mu\text{s}, $$
#
# and the model's 20 µs is a tail bound, not a median. Which of the 24 models fit 20 µs
# at p99 on this CPU, in which runtime? The p99 of the side-by-side timing above
# answers it for every model (fewer samples per model than an SLA report; the
# fastest candidate's full report is above):

# %%
eager_p99 = np.array([timings[("eager", k)].p99_us for k in range(len(archs))])
ort_p99 = np.array([timings[("ort", k)].p99_us for k in range(len(archs))])
fits_eager, fits_ort = int((eager_p99 <= 20).sum()), int((ort_p99 <= 20).sum())
print(f"models with p99 <= 20 µs: eager PyTorch {fits_eager} of {len(archs)}, "
      f"ONNX Runtime {fits_ort} of {len(archs)}")
for k in np.argsort(ort_p99)[:5]:
    print(f"  L={archs[k].lookback:<3} depth {archs[k].depth}  {flops[k] / 1e6:5.2f} MFLOP  "
          f"ORT p99 {ort_p99[k]:7.1f} µs   eager p99 {eager_p99[k]:7.1f} µs")

# %%
assert fits_eager <= fits_ort
print(f"chapter ran in {time.perf_counter() - START:.0f} s")

# %% [markdown]
# Read the counts with the conditions printed beside them. Eager PyTorch's dispatch
# alone costs tens of microseconds per model, so no model of the default space fits
# 20 µs in it; ONNX Runtime's fixed cost per call is a few microseconds, so the
# budget is a question about the model's own arithmetic there, and the smallest
# models of the default space still need a few tens of microseconds at best. The p99
# on a shared machine is set by the neighbours as much as by the model (compare the
# per-burst p99s of the report above). That is the reference chapter's point made
# concrete: a 20 µs constraint belongs to the *deployed* runtime (or to the FPGA the
# chapter names), the search should run against that runtime's table and a space
# small enough to reach it (the `fpga` and `mobile` spaces, shorter lookbacks), and
# the SLA is checked on the tail, on the target machine, repeated.
#
# ## Summary
#
# - `export` writes ONNX (opset 17, TorchScript-based exporter) or `torch.export`
#   files and refuses to write one that differs from eager PyTorch by more than
#   $10^{-5}$ on real windows; every operation and skip kind of every space passes.
# - ONNX Runtime runs these models several times faster than eager PyTorch at batch 1,
#   by a factor that varies from model to model, so the latency ranking, and the
#   Pareto front, change with the runtime.
# - `profile_cpu(space, runtime="onnxruntime")` builds the table in the deployment
#   runtime; its per-call cost must be counted once per model, not once per layer.
#   Judged with the same `compare_with_flops` as chapter {doc}`04_latency_lut`, it beat a
#   cross-fitted FLOPs fit here too (acc10 {glue:text}`ort_lut_acc10:.0%` against
#   {glue:text}`ort_flops_acc10:.0%`, ρ {glue:text}`ort_lut_rho:.3f` against
#   {glue:text}`ort_flops_rho:.3f`), same models, same passes.
# - On the phone the same model ships as an ExecuTorch `.pte` (`export(..., format="pte")`),
#   XNNPACK running the convolutions and products; `delegation_table` says which op types
#   fall back to the portable kernels.
# - INT8 (QDQ, per-channel) and FP16 shrink the weights to a quarter and a half and barely move the
#   proxy score; at this size they do not make the CPU faster.
# - `sla_report` judges p99 (or any percentile) against a budget from raw samples,
#   with memory, the table's prediction, the conditions, and warnings when the spread
#   or the machine's load makes the verdict uncertain.
#
# ## Exercises
#
# **1.** Export the FPGA space's coverage architecture with a tolerance of
# $10^{-9}$. What happens, and why is that not a bug?
#
# :::{dropdown} Solution
# `export` raises `ValueError` ("export check failed") and writes nothing: ONNX Runtime
# sums in a different order than PyTorch (and fuses operations), so float32 results
# differ in the last bits, about $10^{-8}$ here. A tolerance below float32's resolution
# at these magnitudes cannot be met by any correct implementation.
# :::

# %% tags=["hide-cell"]
try:
    export(coverage_architecture(SearchSpace.fpga(input_features=task.num_features), 64),
           WORK / "tight.onnx", check_inputs=windows, atol=1e-9, rtol=1e-9)
except ValueError as err:
    print(str(err)[:90], "...")
print("file written:", (WORK / "tight.onnx").exists())

# %% [markdown]
# **2.** Run the SLA report of the fastest model again with `percentile=99.9`. Does the
# verdict change? How many calls does the p99.9 of 5,000 calls rest on?
#
# :::{dropdown} Solution
# p99.9 is at least p99, so a pass can only turn into a miss. With 5,000 calls the
# p99.9 is decided by the slowest 5 calls: on a shared machine those are almost
# always interruptions by other processes, so the verdict says more about the
# neighbours than about the model. A production SLA is checked on an isolated core
# with many more calls, and repeated.
# :::

# %% tags=["hide-cell"]
strict = sla_report(archs[fastest], 20.0, percentile=99.9, repeats=5000, bursts=5)
print(f"p99.9 {strict.p999_us:.1f} µs -> {'pass' if strict.passed else 'miss'}; "
      f"calls beyond it: {int(round(strict.n * 0.001))}")

# %% [markdown]
# **3.** The FP16 model keeps its inputs and outputs in float32. What would change if
# it did not, and who would have to convert?
#
# :::{dropdown} Solution
# The session would expect float16 windows, so the caller (the feature pipeline) would
# have to produce or cast them: one more step inside the 20 µs feature budget, and a
# loss of precision on the inputs themselves (standardised features near 0 keep about
# three significant digits). `convert_fp16(..., keep_io_types=True)` puts the casts
# inside the graph instead.
# :::
