"""Regularised evolution's population and tournament sizes at a small budget, against random search.

Real et al. (AAAI 2019) ran aging evolution with a population ``P = 100`` and a tournament
``S = 25`` for 20,000 models: the random start is 0.5% of the budget and the population turns
over 200 times. At 150 evaluations the library's ``P = 20`` spends 13% of the budget on the
random start and turns over 6.5 times. This study runs evolution with several (P, S) on the
reduced recipe of :mod:`bench_search` (same task, profile, T and shared store, so a repeated
architecture is read, not trained) and reports the final hypervolume under both references
against random search's, per seed and as mean ± sd.

    PYTHONPATH=. HWNAS_BYBIT_DIR=../shared/data/bybit HWNAS_OFFLINE=1 nice -n 5 python \\
        benchmarks/bench_evolution_study.py --configs 20:5,10:3,10:5,40:10 --seeds 3 --evals 150 \\
        --store /tmp/search_store.sqlite

Writes ``benchmarks/results/search_evolution_study.txt`` / ``.json`` after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import (  # noqa: E402
    DEFAULT_BUDGET_US,
    RESULTS,
    bench_task,
    default_profile,
    persistence_score,
    priced_space,
    run_strategy,
)

import hwnas  # noqa: E402
from hwnas.fileio import check_writable, write_text_atomic  # noqa: E402
from hwnas.search import EvaluationStore, Evaluator, SearchProblem  # noqa: E402

__all__ = ["main", "parse_configs"]


def parse_configs(text: str) -> list[tuple[int, int]]:
    """``"20:5,10:3"`` -> ``[(20, 5), (10, 3)]`` (population size, tournament size)."""
    out = []
    for part in text.split(","):
        p, _, s = part.strip().partition(":")
        if not (p.isdigit() and s.isdigit()) or not 1 <= int(s) <= int(p):
            raise ValueError(f"--configs: {part!r} is not P:S with 1 <= S <= P")
        out.append((int(p), int(s)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="20:5,10:3,10:5,40:10", help="P:S pairs, comma-separated")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--evals", type=int, default=150)
    parser.add_argument("--budget-us", type=float, default=DEFAULT_BUDGET_US)
    parser.add_argument("--max-train-windows", type=int, default=512)
    parser.add_argument("--eval-stride", type=int, default=16)
    parser.add_argument("--store", type=Path, default=RESULTS / "search_evals.sqlite")
    parser.add_argument("--profile", type=Path, default=RESULTS / "search_profile_cpu_1thread.json")
    parser.add_argument("--out", type=Path, default=RESULTS / "search_evolution_study")
    args = parser.parse_args(argv)
    try:
        configs = parse_configs(args.configs)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    for suffix in (".txt", ".json"):
        check_writable(args.out.with_suffix(suffix), "--out")

    data = hwnas.load_klines("BTCUSDT", "15")
    profile = default_profile(hwnas.SearchSpace.default(input_features=10), args.profile)
    space = priced_space(profile)
    task = bench_task(data, space, args.max_train_windows, args.eval_stride)
    problem = SearchProblem(space, profile, args.budget_us, args.evals, task=task)
    trader_ref = problem.reference(persistence_score(task))
    settings = {"task": task.describe().replace("\n", "; "), "profile": profile.label,
                "budget_us": args.budget_us, "evals": args.evals, "seeds": args.seeds,
                "configs": args.configs, "hv": "(-val score, LAT/T); HV0 reference (0, 1), HVT trader reference",
                "machine": f"{os.cpu_count()} cores, shared with other jobs (a loaded machine)",
                "load_average_start": os.getloadavg()}
    runs: list[dict[str, Any]] = []
    arms: list[tuple[str, str, dict[str, Any] | None]] = [("random", "random", None)]
    arms += [(f"evolution P={p} S={s}", "evolution", {"population_size": p, "sample_size": s}) for p, s in configs]
    evaluator = Evaluator(task, profile)
    with EvaluationStore(args.store, *evaluator.fingerprints(), 0) as store:
        for seed in range(args.seeds):
            for label, name, options in arms:
                result, seconds = run_strategy(name, seed, space=space, profile=profile, task=task,
                                               budget_us=args.budget_us, evals=args.evals, store=store,
                                               options=options, evaluator=evaluator)
                runs.append({"arm": label, "seed": seed, "seconds": seconds,
                             "hv_zero": float(result.hypervolume_curve()[-1]),
                             "hv_trader": float(result.hypervolume_curve(trader_ref)[-1]),
                             "load_average": os.getloadavg()})
                print(f"{label:<24} seed {seed}: HV0 {runs[-1]['hv_zero']:.4f} HVT {runs[-1]['hv_trader']:.4f} "
                      f"{seconds:.0f} s", flush=True)
                text = table(runs, settings)
                write_text_atomic(args.out.with_suffix(".txt"), text + "\n")
                write_text_atomic(args.out.with_suffix(".json"),
                                  json.dumps({"settings": settings, "runs": runs}, indent=1))
        ceiling = store_ceiling(store, problem, trader_ref)
    settings["store_ceiling"] = ceiling
    text = table(runs, settings)
    write_text_atomic(args.out.with_suffix(".txt"), text + "\n")
    write_text_atomic(args.out.with_suffix(".json"), json.dumps({"settings": settings, "runs": runs}, indent=1))
    print(text)
    return 0


def store_ceiling(store: EvaluationStore, problem: SearchProblem, trader_ref: np.ndarray) -> dict[str, Any]:
    """The hypervolume of every architecture the store holds for this task (all strategies, all
    seeds, every budget together): no search that asks only known architectures can exceed it."""
    from hwnas.pareto import hypervolume

    metrics = [m for _, m in store.items() if problem.selectable(m)]
    points = problem.objective_array(metrics, normalised=True)
    out: dict[str, Any] = {"architectures": len(metrics)}
    for name, ref in (("hv_zero", problem.reference()), ("hv_trader", trader_ref)):
        inside = points[np.all(points < ref, axis=1)]
        out[name] = float(hypervolume(inside, ref)) if len(inside) else 0.0
    return out


def table(runs: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """Mean ± sd of both hypervolumes per arm, and the ratio to random's mean."""
    lines = ["settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
             "measured on a shared, loaded machine", "",
             f"{'arm':<24}{'runs':>5}{'HV0 mean':>10}{'sd':>8}{'x rnd':>7}{'HVT mean':>10}{'sd':>8}{'x rnd':>7}"
             "  HV0 per seed"]
    arms = list(dict.fromkeys(r["arm"] for r in runs))
    base = {ref: np.mean([r[ref] for r in runs if r["arm"] == "random"]) for ref in ("hv_zero", "hv_trader")}
    for arm in arms:
        rows = [r for r in runs if r["arm"] == arm]
        cells = []
        for ref in ("hv_zero", "hv_trader"):
            values = np.array([r[ref] for r in rows])
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{values.mean():>10.4f}{sd:>8.4f}{values.mean() / base[ref]:>7.3f}")
        lines.append(f"{arm:<24}{len(rows):>5}{''.join(cells)}  {[round(r['hv_zero'], 4) for r in rows]}")
    ceiling = settings.get("store_ceiling")
    if ceiling:
        ratio, need = ceiling["hv_zero"] / base["hv_zero"], 1.1 * base["hv_zero"]
        lines.append(f"ceiling: the union of all {ceiling['architectures']} architectures in the store (every "
                     f"strategy, seed and budget) has HV0 {ceiling['hv_zero']:.4f} = {ratio:.3f} x random's mean, "
                     f"HVT {ceiling['hv_trader']:.4f}; evolution >= 1.1 x random needs HV0 "
                     f"{need:.4f}, {'above' if need > ceiling['hv_zero'] else 'within'}"
                     " what any run has found")
    lines.append(f"load average now: {os.getloadavg()}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
