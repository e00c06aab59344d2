"""MnasNet's RL controller against random search and aging evolution at equal budgets.

Two figures:

1. The controller's own cost per sampled architecture: ``ask`` (sampling a
   policy batch) plus ``tell`` (its share of the REINFORCE / PPO update),
   measured on the strategy alone with a synthetic reward (no training, no
   store), median and spread over repeats. The target is under 5 ms.
2. Hypervolume and best feasible reward against evaluations for ``mnasnet``,
   ``random`` and ``evolution``, ``--seeds`` seeds of ``--evals`` evaluations,
   on the recorded BTCUSDT 15-minute proxy task under the 1-thread CPU profile
   (the settings and machinery of ``benchmarks/bench_search.py``, whose
   ``run_strategy`` and ``summarise`` this imports; the evaluation store is
   shared with it, so random and evolution runs it finished cost nothing
   here, and a killed run resumes).

Written to ``benchmarks/results/mnasnet.txt`` / ``.json`` after every run, so a
partial benchmark leaves its figures and settings.

    PYTHONPATH=. HWNAS_BYBIT_DIR=../shared/data/bybit .venv/bin/python benchmarks/bench_mnasnet.py \
        --seeds 5 --evals 300

``--reduced`` runs chapter 08's reduced task instead (about 4x cheaper evaluations),
for a machine that cannot afford the full one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_search import RESULTS, default_profile, median_latency, run_strategy, summarise  # noqa: E402

import hwnas  # noqa: E402
from hwnas.fileio import check_writable, write_text_atomic  # noqa: E402
from hwnas.search import EvaluationStore, Evaluator, SearchResult  # noqa: E402
from hwnas.search.base import INFEASIBLE_REWARD, Metrics, SearchProblem  # noqa: E402
from hwnas.search.mnasnet import MnasNetStrategy  # noqa: E402

BASELINES = ("random", "evolution")
TARGET_MS = 5.0


def controller_cost(space: hwnas.SearchSpace, profile: Any, budget_us: float, *, n: int = 300,
                    repeats: int = 5, **options: Any) -> dict[str, Any]:
    """Milliseconds per architecture of ask + tell on the strategy alone (a synthetic reward)."""
    per_arch, cpu_per_arch = [], []
    for seed in range(repeats):
        strategy = MnasNetStrategy(SearchProblem(space, profile, budget_us, n), seed=seed, **options)
        start, cpu = time.perf_counter(), time.process_time()
        while archs := strategy.ask(8):
            for arch in archs:
                score = sum(layer.op.value == "conv" for layer in arch.layers) / arch.depth
                strategy.tell(arch, Metrics(score, budget_us, 1, 1, 1))
        per_arch.append(1000 * (time.perf_counter() - start) / n)
        cpu_per_arch.append(1000 * (time.process_time() - cpu) / n)
    values = np.array(per_arch)
    return {"n": n, "repeats": repeats, "options": options, "ms_per_arch": values.tolist(),
            "median_ms": float(np.median(values)), "min_ms": float(values.min()),
            "max_ms": float(values.max()), "cpu_ms_per_arch": cpu_per_arch,
            "median_cpu_ms": float(np.median(cpu_per_arch)), "load_average": os.getloadavg(),
            "cpus": os.cpu_count()}


def best_reward_curve(result: SearchResult, problem: SearchProblem) -> np.ndarray:
    """The best reward of a feasible evaluation after each evaluation (the infeasible reward before one)."""
    rewards = [problem.reward(s.metrics) for s in result.history]
    return np.maximum.accumulate(np.maximum(np.array(rewards, dtype=float), INFEASIBLE_REWARD))


def reward_summary(curves: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """Final best reward mean, std and per seed, and the mean curve, per strategy."""
    out = {}
    for name, runs in curves.items():
        finals = np.array([c[-1] for c in runs])
        length = min(len(c) for c in runs)
        out[name] = {"runs": len(runs), "final_mean": float(finals.mean()),
                     "final_std": float(finals.std(ddof=1)) if len(runs) > 1 else 0.0,
                     "finals": finals.tolist(),
                     "mean_curve": np.mean([c[:length] for c in runs], axis=0).tolist()}
    return out


def format_report(report: dict[str, Any]) -> str:
    """The figures as the text the benchmark prints."""
    lines = ["settings: " + ", ".join(f"{k}={v}" for k, v in report["settings"].items())]
    cost = report.get("controller_cost")
    if cost:
        verdict = "met" if cost["median_ms"] < TARGET_MS else "NOT met"
        lines.append(f"\ncontroller cost per sampled architecture (ask + share of the update, "
                     f"{cost['n']} archs x {cost['repeats']} seeds): median {cost['median_ms']:.2f} ms wall "
                     f"(min {cost['min_ms']:.2f}, max {cost['max_ms']:.2f}), median "
                     f"{cost.get('median_cpu_ms', math.nan):.2f} ms of CPU time; target < {TARGET_MS} ms "
                     f"(wall): {verdict}; load average {cost['load_average']} on {cost.get('cpus')} cores")
    hv = report.get("hypervolume")
    if hv:
        lines.append(f"\n{'strategy':<11}{'runs':>5}{'final HV':>10}{'std':>8}{'x random':>10}"
                     f"{'best reward':>13}{'std':>8}   HV per seed")
        rewards = report["best_reward"]
        for name, e in hv["strategies"].items():
            ratio = e.get("ratio_to_random")
            r = rewards[name]
            lines.append(f"{name:<11}{e['runs']:>5}{e['final_mean']:>10.4f}{e['final_std']:>8.4f}"
                         f"{(f'{ratio:.3f}' if ratio else '-'):>10}{r['final_mean']:>13.4f}"
                         f"{r['final_std']:>8.4f}   {[round(x, 4) for x in e['finals']]}")
        for name, e in hv["strategies"].items():
            curve, best = e["mean_curve"], rewards[name]["mean_curve"]
            marks = [k for k in (25, 50, 100, 200, 300, 500) if k <= len(curve)]
            lines.append(f"mean curve {name:<10} " + "  ".join(
                f"@{k}: HV {curve[k - 1]:.4f} R {best[k - 1]:.4f}" for k in marks))
        for name, e in hv["strategies"].items():
            if name != "random" and "evals_to_reach_random" in e:
                lines.append(f"evaluations {name} needs to reach random's final mean HV (per seed): "
                             f"{e['evals_to_reach_random']}")
    runs = report.get("mnasnet_runs")
    if runs:
        lines.append("\nmnasnet runs: " + "; ".join(
            f"seed {r['seed']}: {r['distinct']} distinct of {r['evaluations']}, {r['seconds']:.0f} s, "
            f"final entropy {r['final_entropy']:.2f}" for r in runs))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed-list", default=None,
                        help="comma-separated seeds to run, in this order (default: 0 .. seeds-1); "
                             "a second process with the seeds reversed shares the store")
    parser.add_argument("--evals", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8, help="the loop's batch (as bench_search)")
    parser.add_argument("--store", type=Path, default=RESULTS / "search_evals.sqlite")
    parser.add_argument("--profile", type=Path, default=RESULTS / "search_profile_cpu_1thread.json")
    parser.add_argument("--out", type=Path, default=RESULTS / "mnasnet")
    parser.add_argument("--cost-only", action="store_true", help="only the controller's cost")
    parser.add_argument("--reuse-cost", action="store_true",
                        help="keep the controller cost already in --out's JSON instead of measuring it")
    parser.add_argument("--reduced", action="store_true",
                        help="chapter 08's reduced task and space (8,000 candles, 384 training windows, "
                             "lookbacks 32/64, depths 2-4) in their own store")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes that train a round's candidates (1: in-process; scores do not depend on it)")
    args = parser.parse_args(argv)
    if args.reduced:
        args.store = args.store if args.store != RESULTS / "search_evals.sqlite" else \
            RESULTS / "mnasnet_reduced_evals.sqlite"
        args.out = args.out if args.out != RESULTS / "mnasnet" else RESULTS / "mnasnet_reduced"
    for suffix in (".txt", ".json"):
        check_writable(args.out.with_suffix(suffix), "--out")

    space = hwnas.SearchSpace.default(input_features=10)
    profile = default_profile(space, args.profile)
    if args.reduced:
        space = hwnas.SearchSpace.default(input_features=10, lookbacks=(32, 64), depths=(2, 3, 4))
    budget = median_latency(space, profile)
    options: dict[str, Any] = {}  # the strategy's defaults
    settings: dict[str, Any] = {
        "profile": profile.label, "space": space.name, "budget_us": round(budget, 1),
        "constraint": "soft", "w": -0.07, "evals": args.evals, "seeds": args.seeds,
        "loop_batch": args.batch_size, "reduced": args.reduced, "workers": args.workers,
        "mnasnet": repr(MnasNetStrategy(SearchProblem(space, profile, budget, 1))),
        "hv": "(-val score, LAT/T), reference (0, 1)", "load_average_start": os.getloadavg(),
    }
    report: dict[str, Any] = {"settings": settings}

    def save() -> None:
        text = format_report(report)
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(report, indent=1))
        write_text_atomic(args.out.with_suffix(".txt"), text + "\n")
        print(text, flush=True)

    full = hwnas.SearchSpace.default(input_features=10)  # the cost is measured on the full space
    previous = args.out.with_suffix(".json")
    if args.reuse_cost and previous.is_file() and "controller_cost" in json.loads(previous.read_text()):
        report["controller_cost"] = json.loads(previous.read_text())["controller_cost"]
    else:
        report["controller_cost"] = controller_cost(full, profile, median_latency(full, profile), **options)
    save()
    if args.cost_only:
        return 0

    data = hwnas.load_klines("BTCUSDT", "15", limit=8_000 if args.reduced else None)
    print(data.summary(), flush=True)
    if args.reduced:
        task = hwnas.make_proxy_task(data.frame, lookback=64, interval=data.interval,
                                     source=data.description, max_train_windows=384, eval_stride=8)
    else:
        task, _ = hwnas.search.default_task(space, progress=False)
    settings.update(data=data.description, task=task.describe().replace("\n", "; "))
    evaluator = Evaluator(task, profile)
    problem = SearchProblem(space, profile, budget, args.evals)
    hv_curves: dict[str, list[np.ndarray]] = {}
    best_curves: dict[str, list[np.ndarray]] = {}
    report["mnasnet_runs"] = []
    # full task: mnasnet first (bench_search runs the baselines into the same store);
    # reduced: round robin per seed, so a partial benchmark stays balanced
    seeds = [int(x) for x in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    if args.reduced:
        order = [(name, s) for s in seeds for name in ("mnasnet", *BASELINES)]
    else:
        order = [("mnasnet", s) for s in seeds] + [(b, s) for s in seeds for b in BASELINES]
    executor = ProcessPoolExecutor(args.workers) if args.workers > 1 else None
    with EvaluationStore(args.store, *evaluator.fingerprints(), 0) as store:
        for name, seed in order:
            # mnasnet as an object (the same run key as the name with default options), so its
            # learning curves can be read afterwards
            controller = MnasNetStrategy(problem, seed=seed, **options) if name == "mnasnet" else None
            result, seconds = run_strategy(controller or name, seed, space=space, profile=profile,
                                           task=task, budget_us=budget, evals=args.evals, store=store,
                                           batch_size=args.batch_size, evaluator=evaluator, executor=executor)
            hv_curves.setdefault(name, []).append(result.hypervolume_curve())
            best_curves.setdefault(name, []).append(best_reward_curve(result, problem))
            if controller is not None:
                curves = {k: [h[k] for h in controller.history]
                          for k in ("evaluations", "mean_reward", "baseline", "entropy")}
                report["mnasnet_runs"].append({
                    "seed": seed, "seconds": seconds, "evaluations": len(result.history),
                    "distinct": len({s.arch for s in result.history}),
                    "final_entropy": curves["entropy"][-1] if curves["entropy"] else math.nan,
                    "learning_curves": curves, "load_average": os.getloadavg()})
            print(f"{name:<10} seed {seed}: HV {hv_curves[name][-1][-1]:.4f}, best reward "
                  f"{best_curves[name][-1][-1]:.4f}, {seconds:.0f} s", flush=True)
            if "random" in hv_curves or name == "mnasnet":
                ordered = {k: hv_curves[k] for k in ("random", "evolution", "mnasnet") if k in hv_curves}
                report["hypervolume"] = summarise(ordered)
                report["best_reward"] = reward_summary({k: best_curves[k] for k in ordered})
            settings["load_average_now"] = os.getloadavg()
            save()
    if executor is not None:
        executor.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
