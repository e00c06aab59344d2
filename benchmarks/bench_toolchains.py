"""Each target in the toolchain it ships with: one section per toolchain (``--only NAME``).

Section ``executorch`` (the phone: ExecuTorch with XNNPACK, :mod:`hwnas.deploy.executorch`):

1. The lookup table of a mobile space measured in ExecuTorch (1 thread, batch 1), with the
   same harness and corrections as ONNX Runtime's (shuffled round-robin passes, fastest call,
   the runtime's per-call cost taken off every entry, the per-model overhead calibrated on
   other models), scored against ``--archs`` whole models timed independently inside the
   same passes (:func:`hwnas.latency.compare.compare_with_flops`): acc10 (share within
   ±10%), Spearman, build time, beside the FLOPs fit and the repeatability noise floor.
2. Eager PyTorch, ONNX Runtime and ExecuTorch side by side (one round-robin run, shuffled
   passes): fastest call and p99 of the MLP and LSTM baselines and three random models of
   the space.
3. Which op types XNNPACK delegates and which fall back to the portable kernels, over the
   space's coverage models; and an INT8 ``.pte`` (XNNPACK's PT2E quantiser) of one model:
   its agreement with FP32 and its fastest call.

Targets: acc10 >= 95%, Spearman >= 0.98 (printed as met / NOT met). Writes
``results/toolchains_executorch.{txt,json}`` (the JSON after every step, so a cut run
leaves its finished steps). Other sections (the FPGA's hls4ml) are functions of their own
registered in :data:`SECTIONS`.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_toolchains.py --only executorch --archs 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas.fileio import write_text_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_ACC10 = 0.95
TARGET_SPEARMAN = 0.98
LOADED = "measured on a shared, loaded machine (other processes ran; see the load averages)"


def load() -> float:
    return round(os.getloadavg()[0], 2)


def machine() -> dict[str, Any]:
    return {"machine": platform.machine(), "processor": platform.processor() or platform.platform(),
            "cpu_count": os.cpu_count(), "python": platform.python_version()}


class Log:
    """Prints and keeps the lines of the text report; writes the JSON after every step."""

    def __init__(self, name: str) -> None:
        self.lines: list[str] = []
        self.data: dict[str, Any] = {}
        self.name = name

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def save(self) -> None:
        RESULTS.mkdir(exist_ok=True)
        write_text_atomic(RESULTS / f"{self.name}.json", json.dumps(self.data, indent=1, default=str) + "\n")
        write_text_atomic(RESULTS / f"{self.name}.txt", "\n".join(self.lines) + "\n")


def _space(args: argparse.Namespace) -> Any:
    from hwnas.space import SearchSpace

    overrides: dict[str, Any] = {}
    if args.lookbacks:
        overrides["lookbacks"] = tuple(args.lookbacks)
    if args.depths:
        overrides["depths"] = tuple(args.depths)
    if args.widths:
        overrides["widths"] = tuple(args.widths)
    if args.ops:
        overrides["ops"] = tuple(args.ops)
    if args.no_skip:
        overrides["skip_choices"] = (False,)
    if args.heads:
        overrides["head_types"] = tuple(args.heads)
    return SearchSpace.named("mobile", **overrides)


def _table(log: Log, args: argparse.Namespace, space: Any) -> None:
    """Step 1: the table in ExecuTorch against independently timed whole models (and ORT's beside)."""
    from hwnas.latency.compare import compare_with_flops, spread_archs
    from hwnas.latency.spec import TimingSpec
    from hwnas.opspec import space_op_specs

    archs = spread_archs(space, args.archs, seed=args.seed)
    timing = TimingSpec.TABLE.replace(passes=args.passes, target_ms=args.target_ms, seed=args.seed)
    log.say(f"space {space.name} {space.lookbacks=} {space.depths=} {space.widths=} "
            f"ops={[str(o) for o in space.ops]} {space.skip_choices=} heads={[str(h) for h in space.head_types]}: "
            f"{len(space_op_specs(space, 1)):,} table keys; {len(archs)} validation models spread over FLOPs")
    log.data["table"] = {}
    for runtime in args.runtimes:
        start, load0 = time.perf_counter(), load()
        comp = compare_with_flops(space, archs, runtime=runtime, timing=timing, calibration=args.calibration,
                                  name=f"mobile-{runtime}-1thread-b1")
        wall = time.perf_counter() - start
        r = comp.report
        met = r.acc10 >= TARGET_ACC10 and r.spearman >= TARGET_SPEARMAN
        c = comp.build.conditions
        log.say(f"\n[{runtime}] {c.get('runtime_version')}: table of {c.get('distinct_opspecs')} keys built in "
                f"{comp.build.seconds:.0f} s ({wall:.0f} s with the validation models), load {load0} -> {load()}")
        log.say(comp.summary())
        log.say(f"per-call cost taken off each entry: {c.get('per_call_us_subtracted')} µs; overhead fit "
                f"{comp.profile.conditions.get('overhead_calibration', {}).get('overhead_us')} µs x scale "
                f"{comp.profile.conditions.get('overhead_calibration', {}).get('scale')}")
        log.say(f"targets: acc10 {r.acc10:.1%} (>= {TARGET_ACC10:.0%}) and Spearman {r.spearman:.4f} "
                f"(>= {TARGET_SPEARMAN}): {'met' if met else 'NOT met'}")
        log.data["table"][runtime] = {**comp.figures(), "build_seconds": round(comp.build.seconds, 1),
                                      "wall_seconds": round(wall, 1), "targets_met": met,
                                      "runtime_version": c.get("runtime_version"),
                                      "per_call_us_subtracted": c.get("per_call_us_subtracted"),
                                      "measured_us": r.measured_us.tolist(), "predicted_us": r.predicted_us.tolist()}
        log.save()


def _models(space: Any, seed: int) -> dict[str, tuple[Any, Any]]:
    """The MLP and LSTM baselines and three random models of ``space``: ``name: (module, input)``."""
    import torch

    from hwnas.model import build_model
    from hwnas.proxy.baselines import LSTMBaseline, MLPBaseline

    torch.manual_seed(seed)
    features, lookback = space.input_features, max(space.lookbacks)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, tuple[Any, Any]] = {
        "mlp baseline": (MLPBaseline(features, lookback).eval(), torch.randn(1, features, lookback, generator=gen)),
        "lstm baseline": (LSTMBaseline(features).eval(), torch.randn(1, features, lookback, generator=gen)),
    }
    rng = np.random.default_rng(seed)
    for i in range(3):
        arch = space.sample(rng)
        out[f"random {i + 1}: {arch.label()}"] = (build_model(arch, seed=seed),
                                                  torch.randn(1, arch.input_features, arch.lookback, generator=gen))
    return out


def _side_by_side(log: Log, args: argparse.Namespace, space: Any) -> None:
    """Step 2: eager, ONNX Runtime and ExecuTorch, fastest call and p99, one round-robin run."""
    from hwnas.latency.spec import TimingSpec
    from hwnas.latency.timing import time_round_robin
    from hwnas.runtime import get_runtime

    models = _models(space, args.seed)
    runtimes = ["eager", "onnxruntime", "executorch"]
    callables: dict[tuple[str, str], Callable[[], Any]] = {}
    for rt in runtimes:
        runtime = get_runtime(rt, 1)
        for name, (module, x) in models.items():
            try:
                callables[(name, rt)] = runtime.prepare(module, (x,))
            except Exception as err:  # noqa: BLE001 - a model a runtime cannot take is reported, not fatal
                log.say(f"{name} in {rt}: could not prepare ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
    load0 = load()
    timing = TimingSpec.COMPARE.replace(passes=args.passes, seed=args.seed)
    timings = time_round_robin(callables, timing=timing, threads=1, keep_samples=True)
    log.say(f"\nside by side: {timing.describe()}, 1 thread, batch 1, load {load0} -> {load()} ({LOADED})")
    log.say(f"{'model':58} " + "  ".join(f"{rt + ' min/p99 µs':>24}" for rt in runtimes))
    rows = []
    for name in models:
        cells, row = [], {"model": name}
        for rt in runtimes:
            t = timings.get((name, rt))
            if t is None:
                cells.append(f"{'-':>24}")
                continue
            row[rt] = {"min_us": t.min_us, "p99_us": t.p99_us, "median_us": t.median_us}
            cells.append(f"{t.min_us:>11.1f} / {t.p99_us:>10.1f}")
        log.say(f"{name[:58]:58} " + "  ".join(cells))
        rows.append(row)
    log.data["side_by_side"] = {"rows": rows, "timing": timing.to_dict(), "load_avg_1min": [load0, load()]}
    log.save()


def _delegation_and_int8(log: Log, args: argparse.Namespace, space: Any) -> None:
    """Step 3: the space's delegation table; an INT8 .pte beside its FP32 one."""
    import torch

    from hwnas.deploy.executorch import ExecuTorchRuntime, PteModule, int8_pte_bytes, pte_bytes, space_delegation
    from hwnas.latency.spec import TimingSpec
    from hwnas.latency.timing import time_round_robin
    from hwnas.model import build_model

    start = time.perf_counter()
    rows = space_delegation(space)
    log.say(f"\nXNNPACK delegation over the space's coverage models (every op, both skip kinds, each head), "
            f"{time.perf_counter() - start:.0f} s:")
    log.say(f"{'op type':44} {'XNNPACK':>8} {'portable':>9}  runs in")
    for row in rows:
        log.say(f"{row.op:44} {row.delegated:>8} {row.portable:>9}  {row.runs_in}")
    log.data["delegation"] = [r.to_dict() for r in rows]
    log.save()
    if args.no_int8:
        return
    rng = np.random.default_rng(args.seed + 7)
    arch = space.sample(rng)
    model = build_model(arch, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    windows = torch.randn(64, arch.input_features, arch.lookback, generator=gen)  # no task here: random windows
    start = time.perf_counter()
    fp32, int8 = pte_bytes(model, (windows[:1],)), int8_pte_bytes(model, windows[:1], windows[:32])
    seconds = time.perf_counter() - start
    with torch.inference_mode():
        want = model(windows[32:])
        got32 = torch.cat([PteModule(fp32)(windows[i:i + 1]) for i in range(32, 64)])
        got8 = torch.cat([PteModule(int8)(windows[i:i + 1]) for i in range(32, 64)])
    rt = ExecuTorchRuntime(1)
    timings = time_round_robin({"fp32": rt.prepare_pte(fp32), "int8": rt.prepare_pte(int8)},
                               timing=TimingSpec.COMPARE.replace(seed=args.seed), threads=1)
    corr = float(np.corrcoef(got8.flatten().numpy(), want.flatten().numpy())[0, 1])
    figures = {"arch": arch.label(), "lower_seconds": round(seconds, 1), "fp32_bytes": len(fp32),
               "int8_bytes": len(int8), "fp32_max_abs_error": float((got32 - want).abs().max()),
               "int8_max_abs_error": float((got8 - want).abs().max()),
               "mean_abs_output": float(want.abs().mean()), "int8_corr_with_fp32_eager": corr,
               "fp32_min_us": timings["fp32"].min_us, "int8_min_us": timings["int8"].min_us,
               "calibration": "32 seeded random windows (no task data in this benchmark); 32 held-out windows"}
    log.say(f"\nINT8 .pte (XNNPACKQuantizer, per-channel symmetric, PT2E) of {arch.label()}: lowered in "
            f"{seconds:.0f} s; size {len(int8):,} B vs FP32 {len(fp32):,} B; max |error| vs eager "
            f"{figures['int8_max_abs_error']:.2e} (FP32 .pte {figures['fp32_max_abs_error']:.1e}; mean |output| "
            f"{figures['mean_abs_output']:.2e}; correlation {corr:.4f}); fastest call INT8 "
            f"{figures['int8_min_us']:.1f} µs vs FP32 {figures['fp32_min_us']:.1f} µs")
    log.data["int8"] = figures
    log.save()


def section_executorch(args: argparse.Namespace) -> None:
    """The phone's toolchain: ExecuTorch with XNNPACK (see the module docstring)."""
    from hwnas.deploy.executorch import executorch_version

    log = Log("toolchains_executorch")
    space = _space(args)
    log.data["settings"] = {**vars(args), **machine(), "load_avg_1min_start": load(),
                            "executorch": executorch_version(), "note": LOADED,
                            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    log.say(f"ExecuTorch toolchain benchmark, {executorch_version()}, {machine()}, load {load()}; {LOADED}")
    steps = {"table": _table, "side": _side_by_side, "delegation": _delegation_and_int8}
    for name in args.steps:
        steps[name](log, args, space)
    log.data["settings"]["load_avg_1min_end"] = load()
    log.save()


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"executorch": section_executorch}
"""Section name -> the function that runs it (the FPGA's hls4ml section registers here too)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="run only these sections")
    parser.add_argument("--archs", type=int, default=40, help="validation models of the table")
    parser.add_argument("--calibration", type=int, default=16, help="calibration models of the table")
    parser.add_argument("--passes", type=int, default=4, help="shuffled passes")
    parser.add_argument("--target-ms", type=float, default=6.0, help="timed-call time per table entry")
    parser.add_argument("--lookbacks", type=int, nargs="*", default=[32], help="the space's lookbacks")
    parser.add_argument("--depths", type=int, nargs="*", default=[2, 3], help="the space's depths")
    parser.add_argument("--widths", type=int, nargs="*", default=None, help="the space's widths (None: mobile's)")
    parser.add_argument("--ops", nargs="*", default=None, help="the space's ops (None: mobile's)")
    parser.add_argument("--no-skip", action="store_true", help="no skip connections in the space")
    parser.add_argument("--heads", nargs="*", default=None, help="the space's heads (None: mobile's)")
    parser.add_argument("--runtimes", nargs="*", default=["executorch", "onnxruntime"],
                        help="runtimes whose tables are built and scored")
    parser.add_argument("--steps", nargs="*", default=["table", "side", "delegation"],
                        choices=["table", "side", "delegation"], help="steps of the executorch section")
    parser.add_argument("--no-int8", action="store_true", help="skip the INT8 .pte")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in args.only or sorted(SECTIONS):
        SECTIONS[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
