"""Start-up time of the library and the command line, each in a fresh interpreter.

Three cases, each timed ``--runs`` times (wall clock of a new ``python``
process, interleaved so that machine load hits all three alike):

* ``python -m hwnas --help``                       (target < 0.5 s)
* ``import hwnas; hwnas.SearchSpace.default()``     (target < 0.5 s)
* ``python -m hwnas predict ...``, a command that needs torch (it pays for torch once)

plus, for scale, a bare ``python -c pass`` and ``import torch``. Prints the
median, mean and spread of each and writes ``benchmarks/results/startup.txt``
and ``startup.json``. On a shared machine the load average is printed with the
figures: start-up time grows with it.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_startup.py --runs 9
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwnas.fileio import check_writable, write_text_atomic  # noqa: E402

TARGET_S = 0.5
OUT_DIR = ROOT / "benchmarks" / "results"


def _cases(folder: Path) -> dict[str, list[str]]:
    """Name -> argv of each case (the predict case gets its input files made once)."""
    py = sys.executable
    arch, profile = folder / "arch.json", folder / "profile.json"
    subprocess.run([py, "-c", _MAKE_FILES, str(arch), str(profile)], check=True, cwd=ROOT,
                   env=_env(), timeout=300)
    return {
        "python -c pass (reference)": [py, "-c", "pass"],
        "python -m hwnas --help": [py, "-m", "hwnas", "--help"],
        "import hwnas; SearchSpace.default()": [py, "-c", "import hwnas; hwnas.SearchSpace.default()"],
        "python -m hwnas predict (needs torch)": [py, "-m", "hwnas", "predict", str(arch), "--profile",
                                                  str(profile)],
        "import torch (reference)": [py, "-c", "import torch"],
    }


_MAKE_FILES = """
import sys, numpy as np
from hwnas import SearchSpace
from hwnas.targets import fpga_profile
space = SearchSpace.fpga(lookbacks=(32,))
arch = space.sample(np.random.default_rng(0))
arch.save(sys.argv[1])
fpga_profile().tabulate(space).save(sys.argv[2])
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="0")


def _time(argv: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one fresh process running ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, timeout=300)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per case (>= 7)")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "startup.txt", help="text report")
    args = parser.parse_args(argv)
    if args.runs < 7:
        parser.error("--runs must be >= 7")
    check_writable(args.out, "--out")
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cases = _cases(Path(tmp))
        for case in cases.values():  # warm the file cache and the bytecode once
            _time(case)
        times: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, case in cases.items():
                wall, used = _time(case)
                times[name].append(wall)
                cpu[name].append(used)
    load_end = os.getloadavg()[0]
    lines = [f"start-up time, {args.runs} fresh interpreters per case, interleaved "
             f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load_start:.2f} -> "
             f"{load_end:.2f})",
             "wall clock (what a user waits; grows with the machine's load) and CPU time (user + system,"
             " what the start-up itself costs)",
             f"{'case':<42}{'median s':>10}{'mean s':>9}{'min s':>8}{'max s':>8}{'CPU med s':>11}  target"]
    results = {}
    for name, values in times.items():
        median = statistics.median(values)
        target = "" if "reference" in name or "torch)" in name else \
            (f"< {TARGET_S} s: wall {'PASS' if median < TARGET_S else 'FAIL'}, "
             f"CPU {'PASS' if statistics.median(cpu[name]) < TARGET_S else 'FAIL'}")
        cpu_median = statistics.median(cpu[name])
        lines.append(f"{name:<42}{median:>10.3f}{statistics.mean(values):>9.3f}{min(values):>8.3f}"
                     f"{max(values):>8.3f}{cpu_median:>11.3f}  {target}")
        results[name] = {"median_s": median, "mean_s": statistics.mean(values), "min_s": min(values),
                         "max_s": max(values), "cpu_median_s": cpu_median, "runs": values, "cpu_runs": cpu[name]}
    text = "\n".join(lines)
    print(text)
    write_text_atomic(args.out, text + "\n")
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(
        {"runs": args.runs, "load_avg_1min": [load_start, load_end], "target_s": TARGET_S,
         "cases": results}, indent=1) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
