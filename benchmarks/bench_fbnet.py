"""FBNet against random and evolution at equal wall time, and the fidelity of its expected latency.

For each seed: the default FBNet search (``hwnas.search(..., strategy="fbnet")``
with the strategy's default options) on the recorded BTCUSDT 15-minute proxy
task (the library's default task) under the 1-thread CPU profile of the default
space (``benchmarks/results/search_profile_cpu_1thread.json``, measured by
``bench_search.py`` and shared with it), latency budget ``T`` the median LUT
latency of 200 random architectures. Then random and evolution run with the
same seed, and so does mnasnet's controller (one evaluation per batch, so each has
its own wall time; mnasnet still updates its policy once per batch of its samples) until
their wall time passes FBNet's; each is scored by the
hypervolume of its front over (-validation score, LAT / T), reference (0, 1),
after the last evaluation told within FBNet's wall time. No evaluation store:
every strategy trains everything it asks for, so none profits from another's
cache.

Also printed: the seconds FBNet takes (target: under 120 s on 2 cores), and for
each supernet of the first seed the expected latency of its final theta, the
LUT prediction of its argmax architecture and that architecture's measured
latency (``hwnas.latency.measure_models``, same harness as the table).

    PYTHONPATH=. HWNAS_BYBIT_DIR=../shared/data/bybit .venv/bin/python benchmarks/bench_fbnet.py --seeds 5

Output: ``benchmarks/results/fbnet.txt`` and ``.json`` (rewritten after every seed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_search import RESULTS, default_profile, median_latency  # noqa: E402

import hwnas  # noqa: E402
from hwnas.fileio import check_writable, write_text_atomic  # noqa: E402
from hwnas.latency import TimingSpec, measure_models  # noqa: E402
from hwnas.search import SearchResult, search  # noqa: E402
from hwnas.search.fbnet import FBNet  # noqa: E402

TARGET_SECONDS = 120.0
BASELINES = ("random", "evolution", "mnasnet")


def hv_at(result: SearchResult, seconds: float) -> tuple[float, int]:
    """Hypervolume after the last evaluation told within ``seconds``, and how many there were."""
    times = np.array([s.wall_time for s in result.history])
    n = int(np.searchsorted(times, seconds, side="right"))
    return (float(result.hypervolume_curve()[n - 1]) if n else 0.0), n


def fidelity(strategy: FBNet, profile: hwnas.HardwareProfile) -> list[dict[str, Any]]:
    """Expected latency of each final theta, LUT prediction and measured latency of its argmax model."""
    archs = [run.derived() for run in strategy.runs]
    timings = measure_models(archs, threads=1, timing=TimingSpec.MODELS.replace(passes=6))
    return [{"latency_weight": run.config.latency_weight, "lookback": run.spec.lookback,
             "expected_us": run.expected_latency_us(), "lut_us": profile.predict_latency(arch),
             "measured_min_us": t.min_us, "measured_median_us": t.median_us}
            for run, arch, t in zip(strategy.runs, archs, timings)]


def run_fbnet(space: hwnas.SearchSpace, profile: hwnas.HardwareProfile, task: Any, budget: float,
              seed: int) -> tuple[SearchResult, FBNet, float]:
    """The default FBNet search and its wall seconds."""
    problem = hwnas.search.SearchProblem(space, profile, budget, 1000, task=task)
    strategy = FBNet(problem, seed=seed)
    start = time.perf_counter()
    result = search(space, profile, budget, 1000, strategy=strategy, task=task, seed=seed, progress=False)
    return result, strategy, time.perf_counter() - start


def run_until(name: str, seconds: float, space: hwnas.SearchSpace, profile: hwnas.HardwareProfile,
              task: Any, budget: float, seed: int, per_eval_s: float) -> SearchResult:
    """A ``name`` search with enough evaluations to pass ``seconds`` of wall time (more if needed)."""
    evals = max(8, int(1.5 * seconds / per_eval_s))
    while True:
        result = search(space, profile, budget, evals, strategy=name, task=task, seed=seed, progress=False,
                        batch_size=1)  # told one by one: the wall time of every evaluation is known
        if result.history and result.history[-1].wall_time >= seconds:
            return result
        evals *= 2


def format_report(report: dict[str, Any]) -> str:
    """The text the benchmark prints."""
    lines = ["settings: " + ", ".join(f"{k}={v}" for k, v in report["settings"].items()), ""]
    secs = [r["fbnet_seconds"] for r in report["runs"]]
    lines.append(f"FBNet search seconds per seed: {[round(s, 1) for s in secs]} (median {np.median(secs):.1f} s; "
                 f"target < {TARGET_SECONDS:.0f} s: {'met' if np.median(secs) < TARGET_SECONDS else 'NOT met'})")
    lines.append(f"\n{'strategy':<11}{'HV mean':>9}{'std':>8}{'min':>8}{'max':>8}{'evals (mean)':>14}  per seed")
    for name in ("fbnet",) + BASELINES:
        hvs = np.array([r[name]["hv"] for r in report["runs"]])
        evals = np.mean([r[name]["evals"] for r in report["runs"]])
        spread = hvs.std(ddof=1) if len(hvs) > 1 else 0.0
        lines.append(f"{name:<11}{hvs.mean():>9.4f}{spread:>8.4f}{hvs.min():>8.4f}{hvs.max():>8.4f}"
                     f"{evals:>14.1f}  {np.round(hvs, 4).tolist()}")
    base = np.mean([r["random"]["hv"] for r in report["runs"]])
    for name in ("fbnet", "evolution", "mnasnet"):
        mean = np.mean([r[name]["hv"] for r in report["runs"]])
        lines.append(f"{name} / random at equal wall time: {mean / base:.3f}" if base else "random HV is 0")
    lines.append("\nexpected latency of the final theta vs LUT of its argmax architecture vs measured (seed 0):")
    lines.append(f"{'weight':>8}{'E[LAT] us':>11}{'LUT us':>9}{'measured min':>14}{'median':>9}{'LUT/meas':>10}")
    for row in report.get("fidelity", []):
        lines.append(f"{row['latency_weight']:>8.2f}{row['expected_us']:>11.1f}{row['lut_us']:>9.1f}"
                     f"{row['measured_min_us']:>14.1f}{row['measured_median_us']:>9.1f}"
                     f"{row['lut_us'] / row['measured_min_us']:>10.3f}")
    lines.append(f"\nload average: start {report['settings']['load_average_start']}, end {report.get('load_end')}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--profile", type=Path, default=RESULTS / "search_profile_cpu_1thread.json")
    parser.add_argument("--out", type=Path, default=RESULTS / "fbnet")
    args = parser.parse_args(argv)
    for suffix in (".txt", ".json"):
        check_writable(args.out.with_suffix(suffix), "--out")
    data = hwnas.load_klines("BTCUSDT", "15")
    print(data.summary(), flush=True)
    space = hwnas.SearchSpace.default(input_features=10)
    task, _ = hwnas.search.default_task(space, progress=False)
    profile = default_profile(space, args.profile)
    budget = median_latency(space, profile)
    settings = {"data": data.description, "profile": profile.label, "space": space.name,
                "budget_us": round(budget, 1), "seeds": args.seeds, "threads": task.num_threads,
                "hv": "(-val score, LAT/T), reference (0, 1)", "load_average_start": os.getloadavg()}
    print(json.dumps(settings, indent=1), flush=True)
    report: dict[str, Any] = {"settings": settings, "runs": []}
    for seed in range(args.seeds):
        result, strategy, seconds = run_fbnet(space, profile, task, budget, seed)
        trained = [s.metrics.seconds for s in result.history if s.metrics.feasible]
        per_eval = float(np.median(trained)) if trained else 1.0
        row: dict[str, Any] = {"seed": seed, "fbnet_seconds": seconds,
                               "supernet_seconds": [r.seconds for r in strategy.runs],
                               "fbnet": {"hv": result.hypervolume(), "evals": len(result.history)},
                               "derived": list(strategy.origins.values())}
        end = result.history[-1].wall_time if result.history else seconds
        for name in BASELINES:
            other = run_until(name, end, space, profile, task, budget, seed, per_eval)
            hv, n = hv_at(other, end)
            row[name] = {"hv": hv, "evals": n}
        row["load_average"] = os.getloadavg()
        report["runs"].append(row)
        if seed == 0:
            report["fidelity"] = fidelity(strategy, profile)
        print(f"seed {seed}: fbnet {seconds:.0f} s HV {row['fbnet']['hv']:.4f}; "
              + ", ".join(f"{n} HV {row[n]['hv']:.4f} ({row[n]['evals']} evals)" for n in BASELINES), flush=True)
        report["load_end"] = os.getloadavg()
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(report, indent=1, default=float))
        write_text_atomic(args.out.with_suffix(".txt"), format_report(report) + "\n")
    print(format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
