"""Once-for-all: one supernet for three targets against three separate searches.

On the recorded BTCUSDT 15-minute proxy task (volatility; windows of 128 steps,
4,096 training windows), with reduced settings so the whole run stays under about
20 minutes on 2 shared cores:

1. **supernet**: :func:`hwnas.search.ofa.train_supernet` (progressive shrinking:
   full, kernel, depth, width epochs from ``--phase-epochs``), its training time
   and curve (validation score of the largest and smallest sub-network per epoch);
2. **extraction** per target (cpu, gpu, fpga): regularised evolution on the
   inherited weights' validation score (every ``--search-stride``-th validation
   window, to keep an extraction within the 10 s target) under the target plan's
   budgets (:data:`hwnas.pipeline.plan.PLANS`), ``--evals`` candidates, no training;
   its seconds (target: under 10 s each);
3. each extracted sub-network's **test** score with inherited weights, after
   ``--finetune-epochs`` epochs of fine-tuning, and trained from scratch with the
   pipeline's retrain recipe (5 epochs over 4,096 windows; ``--seeds`` seeds for both);
4. **separate searches**: the search stage of ``hwnas run --target X``
   (:func:`hwnas.search.minimize` on the same problem the pipeline builds: the
   plan's space, strategy, budget, batch and memory budget, hard constraint, no
   tail factor) with ``--separate-evals`` evaluations (the pipeline's default is 40),
   then its choice retrained with the same recipe and seeds;
5. the whole cost: one supernet + three extractions against the three searches.

The CPU target prices candidates with the committed ONNX Runtime table of the
default space (``benchmarks/results/deploy_onnxruntime_default_1thread_profile.json``,
measured by ``bench_deploy.py``): the plan's mobile space has no committed table and
measuring one takes minutes on a loaded machine, so both the extraction and the
separate CPU search use the default space (stem width 32) under the CPU plan's
budgets (40 µs, 10 MiB), with no tail factor. GPU: the A100 roofline model at batch
256; FPGA: the INT8 cycle model. Both are analytical models, not measurements.

    PYTHONPATH=. HWNAS_BYBIT_DIR=../shared/data/bybit HWNAS_OFFLINE=1 \\
        nice -n 5 .venv/bin/python benchmarks/bench_ofa.py

Output: ``benchmarks/results/ofa.txt`` and ``.json`` (rewritten after every step).
``--refresh-extraction`` re-measures only the extractions of a finished report (the
supernet is retrained, deterministic, and its curve checked against the report's), and
times the first scorer (extract a model, score the whole lookback) under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas.data.loader import load_klines  # noqa: E402
from hwnas.fileio import write_text_atomic  # noqa: E402
from hwnas.hardware import HardwareProfile  # noqa: E402
from hwnas.pipeline.plan import PLANS, TARGET_NAMES  # noqa: E402
from hwnas.pipeline.run import target_space  # noqa: E402
from hwnas.proxy.task import make_proxy_task  # noqa: E402
from hwnas.proxy.training import train_model  # noqa: E402
from hwnas.proxy.walk_forward import split_score  # noqa: E402
from hwnas.search.base import SearchProblem, nan_to_none  # noqa: E402
from hwnas.search.loop import minimize  # noqa: E402
from hwnas.search.ofa import (  # noqa: E402
    OFASpace,
    OFASupernet,
    OFATraining,
    extract,
    finetune,
    search_subnet,
    target_problem,
    train_supernet,
)
from hwnas.space import SearchSpace  # noqa: E402
from hwnas.targets.profiles import fpga_profile, gpu_profile  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CPU_TABLE = RESULTS / "deploy_onnxruntime_default_1thread_profile.json"
EXTRACTION_TARGET_S = 10.0
RETRAIN = {"epochs": 5, "max_train_windows": 4096}  # run_pipeline's retrain_epochs / retrain_windows defaults


def profiles() -> dict[str, tuple[HardwareProfile, str, SearchSpace | None]]:
    """Each target's profile, what it is, and the space it prices (None: the plan's)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cpu = HardwareProfile.load(CPU_TABLE)
    note = "; ".join(str(w.message) for w in caught)
    default = SearchSpace.default()
    covered = {str(getattr(key.op, "value", key.op)) for key in cpu.latency_table}
    lacking = [op.value for op in default.ops if op.value not in covered]
    if lacking:  # the table predates these ops: the CPU search cannot price them
        default = SearchSpace.default(ops=tuple(op for op in default.ops if op.value in covered))
        note = (note + "; " if note else "") + (f"the table has no entries for {', '.join(lacking)}: the CPU "
                                                f"search runs on the default space without them")
    return {"cpu": (cpu, f"committed table {CPU_TABLE.name} (ONNX Runtime, 1 thread, default space)"
                    + (f"; {note}" if note else ""), default),
            "gpu": (gpu_profile(), "analytical model (A100 roofline), not a measurement", None),
            "fpga": (fpga_profile(), "analytical model (INT8 cycle model), not a measurement", None)}


def test_scores(make_model, rtask, arch, seeds: Sequence[int]) -> dict[str, Any]:
    """Test (and validation) scores of ``make_model(seed)`` over ``seeds``: values, mean, std."""
    tests, vals, seconds = [], [], []
    for seed in seeds:
        start = time.perf_counter()
        model = make_model(seed)
        seconds.append(time.perf_counter() - start)
        tests.append(split_score(model, rtask, "test", arch.lookback))
        vals.append(split_score(model, rtask, "val", arch.lookback))
    return {"test": tests, "val": vals, "test_mean": float(np.mean(tests)), "test_std": float(np.std(tests)),
            "val_mean": float(np.mean(vals)), "train_seconds": seconds}


def cost_summary(report: dict[str, Any]) -> dict[str, float]:
    """One supernet + the extractions against the separate searches, and the break-even number of targets."""
    targets = report["targets"].values()
    extraction = sum(t["ofa"]["seconds"] for t in targets)
    separate = sum(t["separate"]["seconds"] for t in targets)
    supernet = report["supernet"]["seconds"]
    per_search, per_extraction = separate / len(targets), extraction / len(targets)
    out = {"supernet_seconds": supernet, "extraction_seconds": extraction, "ofa_seconds": supernet + extraction,
           "separate_seconds": separate, "ratio": (supernet + extraction) / separate,
           "separate_per_target": per_search, "extraction_per_target": per_extraction,
           "break_even_targets": supernet / (per_search - per_extraction) if per_search > per_extraction
           else float("inf")}
    if report["supernet"].get("cpu_seconds") and all(t["separate"].get("cpu_seconds") for t in targets):
        # CPU time of this process: what the wall-clock ratio is when the other jobs on the machine are set aside
        cpu_ofa = report["supernet"]["cpu_seconds"] + sum(t["ofa"].get("cpu_seconds", 0.0) for t in targets)
        cpu_sep = sum(t["separate"]["cpu_seconds"] for t in targets)
        cpu_per_search = cpu_sep / len(targets)
        cpu_per_extraction = sum(t["ofa"].get("cpu_seconds", 0.0) for t in targets) / len(targets)
        out.update(cpu_ofa_seconds=cpu_ofa, cpu_separate_seconds=cpu_sep, cpu_ratio=cpu_ofa / cpu_sep,
                   cpu_break_even_targets=report["supernet"]["cpu_seconds"] / (cpu_per_search - cpu_per_extraction)
                   if cpu_per_search > cpu_per_extraction else float("inf"))
    return out


def _wall_cpu(walls: Sequence[float], cpus: Sequence[float]) -> str:
    """Repeated timings as ``"W s (C s CPU), ..."``."""
    return ", ".join(f"{w:.1f} s ({c:.1f} s CPU)" for w, c in zip(walls, cpus))


def format_report(report: dict[str, Any]) -> str:
    """The text summary."""
    s = report["settings"]
    lines = ["Once-for-all supernet vs three separate searches (measured on a shared, loaded machine: "
             f"{s['machine']}, load {s['load_start']} at start)", f"data: {s['data']}",
             f"settings: phase epochs {s['phase_epochs']}, {s['subnets_per_step']} sub-networks per step, "
             f"{s['train_windows']} training windows; extraction {s['evals']} candidates (time: the faster of "
             f"two runs), validation every "
             f"{s['search_stride']}th window; fine-tune {s['finetune_epochs']} epochs; retrain {RETRAIN}; seeds "
             f"{s['seeds']}; separate searches {s['separate_evals']} evaluations (reduced from the pipeline's 40)"]
    sup = report.get("supernet")
    if sup:
        lines.append(f"supernet training: {sup['seconds']:.1f} s training"
                     + (f", {sup['cpu_seconds']:.1f} s CPU" if sup.get("cpu_seconds") else "")
                     + f" ({sup['wall_seconds']:.1f} s wall with the curve's validation scores)")
        for row in sup["curve"]:
            lines.append(f"  {row['phase']:<6} epoch {row['epoch']}: loss {row['loss']:.4f}, val largest "
                         f"{row['val_largest']:+.4f}, smallest {row['val_smallest']:+.4f} ({row['seconds']:.1f} s)")
    for target, t in report.get("targets", {}).items():
        lines.append(f"[{target}] {t['profile']}; budget {t['budget_us']:g} µs at batch {t['batch']}")
        o = t.get("ofa")
        if o:
            ok = "meets" if o["seconds"] < EXTRACTION_TARGET_S else "MISSES"
            cpu = f", {o['cpu_seconds']:.1f} s CPU" if o.get("cpu_seconds") else ""
            lines.append(f"  OFA extraction: {o['seconds']:.1f} s{cpu} ({ok} the {EXTRACTION_TARGET_S:g} s target), "
                         f"{o['scored']} scored of {o['evals']} asked; chose {o['label']}, {o['latency_us']:.1f} µs")
            sc = o.get("scorers")
            if sc:
                lines.append("    extraction timed twice, interleaved with the first scorer (extract a model, score "
                             "the whole lookback): now " + _wall_cpu(sc["seconds"], sc["cpu_seconds"])
                             + "; first scorer "
                             + _wall_cpu(sc["previous_scorer_seconds"], sc["previous_scorer_cpu_seconds"])
                             + f"; same choice: {sc['same_choice_as_previous_scorer']}")
            lines.append(f"    test: inherited {o['inherited_test']:+.4f}; fine-tuned "
                         f"{o['finetuned']['test_mean']:+.4f} ± {o['finetuned']['test_std']:.4f}; "
                         f"from scratch {o['scratch']['test_mean']:+.4f} ± "
                         f"{o['scratch']['test_std']:.4f} (gap inherited - scratch "
                         f"{o['inherited_test'] - o['scratch']['test_mean']:+.4f})")
        sep = t.get("separate")
        if sep:
            cpu = f", {sep['cpu_seconds']:.1f} s CPU" if sep.get("cpu_seconds") else ""
            lines.append(f"  separate search ({sep['strategy']}, {sep['evals']} evals): {sep['seconds']:.1f} s{cpu}; "
                         f"chose "
                         f"{sep['label']}, {sep['latency_us']:.1f} µs, within budget {sep['within_budget']}; "
                         f"retrained test {sep['retrained']['test_mean']:+.4f} ± {sep['retrained']['test_std']:.4f}")
    cost = report.get("cost")
    if cost:
        lines.append(f"whole cost: OFA {cost['ofa_seconds']:.1f} s (supernet {cost['supernet_seconds']:.1f} s + "
                     f"extractions {cost['extraction_seconds']:.1f} s) vs separate searches "
                     f"{cost['separate_seconds']:.1f} s: ratio {cost['ratio']:.2f} "
                     f"({'OFA cheaper' if cost['ratio'] < 1 else 'OFA NOT cheaper here'})")
        if "break_even_targets" in cost:
            lines.append(f"break-even: the supernet pays for itself from {cost['break_even_targets']:.1f} targets "
                         f"(a separate search {cost['separate_per_target']:.1f} s per target on average, an "
                         f"extraction {cost['extraction_per_target']:.1f} s)")
        if "cpu_ratio" in cost:
            lines.append(f"in CPU time (this process; less sensitive to the other jobs): OFA "
                         f"{cost['cpu_ofa_seconds']:.1f} s "
                         f"vs separate searches {cost['cpu_separate_seconds']:.1f} s: ratio {cost['cpu_ratio']:.2f}; "
                         f"break-even {cost['cpu_break_even_targets']:.1f} targets")
        gaps = [t["ofa"]["inherited_test"] - t["ofa"]["scratch"]["test_mean"] for t in report["targets"].values()]
        lines.append(f"inherited - from-scratch test score per target: {', '.join(f'{g:+.4f}' for g in gaps)}")
    lines.append(f"finished: {report.get('finished', 'no (partial)')}; load at end {report.get('load_end')}")
    ref = report.get("extraction_refresh")
    if ref:
        lines.append(f"extractions re-measured {ref['date']} (load {ref['load_start']} at start; the rest of this "
                     f"report is from the run above): supernet retrained in {ref['supernet_seconds']:.1f} s, curve "
                     f"identical "
                     f"to the committed one: {ref['curve_identical']}")
        for target, r in ref["targets"].items():
            lines.append(f"  [{target}] scorer now (supernet on the steps read): "
                         + _wall_cpu(r["seconds"], r["cpu_seconds"])
                         + "; previous scorer (extract, whole lookback), same load: "
                         + _wall_cpu(r["previous_scorer_seconds"], r["previous_scorer_cpu_seconds"])
                         + f"; same choice as the previous scorer: {r['same_choice_as_previous_scorer']}; "
                         f"choice changed from the committed run: {r['choice_changed_from_committed']}")
    return "\n".join(lines)


def timed_extraction(supernet, problem, target: str, *, previous: bool = False):
    """``search_subnet`` as it is, or (``previous``) with the scorer before the receptive-field cut."""
    import hwnas.search.ofa as ofa

    saved = ofa._search_score
    if previous:  # the first version: extract a model, score it on the whole lookback
        ofa._search_score = ofa.inherited_score
    try:
        return search_subnet(supernet, problem, seed=0, target=target)
    finally:
        ofa._search_score = saved


def compared_extraction(supernet, problem, target: str) -> tuple[Any, dict[str, Any]]:
    """The extraction, timed twice, and the first scorer's twice, interleaved under the same load.

    Returns the choice (with ``seconds`` / ``cpu_seconds`` the faster of its two runs) and the timings.
    """
    runs = {}
    for label, previous in (("previous", True), ("now", False), ("previous_again", True), ("now_again", False)):
        runs[label] = timed_extraction(supernet, problem, target, previous=previous)
        print(f"[{target}] {label}: {runs[label].seconds:.2f} s wall, {runs[label].cpu_seconds:.2f} s CPU, "
              f"{runs[label].arch.label() if runs[label].arch else None}", flush=True)
    choice = runs["now"]
    timings = {
        "previous_scorer_seconds": [runs["previous"].seconds, runs["previous_again"].seconds],
        "previous_scorer_cpu_seconds": [runs["previous"].cpu_seconds, runs["previous_again"].cpu_seconds],
        "seconds": [runs["now"].seconds, runs["now_again"].seconds],
        "cpu_seconds": [runs["now"].cpu_seconds, runs["now_again"].cpu_seconds],
        "same_choice_as_previous_scorer": runs["previous"].arch == choice.arch,
        "load": [round(v, 2) for v in os.getloadavg()]}
    choice.seconds = min(timings["seconds"])
    choice.cpu_seconds = min(timings["cpu_seconds"])
    return choice, timings


def refresh_extraction(args: argparse.Namespace, seeds: list[int]) -> int:
    """``--refresh-extraction``: the committed report with its extractions re-measured (see ``--help``)."""
    report = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
    s = report["settings"]
    data = load_klines("BTCUSDT", "15")
    task = make_proxy_task(data.frame, lookback=128, interval=data.interval, source=data.description,
                           max_train_windows=4096)
    rtask = replace(task, **RETRAIN)
    search_task = replace(task, eval_stride=s["search_stride"])
    load_start = [round(v, 2) for v in os.getloadavg()]
    trained = train_supernet(task, OFASpace(input_features=task.num_features), seed=0,
                             phase_epochs=s["phase_epochs"], subnets_per_step=s["subnets_per_step"],
                             progress=lambda line: print(line, flush=True))
    old_curve = [(r["val_largest"], r["val_smallest"]) for r in report["supernet"]["curve"]]
    new_curve = [(r["val_largest"], r["val_smallest"]) for r in trained.curve]
    same = len(old_curve) == len(new_curve) and bool(np.allclose(old_curve, new_curve, atol=1e-9))
    print(f"supernet retrained in {trained.seconds:.1f} s; curve identical to the committed one: {same}", flush=True)
    supernet = trained.supernet
    refresh: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "load_start": load_start,
                               "supernet_seconds": trained.seconds, "curve_identical": same, "targets": {}}
    report["extraction_refresh"] = refresh
    for target in args.targets:
        profile, _, base = profiles()[target]
        problem = target_problem(supernet, target, profile, search_task, evals=s["evals"], base_space=base)
        entry = report["targets"][target]
        choice, timings = compared_extraction(supernet, problem, target)
        arch = choice.arch
        changed = arch is None or arch.label() != entry["ofa"]["label"]
        refresh["targets"][target] = {**timings, "choice_changed_from_committed": changed}
        kept = {k: entry["ofa"][k] for k in ("finetuned", "scratch", "inherited_test", "inherited_val")}
        entry["ofa"] = {**choice.to_dict(), "latency_us": choice.metrics.latency_us,
                        "val_search": choice.metrics.score, "scorers": timings, **kept}
        if changed:  # a new choice: its test scores anew
            entry["ofa"]["inherited_test"] = split_score(extract(supernet, arch), rtask, "test", arch.lookback)
            entry["ofa"]["inherited_val"] = split_score(extract(supernet, arch), rtask, "val", arch.lookback)
            entry["ofa"]["finetuned"] = test_scores(
                lambda seed, a=arch: finetune(supernet, a, rtask, s["finetune_epochs"], seed), rtask, arch, seeds)
            entry["ofa"]["scratch"] = test_scores(lambda seed, a=arch: train_model(a, rtask, seed), rtask, arch,
                                                  seeds)
        report["cost"] = cost_summary(report)
        report["load_end"] = [round(v, 2) for v in os.getloadavg()]
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(nan_to_none(report), indent=1, default=float)
                          + "\n")
        write_text_atomic(args.out.with_suffix(".txt"), format_report(report) + "\n")
    print(format_report(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-epochs", type=int, nargs=4, default=(5, 4, 4, 5))
    parser.add_argument("--subnets-per-step", type=int, default=2)
    parser.add_argument("--evals", type=int, default=60)
    parser.add_argument("--search-stride", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--separate-evals", type=int, default=30)
    parser.add_argument("--targets", nargs="+", default=list(TARGET_NAMES), choices=list(TARGET_NAMES))
    parser.add_argument("--out", type=Path, default=RESULTS / "ofa")
    parser.add_argument("--refresh-extraction", action="store_true",
                        help="re-train the (seeded, deterministic) supernet, check its curve against --out, and "
                             "re-measure only the extractions (and, under the same load, the previous scorer: "
                             "extract + the whole lookback); a target whose choice changed is re-scored in full")
    parser.add_argument("--supernet-cache", type=Path, default=None,
                        help="save the trained supernet (and its curve and time) here, or load it when it was "
                             "saved with the same settings (an interrupted run resumes after the training)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the summary (cost, text) from an existing --out JSON, running nothing")
    args = parser.parse_args(argv)
    if args.report_only:
        report = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
        report["cost"] = cost_summary(report)
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(report, indent=1, default=float) + "\n")
        write_text_atomic(args.out.with_suffix(".txt"), format_report(report) + "\n")
        print(format_report(report))
        return 0
    seeds = list(range(args.seeds))
    if args.refresh_extraction:
        return refresh_extraction(args, seeds)
    data = load_klines("BTCUSDT", "15")
    task = make_proxy_task(data.frame, lookback=128, interval=data.interval, source=data.description,
                           max_train_windows=4096)
    rtask = replace(task, **RETRAIN)
    search_task = replace(task, eval_stride=args.search_stride)
    report: dict[str, Any] = {"settings": {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.node()}",
        "load_start": [round(v, 2) for v in os.getloadavg()], "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": f"{data.source}: {data.description}", "phase_epochs": list(args.phase_epochs),
        "subnets_per_step": args.subnets_per_step, "train_windows": len(task.train_indices()), "evals": args.evals,
        "search_stride": args.search_stride, "finetune_epochs": args.finetune_epochs, "seeds": seeds,
        "separate_evals": args.separate_evals, "retrain": RETRAIN, "threads": task.num_threads,
        "note": "measured on a shared, loaded machine (2 cores, several other jobs); reduced settings"},
        "targets": {}}

    def save() -> None:
        report["load_end"] = [round(v, 2) for v in os.getloadavg()]
        text = json.dumps(nan_to_none(report), indent=1, default=float)
        write_text_atomic(args.out.with_suffix(".json"), text + "\n")
        write_text_atomic(args.out.with_suffix(".txt"), format_report(report) + "\n")

    space = OFASpace(input_features=task.num_features)
    start = time.perf_counter()
    cache = args.supernet_cache
    key = {"phase_epochs": list(args.phase_epochs), "subnets_per_step": args.subnets_per_step}
    saved = torch.load(cache, weights_only=False) if cache is not None and cache.is_file() else None
    if saved is not None and saved["key"] == key:  # the same seeded training, kept from an interrupted run
        supernet = OFASupernet(space, seed=0)
        supernet.load_state_dict(saved["state"])
        trained = OFATraining(supernet.eval(), saved["curve"], saved["seconds"], saved["settings"],
                              saved.get("cpu_seconds", 0.0))
        wall = saved["wall_seconds"]
        print(f"supernet loaded from {cache} (trained in {trained.seconds:.1f} s)", flush=True)
    else:
        trained = train_supernet(task, space, seed=0, phase_epochs=args.phase_epochs,
                                 subnets_per_step=args.subnets_per_step, progress=lambda s: print(s, flush=True))
        wall = time.perf_counter() - start
        if cache is not None:
            torch.save({"key": key, "state": trained.supernet.state_dict(), "curve": trained.curve,
                        "seconds": trained.seconds, "settings": trained.settings, "wall_seconds": wall,
                        "cpu_seconds": trained.cpu_seconds}, cache)
    report["supernet"] = {"seconds": trained.seconds, "cpu_seconds": trained.cpu_seconds, "wall_seconds": wall,
                          "curve": trained.curve, "settings": trained.settings,
                          "space": {k: [str(v) for v in getattr(space, k)] for k in (
                              "lookbacks", "depths", "kernel_sizes", "widths", "stem_widths", "head_types")}}
    save()
    supernet = trained.supernet
    for target in args.targets:
        profile, kind, base = profiles()[target]
        problem = target_problem(supernet, target, profile, search_task, evals=args.evals, base_space=base)
        entry: dict[str, Any] = {"profile": kind, "budget_us": problem.latency_budget_us, "batch": problem.batch,
                                 "space": problem.space.name}
        report["targets"][target] = entry
        choice, timings = compared_extraction(supernet, problem, target)
        arch = choice.arch
        print(f"[{target}] extraction {choice.seconds:.1f} s: {arch.label() if arch else None}", flush=True)
        entry["ofa"] = {**choice.to_dict(), "latency_us": choice.metrics.latency_us, "scorers": timings,
                        "val_search": choice.metrics.score,
                        "inherited_test": split_score(extract(supernet, arch), rtask, "test", arch.lookback),
                        "inherited_val": split_score(extract(supernet, arch), rtask, "val", arch.lookback)}
        entry["ofa"]["finetuned"] = test_scores(
            lambda seed, a=arch: finetune(supernet, a, rtask, args.finetune_epochs, seed), rtask, arch, seeds)
        entry["ofa"]["scratch"] = test_scores(lambda seed, a=arch: train_model(a, rtask, seed), rtask, arch, seeds)
        save()
        plan = PLANS[target]
        sep_space = base if base is not None else target_space(target)
        sep_problem = SearchProblem(sep_space, profile, plan.latency_budget_us, args.separate_evals,
                                    memory_budget_bytes=plan.memory_budget or int(profile.memory_budget_bytes),
                                    task=task, constraint="hard", batch=plan.batch)
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = minimize(sep_problem, plan.strategy, seed=0, progress=False)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
        best = result.best()
        pick = best if best is not None else min(result.history, key=lambda e: e.metrics.latency_us)
        sep_arch = pick.arch
        entry["separate"] = {
            "strategy": plan.strategy, "space": sep_space.name, "evals": len(result.history), "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "arch": sep_arch.to_dict(), "label": sep_arch.label(), "latency_us": pick.metrics.latency_us,
            "val_search": pick.metrics.score, "within_budget": bool(sep_problem.within_budget(pick.metrics)),
            "points": [{"arch": e.arch.label(), "latency_us": e.metrics.latency_us, "score": e.metrics.score,
                        "within_budget": sep_problem.within_budget(e.metrics)} for e in result.history]}
        print(f"[{target}] separate search {seconds:.1f} s: {sep_arch.label()}", flush=True)
        entry["separate"]["retrained"] = test_scores(lambda seed, a=sep_arch: train_model(a, rtask, seed), rtask,
                                                     sep_arch, seeds)
        save()
    report["cost"] = cost_summary(report)
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    save()
    print(format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
