"""The recurrent and gated operations against a convolution, layer by layer, in eager PyTorch and ONNX Runtime.

For widths 16/32/64 (in = out) and input lengths 32/64/128, four lookup-table keys
as the tables time them (``hwnas.latency.op_module``: exactly the model's modules):
``conv`` k5 + ReLU, ``gated_tcn`` k3, ``gru`` and ``lstm``; each in eager PyTorch and
in ONNX Runtime (one fused GRU/LSTM node), 1 thread, batch 1, all timed side by side
in one round-robin run per seed (``TimingSpec.COMPARE``, fastest call). Prints, per
shape, the median over seeds of each fastest call with the seeds' range, the time
ratios to the convolution, and the cost per step of the recurrent layers (least-squares
slope of time against length). Writes ``results/recurrent_ops.txt`` and ``.json``
after every seed (partial results survive an interruption).

There is no target: the figures say what a recurrent layer costs on this machine,
beside a convolution of similar FLOPs.

    PYTHONPATH=. nice -n 5 .venv/bin/python benchmarks/bench_recurrent_ops.py --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas.fileio import write_text_atomic  # noqa: E402
from hwnas.hardware import cpu_model  # noqa: E402
from hwnas.latency import TimingSpec, op_module, time_round_robin  # noqa: E402
from hwnas.opspec import OpSpec  # noqa: E402
from hwnas.runtime import get_runtime  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WIDTHS = (16, 32, 64)
LENGTHS = (32, 64, 128)
RUNTIMES = ("eager", "onnxruntime")


def keys(width: int, length: int) -> dict[str, OpSpec]:
    """The four keys of one shape."""
    return {
        "conv k5": OpSpec("conv", width, width, length, kernel_size=5, activation="relu"),
        "gated_tcn k3": OpSpec("gated_tcn", width, width, length, kernel_size=3),
        "gru": OpSpec("gru", width, width, length),
        "lstm": OpSpec("lstm", width, width, length),
    }


def report(samples: dict[str, list[float]], conditions: dict) -> tuple[str, dict]:
    """The text and JSON of the seeds measured so far."""
    lines = [__doc__.splitlines()[0], "",
             f"measured on a shared, loaded machine: {conditions['cpu_model']}, {conditions['cpu_count']} cores, "
             f"load {conditions['load_start']} -> {conditions['load_now']} (1-min average), "
             f"{conditions['seeds_done']} seed(s), fastest call per seed, median [min, max] over seeds, µs", ""]
    header = f"{'shape':<14}{'op':<14}" + "".join(f"{r:>26}" for r in RUNTIMES) + f"{'FLOPs':>11}"
    lines.append(header)
    figures: dict = {"per_key": {}, "ratio_to_conv": {}, "us_per_step": {}}
    for width in WIDTHS:
        for length in LENGTHS:
            shape = f"w{width} L{length}"
            for op, key in keys(width, length).items():
                cells = []
                for runtime in RUNTIMES:
                    values = samples[f"{shape}|{op}|{runtime}"]
                    med = float(np.median(values))
                    figures["per_key"][f"{shape}|{op}|{runtime}"] = {"median_us": med, "min_us": min(values),
                                                                    "max_us": max(values), "seeds": len(values)}
                    cells.append(f"{med:>10.1f} [{min(values):.1f}, {max(values):.1f}]".rjust(26))
                lines.append(f"{shape:<14}{op:<14}" + "".join(cells) + f"{key.flops:>11,}")
    lines += ["", "time / conv k5 of the same shape (medians)"]
    for runtime in RUNTIMES:
        for op in ("gated_tcn k3", "gru", "lstm"):
            ratios = [figures["per_key"][f"w{w} L{n}|{op}|{runtime}"]["median_us"]
                      / figures["per_key"][f"w{w} L{n}|conv k5|{runtime}"]["median_us"]
                      for w in WIDTHS for n in LENGTHS]
            figures["ratio_to_conv"][f"{op}|{runtime}"] = {"median": float(np.median(ratios)),
                                                           "min": min(ratios), "max": max(ratios)}
            lines.append(f"  {runtime:<12} {op:<13} median {np.median(ratios):6.2f}  "
                         f"range [{min(ratios):.2f}, {max(ratios):.2f}] over the {len(ratios)} shapes")
    lines += ["", "cost per step of the recurrent layers: slope of time against length (µs per step)"]
    for runtime in RUNTIMES:
        for op in ("gru", "lstm"):
            for width in WIDTHS:
                times = [figures["per_key"][f"w{width} L{n}|{op}|{runtime}"]["median_us"] for n in LENGTHS]
                slope = float(np.polyfit(LENGTHS, times, 1)[0])
                figures["us_per_step"][f"{op}|w{width}|{runtime}"] = slope
                lines.append(f"  {runtime:<12} {op:<5} w{width:<3} {slope:8.2f} µs per step")
    return "\n".join(lines) + "\n", {"conditions": conditions, "figures": figures, "samples_us": samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if args.seeds < 1:
        print("--seeds must be >= 1", file=sys.stderr)
        return 2
    runtimes = {name: get_runtime(name, threads=1) for name in RUNTIMES}
    callables = {}
    for width in WIDTHS:
        for length in LENGTHS:
            for op, key in keys(width, length).items():
                module, inputs = op_module(key, seed=0)
                for name, runtime in runtimes.items():
                    callables[f"w{width} L{length}|{op}|{name}"] = runtime.prepare(module, inputs)
    conditions = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
                  "python": platform.python_version(), "torch": runtimes["eager"].version(),
                  "onnxruntime": runtimes["onnxruntime"].version(), "threads": 1, "batch": 1,
                  "timing": TimingSpec.COMPARE.describe(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "load_start": round(os.getloadavg()[0], 2),
                  "note": "measured on a shared, loaded machine (about 7 other jobs on 2 cores)"}
    samples: dict[str, list[float]] = {name: [] for name in callables}
    start = time.perf_counter()
    for seed in range(args.seeds):
        timings = time_round_robin(callables, timing=TimingSpec.COMPARE.replace(seed=seed))
        for name, timing in timings.items():
            samples[name].append(timing.min_us)
        conditions.update(seeds_done=seed + 1, load_now=round(os.getloadavg()[0], 2),
                          wall_seconds=round(time.perf_counter() - start, 1))
        text, data = report(samples, conditions)
        RESULTS.mkdir(exist_ok=True)
        write_text_atomic(RESULTS / "recurrent_ops.txt", text)
        write_text_atomic(RESULTS / "recurrent_ops.json", json.dumps(data, indent=1) + "\n")
        print(f"seed {seed}: {conditions['wall_seconds']} s, load {conditions['load_now']}", flush=True)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
