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
# # 12 · Capstone: one search per hardware target
#
# Every earlier chapter built one piece: a search space ({doc}`01_search_space`), its
# costs ({doc}`02_flops`, {doc}`03_memory`), latency tables and hardware targets
# ({doc}`04_latency_lut`, {doc}`05_hardware_targets`), a proxy task on Bybit data
# ({doc}`06_bybit_data`). This chapter runs the whole method once per target, the way a
# trading desk would before deploying a model: search each target under its own rules,
# retrain the chosen architecture longer, score it on a test period that no step of the
# search has seen, put it beside hand-designed baselines, export it, quantise it where
# that helps, and check it against its latency budget at the 99th percentile. Then the
# question a trader asks: **is the searched model better than the LSTM or the naive
# forecast, and is it faster?**
#
# **You will learn**
#
# - how `hwnas.pipeline.run_pipeline` (and `hwnas run --target cpu|gpu|fpga` on the
#   command line) chains data, profile, search, retraining, baselines, export,
#   quantisation and the SLA report, and where its time goes;
# - why the three targets choose different architectures, in terms of their rules;
# - how to read a held-out comparison against baselines honestly, with a walk-forward
#   check that the ranking survives a later period.
#
# **Prerequisites**: chapters {doc}`01_search_space` to {doc}`06_bybit_data`; the Pareto
# front and the search loop of chapter 07.
#
# **Reduced budgets.** To run in under two minutes on two CPU cores this chapter
# searches small spaces (lookback 32, two or three layers; the CPU space also narrower)
# with 6 evaluations per target, retrains for 3 epochs, and times 2,000 calls per SLA
# report. `benchmarks/bench_capstone.py` runs the CPU target at full size (the whole
# mobile space, 40 evaluations, 10,000 SLA calls) and commits its figures in
# `benchmarks/results/`.

# %%
import json
import random
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import display
from myst_nb import glue

import hwnas
from hwnas import plots
from hwnas.cost import count_flops, count_params
from hwnas.data import load_klines
from hwnas.latency import TimingSpec
from hwnas.numerics import spearman
from hwnas.pipeline import PLANS, TARGET_NAMES, run_pipeline, target_space, walk_forward
from hwnas.pipeline.run import TAIL_FACTOR_MAX
from hwnas.proxy import make_proxy_task

SEED = 2024
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
pd.set_option("display.precision", 4)
WIDTH = 96  # printed lines wrap here, so no output scrolls sideways


def wrap(text: str) -> str:
    """``text`` with every line longer than WIDTH wrapped, continuation lines indented."""
    return "\n".join(textwrap.fill(line, WIDTH, subsequent_indent="    ") if len(line) > WIDTH else line
                     for line in str(text).splitlines())


OUT = Path(tempfile.mkdtemp(prefix="hwnas_capstone_"))  # the runs' files (JSON, PNG, ONNX) go here

# %% [markdown]
# ## The three targets and their rules
#
# Each target is searched for the architecture with the best validation score among
# those that fit its budgets:
#
# $$a^\star = \arg\max_{a \in \mathcal{A}_t} \ \text{ACC}_{\text{val}}(a) \quad
# \text{subject to} \quad \text{LAT}_t(a) \le T_t,\ \ \text{MEM}_t(a) \le M_t,$$
#
# where $\mathcal{A}_t$ is the target's search space, $\text{LAT}_t(a) = \sum_i
# \text{LUT}_t(o_i, d_i)$ its latency table or model ({doc}`04_latency_lut`) and $T_t$,
# $M_t$ its budgets. The FPGA's budget comes from the reference chapter's market maker:
#
# $$\underbrace{50\ \mu s}_{\text{decision}} = \underbrace{20\ \mu s}_{\text{features}}
# + \underbrace{20\ \mu s}_{\text{model}} + \underbrace{10\ \mu s}_{\text{order}}.$$
#
# Each target is searched with the strategy an earlier chapter found suited to it:
# regularised evolution {cite}`real2019regularized` for the CPU's measured table
# ({doc}`07_pareto`: it reaches random search's final hypervolume in a fraction of the
# evaluations), compound scaling {cite}`tan2019efficientnet` for the GPU's batch inference
# ({doc}`09_efficientnet_scaling`: widths stay at tensor-core multiples), and FBNet
# {cite}`wu2019fbnet` for the FPGA ({doc}`10_fbnet`: one supernet run, whose latency loss
# is exact to the cycle model because the model prices every candidate). All run under
# the hard constraint (only candidates within the budgets count), and the selection reads
# validation scores only. The plan per target:

# %%
# NBVAL_CHECK_OUTPUT
plan_table = pd.DataFrame([{"target": p.target, "space": p.space, "strategy": p.strategy,
                            "budget µs": p.latency_budget_us, "batch": p.batch, "rule": p.rule}
                           for p in PLANS.values()]).set_index("target")
print(plan_table[["space", "strategy", "budget µs", "batch"]].to_string())
assert PLANS["fpga"].latency_budget_us == 50.0 - 20.0 - 10.0
glue("gpu_budget_us", float(PLANS["gpu"].latency_budget_us), display=False)
glue("gpu_batch", int(PLANS["gpu"].batch), display=False)
glue("gpu_per_window_us", float(PLANS["gpu"].latency_budget_us / PLANS["gpu"].batch), display=False)

# %% [markdown]
# The FPGA's 20 µs is the reference chapter's. The other two budgets are this course's
# choices, stated so they can be argued with: the GPU's {glue:text}`gpu_budget_us:.0f` µs
# for a batch of {glue:text}`gpu_batch` windows ({glue:text}`gpu_per_window_us:.2f` µs per
# window on the A100 model), and the CPU's 40 µs per call at the 99th
# percentile, the LSTM baseline's fastest ONNX Runtime call on the course machine, so that
# a model within it is faster than the LSTM by construction (its slow calls are no slower
# than the LSTM's fast ones); what remains open is its score.

# %% [markdown]
# ## Data
#
# One proxy task serves all three searches: BTCUSDT 15-minute candles, the
# next-window volatility target of {doc}`06_bybit_data`, windows of 32 steps, a
# chronological 60/20/20 split with gaps.

# %%
data = load_klines("BTCUSDT", "15")
print(wrap(data))
task = make_proxy_task(data.frame, lookback=32, interval=data.interval, source=data.description)
print(wrap(task.describe()))

# %% [markdown]
# ## One pipeline per target
#
# `run_pipeline` does, per target: build or load the profile (CPU: this machine, one
# thread, 10 MiB, the table measured in ONNX Runtime; GPU: the A100 roofline model at
# batch 256, *a model, not a measurement*; FPGA: the ZU9EG INT8 cycle model), search,
# choose, retrain with the longer recipe, train and score the baselines with the same
# recipe, export to ONNX, try lower precisions and run the SLA report. The CPU's space
# is narrowed further here (widths 8 and 16, kernels 3 and 5) so its latency table
# builds in seconds.

# %%
spaces = {"cpu": target_space("cpu", quick=True, widths=(8, 16), kernel_sizes=(3, 5)),
          "gpu": target_space("gpu", quick=True), "fpga": target_space("fpga", quick=True)}
results = {}
for name in TARGET_NAMES:
    results[name] = run_pipeline(name, task=task, space=spaces[name], quick=True, evals=6,
                                 retrain_epochs=3, retrain_windows=2048, sla_repeats=2000,
                                 timing=TimingSpec.COMPARE.replace(target_ms=5.0), out_dir=OUT, seed=0, progress=False)
    print(wrap(results[name].summary()), end="\n\n")

# %% [markdown]
# The checks: every chosen architecture is within its target's budget by the target's
# own latency model (for the CPU within a tighter one, the next section's), its scores
# are finite, and the exported ONNX file reproduces the eager model. On a loaded machine
# the CPU's tighter budget can leave no candidate at all: that is a result, not a crash.
# The run then keeps the fastest model it trained, says so (`choice`), and its verdict is
# FAIL with the reason; the rest of the chapter runs on that model all the same.

# %%
for name, r in results.items():
    table_budget = r.search.problem.latency_budget_us
    if r.choice["within_budget"]:
        assert r.latency["predicted_us"] <= table_budget <= r.plan.latency_budget_us, name
    else:
        assert not r.verdict["passed"], name
        print(f"{name}: {r.verdict['reasons'][0]}")
    assert np.isfinite(r.scores["val"]) and np.isfinite(r.test_score), name
    assert r.export["max_abs_error"] <= 1e-5 + 1e-5 * 10, name
    assert Path(r.outputs["summary"]).is_file() and Path(r.outputs["front"]).is_file()
print({name: round(r.latency["predicted_us"], 1) for name, r in results.items()})

# %% [markdown]
# (ch12-tail)=
# ## The CPU's tail: from a p99 budget to a table budget
#
# The CPU's table predicts a model's *fastest* call ({doc}`04_latency_lut`): that is
# what repeats from run to run. The SLA judges the *99th percentile* ({doc}`11_deployment`),
# and on a real machine the two differ by a factor no table can know (timer interrupts,
# caches cold after a context switch, frequency changes, other tenants of a shared VM).
# A search that holds the table to the budget chooses a model whose fastest call is just
# under it and whose p99 is not (exercise 2 tries it).
# So the pipeline first measures the factor on three calibration models that the table
# prices below the budget (the size the search will choose from), each timed in ONNX
# Runtime in five bursts, and holds the table to the budget divided by the worst ratio:
#
# $$k = \max_i \frac{\operatorname{median}_b\, p_{99}(m_i, b)}{\min_j t_j(m_i)},
# \qquad \text{LAT}_{\text{table}}(a) \le \frac{T}{k},$$
#
# where $t_j(m_i)$ are the timed calls of calibration model $m_i$ and $p_{99}(m_i, b)$ the
# 99th percentile of burst $b$. The median over bursts keeps one episode of interference
# during the calibration from setting the budget of the whole search; the maximum over
# models errs on the safe side. The GPU and FPGA models predict a steady call ($k = 1$;
# a fixed FPGA pipeline has deterministic timing).

# %%
cpu = results["cpu"]
k = cpu.tail["factor"]
print(wrap(cpu.tail["summary"]))
table_budget = cpu.search.problem.latency_budget_us
print(wrap(f"table budget {table_budget:.1f} µs = {cpu.plan.latency_budget_us:g} µs / {k:.2f}; the chosen "
           f"model: predicted {cpu.latency['predicted_us']:.1f} µs, measured p99 {cpu.sla['p99_us']:.1f} µs"))
glue("tail_k", float(k), display=False)
glue("table_budget_us", float(table_budget), display=False)
calibration = cpu.tail["calibration"]
measured = max(1.0, max(t / f for t, f in zip(calibration["tail_us"], calibration["fastest_us"])))
assert k == min(measured, TAIL_FACTOR_MAX)  # bounded: above it the machine is too noisy to measure a tail
assert abs(table_budget * k - cpu.plan.latency_budget_us) < 1e-9
assert cpu.latency["predicted_us"] <= table_budget or not cpu.choice["within_budget"]
assert all(r.tail["factor"] == 1.0 for name, r in results.items() if name != "cpu")

# %% mystnb={"figure": {"caption": "Why the CPU search needs a tail factor: each calibration model's p99 lies well above its fastest call, on or below the line p99 = k × fastest. Holding the table (the fastest call) to the budget over k leaves room for the tail; the deployed model's own p99 (the star), which need not lie below the line, is then judged against the 40 µs SLA."}, "image": {"alt": "Scatter plot of p99 call in µs (y) against fastest call in µs (x), both linear from zero. A grey dotted diagonal marks p99 equal to the fastest call, a steeper blue line marks p99 equal to k times the fastest call; three blue dots are the calibration models, a black star the deployed model. A red dashed horizontal line marks the 40 µs SLA and a red dotted vertical line the table budget, 40 µs over k."}}
plots.tail_calibration(calibration, cpu.plan.latency_budget_us, chosen=(cpu.sla["min_us"], cpu.sla["p99_us"]));

# %% [markdown]
# The factor is a property of the machine as much as of the models: the same
# calibration on a quiet dedicated core gives a smaller one; this run measured
# {glue:text}`tail_k:.2f`, the committed benchmark {glue:text}`bench_tail_k:.2f`
# ({glue:text}`bench_where`). A p99 SLA on a machine you share is
# therefore a statement about the machine, and the SLA report is the only judge of it:
# `benchmarks/bench_capstone.py` repeats the report on the deployed file to say how often
# the verdict holds.

# %% [markdown]
# (ch12-architectures)=
# ## Three different architectures
#
# The same method, three different answers:

# %%
arch_table = pd.DataFrame([{
    "target": name, "layers": " ".join(layer.op.value + (f"{layer.kernel_size}" if layer.kernel_size > 1 else "")
                                       + ("+skip" if layer.use_skip else "") for layer in r.arch.layers[1:]),
    "widths": "/".join(str(layer.out_channels) for layer in r.arch.layers), "head": r.arch.head.value,
    "lookback": r.arch.lookback, "params": count_params(r.arch), "kFLOPs": count_flops(r.arch) / 1e3,
    "memory B": r.memory_bytes, "precision": r.precision} for name, r in results.items()]).set_index("target")
display(arch_table)
assert len({r.arch.to_json() for r in results.values()}) == 3

# %% mystnb={"figure": {"caption": "The same method gives three different architectures because the targets' rules differ: narrow layers for one CPU thread, wide ones (multiples of 16) for the batched GPU, and small convolutions with a skip on every block for the FPGA."}, "image": {"alt": "Diagram without axes: three rows labelled cpu (blue), gpu (green) and fpga (red), each a sequence of rounded boxes, one per layer, coloured by operation and labelled with the operation, its kernel and its output width. A black edge marks a layer with a skip connection, and the text after each row gives the head type and the lookback L."}}
plots.architecture_blocks({name: r.arch for name, r in results.items()});

# %% [markdown]
# They differ because the targets' rules differ ({doc}`05_hardware_targets`):
#
# - **FPGA**: the space itself only offers what synthesises well (1×1 and 3×3 kernels,
#   ReLU, a skip on every block, no attention), memory is block RAM, arithmetic INT8. The
#   cycle model charges multiply-adds over parallel DSP slices, so every model of this
#   small space fits 20 µs easily; the budget that binds a larger FPGA space is resources.
# - **GPU**: widths come in multiples of 16 (tensor cores) and the stem is 64 wide; at
#   batch 256 a wider layer costs little more than a narrow one while each extra kernel
#   launch costs the same few microseconds, so the GPU's model tolerates width and
#   punishes depth.
# - **CPU**: one thread, the narrowest widths, and latency as ONNX Runtime pays it: small
#   convolutions are cheap, while every extra operation still costs a fixed call.
#
# Each run also wrote the front it chose from (`<target>_front.png`); the CPU's:

# %% mystnb={"figure": {"caption": "The CPU search: every trained candidate's validation score against its latency predicted by the ONNX Runtime table, the front as a step line and the table budget (the 40 µs p99 budget over the tail factor) dashed; the starred choice is the best validation score within it."}, "image": {"alt": "Scatter plot of validation score (proxy, y) against predicted latency in µs (x, linear) for the handful of candidates the CPU search trained, blue dots in the evolution strategy's colour, with a blue step line through the front, a red dashed vertical line at the table budget and a black star on the chosen architecture, left of the budget line."}}
ax = plots.search_front(cpu.search, chosen=cpu.arch, title=f"cpu: {cpu.profile_label}",
                        budget_label=f"table budget {table_budget:.1f} µs ({cpu.plan.latency_budget_us:g} µs / {k:.2f})");

# %% [markdown]
# (ch12-heldout)=
# ## Held-out test: the chosen models against the baselines
#
# Scores are the Pearson correlation of predicted and realised next-window volatility on
# the **test** period, which no search or selection step read. Every trained model used
# the same recipe (3 epochs over 2,048 training windows here). Latencies are this CPU's
# fastest call at batch 1 in ONNX Runtime, one thread, measured side by side (for the
# GPU and FPGA models that is where they would run if not on their target: their target
# latency is the model's prediction in the closing table).

# %% mystnb={"figure": {"caption": "Every trained model sits well above persistence (dotted line), while the gaps between the searched models and the LSTM and MLP baselines are of the order of the seed noise: the search bought a model that fits each target's budget, not accuracy."}, "image": {"alt": "Scatter plot of test score (held out, y) against this CPU's fastest ONNX Runtime call in µs (x, log scale). Circles in the target colours are labelled NAS cpu (blue), NAS gpu (green) and NAS fpga (red); brown squares are labelled LSTM and MLP; a grey dotted horizontal line below them all marks persistence."}}
rows = []
for name, r in results.items():
    rows.append({"name": f"NAS {name}", "kind": name, "score": r.test_score, "latency_us": r.latency["ort_us"]})
lstm, mlp = results["cpu"].baselines["lstm"], results["cpu"].baselines["mlp"]
rows += [{"name": "LSTM", "kind": "baseline", "score": lstm["test"], "latency_us": lstm["ort_us"]},
         {"name": "MLP", "kind": "baseline", "score": mlp["test"], "latency_us": mlp["ort_us"]}]
persistence = results["cpu"].baselines["persistence"]["test"]
comparison = pd.DataFrame(rows).set_index("name")
print(comparison.round(4).to_string())
print(f"persistence (no model): test {persistence:+.4f}")
ax = plots.score_vs_latency(rows, xlabel="this CPU, ONNX Runtime, 1 thread: fastest call (µs)")
ax.axhline(persistence, color="grey", linestyle=":", label="persistence")
ax.legend(fontsize="small");

# %%
for name, r in results.items():
    verdict_lstm = "beats" if r.test_score >= lstm["test"] else "does NOT beat"
    verdict_pers = "beats" if r.test_score >= persistence else "does NOT beat"
    speed = lstm["ort_us"] / r.latency["ort_us"]
    print(wrap(f"NAS {name}: test {r.test_score:+.4f}: {verdict_lstm} the LSTM ({lstm['test']:+.4f}), "
               f"{verdict_pers} persistence ({persistence:+.4f}); LSTM/NAS latency in ORT {speed:.1f}x"))

# %%
best = comparison["score"].idxmax()
glue("gpu_vs_lstm", "slower" if results["gpu"].latency["ort_us"] > lstm["ort_us"] else "faster", display=False)
print(f"best test score in the table: {best} ({comparison.loc[best, 'score']:+.4f}); "
      f"persistence {persistence:+.4f}")

# %% [markdown]
# The full-size run of the CPU pipeline, `benchmarks/bench_capstone.py`, is committed in
# `benchmarks/results/capstone_cpu.json`; the cell below reads the figures the text quotes.

# %%
RESULTS = Path(hwnas.__file__).resolve().parents[1] / "benchmarks" / "results"
bench = json.loads((RESULTS / "capstone_cpu.json").read_text(encoding="utf-8"))
chosen, lstm_seeds = (np.array(bench["score_spread"][k]) for k in ("chosen", "lstm"))
diff = chosen.mean() - lstm_seeds.mean()
se = float(np.sqrt(chosen.var(ddof=1) / len(chosen) + lstm_seeds.var(ddof=1) / len(lstm_seeds)))
verdict_seeds = ("beat the LSTM's score" if diff > 2 * se else "fell short of the LSTM's score"
                 if diff < -2 * se else "tied the LSTM's score (within two standard errors)")
reports = [bench["pipeline"]["sla"], *bench["repeated_sla"]]
ort, eager = np.array(bench["lstm_ratio"]["ort"]), np.array(bench["lstm_ratio"]["eager"])
glue("bench_where", f"{bench['cpus']} CPUs, load average {bench['load_average'][0]:.2f} at its start",
     display=False)
glue("bench_tail_k", float(bench["pipeline"]["tail"]["factor"]), display=False)
glue("bench_seconds", float(bench["wall_seconds"]), display=False)
glue("bench_profile_share", float(bench["pipeline"]["stage_seconds"]["profile"] / bench["wall_seconds"]),
     display=False)
glue("bench_evals", int(bench["settings"]["evals"]), display=False)
glue("bench_epochs", int(bench["settings"]["retrain_epochs"]), display=False)
glue("bench_chosen_mean", float(chosen.mean()), display=False)
glue("bench_chosen_sd", float(chosen.std(ddof=1)), display=False)
glue("bench_lstm_mean", float(lstm_seeds.mean()), display=False)
glue("bench_lstm_sd", float(lstm_seeds.std(ddof=1)), display=False)
glue("bench_n_se", float(diff / se), display=False)
glue("bench_score_verdict", verdict_seeds, display=False)
glue("bench_beat_lstm", "beat the LSTM" if diff > 2 * se else "did not beat the LSTM", display=False)
glue("bench_sla_passed", sum(bool(r["passed"]) for r in reports), display=False)
glue("bench_sla_runs", len(reports), display=False)
glue("bench_p99_min", float(min(r["p99_us"] for r in reports)), display=False)
glue("bench_p99_max", float(max(r["p99_us"] for r in reports)), display=False)
glue("bench_prediction_error", float(abs(bench["prediction_error"])), display=False)
glue("bench_ort_ratio", float(np.median(ort)), display=False)
glue("bench_ort_min", float(ort.min()), display=False)
glue("bench_ort_max", float(ort.max()), display=False)
glue("bench_eager_ratio", float(np.median(eager)), display=False)
print(wrap(f"benchmarks/results/capstone_cpu.json ({bench['cpus']} CPUs, load {bench['load_average']}): "
           f"test over {len(chosen)} seeds: chosen {chosen.mean():+.4f} ± {chosen.std(ddof=1):.4f}, "
           f"LSTM {lstm_seeds.mean():+.4f} ± {lstm_seeds.std(ddof=1):.4f} (sd); difference {diff:+.4f} "
           f"= {diff / se:.1f} se: {verdict_seeds}; SLA met in "
           f"{sum(bool(r['passed']) for r in reports)} of {len(reports)} reports; LSTM/chosen latency "
           f"ORT {np.median(ort):.2f}x, eager {np.median(eager):.2f}x"))

# %% [markdown]
# Read this table as a trader would. The scores of a model trained for a few epochs
# move by about a hundredth between seeds ({doc}`06_bybit_data` measured the spread), so
# a gap smaller than that is not a result; the printout above says which trained
# models beat persistence and the LSTM on this run.
# Between the trained models the gaps are of the order of that noise: on this chapter's
# reduced runs the hand-designed MLP has scored best more often than any searched model,
# and which model comes first changes between runs (the CPU's table and tail factor are
# measured, so its choice can change with the machine's noise). The search did not buy
# accuracy here. What it bought is fit: each chosen model meets its own target's budget
# by its target's latency model. At full size (`benchmarks/bench_capstone.py`,
# {glue:text}`bench_evals` evaluations, {glue:text}`bench_epochs` epochs, the cell above)
# the CPU's chosen model scored {glue:text}`bench_chosen_mean:+.3f` ± {glue:text}`bench_chosen_sd:.3f`
# (sd) on the test period over five retraining seeds against the LSTM's
# {glue:text}`bench_lstm_mean:+.3f` ± {glue:text}`bench_lstm_sd:.3f`: a difference of
# {glue:text}`bench_n_se:.1f` standard errors, so it {glue:text}`bench_score_verdict`. The
# latencies in this table are short measurements (`timing_ms=5.0` of timed calls per
# model) on a shared machine, too short to order models that differ by less than a
# factor of two; the benchmark timed the full-size choice and the LSTM side by side five
# times: the LSTM took {glue:text}`bench_ort_ratio:.2f` times as long in ONNX Runtime
# (range {glue:text}`bench_ort_min:.2f` to {glue:text}`bench_ort_max:.2f`) but
# {glue:text}`bench_eager_ratio:.2f` times as long in eager PyTorch, where the chosen
# model's convolutions pay the framework's per-operator cost and the LSTM is one fused
# kernel: the runtime decides which model is faster. The GPU's model, wide because a
# large batch on a GPU makes width cheap, is {glue:text}`gpu_vs_lstm` than the LSTM on one
# CPU thread in the table above; it was searched to be fast on its own hardware, not on
# this one.

# %% [markdown]
# ## Deployment: precision and the SLA report
#
# Lower precision is kept only where it helps: on the CPU an INT8 (QDQ) or FP16 graph
# replaces FP32 when it is at least $5\,\%$ faster in ONNX Runtime at a validation score
# no more than $0.01$ lower; the GPU deploys FP16 and the FPGA INT8 fixed point because their
# profiles assume those precisions (the table shows what that costs in score).

# %%
prec = pd.DataFrame([{"target": name, **p} for name, r in results.items() for p in r.precisions])
print(prec.set_index(["target", "precision"]).round(4).to_string())
print({name: r.precision for name, r in results.items()})

# %% [markdown]
# The SLA report times the deployed file in ONNX Runtime on this CPU and judges its 99th
# percentile. For the CPU target that *is* the deployment; for the GPU (at batch 256) and
# the FPGA it is a stand-in, and their pass/fail rests on their analytical models.
# On a shared machine the tail includes other processes' interference: the report says
# so in its warnings, and a miss here should be repeated on a quiet machine before it is
# believed.

# %%
sla = pd.DataFrame([{"target": name, "batch": r.plan.batch, "budget µs": r.plan.latency_budget_us,
                     "p50 µs": r.sla["p50_us"], "p99 µs": r.sla["p99_us"], "p99.9 µs": r.sla["p999_us"],
                     "this CPU passes": r.sla["passed"], "warnings": len(r.sla["warnings"])}
                    for name, r in results.items()]).set_index("target")
print(sla.round(1).to_string())
print(wrap("; ".join(results["cpu"].sla["warnings"]) or "no warnings"))

# %% [markdown]
# (ch12-walkforward)=
# ## Walk-forward: does the ranking hold later?
#
# A single test period can flatter a model. The same three architectures, the LSTM and
# persistence are retrained on a later window of the data (four fifths of the rows,
# shifted by one fifth) and scored on the period after it; the earlier window is scored the same way.

# %%
wf = pd.DataFrame(walk_forward({name: r.arch for name, r in results.items()}, data.frame, folds=2,
                               fraction=0.8, lookback=32, seed=0, baselines=("persistence", "lstm"),
                               interval=data.interval, epochs=3, max_train_windows=2048))
table = wf.pivot(index="model", columns="fold", values="test")
periods = [f"{s[:10]} to {e[:10]}" for s, e in wf.groupby("fold")[["test_start", "test_end"]].first().values]
print(table.round(4).to_string())
rho = spearman(table[0].to_numpy(), table[1].to_numpy())
print(f"rank agreement of the two periods (Spearman over {len(table)} models): {rho:+.2f}")
glue("wf_rho", float(rho), display=False)
assert wf.groupby("fold")["test_start"].first().is_monotonic_increasing

# %% mystnb={"figure": {"caption": "Each model's test score in two successive test periods, each scored after retraining on the data before it: the level moves with the market for every model alike, and the ranking holds where the lines keep their order (the Spearman rank agreement printed above)."}, "image": {"alt": "Line chart of test score (y) in two test periods (x, labelled by their start and end dates), one line with circles per searched model (cpu in blue, fpga in red, gpu in green) and one brown line with squares per baseline (lstm dashed, persistence dotted); persistence lies lowest in both periods."}}
plots.walk_forward_lines({m: table.loc[m].tolist() for m in table.index}, periods);

# %% [markdown]
# (ch12-dominance)=
# ## Does a searched model dominate the LSTM?
#
# A trader would pick a searched model over the hand-designed LSTM only if it is no worse
# on any period and clearly cheaper. `benchmarks/bench_front.py` asks exactly that. It runs
# the pipeline, then retrains the three best front members within the budgets and the
# baselines (persistence, the MLP, the LSTM, a GRU and a TCN) with one recipe over five
# seeds. It scores each on the held-out test period and on three walk-forward folds: rolling
# windows of the data, each model retrained on a window's early part and scored on its
# late part. A member **dominates** the LSTM when, on every scored period $f$,
#
# $$
# \Delta_f = \bar s_f(\text{member}) - \bar s_f(\text{LSTM}) \ge 0
# \quad\text{and}\quad \frac{t(\text{member})}{t(\text{LSTM})} \le \tfrac12 ,
# $$
#
# where $\bar s_f$ is the mean test score over the seeds and $t$ the fastest call in ONNX
# Runtime, both models timed side by side. A difference of a few thousandths is inside the
# seeds' noise, so the benchmark also reports a weaker verdict, **within noise**: the same
# latency condition, and no $\Delta_f$ more than two standard errors below zero.
#
# The committed runs are reduced (the quick space's depths, 150 evaluations, 3 epochs on
# 1,024 windows). Each setting is searched with three seeds, so the table below counts how
# often a search finds a dominating model, not just whether one search did. There are two
# settings:
# - the **server CPU**: the default space, with its GRU and LSTM layers, timed in ONNX
#   Runtime;
# - the **phone CPU**: the CPU plan's mobile space, which has no recurrent layer.
#
# Both use lookbacks of 8, 16 and 32 bars and a fixed tail factor of 2 (the measured one
# moves between runs, and the benchmark compares searches, not tails). The same members are
# then retrained and compared on the recorded hourly candles of 2021 to 2024, which no step
# of the search read. The first two of their walk-forward folds are scored on periods
# before the 15-minute data begins.
#
# In the table, one row per member: `test` and `fold 0` to `fold 2` are its score minus the
# LSTM's, `t / t_LSTM` its latency over the LSTM's, and `t / t_LSTM16` its latency over an
# LSTM that reads only the last 16 bars (see below).

# %%
FRONT_RUNS = {"server CPU": "front_server_reduced_seed{}.json", "phone CPU": "front_cpu_reduced_seed{}.json"}
members = []
for setting, pattern in FRONT_RUNS.items():
    for seed in range(3):
        front = json.loads((RESULTS / pattern.format(seed)).read_text(encoding="utf-8"))["fronts"][0]
        for name, v in front["verdicts"].items():
            hourly = front["transfer"]["verdicts"][name]
            members.append({
                "setting": setting, "seed": seed, "model": front["models"][name],
                "chosen": front["models"][name] == front["chosen"], "t / t_LSTM": v["ort_ratio_vs_lstm"],
                **{fold: f["diff"] for fold, f in v["folds"].items()},
                "worst diff/se": min(f["diff"] / f["se"] for f in v["folds"].values()),
                "dominates": v["dominates"], "within noise": v["dominates_within_noise"],
                "hourly worst diff/se": min(f["diff"] / f["se"] for f in hourly["folds"].values()),
                "hourly dominates": hourly["dominates"], "hourly within noise": hourly["dominates_within_noise"],
                "t / t_LSTM16": v["vs_short_lstm"]["ort_ratio_vs_lstm"],
                "LSTM16 within noise": v["vs_short_lstm"]["dominates_within_noise"],
                "score >= LSTM16": all(f["ok"] for f in v["vs_short_lstm"]["folds"].values()),
                "folds": {fold: (f["diff"], f["se"]) for fold, f in v["folds"].items()}})
members = pd.DataFrame(members)
shown = ["setting", "seed", "model", "chosen", "t / t_LSTM", "test", "fold 0", "fold 1", "fold 2", "dominates",
         "within noise", "t / t_LSTM16", "hourly within noise"]
with pd.option_context("display.width", 250, "display.max_colwidth", 48):
    print(members[shown].round(3).to_string(index=False))
per_search = members.groupby(["setting", "seed"]).agg(
    any_dominates=("dominates", "any"), any_within_noise=("within noise", "any"),
    any_hourly=("hourly dominates", "any"))
chosen = members[members["chosen"]].set_index(["setting", "seed"])
counts = {setting: {"dominates": int(per_search.loc[setting, "any_dominates"].sum()),
                    "within_noise": int(per_search.loc[setting, "any_within_noise"].sum()),
                    "hourly": int(per_search.loc[setting, "any_hourly"].sum()),
                    "chosen_dominates": int(chosen.loc[setting, "dominates"].sum())}
          for setting in FRONT_RUNS}
for setting, c in counts.items():
    print(f"{setting}: a member dominates the LSTM on every period in {c['dominates']} of 3 searches, within noise "
          f"in {c['within_noise']}; the pipeline's own choice dominates in {c['chosen_dominates']}; on the hourly "
          f"data a member dominates in {c['hourly']}")
glue("dom_server_dominates", counts["server CPU"]["dominates"], display=False)
glue("dom_server_within_noise", counts["server CPU"]["within_noise"], display=False)
glue("dom_server_chosen_dominates", counts["server CPU"]["chosen_dominates"], display=False)
glue("dom_phone_dominates", counts["phone CPU"]["dominates"], display=False)
glue("dom_phone_within_noise", counts["phone CPU"]["within_noise"], display=False)
best = members[members["dominates"]].sort_values("worst diff/se", ascending=False)
glue("dom_members", len(best), display=False)
glue("dom_lookbacks", " and ".join(str(n) for n in sorted({int(m.split()[0][1:]) for m in best["model"]})) or "no",
     display=False)
glue("dom_score_short", int(best["score >= LSTM16"].sum()), display=False)
reference = json.loads((RESULTS / FRONT_RUNS["server CPU"].format(0)).read_text(encoding="utf-8"))["fronts"][0]
lstm_test = {kind: float(np.mean(reference["table"]["test"][kind]["scores"])) for kind in ("lstm", "lstm16")}
glue("lstm64_test", lstm_test["lstm"], display=False)
glue("lstm16_test", lstm_test["lstm16"], display=False)
hourly = reference["transfer"]["table"]
glue("hourly_persistence_wins", sum(np.mean(rows["persistence"]["scores"]) >= np.mean(rows["lstm"]["scores"])
                                    for rows in hourly.values()), display=False)
glue("hourly_periods", len(hourly), display=False)
glue("dom_recurrent", int(best["model"].str.contains("lstm|gru").sum()), display=False)
glue("dom_short_ratio_min", float(best["t / t_LSTM16"].min()) if len(best) else float("nan"), display=False)
glue("dom_short_ratio_max", float(best["t / t_LSTM16"].max()) if len(best) else float("nan"), display=False)
glue("dom_short_within_noise", int(members["LSTM16 within noise"].sum()), display=False)
glue("dom_hourly_members", int(best["hourly dominates"].sum()), display=False)
glue("dom_hourly_within_noise", int(best["hourly within noise"].sum()), display=False)
gpu = {}
for strategy in ("scaling", "evolution"):
    front = json.loads((RESULTS / f"front_gpu_reduced_{strategy}.json").read_text(encoding="utf-8"))["fronts"][0]
    top = max(front["verdicts"].values(), key=lambda v: min(f["diff"] for f in v["folds"].values()))
    gpu[strategy] = {"dominates": any(v["dominates"] for v in front["verdicts"].values()),
                     "test": top["folds"]["test"]["diff"], "se": top["folds"]["test"]["se"]}
from hwnas.proxy import baseline_architecture
from hwnas.targets.profiles import gpu_profile

gpu_steps = {steps: float(gpu_profile().predict_latency(baseline_architecture("lstm", 10, steps), PLANS["gpu"].batch))
             for steps in (8, 16)}
glue("gpu_lstm8_us", gpu_steps[8], display=False)
glue("gpu_lstm16_us", gpu_steps[16], display=False)
print("GPU space:", {k: f"dominates {v['dominates']}, best member's test difference {v['test']:+.4f} ± {v['se']:.4f}"
                     for k, v in gpu.items()})
glue("gpu_scaling_test", gpu["scaling"]["test"], display=False)
glue("gpu_scaling_se", gpu["scaling"]["se"], display=False)
glue("gpu_evolution_test", gpu["evolution"]["test"], display=False)
glue("gpu_evolution_se", gpu["evolution"]["se"], display=False)
assert not any(v["dominates"] for v in gpu.values()), "the prose says no GPU member dominates"
assert set(per_search.index.get_level_values("setting")) == set(FRONT_RUNS)
assert all(0 <= c["dominates"] <= c["within_noise"] <= 3 for c in counts.values())
# what the prose below reads from these runs
assert counts["server CPU"]["dominates"] >= 1 and not best["model"].str.contains("lstm|gru").any()
assert (best["t / t_LSTM16"] > 0.5).all()

# %% mystnb={"figure": {"caption": "The dominating members' score minus the LSTM's on the held-out test period and on each walk-forward fold (mean over five retraining seeds, bars of two standard errors): every point sits at or above the dashed zero line, and many bars cross it, so most single-period gains are within the seeds' noise."}, "image": {"alt": "Dot plot with error bars: x axis the scored periods (test, fold 0, fold 1, fold 2), y axis the score difference to the LSTM with a grey dashed line at zero; one coloured series of dots per dominating searched member, labelled by setting, seed and architecture, all at or above zero, most bars long enough to reach below zero."}}
plots.fold_differences({f"{r.setting} seed {r.seed}: {r.model}": r.folds for r in best.head(4).itertuples()});

# %% [markdown]
# What the table says, read as a trader would:
#
# - **With recurrence and short windows in the space, the search finds dominating models.**
#   On the server CPU a member dominated the LSTM on every scored period in
#   {glue:text}`dom_server_dominates` of 3 searches (within noise in
#   {glue:text}`dom_server_within_noise`). The pipeline's own choice dominated in
#   {glue:text}`dom_server_chosen_dominates`. The phone CPU's mobile space managed
#   {glue:text}`dom_phone_dominates` of 3 (within noise {glue:text}`dom_phone_within_noise`).
# - **What the winners have in common is the window, not recurrence.** The
#   {glue:text}`dom_members` dominating members look back {glue:text}`dom_lookbacks` bars;
#   {glue:text}`dom_recurrent` of them contain a recurrent layer. The search was free to use
#   one and found short convolutions as good and cheaper. The LSTM itself shows why: over
#   only its last 16 bars it scores {glue:text}`lstm16_test:+.4f` on the test period, against
#   {glue:text}`lstm64_test:+.4f` over 64 (server run, seed 0). A trained LSTM here forgets
#   within a few bars, so most of the baseline's 64 steps are latency paid for nothing.
# - **The baseline matters as much as the search.** Against an LSTM shortened to its last 16
#   bars (`lstm16` in the benchmark), the dominating members take
#   {glue:text}`dom_short_ratio_min:.2f` to {glue:text}`dom_short_ratio_max:.2f` times its
#   latency, nowhere near half. {glue:text}`dom_score_short` of the
#   {glue:text}`dom_members` still score at least as well on every period, and
#   {glue:text}`dom_short_within_noise` dominate it even within noise. A trader who knew
#   about the forgetting would get most of the gain by hand.
# - **Most single-period gains are noise.** Dominance here is in the mean. Many bars in the
#   figure cross zero, and only the test period and fold 2 lie outside the data the search
#   trained and validated on. Folds 0 and 1 test whether the ranking holds, not whether the
#   selection does.
# - **On data the search never read**, the hourly candles, {glue:text}`dom_hourly_members`
#   of the dominating members still dominate, and {glue:text}`dom_hourly_within_noise` do
#   within noise. Hourly volatility is a different problem: there, naive persistence scored
#   at least the LSTM's in {glue:text}`hourly_persistence_wins` of the
#   {glue:text}`hourly_periods` periods.
# - **Batch inference on a GPU is a different story.** Neither the GPU plan (compound
#   scaling) nor evolution over the GPU space found a member that dominates. Their best
#   members' test differences were {glue:text}`gpu_scaling_test:+.4f` ±
#   {glue:text}`gpu_scaling_se:.4f` and {glue:text}`gpu_evolution_test:+.4f` ±
#   {glue:text}`gpu_evolution_se:.4f`. The GPU model charges a recurrent layer kernel
#   launches at every step: at batch 256 an LSTM layer costs {glue:text}`gpu_lstm8_us:.0f` µs
#   over 8 steps and {glue:text}`gpu_lstm16_us:.0f` µs over 16, against a budget of
#   {glue:text}`gpu_budget_us:.0f` µs. Only the 8-step recurrences fit, and on these runs
#   they scored below the LSTM over 32 steps.

# %% [markdown]
# ## Closing table
#
# Per target: the architecture, its test score, its latency (predicted on the target;
# measured on this CPU in ONNX Runtime, p50 and p99, at the target's batch), memory at the
# deployed precision, and whether it passes.

# %%
closing = pd.DataFrame([r.row() for r in results.values()]).set_index("target")
display(closing.round(4))
for name, r in results.items():
    print(wrap(f"{name}: {r.verdict['basis']}"))

# %% [markdown]
# ## Summary
#
# - One command per target (`hwnas run --target cpu`) runs the whole method: data with
#   its provenance, the target's latency model, a search through the evaluation store,
#   the best architecture within budget on validation, a longer retraining, held-out test
#   scores beside persistence, the MLP and the LSTM trained the same way, an ONNX export
#   checked against PyTorch, lower precision where it helps, and an SLA report; it writes
#   a JSON summary and a PNG of the front, and says where its time went.
# - The targets' rules produce different architectures: narrow and shallow for one CPU
#   thread, wide for batched GPU inference, small ReLU convolutions with fixed skips and
#   INT8 for the FPGA.
# - A table predicts the fastest call; an SLA judges the p99. The CPU search holds the
#   table to the budget divided by the machine's measured tail factor $k$
#   ({glue:text}`tail_k:.2f` on this run), and the SLA report of the deployed file has the last word.
# - The held-out comparison is the honest test, and the printout says plainly whether each
#   searched model beat the LSTM and persistence. With this chapter's reduced budgets
#   (6 evaluations, 3 epochs) it is not guaranteed, and on these runs the MLP baseline
#   has often scored best: the searched models are fitted to their targets' budgets, not
#   more accurate than the baselines.
# - Hardware-aware search beats the hand design where the space holds what wins and the
#   baseline pays for what it does not need: on the server CPU, searches over short
#   windows found models that score at least the LSTM's on every scored period at under
#   half its latency ({glue:text}`dom_server_dominates` of 3 searches). Judged against an
#   LSTM over 16 bars, or on a GPU, they did not.
# - `benchmarks/bench_capstone.py` runs the full CPU pipeline ({glue:text}`bench_seconds:.0f` s
#   on the course machine, {glue:text}`bench_profile_share:.0%` of it building the table):
#   the chosen model met its 40 µs budget at p99 in ONNX Runtime in
#   {glue:text}`bench_sla_passed` of {glue:text}`bench_sla_runs` reports (p99
#   {glue:text}`bench_p99_min:.1f` to {glue:text}`bench_p99_max:.1f` µs), the table predicted
#   its fastest call within {glue:text}`bench_prediction_error:.1%`, the LSTM took
#   {glue:text}`bench_ort_ratio:.2f` times as long in ONNX Runtime and
#   {glue:text}`bench_eager_ratio:.2f` times as long in eager PyTorch, and over five
#   retraining seeds it {glue:text}`bench_score_verdict`.

# %% [markdown]
# ## Exercises
#
# **1.** Run the CPU pipeline from the command line with a 20 µs budget instead of 40 µs.
# What happens to the chosen architecture and its test score?
#
# :::{dropdown} Solution
# `hwnas run --target cpu --budget-us 20 --quick --out-dir run20` searches the same space
# under the tighter constraint: the table is held to 20 µs over the measured tail factor
# ({glue:text}`tail_k:.2f` on this run). Fewer candidates qualify, so the best qualifying
# validation score can only stay or fall; the chosen model is shallower or narrower, and
# ONNX Runtime's fixed per-call cost (a few µs) becomes most of its latency. If no
# candidate fits, the run keeps the fastest model it trained, its verdict is FAIL with the
# reason (the budgets, the tail factor and its spread, that model's measured p99), it
# still writes every file, and `hwnas run` exits 1.
# :::
#
# **2.** Run the CPU pipeline with `--tail-factor 1`, so that the table is held to the
# 40 µs budget itself. What do you expect the SLA report to say, and why?
#
# :::{dropdown} Solution
# The search may now choose a model whose fastest call is just under 40 µs. Its p99 is
# that times the machine's tail factor ({glue:text}`tail_k:.2f` on this run), so the report
# will likely miss the SLA. The table was right
# about the fastest call and the search was right about the table; the budget was stated
# in a different statistic.
# :::
#
# **3.** The walk-forward check above uses two windows. Why does a single held-out test
# period not settle which model is best?
#
# :::{dropdown} Solution
# Volatility regimes change: a model may rank first in one quarter and third in the next.
# The test score of one period has a sampling spread (and every training seed adds its
# own), so two models a few hundredths apart are not distinguished by one period. Scoring
# several later periods, each after retraining on the data before it, shows whether a
# ranking repeats; a Spearman correlation near +1 between periods says it does, near 0
# that the ranking was luck.
# :::
#
# **4.** `bench_front.py` searched lookbacks of 8, 16 and 32 bars. What would you expect
# with `--lookbacks 32,64,128` instead, and why?
#
# :::{dropdown} Solution
# Every member then sees at least 32 bars. Convolutions and pooling cost more per call with
# a longer input, so fewer members fit under half the LSTM's latency. Their receptive
# fields are a few bars, so the extra bars buy little score. An earlier committed run
# searched the phone space over 32 bars only (`results/front_reduced.txt`), and none of its
# members dominated the LSTM.
# :::
#
# **5.** The GPU's pass/fail rests on the roofline model. What would you measure to trust
# it on a real card?
#
# :::{dropdown} Solution
# Run `hwnas.gpu_profile()` on a machine with CUDA: it then times every layer setting with
# CUDA events (`measure=None` measures when a device is present) instead of modelling it,
# and the same pipeline searches against the measured table. Then run the chosen model's
# SLA on the card at batch 256 (the CPU stand-in here says nothing about a GPU's tail).
# :::
