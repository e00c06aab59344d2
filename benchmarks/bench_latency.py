"""Fidelity of the CPU latency lookup table against whole-model measurements.

Builds the LUT of a search space on this CPU (timing how long that takes and
counting the distinct OpSpecs), measures ``--archs`` random architectures of the
space end to end with the same harness, and prints the LUT predictor's figures
beside a FLOPs-only baseline (affine ``a + b*FLOPs``, cross-fitted on
interleaved halves so every prediction is out of sample):

* acc10: share of architectures predicted within +-10% (nn-Meter's metric),
* Spearman rank correlation, MAPE, median predicted/measured ratio,

for each estimator of the table (median, best pass median, min), all from one
run. Targets (default space, batch 1): acc10 >= 95%, Spearman >= 0.98, LUT
build < 2 minutes.

By default (``--mode side-by-side``) the validation models are timed inside the
same passes as the table, so prediction and measurement see the same machine
conditions (the models never feed the table). ``--mode after`` times them after
the build, as a table would be used later.

Run on a quiet machine:

    PYTHONPATH=. .venv/bin/python benchmarks/bench_latency.py --archs 200 --threads 1 --seed 0 --out results.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas.fileio import check_writable, write_text_atomic  # noqa: E402
from hwnas.latency import (  # noqa: E402
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    TimingSpec,
    build_lut_detailed,
    measure_models,
    peak_flops_measured,
    validate,
)
from hwnas.opspec import arch_op_specs  # noqa: E402
from hwnas.space import SearchSpace  # noqa: E402

TARGET_ACC10 = 0.95
TARGET_SPEARMAN = 0.98
TARGET_BUILD_S = 120.0


def repeatability(first: list, second: list, estimator: str) -> float:
    """Share of models whose two independent timings agree within ±10%."""
    a = np.array([t.estimate(estimator) for t in first])
    b = np.array([t.estimate(estimator) for t in second])
    return float(np.mean(np.abs(b / a - 1) <= 0.10))


def worst_cases(report, archs, k: int = 5) -> list[str]:
    """The ``k`` architectures with the largest relative error, described briefly."""
    err = report.predicted_us / report.measured_us - 1
    lines = []
    for i in np.argsort(-np.abs(err))[:k]:
        ops = " ".join(f"{key.op}{'+s' if key.use_skip else ''}" for key in arch_op_specs(archs[i]))
        lines.append(f"  {err[i]:+6.1%}  measured {report.measured_us[i]:8.1f} µs  L={archs[i].lookback:<4} {ops}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=200, help="random architectures to validate on")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the edge/trading case)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation architectures")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--space", default="default", help="default, mobile, fpga or gpu")
    parser.add_argument("--passes", type=int, default=8, help="shuffled passes over the table")
    parser.add_argument("--target-ms", type=float, default=12.0, help="timed ms per table entry")
    parser.add_argument("--estimator", default=DEFAULT_ESTIMATOR, choices=ESTIMATORS,
                        help="the estimator whose per-arch arrays go to the JSON")
    parser.add_argument("--mode", default="side-by-side", choices=("side-by-side", "after"))
    parser.add_argument("--out", type=Path, default=None, help="write the results JSON here (atomically)")
    parser.add_argument("--profile-out", type=Path, default=None, help="also save the profile JSON here")
    parser.add_argument("--runtime", default="eager", help="what runs every op and model: eager or onnxruntime")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.archs < 4:
        parser.error("--archs must be >= 4")
    for path, option in ((args.out, "--out"), (args.profile_out, "--profile-out")):
        if path is not None:
            check_writable(path, option)

    space = SearchSpace.named(args.space)
    rng = np.random.default_rng(10_000 + args.seed)
    archs = [space.sample(rng) for _ in range(args.archs)]
    side = args.mode == "side-by-side"

    spec = TimingSpec.TABLE.replace(passes=args.passes, target_ms=args.target_ms, estimator=args.estimator,
                                    seed=args.seed)
    wall = time.perf_counter()
    build = build_lut_detailed(
        space, threads=args.threads, batch=args.batch, progress=not args.quiet, timing=spec,
        # each validation model is timed twice, as two independent entries of the same
        # passes: the second timing against the first is the noise floor of any predictor
        validation=archs + archs if side else (), runtime=args.runtime,
    )
    timings = build.validation_timings[: len(archs)]
    repeats = build.validation_timings[len(archs):]
    if not side:
        timings = measure_models(archs, args.threads, args.batch, progress=not args.quiet, runtime=args.runtime,
                                 timing=spec.replace(target_ms=4 * args.target_ms))
    peak = peak_flops_measured(args.threads)
    wall = time.perf_counter() - wall

    reports = {}
    for estimator in ESTIMATORS:
        profile = build.profile(estimator=estimator, peak_flops=peak)
        reports[estimator] = (profile, validate(profile, archs, timings=timings, runtime=args.runtime,
                                                timing=spec.replace(estimator=estimator)))

    c = build.conditions
    print(f"hwnas latency LUT fidelity — space {space.name!r}, batch {args.batch}, threads {args.threads}, "
          f"runtime {c.get('runtime')} ({c.get('runtime_version')})")
    print(f"CPU: {c['cpu_model']} ({c['cpu_count']} logical), torch {c['torch_version']}, "
          f"load avg {c['load_avg_1min_start']} -> {c['load_avg_1min_end']}")
    print(f"distinct OpSpecs: {c['distinct_opspecs']}  (+ {c['calibration_archs']} calibration models)")
    print(f"LUT build: {build.seconds:.1f} s  (target < {TARGET_BUILD_S:.0f} s: "
          f"{'PASS' if build.seconds < TARGET_BUILD_S else 'FAIL'}); {build.timing.describe()}; validation models "
          f"{'timed in the same passes' if side else 'timed after the build'}"
          f" ({c['validation_seconds'] if side else 'apart'} s); total wall {wall:.1f} s")
    print(f"peak FLOP/s (512x512 matmul): {peak / 1e9:.1f} GFLOP/s")
    print()
    header = f"{'':24}" + "".join(f"{e:>14}" for e in ESTIMATORS)
    print(f"{args.archs} architectures; LUT predictor (overhead + sum of entries)")
    print(header)
    rows = [
        ("acc10 (±10%)", lambda r: f"{r.acc10:.1%}"),
        ("acc5 (±5%)", lambda r: f"{r.acc(0.05):.1%}"),
        ("Spearman rho", lambda r: f"{r.spearman:.4f}"),
        ("MAPE", lambda r: f"{r.mape:.2%}"),
        ("median pred/meas", lambda r: f"{1 + r.bias:.3f}"),
        ("overhead (µs)", None),
        ("median measured (µs)", lambda r: f"{np.median(r.measured_us):.1f}"),
        ("repeatability acc10", "repeat"),
    ]
    for label, fmt in rows:
        if fmt is None:
            cells = [f"{reports[e][0].overhead_latency(args.batch):.1f}" for e in ESTIMATORS]
        elif fmt == "repeat":
            cells = [f"{repeatability(timings, repeats, e):.1%}" if repeats else "-" for e in ESTIMATORS]
        else:
            cells = [fmt(reports[e][1]) for e in ESTIMATORS]
        print(f"{label:24}" + "".join(f"{v:>14}" for v in cells))
    print("FLOPs-only baseline (a + b·FLOPs, cross-fitted halves)")
    for label, fmt in [
        ("acc10 (±10%)", lambda r: f"{r.baseline_acc10:.1%}"),
        ("Spearman rho", lambda r: f"{r.baseline_spearman:.4f}"),
        ("MAPE", lambda r: f"{r.baseline_mape:.2%}"),
    ]:
        print(f"{label:24}" + "".join(f"{fmt(reports[e][1]):>14}" for e in ESTIMATORS))
    if repeats:
        print("(repeatability: share of models whose second timing, in the same passes, is within ±10%\n"
              " of the first: the noise floor that bounds any predictor's acc10 on this machine now)")
    main_report = reports[args.estimator][1]
    ok = main_report.acc10 >= TARGET_ACC10 and main_report.spearman >= TARGET_SPEARMAN
    print()
    print(f"targets ({args.estimator}): acc10 {main_report.acc10:.1%} (>= {TARGET_ACC10:.0%}), "
          f"Spearman {main_report.spearman:.4f} (>= {TARGET_SPEARMAN}): {'PASS' if ok else 'FAIL'}")
    overhead = reports[args.estimator][0].overhead_latency(args.batch)
    sums = main_report.predicted_us - overhead
    (a, b), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(sums), sums]), main_report.measured_us, rcond=None)
    print(f"diagnostic: measured ≈ {a:.1f} µs + {b:.3f} × (sum of entries) over these models "
          f"(calibrated overhead {overhead:.1f} µs; a slope far from 1 means a proportional bias)")
    spread = np.median([max(t.burst_medians_us) / min(t.burst_medians_us) for t in timings])
    print(f"noise: median over models of (slowest / fastest pass median) = {spread:.2f} "
          f"(about 1.05 on a quiet machine)")
    print("largest errors:")
    print("\n".join(worst_cases(main_report, archs)))

    if args.out is not None:
        write_text_atomic(args.out, json.dumps({
            "command": " ".join(sys.argv),
            "space": space.name,
            "archs": args.archs,
            "threads": args.threads,
            "batch": args.batch,
            "seed": args.seed,
            "mode": args.mode,
            "build_seconds": build.seconds,
            "distinct_opspecs": c["distinct_opspecs"],
            "peak_flops": peak,
            "conditions": c,
            "figures": {e: reports[e][1].figures() for e in ESTIMATORS},
            "overhead_us": {e: reports[e][0].overhead_latency(args.batch) for e in ESTIMATORS},
            "estimator": args.estimator,
            "per_arch": main_report.to_dict(),
            "architectures": [a.to_dict() for a in archs],
        }, indent=1))
        print(f"wrote {args.out}")
    if args.profile_out is not None:
        reports[args.estimator][0].save(args.profile_out)
        print(f"wrote {args.profile_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
