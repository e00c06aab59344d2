"""How long does one proxy evaluation take? (target: median under 1 s on 2 cores)

Builds the proxy task once on the recorded Bybit BTCUSDT 15-minute candles (about
28,000 candles, 27,800 windows of up to 128 steps), then times ``evaluate`` on
random candidates of ``SearchSpace.default``: "typical" ones with lookback 64 (the
requirement) and ones drawn from the whole space (lookbacks 32/64/128), a few
repeats each, side by side with 1 and 2 threads. Prints medians of wall-clock
time and of process CPU time: on a shared machine the wall time is inflated by
other people's work, while the CPU time of a single-threaded run is close to
what an idle core would take. The load average is printed with the figures.

    HWNAS_BYBIT_DIR=../shared/data/bybit HWNAS_OFFLINE=1 python benchmarks/bench_proxy.py
    python benchmarks/bench_proxy.py --candidates 6 --repeats 2     # quicker
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas import SearchSpace, count_flops  # noqa: E402
from hwnas.data import load_klines  # noqa: E402
from hwnas.proxy import evaluate, make_proxy_task  # noqa: E402


def time_one(arch, task, repeats: int) -> tuple[float, float, float, float]:
    """Median wall s, median CPU s, median training wall s, the score (same every repeat)."""
    walls, cpus, trains, score = [], [], [], float("nan")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = evaluate(arch, task, seed=0)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        trains.append(result.train_seconds)
        score = result.score
    return statistics.median(walls), statistics.median(cpus), statistics.median(trains), score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the candidate sampler")
    args = parser.parse_args(argv)

    data = load_klines("BTCUSDT", "15")
    print(data.summary())
    t0 = time.perf_counter()
    task = make_proxy_task(data.frame)
    print(f"task built in {time.perf_counter() - t0:.2f} s")
    print(task.summary())
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")

    F = task.num_features
    groups = {
        "typical (lookback 64)": SearchSpace.default(input_features=F, lookbacks=(64,)),
        "whole default space": SearchSpace.default(input_features=F),
    }
    summary = []
    for label, space in groups.items():
        rng = np.random.default_rng(args.seed)
        archs = [space.sample(rng) for _ in range(args.candidates)]
        for threads in (1, 2):
            for target in ("volatility", "direction"):
                t = replace(task, num_threads=threads, target=target)
                rows = [time_one(a, t, args.repeats) for a in archs]
                walls, cpus, trains = ([r[i] for r in rows] for i in range(3))
                summary.append((label, threads, target, statistics.median(walls),
                                statistics.median(cpus), statistics.median(trains)))
                if threads == 1 and target == "volatility":
                    print(f"{label}, 1 thread, volatility: per candidate (median of {args.repeats})")
                    print(f"  {'MFLOPs':>7} {'lookback':>8} {'wall s':>7} {'cpu s':>6} {'train s':>7}  score")
                    for a, (w, c, tr, s) in zip(archs, rows):
                        print(f"  {count_flops(a) / 1e6:7.2f} {a.lookback:8d} {w:7.2f} {c:6.2f} {tr:7.2f}  {s:+.3f}")
                print(f"  -> {label:<22} threads {threads} {target:<10} median wall {statistics.median(walls):.2f} s, "
                      f"cpu {statistics.median(cpus):.2f} s, training {statistics.median(trains):.2f} s",
                      flush=True)
    print(f"\nmedians over {args.candidates} candidates x {args.repeats} repeats "
          f"(load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}):")
    print(f"{'candidates':<24}{'threads':>8}{'target':>12}{'wall s':>8}{'cpu s':>7}{'train s':>9}")
    for label, threads, target, w, c, tr in summary:
        print(f"{label:<24}{threads:>8}{target:>12}{w:>8.2f}{c:>7.2f}{tr:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
