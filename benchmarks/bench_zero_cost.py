"""Zero-cost proxies against trained scores, and a zero-cost pre-filtered search against evolution.

Part 1 (rank correlations). ``--archs`` distinct random architectures of the
default space are trained with the proxy recipe (the library's default task:
recorded BTCUSDT 15-minute candles, 1 epoch on 2,048 windows, volatility
target) with evaluation seeds 0 and 1, every evaluation kept in one SQLite
store (``EvaluationStore``, so a killed run resumes), and scored by every
zero-cost proxy of :mod:`hwnas.zero_cost` (initialisation seeds 0 and 1). For
each proxy: Spearman and Kendall rank correlation (95% bootstrap intervals over
architectures) with the seed-mean validation score, with the seed-mean test
score of the same proxy-trained models and, on a ``--retrain`` subset, with the
test score after a 5x longer training; the ceiling is the correlation of the
trained score's seed 0 with its seed 1; the cost per architecture of each proxy.

Part 2 (pre-filtered search). ``hwnas.search`` with the ``prefilter`` strategy
(sample ``pool_factor x`` candidates, score them zero-cost, train the top
share; :mod:`hwnas.search.prefilter`) with the proxy that correlated best on
validation, against regularised evolution, ``--search-seeds`` seeds of
``--search-evals`` evaluations each, the soft MnasNet problem of
``bench_search.py`` (1-thread CPU profile, budget the median LUT latency).
Hypervolume over (-val score, LAT/T), reference (0, 1). "Equal wall time" is
accounted, not clocked: each search is charged the training seconds recorded
for each of its evaluations (in the store, so a candidate another run trained
first costs the same) plus, for the pre-filter, its zero-cost scoring seconds;
each pair of runs (same seed) is compared at the smaller of their two totals.

Results go to ``benchmarks/results/zero_cost.txt`` / ``.json`` after every step
(the json keeps every architecture's scores for the chapter's figure).

Latency: part 1 does not use it (the correlations are with trained scores); it
prices candidates with the space's measured CPU table when that covers every op,
else with the analytical A100 model (the committed 1-thread CPU table predates the
GRU, LSTM and gated-TCN ops). Part 2 needs measured latencies, so it searches the
default space without the ops the table lacks (said in the settings).

The committed results were run as separate processes (on a 2-core machine shared with
other jobs, load average 4-12), the figures as written in the .txt files:

    export PYTHONPATH=. HWNAS_BYBIT_DIR=../shared/data/bybit HWNAS_OFFLINE=1
    nice -n 5 .venv/bin/python benchmarks/bench_zero_cost.py --part 1 --archs 200 --retrain 40
    nice -n 5 .venv/bin/python benchmarks/bench_zero_cost.py --part 2 --prefilter-proxy snip \
        --search-seeds 5 --search-evals 100 --population 20 --search-random --max-train-windows 512 \
        --store benchmarks/results/zero_cost_search_evals.sqlite
    # the same, pre-filtered by grad_norm (zero_cost_gradnorm_search.*; evolution and random resumed from the store)
    nice -n 5 .venv/bin/python benchmarks/bench_zero_cost.py --part 2 --prefilter-proxy grad_norm \
        --search-seeds 5 --search-evals 100 --population 20 --search-random --max-train-windows 512 \
        --store benchmarks/results/zero_cost_search_evals.sqlite --out benchmarks/results/zero_cost_gradnorm
    nice -n 5 .venv/bin/python benchmarks/bench_zero_cost.py --space mobile --part 1 --archs 200 --retrain 40
    nice -n 5 .venv/bin/python benchmarks/bench_zero_cost.py --part cost

(part 2 on a 512-window recipe: 1,500 trainings at the proxy recipe's 2,048 would take
about two hours on the shared machine; its proxy, snip, was the best on validation in
the earlier default-space and mobile runs.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import default_profile, median_latency, run_strategy, summarise  # noqa: E402

import hwnas  # noqa: E402
from hwnas.fileio import check_writable, write_text_atomic  # noqa: E402
from hwnas.search import EvaluationStore, Evaluator, SearchProblem, get_strategy  # noqa: E402
from hwnas.search.base import nan_to_none  # noqa: E402
from hwnas.search.loop import run_key  # noqa: E402
from hwnas.search.store import architecture_key  # noqa: E402
from hwnas.zero_cost import ZeroCostProxy, rank_correlation, zero_cost_scores  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_MS = 50.0
BASELINES = ("params", "flops")
RETRAIN_EPOCHS = 5


def distinct_archs(space: hwnas.SearchSpace, n: int, seed: int) -> list[hwnas.Architecture]:
    """``n`` distinct random architectures of ``space`` (drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    seen: dict[str, hwnas.Architecture] = {}
    while len(seen) < n:
        arch = space.sample(rng)
        seen.setdefault(architecture_key(arch), arch)
    return list(seen.values())


def covered_ops(profile: Any) -> set[str]:
    """The op names a measured profile has table entries for."""
    return {str(getattr(key.op, "value", key.op)) for key in profile.latency_table}


def write(report: dict[str, Any], out: Path) -> None:
    """The report's json and its text summary, atomically."""
    write_text_atomic(out.with_suffix(".json"), json.dumps(nan_to_none(report), indent=1))
    write_text_atomic(out.with_suffix(".txt"), format_report(report) + "\n")


def _ci(entry: dict[str, Any], name: str) -> str:
    if name not in entry:
        return f"{'-':>22}"
    lo, hi = entry[name + "_ci"]
    return f"{entry[name]:+.3f} [{lo:+.3f}, {hi:+.3f}]".rjust(22)


def format_report(report: dict[str, Any]) -> str:
    """The text the benchmark prints and writes."""
    s = report["settings"]
    lines = ["Zero-cost proxies vs trained scores (measured on a shared, loaded 2-core machine)",
             "settings: " + ", ".join(f"{k}={v}" for k, v in s.items()), ""]
    corr = report.get("correlations")
    if corr:
        n = report["part1"]["archs_scored"]
        lines.append(f"rank correlation with the trained score, {n} architectures, 95% bootstrap intervals")
        cols = list(next(iter(corr.values())).keys())
        lines.append(f"{'proxy':<10}" + "".join(f"{c + ' spearman':>24}{c + ' kendall':>24}" for c in cols)
                     + f"{'ms/arch median':>16}{'p90':>8}")
        cost = report["part1"]["cost_ms"]
        for proxy, per in corr.items():
            lines.append(f"{proxy:<10}" + "".join(f"  {_ci(per[c], 'spearman')}  {_ci(per[c], 'kendall')}"
                                                  for c in cols)
                         + f"{cost[proxy]['median']:>16.1f}{cost[proxy]['p90']:>8.1f}")
        ceil = report["part1"]["ceiling"]
        lines.append(f"{'ceiling':<10}  {_ci(ceil, 'spearman')}  {_ci(ceil, 'kendall')}"
                     "   (trained val score, seed 0 vs seed 1)")
        if "ceiling_test" in report["part1"]:
            lines.append(f"{'':<10}  {_ci(report['part1']['ceiling_test'], 'spearman')}  "
                         f"{_ci(report['part1']['ceiling_test'], 'kendall')}   (trained test score, seed 0 vs 1)")
        zc_stab = report["part1"].get("init_seed_stability", {})
        if zc_stab:
            lines.append("proxy init-seed stability (Spearman, seed 0 vs 1 weights and batch): "
                         + ", ".join(f"{k} {v:+.3f}" for k, v in zc_stab.items()))
        lines.append(f"all zero-cost proxies together: median {report['part1']['cost_ms_all_median']:.1f} ms "
                     f"per architecture (target < {TARGET_MS:.0f} ms per proxy)")
        lines.append(report["part1"]["verdict"])
        fam = report.get("per_family")
        if fam:
            lines.append("Spearman with the trained val score within op families (an architecture counts in each "
                         "family it has a layer of; no intervals):")
            for name, e in fam.items():
                lines.append(f"  {name:<10} n={e['n']:<4}" + ("  ".join(
                    f"{p} {e[p]:+.3f}" for p in corr if p in e) or "  too few"))
        again = report.get("cost_remeasured")
        if again:
            lines.append(f"cost re-measured (fastest of {again['passes']} shuffled passes, {again['archs']} "
                         f"architectures, load averages {[round(x[0], 2) for x in again['load_averages']]}): "
                         + ", ".join(f"{p} {v:.1f} ms (p90 {again['p90_ms'][p]:.1f})"
                                     for p, v in again["median_ms"].items())
                         + f"; all together {again['all_median_ms']:.1f} ms; under {TARGET_MS:.0f} ms: "
                         + (", ".join(p for p, v in again["median_ms"].items() if v < TARGET_MS) or "none"))
    search = report.get("search")
    if search:
        lines += ["", "pre-filtered search vs evolution: " + search["description"]]
        summ = search["summary_equal_evals"]["strategies"]
        for name, e in summ.items():
            lines.append(f"  equal evaluations ({e['evaluations']}): {name:<12} HV {e['final_mean']:.4f} "
                         f"+/- {e['final_std']:.4f}  per seed {np.round(e['finals'], 4).tolist()}")
        for name, e in search["equal_cost"].items():
            lines.append(f"  equal accounted wall time: {name:<12} HV {e['mean']:.4f} +/- {e['std']:.4f}  "
                         f"per seed {np.round(e['per_seed'], 4).tolist()}")
        if "ratio" in search:
            lines.append(f"  HV ratio {search['ratio_label']} at equal accounted time: {search['ratio']:.3f} "
                         f"(per seed {np.round(search['ratio_per_seed'], 3).tolist()})")
        for (name, t), when in [*((kv, "equal evaluations") for kv in search.get("tests_equal_evals", {}).items()),
                                *((kv, "equal accounted time") for kv in search.get("tests", {}).items())]:
            if "paired_t_p" in t:
                ci = t.get("diff_ci95") or [float("nan")] * 2
                lines.append(f"  {name} - evolution ({when}): mean HV difference {t['mean_diff']:+.4f} "
                             f"(95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}]), wins {t['wins']}/{t['n']} seeds, paired t "
                             f"p={t['paired_t_p']:.3f}, Welch t p={t['welch_t_p']:.3f}, Wilcoxon p="
                             f"{t['wilcoxon_p']:.3f}")
        if search.get("verdict"):
            lines.append("  " + search["verdict"])
        for name, c in search["cost"].items():
            lines.append(f"  cost {name:<12} training {c['train_s_mean']:.1f} s + zero-cost "
                         f"{c['zero_cost_s_mean']:.1f} s per run (mean over seeds)")
    return "\n".join(lines)


def part1(args: argparse.Namespace, space: hwnas.SearchSpace, task: Any, profile: Any,
          report: dict[str, Any]) -> dict[str, Any]:
    """Train, score zero-cost, correlate; fills ``report`` and writes it after each step."""
    archs = distinct_archs(space, args.archs, args.arch_seed)
    records: list[dict[str, Any]] = [{"arch": a.to_dict()} for a in archs]
    report["architectures"] = records
    t0 = time.perf_counter()
    for eval_seed in range(args.train_seeds):
        evaluator = Evaluator(task, profile, seed=eval_seed)
        with EvaluationStore(args.store, *evaluator.fingerprints(), eval_seed) as store:
            for i, (arch, rec) in enumerate(zip(archs, records)):
                metrics = store.get(arch)
                if metrics is None:
                    metrics = evaluator(arch)
                    store.put(arch, metrics)
                rec.setdefault("val", []).append(metrics.score)
                rec.setdefault("test", []).append(metrics.test_scores.get("pearson", float("nan")))
                rec.setdefault("train_s", []).append(metrics.seconds)
                rec.update(params=metrics.params, flops=metrics.flops, latency_us=metrics.latency_us)
                if (i + 1) % 25 == 0:
                    print(f"trained seed {eval_seed}: {i + 1}/{len(archs)} ({time.perf_counter() - t0:.0f} s, "
                          f"load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"training done in {time.perf_counter() - t0:.0f} s (resumed evaluations cost nothing here)", flush=True)

    proxies = [p.value for p in ZeroCostProxy]
    for zc_seed in range(2):
        results = zero_cost_scores(archs, task, seed=zc_seed)
        for rec, res in zip(records, results):
            rec.setdefault("zero_cost", []).append(res.scores)
            if zc_seed == 0:
                rec["zero_cost_ms"] = {k: 1000 * v for k, v in res.seconds.items()}
    print(f"zero-cost scores done ({time.perf_counter() - t0:.0f} s)", flush=True)

    if args.retrain:  # longer training, kept in the store too (as a task with 5x the epochs)
        rng = np.random.default_rng(args.arch_seed + 1)
        chosen = sorted(rng.choice(len(archs), size=min(args.retrain, len(archs)), replace=False).tolist())
        evaluator = Evaluator(replace(task, epochs=RETRAIN_EPOCHS * task.epochs), profile, seed=0)
        with EvaluationStore(args.store, *evaluator.fingerprints(), 0) as store:
            for j, i in enumerate(chosen):
                metrics = store.get(archs[i])
                if metrics is None:
                    metrics = evaluator(archs[i])
                    store.put(archs[i], metrics)
                records[i]["retrained_test"] = metrics.test_scores.get("pearson", float("nan"))
                records[i]["retrained_val"] = metrics.score
                if (j + 1) % 10 == 0:
                    print(f"retrained {j + 1}/{len(chosen)} ({time.perf_counter() - t0:.0f} s)", flush=True)

    mean = lambda key: np.array([np.nanmean(r[key]) for r in records])  # noqa: E731
    val, test = mean("val"), mean("test")
    retrained = np.array([r.get("retrained_test", np.nan) for r in records])
    targets = {"val": val, "test": test}
    if args.retrain:
        targets["retrained_test"] = retrained
    correlations = {}
    for p in proxies:
        x = np.array([r["zero_cost"][0][p] for r in records])
        correlations[p] = {name: rank_correlation(x, y, seed=k) for k, (name, y) in enumerate(targets.items())}
    report["correlations"] = correlations
    report["per_family"] = family_correlations(records, proxies, val)
    v = np.array([r["val"] for r in records])
    t = np.array([r["test"] for r in records])
    ceiling = rank_correlation(v[:, 0], v[:, 1]) if v.shape[1] > 1 else {}
    ceiling_test = rank_correlation(t[:, 0], t[:, 1]) if t.shape[1] > 1 else {}
    stability = {p: float(stats.spearmanr([r["zero_cost"][0][p] for r in records],
                                          [r["zero_cost"][1][p] for r in records], nan_policy="omit")[0])
                 for p in proxies}
    cost = {p: {"median": statistics.median(r["zero_cost_ms"][p] for r in records),
                "p90": float(np.percentile([r["zero_cost_ms"][p] for r in records], 90))} for p in proxies}
    best = max(proxies, key=lambda p: correlations[p]["val"].get("spearman", -2))
    best_zc = max((p for p in proxies if p not in BASELINES),
                  key=lambda p: correlations[p]["val"].get("spearman", -2))
    beats = [p for p in proxies if p not in BASELINES
             and correlations[p]["val"].get("spearman", -2) > correlations["params"]["val"].get("spearman", 2)]
    verdict = (f"best on validation: {best} (Spearman {correlations[best]['val']['spearman']:+.3f}); best zero-cost "
               f"proxy: {best_zc} ({correlations[best_zc]['val']['spearman']:+.3f}) vs #params "
               f"({correlations['params']['val']['spearman']:+.3f}): "
               + (f"{', '.join(beats)} beat(s) #params." if beats else "NO zero-cost proxy beats #params here."))
    over = [p for p in proxies if cost[p]["median"] >= TARGET_MS]
    verdict += (f" Cost target < {TARGET_MS:.0f} ms per proxy: " +
                ("met by every proxy." if not over else f"NOT met by {', '.join(over)}."))
    report["part1"] = {"archs_scored": len(records), "ceiling": ceiling, "ceiling_test": ceiling_test,
                       "init_seed_stability": stability, "cost_ms": cost,
                       "cost_ms_all_median": statistics.median(sum(r["zero_cost_ms"].values()) for r in records),
                       "best_proxy": best, "best_zero_cost_proxy": best_zc, "beats_params": beats,
                       "verdict": verdict, "seconds": time.perf_counter() - t0,
                       "train_s_median": float(np.median([s for r in records for s in r["train_s"]])),
                       "load_average_end": os.getloadavg()}
    write(report, args.out)
    print(format_report(report), flush=True)
    return report


#: Op families of the default space, for the per-family correlations (an architecture is in every
#: family one of its layers belongs to; "conv_only": convolutions, fc, identity and pooling only).
FAMILIES: dict[str, frozenset[str]] = {
    "recurrent": frozenset({"gru", "lstm"}),
    "gated_tcn": frozenset({"gated_tcn"}),
    "attention": frozenset({"attention"}),
}


def arch_families(arch: dict[str, Any]) -> list[str]:
    """The families (:data:`FAMILIES`, or ``conv_only``) of one architecture's layers."""
    ops = {layer["op"] for layer in arch["layers"]}
    found = [name for name, members in FAMILIES.items() if ops & members]
    return found or ["conv_only"]


def family_correlations(records: list[dict[str, Any]], proxies: list[str],
                        val: np.ndarray) -> dict[str, dict[str, Any]]:
    """Spearman of each proxy with the trained validation score within each op family (no intervals)."""
    out: dict[str, dict[str, Any]] = {}
    for family in [*FAMILIES, "conv_only"]:
        idx = [i for i, r in enumerate(records) if family in arch_families(r["arch"])]
        entry: dict[str, Any] = {"n": len(idx), "val_mean": float(np.nanmean(val[idx])) if idx else None}
        if len(idx) >= 5:
            for p in proxies:
                x = np.array([records[i]["zero_cost"][0][p] for i in idx], dtype=float)
                x = np.where(np.isneginf(x), np.nanmin(x[np.isfinite(x)], initial=0.0) - 1.0, x)
                entry[p] = float(stats.spearmanr(x, val[idx], nan_policy="omit")[0])
        out[family] = entry
    return out


def cost_pass(args: argparse.Namespace, space: hwnas.SearchSpace, task: Any) -> dict[str, Any]:
    """Each proxy's cost per architecture on the first ``--cost-archs`` architectures: the fastest of
    ``--cost-passes`` shuffled passes per architecture (less sensitive to other jobs than one pass)."""
    archs = distinct_archs(space, args.archs, args.arch_seed)[: args.cost_archs]
    best: dict[str, list[float]] = {p.value: [float("inf")] * len(archs) for p in ZeroCostProxy}
    rng = np.random.default_rng(0)
    loads = [os.getloadavg()]
    for _ in range(args.cost_passes):
        for i in rng.permutation(len(archs)):
            seconds = zero_cost_scores([archs[int(i)]], task)[0].seconds
            for p, v in seconds.items():
                best[p][int(i)] = min(best[p][int(i)], 1000 * v)
        loads.append(os.getloadavg())
    return {"archs": len(archs), "passes": args.cost_passes, "load_averages": loads,
            "median_ms": {p: statistics.median(v) for p, v in best.items()},
            "p90_ms": {p: float(np.percentile(v, 90)) for p, v in best.items()},
            "all_median_ms": statistics.median(sum(best[p][i] for p in best) for i in range(len(archs)))}


def compare_to(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """``a`` against ``b`` (per-seed HVs, same seeds): mean difference, paired t, Welch t, Wilcoxon p."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out: dict[str, Any] = {"n": int(len(x)), "mean_diff": float(np.mean(x - y)) if len(x) else None,
                           "wins": int(np.sum(x > y))}
    if len(x) >= 2:
        out["paired_t_p"] = float(stats.ttest_rel(x, y).pvalue)
        out["welch_t_p"] = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
        diff = x - y
        out["diff_ci95"] = [float(v) for v in stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(),
                                                               scale=stats.sem(diff))] if diff.std() > 0 else None
        out["wilcoxon_p"] = float(stats.wilcoxon(x, y).pvalue) if np.any(diff != 0) else 1.0
    return out


def saved_state(name: str, seed: int, options: dict[str, Any], *, space: hwnas.SearchSpace, profile: Any,
                task: Any, budget: float, evals: int, store: EvaluationStore, evaluator: Evaluator,
                batch_size: int) -> dict[str, Any]:
    """The strategy state a finished search saved in the store."""
    problem = SearchProblem(space, profile, budget, evals, task=task)
    strategy = get_strategy(name)(problem, seed=seed, **options)
    saved = store.load_run(run_key(strategy, options, problem, batch_size, evaluator, *evaluator.fingerprints()))
    return saved["strategy"] if saved else {}


def part2(args: argparse.Namespace, space: hwnas.SearchSpace, task: Any, profile: Any,
          report: dict[str, Any], proxy: str) -> None:
    """Pre-filtered search vs evolution at equal accounted wall time."""
    budget = median_latency(space, profile)
    evolution = {"population_size": args.population, "sample_size": max(1, round(args.population / 4))}
    runs = {"evolution": ("evolution", evolution),
            f"prefilter_{proxy}": ("prefilter", {"proxy": proxy, "pool_factor": args.pool_factor})}
    if args.search_random:
        runs["random"] = ("random", {})
    evaluator = Evaluator(task, profile, seed=0)
    curves: dict[str, list[np.ndarray]] = {k: [] for k in runs}
    costs: dict[str, list[np.ndarray]] = {k: [] for k in runs}
    zc_s: dict[str, list[float]] = {k: [] for k in runs}
    search_report: dict[str, Any] = {
        "description": (f"{args.search_evals} evaluations x {args.search_seeds} seeds, soft MnasNet problem, "
                        f"budget {budget:.1f} us (median LUT latency), evolution P={evolution['population_size']} "
                        f"S={evolution['sample_size']}, pre-filter keeps 1/{args.pool_factor} "
                        f"of its pool by proxy {proxy!r}; HV over (-val score, LAT/T), reference (0, 1); "
                        f"training recipe: {task.epochs} epoch(s) on {task.max_train_windows} windows"
                        + (" (cheaper than the proxy recipe's 2,048, to fit the run)"
                           if (task.max_train_windows or 0) < 2048 else "")),
        "budget_us": budget, "proxy": proxy, "pool_factor": args.pool_factor, "runs": []}
    report["search"] = search_report
    with EvaluationStore(args.store, *evaluator.fingerprints(), 0) as store:
        for seed in range(args.search_seeds):
            for label, (name, options) in runs.items():
                result, seconds = run_strategy(name, seed, space=space, profile=profile, task=task,
                                               budget_us=budget, evals=args.search_evals, store=store,
                                               options=options, evaluator=evaluator)
                state = saved_state(name, seed, options, space=space, profile=profile, task=task, budget=budget,
                                    evals=args.search_evals, store=store, evaluator=evaluator, batch_size=8)
                zc = float(state.get("zero_cost_seconds", 0.0))
                train = np.array([s.metrics.seconds for s in result.history])
                cost = np.cumsum(train) + zc * np.arange(1, len(train) + 1) / max(len(train), 1)
                curves[label].append(result.hypervolume_curve())
                costs[label].append(cost)
                zc_s[label].append(zc)
                search_report["runs"].append({"strategy": label, "seed": seed, "wall_s": seconds,
                                              "train_s": float(train.sum()), "zero_cost_s": zc,
                                              "final_hv": float(curves[label][-1][-1]),
                                              "load_average": os.getloadavg()})
                print(f"{label:<20} seed {seed}: HV {curves[label][-1][-1]:.4f}, accounted "
                      f"{cost[-1]:.0f} s (zero-cost {zc:.1f} s), wall {seconds:.0f} s", flush=True)
            done = {k: v for k, v in curves.items() if len(v) == seed + 1}
            search_report["summary_equal_evals"] = summarise(done, baseline="evolution")
            equal: dict[str, list[float]] = {k: [] for k in done}
            for s in range(seed + 1):
                common = min(costs[k][s][-1] for k in done)
                for k in done:
                    within = np.flatnonzero(costs[k][s] <= common + 1e-9)
                    equal[k].append(float(curves[k][s][within[-1]]) if len(within) else 0.0)
            search_report["equal_cost"] = {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1))
                                               if len(v) > 1 else 0.0, "per_seed": v} for k, v in equal.items()}
            pre = f"prefilter_{proxy}"
            ratios = [a / b if b > 0 else float("nan") for a, b in zip(equal[pre], equal["evolution"])]
            search_report.update(ratio=float(np.mean(equal[pre]) / np.mean(equal["evolution"])),
                                 ratio_per_seed=ratios, ratio_label=f"{pre} / evolution",
                                 tests={k: compare_to(equal[k], equal["evolution"]) for k in done
                                        if k != "evolution"},
                                 tests_equal_evals={k: compare_to([c[-1] for c in curves[k]],
                                                                  [c[-1] for c in curves["evolution"]])
                                                    for k in done if k != "evolution"},
                                 completed_seeds=seed + 1,
                                 cost={k: {"train_s_mean": float(np.mean([c[-1] for c in costs[k]]) -
                                                                  np.mean(zc_s[k])),
                                           "zero_cost_s_mean": float(np.mean(zc_s[k]))} for k in done})
            test = search_report["tests"][pre]
            search_report["helps"] = prefilter_verdict(test)
            search_report["verdict"] = (
                f"verdict after {seed + 1} seed(s): the {proxy} pre-filter "
                + {"helps": "HELPS (higher HV than evolution, paired t p < 0.05)",
                   "hurts": "HURTS (lower HV than evolution, paired t p < 0.05)",
                   "no difference": "does NOT measurably help (no significant HV difference from evolution "
                                    "at equal accounted time, paired t p >= 0.05)"}[search_report["helps"]])
            write(report, args.out)
    print(format_report(report), flush=True)


def prefilter_verdict(test: dict[str, Any], alpha: float = 0.05) -> str:
    """``helps`` / ``hurts`` when the paired t-test rejects equal HV at ``alpha``, else ``no difference``."""
    p = test.get("paired_t_p")
    if p is None or not np.isfinite(p) or p >= alpha:
        return "no difference"
    return "helps" if test["mean_diff"] > 0 else "hurts"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=200)
    parser.add_argument("--arch-seed", type=int, default=2025)
    parser.add_argument("--train-seeds", type=int, default=2)
    parser.add_argument("--retrain", type=int, default=40, help="architectures retrained 5x longer (0: none)")
    parser.add_argument("--search-seeds", type=int, default=5, help="0: skip the search comparison")
    parser.add_argument("--search-evals", type=int, default=100)
    parser.add_argument("--pool-factor", type=int, default=4)
    parser.add_argument("--population", type=int, default=20,
                        help="evolution's population (tournament: a quarter of it)")
    parser.add_argument("--search-random", action="store_true", help="also run random search")
    parser.add_argument("--prefilter-proxy", default=None, help="default: the best proxy on validation")
    parser.add_argument("--max-train-windows", type=int, default=None,
                        help="training windows per evaluation (default: the proxy recipe's 2,048); a cheaper "
                             "recipe for the 100-evaluation searches, recorded in the settings")
    parser.add_argument("--cost-archs", type=int, default=50)
    parser.add_argument("--cost-passes", type=int, default=3)
    parser.add_argument("--part", choices=("1", "2", "both", "cost"), default="both",
                        help="1: correlations only, 2: the search only (written to <out>_search, needs "
                             "--prefilter-proxy or a finished part 1 in <out>.json); cost: re-measure the "
                             "proxies' cost into the finished part 1's <out>.json")
    parser.add_argument("--store", type=Path, default=RESULTS / "zero_cost_evals.sqlite")
    parser.add_argument("--profile", type=Path, default=RESULTS / "search_profile_cpu_1thread.json")
    parser.add_argument("--out", type=Path, default=None,
                        help="results stem (default: results/zero_cost, or zero_cost_SPACE for another space)")
    parser.add_argument("--space", choices=("default", "mobile", "fpga"), default="default",
                        help="the space whose random architectures are scored (mobile and fpga: part 1 only, "
                             "their latency from an analytical model, unused by the correlations)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / ("zero_cost" if args.space == "default" else f"zero_cost_{args.space}")
    if args.space != "default" and args.part not in ("1", "cost"):
        parser.error("--space mobile|fpga runs --part 1 (or cost) only")
    for suffix in (".txt", ".json"):
        check_writable(args.out.with_suffix(suffix), "--out")
    if args.prefilter_proxy is not None:
        ZeroCostProxy(args.prefilter_proxy)

    data = hwnas.load_klines("BTCUSDT", "15")
    print(data.summary(), flush=True)
    space = hwnas.SearchSpace.named(args.space, input_features=10)
    task, _ = hwnas.search.default_task(space, progress=False)
    if args.max_train_windows is not None:
        task = replace(task, max_train_windows=args.max_train_windows)
    from hwnas.targets.profiles import fpga_profile, gpu_profile

    cpu_profile = default_profile(space, args.profile) if args.space == "default" else None
    covered = covered_ops(cpu_profile) if cpu_profile is not None else set()
    uncovered = [op.value for op in space.ops if op.value not in covered]
    if cpu_profile is not None and not uncovered:
        profile, latency_note = cpu_profile, f"{args.profile.name} (measured, 1 thread)"
    else:  # part 1 uses the trained scores only; an analytical model prices every op of the space
        profile = fpga_profile() if args.space == "fpga" else gpu_profile()
        latency_note = (f"part 1: {profile.name} (analytical model; latency is not used by the correlations)"
                        + (f"; the committed CPU profile {args.profile.name} has no entries for "
                           f"{', '.join(uncovered)}" if uncovered and cpu_profile is not None else ""))
    settings: dict[str, Any] = {
        "data": data.description, "task": task.describe().replace("\n", "; "), "space": space.name,
        "archs": args.archs, "train_seeds": args.train_seeds, "zero_cost_batch": 64,
        "retrain_epochs": RETRAIN_EPOCHS, "retrain_subset": args.retrain,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}, "
                   f"torch {__import__('torch').__version__}, 1 torch thread, shared with other jobs",
        "latency": latency_note,
        "load_average_start": os.getloadavg(),
    }
    report: dict[str, Any] = {"settings": settings}
    if args.part == "cost":
        report = json.loads(args.out.with_suffix(".json").read_text())
        report["cost_remeasured"] = cost_pass(args, space, task)
        write(report, args.out)
        print(format_report(report), flush=True)
        return 0
    if args.part in ("1", "both"):
        part1(args, space, task, profile, report)
    if args.part in ("2", "both") and args.search_seeds:
        proxy = args.prefilter_proxy
        if args.part == "2":
            settings.update({k: "-" for k in ("archs", "train_seeds", "retrain_subset")})
            if proxy is None:
                proxy = json.loads(args.out.with_suffix(".json").read_text())["part1"]["best_proxy"]
            args.out = args.out.with_name(args.out.name + "_search")
        else:
            proxy = proxy or report["part1"]["best_proxy"]
        assert cpu_profile is not None
        search_space = space
        if uncovered:  # the search needs the measured latency of every candidate
            search_space = hwnas.SearchSpace.default(
                input_features=10, ops=tuple(op for op in space.ops if op.value in covered))
            settings["latency"] = (f"part 2: {args.profile.name} (measured, 1 thread); it has no entries for "
                                   f"{', '.join(uncovered)}, so the searches run on the default space without "
                                   "them (ops " + ", ".join(op.value for op in search_space.ops) + ")")
        part2(args, search_space, task, cpu_profile, report, proxy)
    report["settings"]["load_average_end"] = os.getloadavg()
    write(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
