"""Compound scaling against depth-only, width-only and lookback-only scaling, at matched latency.

For each base (small models of the default space, lookback 32, conv-dominated
FLOPs), on the recorded BTCUSDT 15-minute proxy task (the library's default
task) and the 1-thread CPU profile of the default space (the one
``bench_search.py`` measures and saves; the keys the scaled models need are
measured on this machine and added, see ``hwnas.latency.extend_profile``):

1. the FLOPs of the conv family grow by ``2^phi`` within rounding under the
   derived constraint ``alpha * beta^2 * gamma = 2`` (measured ratio, the
   unrounded cost model and ``2^phi``, printed per phi);
2. ``scaling_grid`` picks ``(alpha, beta, gamma)`` on the constraint by
   validation score (training seed 0);
3. four families are scaled to the same latency budgets ``T * 2^k``
   (``T`` the median LUT latency of the space, ``k`` from -2 to 1): compound
   (the grid's choice), depth only ``(2, 1, 1)``, width only ``(1, sqrt 2, 1)``,
   lookback only ``(1, 1, 2)``; for each budget the largest quarter-step
   ``phi`` whose LUT latency fits. Every member is trained with ``--seeds``
   training seeds; its score is the mean validation score.

Printed (and written to ``benchmarks/results/scaling.txt`` / ``.json``): per base and
family, the members (phi, LUT µs, MFLOPs, mean score and spread over seeds), the
hypervolume of the front (``-score``, ``LAT / T_max``) with reference
``(0, 1)``, and at each budget compound's score minus the best single
dimension's, with the seeds' spread, so a reader sees whether compound scaling
dominates here. Test scores are kept apart and never used to select.

    PYTHONPATH=. HWNAS_BYBIT_DIR=../shared/data/bybit .venv/bin/python benchmarks/bench_scaling.py --bases 3 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hwnas  # noqa: E402
from hwnas.architecture import CONV_OPS  # noqa: E402
from hwnas.fileio import check_writable, write_text_atomic  # noqa: E402
from hwnas.hardware import HardwareProfile  # noqa: E402
from hwnas.latency import TimingSpec, extend_profile  # noqa: E402
from hwnas.search import Evaluator  # noqa: E402
from hwnas.search.scaling import PHI_LADDER, scaling_grid  # noqa: E402
from hwnas.search.scaling_rule import compound_scale, constraint_kind, flops_growth  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SINGLE = {"depth": (2.0, 1.0, 1.0), "width": (1.0, math.sqrt(2.0), 1.0), "lookback": (1.0, 1.0, 2.0)}


def pick_bases(space: hwnas.SearchSpace, profile: HardwareProfile, budget: float, n: int,
               seed: int = 0) -> list[hwnas.Architecture]:
    """``n`` random models of ``space`` with lookback 32, two or more convolutions, conv-dominated
    FLOPs and LUT latency <= T/4 (room to scale up)."""
    rng = np.random.default_rng(seed)
    bases: list[hwnas.Architecture] = []
    while len(bases) < n:
        arch = space.sample(rng)
        convs = sum(layer.op in CONV_OPS for layer in arch.layers)
        if (arch.lookback == 32 and constraint_kind(arch) == "conv" and convs >= 2
                and profile.predict_latency(arch) <= budget / 4):
            bases.append(arch)
    return bases


def flops_check(base: hwnas.Architecture, coeffs: Sequence[float], max_lookback: int) -> list[dict[str, float]]:
    """Measured FLOPs ratio of the family against the cost model and 2^phi."""
    rows = []
    for phi in (-1.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        scaled = compound_scale(base, phi, *coeffs, max_lookback=max_lookback)
        d, w, r = (c**phi for c in coeffs)
        rows.append({"phi": phi, "measured": hwnas.count_flops(scaled) / hwnas.count_flops(base),
                     "model": flops_growth(base, d, w, r), "two_to_phi": 2.0**phi,
                     "lookback": scaled.lookback, "capped": scaled.lookback == max_lookback})
    return rows


def family(base: hwnas.Architecture, coeffs: Sequence[float], profile: HardwareProfile,
           budgets: Sequence[float], max_lookback: int) -> list[tuple[float, float, hwnas.Architecture]]:
    """(budget, phi, arch): for each budget the largest ladder phi whose LUT latency fits."""
    options = []
    for phi in PHI_LADDER:
        try:
            options.append((phi, compound_scale(base, phi, *coeffs, max_lookback=max_lookback)))
        except ValueError:
            continue
    extend_profile(profile, [a for _, a in options], timing=TimingSpec.QUICK, in_place=True)
    out = []
    for budget in budgets:
        fits = [(phi, a) for phi, a in options if profile.predict_latency(a) <= budget]
        if fits:  # the largest phi that fits; the smallest phi giving that same model (saturation)
            phi, arch = max(fits, key=lambda pa: pa[0])
            out.append((budget, min(p for p, a in fits if a == arch), arch))
    return out


def score_members(members, task, profile, seeds: int, cache: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for budget, phi, arch in members:
        key = arch.to_json()
        if key not in cache:
            runs = [Evaluator(task, profile, seed=s)(arch) for s in range(seeds)]
            scores = [m.score for m in runs]
            cache[key] = {"scores": scores, "test": [m.test_scores.get("pearson", math.nan) for m in runs],
                          "latency_us": runs[0].latency_us, "mflops": runs[0].flops / 1e6,
                          "seconds": sum(m.seconds for m in runs)}
        entry = cache[key]
        rows.append({"budget_us": budget, "phi": phi, "depth": arch.depth, "lookback": arch.lookback,
                     "stem_width": arch.layers[0].out_channels, **entry,
                     "mean": float(np.mean(entry["scores"])), "std": float(np.std(entry["scores"], ddof=1))
                     if len(entry["scores"]) > 1 else 0.0})
    return rows


def front_hv(rows: list[dict[str, Any]], t_max: float) -> float:
    points = [(-r["mean"], r["latency_us"] / t_max) for r in rows if r["mean"] > 0 and r["latency_us"] < t_max]
    return hwnas.hypervolume(np.array(points), [0.0, 1.0]) if points else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bases", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per model")
    parser.add_argument("--step", type=float, default=0.2, help="grid step of beta and gamma")
    parser.add_argument("--profile", type=Path, default=RESULTS / "search_profile_cpu_1thread.json")
    parser.add_argument("--out", type=Path, default=RESULTS / "scaling")
    args = parser.parse_args(argv)
    for suffix in (".txt", ".json"):
        check_writable(args.out.with_suffix(suffix), "--out")
    start = time.perf_counter()
    data = hwnas.load_klines("BTCUSDT", "15")
    space = hwnas.SearchSpace.default(input_features=10)
    task, source = hwnas.search.default_task(space, progress=False)
    if args.profile.exists():
        profile = HardwareProfile.load(args.profile)
    else:
        print(f"measuring the 1-thread CPU profile (saved to {args.profile}) ...", flush=True)
        profile = hwnas.profile_cpu(space, threads=1, progress=False)
        profile.save(args.profile)
    rng = np.random.default_rng(0)
    t_mid = float(np.median([profile.predict_latency(space.sample(rng)) for _ in range(200)]))
    budgets = [t_mid * 2.0**k for k in (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0)]
    lines = [data.summary(), f"task: {task.describe()}", f"profile: {profile.label}",
             f"T (median LUT latency of 200 random models) = {t_mid:.1f} µs; budgets "
             + ", ".join(f"{b:.0f}" for b in budgets) + " µs",
             f"load average at start: {os.getloadavg()}", ""]
    print("\n".join(lines), flush=True)
    report: dict[str, Any] = {"settings": {"data": data.description, "source": source, "profile": profile.label,
                                           "T_us": t_mid, "budgets_us": budgets, "seeds": args.seeds,
                                           "step": args.step, "load_average_start": os.getloadavg()},
                              "bases": []}
    cache: dict[str, dict[str, Any]] = {}
    for b, base in enumerate(pick_bases(space, profile, t_mid, args.bases)):
        grid = scaling_grid(base, task, profile, step=args.step, phis=(),
                            evaluator=lambda a, p: Evaluator(task, p, seed=0)(a))
        profile = grid.profile  # extended with the keys of the grid's models
        entry: dict[str, Any] = {"base": base.to_dict(), "describe": base.describe(), "kind": grid.kind,
                                 "grid": grid.table(), "best": list(grid.best),
                                 "flops_check": flops_check(base, grid.best, task.lookback), "families": {}}
        out = [f"== base {b}: {base.describe()}",
               f"grid ({len(grid.grid)} points, {grid.evaluations} models, seed 0): best alpha, beta, gamma = "
               + ", ".join(f"{c:.3f}" for c in grid.best), "FLOPs growth of the compound family "
               "(measured / cost model / 2^phi):"]
        out += [f"  phi {r['phi']:+.1f}: {r['measured']:.3f} / {r['model']:.3f} / {r['two_to_phi']:.3f}"
                + (" (lookback capped)" if r["capped"] else "") for r in entry["flops_check"]]
        methods = {"compound": grid.best, **SINGLE}
        for name, coeffs in methods.items():
            rows = score_members(family(base, coeffs, profile, budgets, task.lookback), task, profile,
                                 args.seeds, cache)
            hv = front_hv(rows, budgets[-1])
            entry["families"][name] = {"coefficients": list(coeffs), "members": rows, "hypervolume": hv}
            out.append(f"{name:<9} HV {hv:.4f}: " + "; ".join(
                f"T{r['budget_us']:.0f} phi {r['phi']:+.2f} {r['latency_us']:.0f}µs {r['mean']:+.4f}±{r['std']:.4f}"
                for r in rows))
        out.append("compound minus the best single dimension at each budget (mean over seeds):")
        for budget in budgets:
            comp = [r for r in entry["families"]["compound"]["members"] if r["budget_us"] == budget]
            singles = [r for name in SINGLE for r in entry["families"][name]["members"] if r["budget_us"] == budget]
            if comp and singles:
                best = max(singles, key=lambda r: r["mean"])
                out.append(f"  T {budget:7.0f} µs: {comp[0]['mean'] - best['mean']:+.4f} "
                           f"(seed spread {comp[0]['std']:.4f} / {best['std']:.4f})")
        print("\n".join(out), flush=True)
        lines += out + [""]
        report["bases"].append(entry)
        report["seconds"] = time.perf_counter() - start
        report["load_average_end"] = os.getloadavg()
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(report, indent=1, default=str))
        write_text_atomic(args.out.with_suffix(".txt"), "\n".join(lines))
    wins = {name: sum(e["families"]["compound"]["hypervolume"] >= e["families"][name]["hypervolume"]
                      for e in report["bases"]) for name in SINGLE}
    verdict = (f"compound HV >= single-dimension HV on {wins} of {len(report['bases'])} bases; "
               f"{time.perf_counter() - start:.0f} s, load average at end {os.getloadavg()}")
    print(verdict)
    lines.append(verdict)
    report["verdict"] = verdict
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(report, indent=1, default=str))
    write_text_atomic(args.out.with_suffix(".txt"), "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
