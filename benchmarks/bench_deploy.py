"""ONNX Runtime against eager PyTorch, and the fidelity of a latency table built in ONNX Runtime.

1. Builds the lookup table of a search space in ONNX Runtime (1 thread, batch
   1; the same round-robin harness and whole-model calibration as the eager
   table), with ``--archs`` random validation architectures timed inside the
   same passes; saves the profile, loads it back and checks that the runtime
   and its version are in its conditions.
2. Fidelity of that table (acc10, Spearman, MAPE) beside a FLOPs-only
   baseline. The build takes the runtime's fixed per-call cost (an identity
   graph's fastest call, timed in the same passes) off every entry before the
   calibration: each entry pays that cost once, a whole model only once too, so
   summing raw entries would count it once per layer. The table without that
   correction is shown beside it.
3. The same architectures in eager PyTorch and in ONNX Runtime, timed side
   by side in one round-robin run: speed-ups, the rank correlation of the two
   latencies, and how much of the eager Pareto front (latency against
   parameter count, a stand-in for capacity: no training here) stays on the
   ONNX Runtime front.

Targets (default space): acc10 >= 95%, Spearman >= 0.98, build < 5 minutes.
Run on a quiet machine:

    PYTHONPATH=. .venv/bin/python benchmarks/bench_deploy.py --archs 200 --threads 1 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas.cost import count_params  # noqa: E402
from hwnas.deploy.runtimes import OnnxRuntime  # noqa: E402
from hwnas.fileio import write_text_atomic  # noqa: E402
from hwnas.hardware import HardwareProfile  # noqa: E402
from hwnas.latency import TimingSpec, build_lut_detailed, time_round_robin, validate  # noqa: E402
from hwnas.latency.lut import model_callable  # noqa: E402
from hwnas.pareto import pareto_front  # noqa: E402
from hwnas.runtime import get_runtime  # noqa: E402
from hwnas.space import SearchSpace  # noqa: E402

TARGET_ACC10 = 0.95
TARGET_SPEARMAN = 0.98
TARGET_BUILD_S = 300.0
RESULTS = Path(__file__).resolve().parent / "results"


def load() -> float:
    return round(os.getloadavg()[0], 2)


def fidelity_lines(name: str, report) -> list[str]:
    return [f"{name:<34}{100 * report.acc10:>7.1f}%{report.spearman:>10.4f}{100 * report.mape:>8.2f}%"
            f"{float(np.median(report.predicted_us / report.measured_us)):>9.3f}"]


def per_call_added_back(build):
    """The build as it would be without the per-call correction: the runtime's
    fixed per-call cost added back to every entry's fastest call."""
    timings = {k: replace(t, min_us=t.min_us + build.per_call_us) for k, t in build.timings.items()}
    return replace(build, timings=timings, per_call_us=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="default")
    parser.add_argument("--small", action="store_true",
                        help="a reduced space (lookback 32, width 16, kernel 3, depth 2-3): a smoke test")
    parser.add_argument("--archs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--passes", type=int, default=8)
    parser.add_argument("--calibration", type=int, default=128)
    parser.add_argument("--out", default=str(RESULTS / "deploy_onnxruntime_default_1thread"),
                        help="output stem: writes STEM.txt and STEM.json")
    parser.add_argument("--profile-out", default=None,
                        help="where to save the ONNX Runtime profile (default: a temporary folder)")
    args = parser.parse_args()
    stem = Path(args.out)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    space = SearchSpace.named(args.space)
    if args.small:
        space = SearchSpace.named(args.space, lookbacks=(32,), widths=(16,), kernel_sizes=(3,), depths=(2, 3))
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.archs)]
    ort_rt = OnnxRuntime(args.threads)
    load_start = load()
    say(f"hwnas deployment benchmark - space {space.name!r}, batch 1, threads {args.threads}, "
        f"{ort_rt.version()}")
    say(f"CPU count {os.cpu_count()}, load average at start {load_start}")

    # 1. the table, in ONNX Runtime
    start = time.perf_counter()
    build = build_lut_detailed(space, args.threads, 1, progress=False,
                               timing=TimingSpec.TABLE.replace(passes=args.passes, seed=args.seed),
                               calibration=args.calibration, validation=archs, runtime=ort_rt)
    wall = time.perf_counter() - start
    profile = build.profile(f"cpu-{args.threads}thread-b1-onnxruntime")
    folder = Path(tempfile.mkdtemp(prefix="bench_deploy_"))
    saved = profile.save(Path(args.profile_out) if args.profile_out else folder / "profile_onnxruntime.json")
    loaded = HardwareProfile.load(saved)
    build_s = build.conditions["build_seconds"]
    say(f"distinct OpSpecs {build.conditions['distinct_opspecs']} (+ {len(build.calibration)} calibration models)")
    say(f"table build {build_s:.1f} s (target < {TARGET_BUILD_S:.0f} s: "
        f"{'PASS' if build_s < TARGET_BUILD_S else 'FAIL'}); validation models in the same passes "
        f"{build.conditions['validation_seconds']:.1f} s; wall {wall:.1f} s")
    say(f"saved and reloaded {saved.name}: runtime {loaded.conditions.get('runtime')!r}, "
        f"version {loaded.conditions.get('runtime_version')!r}")

    # 2. fidelity, as built (the per-call cost off every entry) and without that correction
    null_us = build.per_call_us
    uncorrected = per_call_added_back(build).profile(f"cpu-{args.threads}thread-b1-onnxruntime-raw")
    as_built = validate(loaded, archs, timings=build.validation_timings)
    raw = validate(uncorrected, archs, timings=build.validation_timings)
    say()
    say(f"{len(archs)} architectures; estimator min; ONNX Runtime per-call cost (identity graph, "
        f"timed in the same passes, taken off every entry) {null_us:.2f} µs")
    say(f"{'predictor':<34}{'acc10':>8}{'Spearman':>10}{'MAPE':>9}{'pred/meas':>9}")
    lines_ = fidelity_lines("LUT as built (per-call cost off)", as_built)
    lines_ += fidelity_lines("LUT without that correction", raw)
    lines_ += [f"{'FLOPs-only baseline (a + b FLOPs)':<34}{100 * as_built.baseline_acc10:>7.1f}%"
               f"{as_built.baseline_spearman:>10.4f}{100 * as_built.baseline_mape:>8.2f}%"]
    for text in lines_:
        say(text)
    for name, report in (("as built", as_built), ("without the correction", raw)):
        ok = report.acc10 >= TARGET_ACC10 and report.spearman >= TARGET_SPEARMAN
        say(f"targets ({name}): acc10 {100 * report.acc10:.1f}% (>= 95%), Spearman {report.spearman:.4f} "
            f"(>= 0.98): {'PASS' if ok else 'FAIL'}")
    say(f"calibration (as built): {profile.conditions.get('overhead_calibration')}")
    say(f"calibration (without the correction): {uncorrected.conditions.get('overhead_calibration')}")

    # 3. eager against ONNX Runtime, side by side
    eager_rt = get_runtime("eager", args.threads)
    callables = {}
    for i, arch in enumerate(archs):
        callables[("eager", i)] = model_callable(arch, 1, args.seed, eager_rt)
        callables[("ort", i)] = model_callable(arch, 1, args.seed, ort_rt)
    timings = time_round_robin(callables, threads=args.threads,
                               timing=TimingSpec.COMPARE.replace(target_ms=24.0, seed=args.seed))
    eager = np.array([timings[("eager", i)].min_us for i in range(len(archs))])
    ort = np.array([timings[("ort", i)].min_us for i in range(len(archs))])
    speedup = eager / ort
    rho = float(stats.spearmanr(eager, ort)[0])
    params = np.array([count_params(a) for a in archs], dtype=float)
    front_eager = set(pareto_front(np.c_[eager, -params]).tolist())
    front_ort = set(pareto_front(np.c_[ort, -params]).tolist())
    kept = len(front_eager & front_ort)
    pairs = np.sign(eager[:, None] - eager[None, :]) != np.sign(ort[:, None] - ort[None, :])
    flipped = float(pairs[np.triu_indices(len(archs), 1)].mean())
    say()
    say("eager PyTorch against ONNX Runtime (fastest call, same models, one round-robin run)")
    say(f"eager median {np.median(eager):.1f} µs (range {eager.min():.1f}-{eager.max():.1f}); "
        f"ONNX Runtime median {np.median(ort):.1f} µs (range {ort.min():.1f}-{ort.max():.1f})")
    say(f"speed-up median {np.median(speedup):.2f}x, p10 {np.percentile(speedup, 10):.2f}x, "
        f"p90 {np.percentile(speedup, 90):.2f}x, range {speedup.min():.2f}-{speedup.max():.2f}x")
    say(f"Spearman rank correlation eager vs ONNX Runtime: {rho:.4f}; pairs whose order flips: "
        f"{100 * flipped:.1f}%")
    say(f"Pareto front (latency vs parameter count): eager {len(front_eager)} models, ONNX Runtime "
        f"{len(front_ort)}; {kept} of the eager front ({100 * kept / len(front_eager):.0f}%) stay on the "
        f"ONNX Runtime front")
    load_end = load()
    say(f"load average at end {load_end} (shared machine: other processes inflate and scatter timings)")

    write_text_atomic(Path(f"{stem}.txt"), "\n".join(lines) + "\n")
    result = {
        "space": space.name, "threads": args.threads, "archs": len(archs), "runtime": ort_rt.version(),
        "load_avg": [load_start, load_end], "build_seconds": build_s, "conditions": build.conditions,
        "null_call_us": null_us, "fidelity_as_built": as_built.figures(), "fidelity_uncorrected": raw.figures(),
        "eager_us": eager.tolist(), "onnxruntime_us": ort.tolist(), "spearman_eager_vs_ort": rho,
        "flipped_pairs": flipped, "pareto_eager": sorted(front_eager), "pareto_ort": sorted(front_ort),
        "pareto_kept": kept, "predicted_us": as_built.predicted_us.tolist(),
        "predicted_uncorrected_us": raw.predicted_us.tolist(), "measured_us": as_built.measured_us.tolist(),
    }
    write_text_atomic(Path(f"{stem}.json"), json.dumps(result, indent=1) + "\n")
    print(f"wrote {stem}.txt, {stem}.json, {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
