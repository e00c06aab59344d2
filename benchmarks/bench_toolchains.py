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

    PYTHONPATH=. .venv/bin/python benchmarks/bench_toolchains.py --only executorch --archs 32 --no-skip \
        --activations relu

The committed run: the mobile space's lookbacks (32-128), depths (2-6), widths (8-32), all
seven ops and both heads, with ReLU only and no skip connections (each would double the
table's ~200 lowerings, at 1-3 s each on the loaded 2-core machine), and 32 validation
models spread over a ~150x FLOPs range, so their latencies span several times and the
rank agreement is not decided by noise among near-equal models.

Section ``hls`` (the FPGA: hls4ml fixed point, :mod:`hwnas.deploy.hls`).
``--only hls`` runs the hls4ml section (functions prefixed ``hls_``):

1. One trained FPGA-space model in several fixed-point precisions (hls4ml's default
   ``ap_fixed<16,6>``, ``<12,4>``, ``<8,3>`` everywhere, and the per-layer rule of
   :func:`hwnas.deploy.hls.choose_precisions` at 16 and 8 bits): g++ compile time (no cache),
   agreement of the emulation's outputs with float (max |diff|, correlation) and the change in
   validation and test score.
2. Fixed point in the FPGA search: ``--hls-archs`` random FPGA architectures, each scored in float, with
   quantisation-aware training at ``--width`` bits (torch fake quantisation, straight-through
   rounding) and post-training through the hls4ml emulation at ``--width`` bits. The deployed
   fixed-point test score is the emulation's (PTQ) test score; each proxy's validation score is
   rank-correlated (Spearman) with it, and the seconds per candidate are reported.
4. The FPGA search's choice with float and with QAT scoring (a small evolution run each), and the
   deployed fixed-point test score of each choice. (PTQ scoring inside a search costs a compile per
   candidate; section 2 gives its ranking quality instead.)
3. Multipliers: what hls4ml configures per layer (non-zero weights of one output step times its
   parallelisation factor, divided by the reuse factor) beside the analytical engine model of
   :func:`hwnas.targets.fpga.fpga_resources` (parallel multiply-adds per engine), reuse 1 and 4.

Results: ``results/toolchains_hls.txt`` and ``.json``, written after every step (a rerun resumes).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_toolchains.py --only hls --hls-archs 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

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
    if args.activations:
        overrides["activations"] = tuple(args.activations)
    return SearchSpace.named("mobile", **overrides)


def _table(log: Log, args: argparse.Namespace, space: Any) -> None:
    """Step 1: the table in ExecuTorch against independently timed whole models (and ORT's beside)."""
    from hwnas.latency.compare import compare_with_flops, spread_archs
    from hwnas.latency.spec import TimingSpec
    from hwnas.opspec import space_op_specs

    archs = spread_archs(space, args.archs, seed=args.seed)
    timing = TimingSpec.TABLE.replace(passes=args.passes, target_ms=args.target_ms, seed=args.seed)
    from hwnas.cost import count_flops

    flops = [count_flops(a) for a in archs]
    log.say(f"space {space.name} {space.lookbacks=} {space.depths=} {space.widths=} "
            f"ops={[str(o) for o in space.ops]} activations={[str(a) for a in space.activations]} "
            f"{space.skip_choices=} heads={[str(h) for h in space.head_types]}: "
            f"{len(space_op_specs(space, 1)):,} table keys; {len(archs)} validation models spread over FLOPs "
            f"({min(flops):,} to {max(flops):,}, {max(flops) / min(flops):.0f}x)")
    log.data["space"] = space_record(space)
    key = "table" if not args.append else f"table_seed{args.seed}"
    log.data[key] = {}
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
        meas = r.measured_us
        log.say(f"validation latencies span {meas.min():.1f} to {meas.max():.1f} µs ({meas.max() / meas.min():.1f}x)")
        log.data[key][runtime] = {**comp.figures(), "build_seconds": round(comp.build.seconds, 1),
                                      "wall_seconds": round(wall, 1), "targets_met": met,
                                      "runtime_version": c.get("runtime_version"),
                                      "per_call_us_subtracted": c.get("per_call_us_subtracted"),
                                      "measured_us": r.measured_us.tolist(), "predicted_us": r.predicted_us.tolist()}
        if not met:
            note = noise_floor_note(r.spearman, comp.repeat_spearman, r.measured_us, r.predicted_us,
                                    comp.repeat_acc10, float(c.get("per_call_us_subtracted") or 0.0))
            log.say(note)
            log.data[key][runtime]["why_not_met"] = note
        log.save()
    if args.append:
        log.say(seed_spread(log.data))
        log.save()


def seed_spread(data: dict[str, Any]) -> str:
    """acc10 and Spearman of every seed's table (``table`` is seed 0's, ``table_seedN`` the others'):
    each value, the mean and the range."""
    seeds = {0: data["table"], **{int(k.removeprefix("table_seed")): v for k, v in data.items()
                                  if k.startswith("table_seed")}}
    lines = [f"\nspread over seeds {sorted(seeds)} (each seed: other weights, shuffle, calibration and "
             f"validation models):"]
    for runtime in seeds[0]:
        for figure in ("lut_acc10", "lut_spearman", "repeat_spearman"):
            values = [seeds[s][runtime][figure] for s in sorted(seeds) if runtime in seeds[s]]
            lines.append(f"  {runtime:<12} {figure:<16} " + "  ".join(f"{v:.3f}" for v in values)
                         + f"   mean {np.mean(values):.3f}, range {min(values):.3f}-{max(values):.3f}")
    return "\n".join(lines)


def space_record(space: Any) -> dict[str, Any]:
    """The choices of the benchmark's space, for the JSON (the chapter reads them)."""
    return {"name": space.name, "lookbacks": list(space.lookbacks), "depths": list(space.depths),
            "widths": list(space.widths), "ops": [str(o) for o in space.ops],
            "activations": [str(a) for a in space.activations], "skip_choices": list(space.skip_choices),
            "head_types": [str(h) for h in space.head_types]}


def noise_floor_note(spearman: float, repeat_spearman: float, measured: Any, predicted: Any,
                     repeat_acc10: float, per_call_us: float) -> str:
    """Why a target was missed, in one line per missed target: the Spearman against the noise floor
    (the same models timed twice in the same passes, which no predictor can beat), the acc10 misses
    with their size in µs beside the per-call cost taken off every entry."""
    meas, pred = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    parts = []
    if spearman < TARGET_SPEARMAN:
        if spearman >= repeat_spearman - 0.01:
            parts.append(f"Spearman {spearman:.3f} is at the noise floor (the same models timed twice agree to "
                         f"{repeat_spearman:.3f}): the measurement, not the table, limits the rank agreement")
        else:
            parts.append(f"Spearman {spearman:.3f} is below the noise floor {repeat_spearman:.3f}: the table "
                         f"misses part of the order (sums of isolated layers miss cross-layer effects)")
    miss = np.abs(pred - meas) > 0.10 * meas
    if np.mean(~miss) < TARGET_ACC10:
        rows = ", ".join(f"{m:.1f} µs predicted {p:.1f} ({p / m - 1:+.1%})" for m, p in zip(meas[miss], pred[miss],
                                                                                          strict=True))
        small = int(np.sum(meas[miss] <= np.quantile(meas, 0.25)))
        parts.append(f"acc10 {np.mean(~miss):.1%}: {int(miss.sum())} of {meas.size} models outside ±10% ({rows}); "
                     f"{small} of them in the fastest quarter, where ±10% is under "
                     f"{0.1 * np.quantile(meas, 0.25):.1f} µs (for scale: the per-call cost taken off every entry "
                     f"is {per_call_us:.1f} µs; repeatability: {repeat_acc10:.1%} of second timings within ±10%)")
    return "why not met: " + "; ".join(parts) if parts else "both targets met"


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
    if args.append:  # another seed's table beside the committed run: keep its data and lines
        log.data = json.loads((RESULTS / "toolchains_executorch.json").read_text())
        log.lines = (RESULTS / "toolchains_executorch.txt").read_text().splitlines()
        log.say(f"\n--- another seed, appended: seed {args.seed}, load {load()}, "
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} ---")
        log.data[f"settings_seed{args.seed}"] = {**vars(args), "load_avg_1min_start": load()}
        space = _space(args)
        _table(log, args, space)
        log.save()
        return
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


# --------------------------------------------------------------------------- hls


def hls_task(candles: int, lookback: int) -> Any:
    """The proxy task on the recorded BTCUSDT 15-minute candles (the last ``candles``)."""
    from hwnas.data import load_klines
    from hwnas.proxy import make_proxy_task

    data = load_klines("BTCUSDT", "15", limit=candles)
    return make_proxy_task(data.frame, lookback=lookback, source=data.source)


def hls_space(task: Any, lookback: int) -> Any:
    from hwnas.space import SearchSpace

    return SearchSpace.fpga(input_features=task.num_features, lookbacks=(lookback,), depths=(2, 3, 4))


def hls_precisions(task: Any, lookback: int, seed: int, done: dict[str, Any]) -> list[dict[str, Any]]:
    """Section 1: one model, several precisions (compile uncached)."""
    import torch

    from hwnas.deploy.hls import compile_hls
    from hwnas.deploy.quantize import calibration_windows
    from hwnas.proxy.task import PRIMARY_METRIC, score_predictions
    from hwnas.proxy.training import predict_split, train_model

    arch = hls_space(task, lookback).sample(np.random.default_rng(seed))
    model = train_model(arch, task, seed)
    windows = calibration_windows(task, arch.lookback, 256, seed)
    metric = PRIMARY_METRIC[task.target]
    ref = {s: predict_split(model, task, s, arch.lookback) for s in ("val", "test")}
    base = {s: float(score_predictions(ref[s], task, s)[metric]) for s in ref}
    rows = list(done.get("precisions", []))
    settings: list[tuple[str, dict[str, Any]]] = [
        ("ap_fixed<16,6> (hls4ml default)", {"precision": "ap_fixed<16,6>"}),
        ("ap_fixed<12,4>", {"precision": "ap_fixed<12,4>"}),
        ("ap_fixed<8,3>", {"precision": "ap_fixed<8,3>"}),
        ("rule, 16 bits", {"width": 16}),
        ("rule, 8 bits", {"width": 8}),
    ]
    from hwnas.deploy.hls import HlsModule

    for name, kwargs in settings:
        if any(r["precision"] == name for r in rows):
            continue
        print(f"  {name} ...", flush=True)
        build = compile_hls(model, windows, cache=False, **kwargs)
        module = HlsModule(build)
        preds = {s: predict_split(module, task, s, arch.lookback) for s in ("val", "test")}
        with torch.no_grad():
            out_float = model(torch.from_numpy(windows[:64])).numpy().ravel()
        out_fixed = build.predict(windows[:64]).ravel()
        rows.append({
            "precision": name, "arch": arch.label(), "compile_s": round(float(build.compile_s or 0), 2),
            "max_abs_diff_out": float(np.abs(out_fixed - out_float).max()),
            "mean_abs_out": float(np.abs(out_float).mean()),
            "corr_out": float(np.corrcoef(out_fixed, out_float)[0, 1]) if np.std(out_fixed) > 0 else 0.0,
            "val": float(score_predictions(preds["val"], task, "val")[metric]),
            "test": float(score_predictions(preds["test"], task, "test")[metric]),
            "val_float": base["val"], "test_float": base["test"], "load": load(),
        })
        done["precisions"] = rows
        hls_write(done)
    return rows


def hls_ranking(task: Any, lookback: int, archs: int, width: int, seed: int, done: dict[str, Any]) -> dict[str, Any]:
    """Section 2: float vs QAT vs PTQ proxies against the deployed fixed-point test score."""
    from hwnas.proxy.fixed_point import evaluate_fixed_point
    from hwnas.proxy.training import evaluate_splits

    space = hls_space(task, lookback)
    rng = np.random.default_rng(seed + 1)
    candidates = [space.sample(rng) for _ in range(archs)]
    rows = list(done.get("ranking_rows", []))
    for i, arch in enumerate(candidates):
        if i < len(rows):
            continue
        print(f"  arch {i + 1}/{archs}: {arch.label()}", flush=True)
        start = time.perf_counter()
        flt = evaluate_splits(arch, task, seed)
        float_s = time.perf_counter() - start
        qat, qat_s = evaluate_fixed_point(arch, task, seed, mode="qat", width=width)
        ptq, ptq_s = evaluate_fixed_point(arch, task, seed, mode="ptq", width=width)
        rows.append({"arch": arch.label(), "float_val": flt["val"].score, "float_test": flt["test"].score,
                     "qat_val": qat["val"].score, "qat_test": qat["test"].score,
                     "ptq_val": ptq["val"].score, "ptq_test": ptq["test"].score,
                     "float_s": float_s, "qat_s": sum(qat_s.values()), "ptq_s": sum(ptq_s.values()),
                     "ptq_compile_s": ptq_s["compile"], "ptq_predict_s": ptq_s["predict"], "load": load()})
        done["ranking_rows"] = rows
        done["ranking"] = hls_ranking_summary(rows, width)
        hls_write(done)
    done["ranking"] = hls_ranking_summary(rows, width)
    hls_write(done)
    return dict(done["ranking"])


def hls_ranking_summary(rows: list[dict[str, Any]], width: int) -> dict[str, Any]:
    """Spearman of each proxy's validation score with the deployed fixed-point test score; costs."""
    truth = [r["ptq_test"] for r in rows]
    summary: dict[str, Any] = {"n": len(rows), "width": width,
                               # labels differ, models may not (a 1-wide conv is a dense layer; identities)
                               "distinct_models": len({tuple(round(r[k], 6) for k in ("float_val", "qat_val",
                                                                                      "ptq_val", "ptq_test"))
                                                       for r in rows})}
    for proxy in ("float_val", "qat_val", "ptq_val"):
        rho = stats.spearmanr([r[proxy] for r in rows], truth).statistic if len(rows) > 2 else float("nan")
        summary[f"spearman_{proxy}_vs_deployed_test"] = float(rho)
    deployed_val = [r["ptq_val"] for r in rows]
    for proxy in ("float_val", "qat_val"):  # the deployed ranking on the split a search selects on
        rho = stats.spearmanr([r[proxy] for r in rows], deployed_val).statistic if len(rows) > 2 else float("nan")
        summary[f"spearman_{proxy}_vs_deployed_val"] = float(rho)
    val_test = stats.spearmanr(deployed_val, truth).statistic if len(rows) > 2 else float("nan")
    summary["spearman_deployed_val_vs_deployed_test"] = float(val_test)
    if len(rows) > 4:  # paired bootstrap over architectures: is QAT's edge over float more than the draw?
        rng = np.random.default_rng(0)
        flt, qat, dep = (np.array([r[k] for r in rows]) for k in ("float_val", "qat_val", "ptq_val"))
        diffs = []
        for _ in range(2000):
            i = rng.integers(0, len(rows), len(rows))
            if np.ptp(dep[i]) == 0:
                continue
            diffs.append(stats.spearmanr(qat[i], dep[i]).statistic - stats.spearmanr(flt[i], dep[i]).statistic)
        d = np.array([x for x in diffs if np.isfinite(x)])
        summary["qat_minus_float_spearman_val_ci90"] = [float(np.quantile(d, 0.05)), float(np.quantile(d, 0.95))]
        summary["qat_minus_float_spearman_val_share_positive"] = float(np.mean(d > 0))
        summary["qat_minus_float_spearman_val_share_negative"] = float(np.mean(d < 0))
    for mode in ("float", "qat", "ptq"):
        summary[f"median_{mode}_s"] = float(np.median([r[f"{mode}_s"] for r in rows]))
    summary["median_ptq_compile_s"] = float(np.median([r["ptq_compile_s"] for r in rows]))
    summary["median_ptq_predict_s"] = float(np.median([r["ptq_predict_s"] for r in rows]))
    summary["qat_test_minus_ptq_test_median"] = float(np.median([r["qat_test"] - r["ptq_test"] for r in rows]))
    summary["float_test_minus_ptq_test_median"] = float(np.median([r["float_test"] - r["ptq_test"] for r in rows]))
    return summary


def hls_multipliers(task: Any, lookback: int, seed: int, done: dict[str, Any]) -> list[dict[str, Any]]:
    """Section 3: hls4ml's configured multipliers per layer beside the analytical engine model."""
    import contextlib
    import io

    from hwnas.deploy.hls import _convert, _prepare
    from hwnas.model import build_model
    from hwnas.targets.fpga import ZU9EG, fpga_resources

    if done.get("multipliers"):  # a resumed run keeps them (no timing in them)
        return list(done["multipliers"])
    rows = []
    rng = np.random.default_rng(seed + 2)
    space = hls_space(task, lookback)
    for _ in range(3):
        arch = space.sample(rng)
        model = build_model(arch, seed=seed)
        for reuse in (1, 4):
            net, chosen, config = _prepare(model, None, "ap_fixed<8,3>", 8, 1, reuse)
            with contextlib.redirect_stdout(io.StringIO()):
                hls_model = _convert(net, arch, config, Path(f"/tmp/hwnas-bench-hls-{os.getpid()}"))
            mults = 0
            for layer in hls_model.get_layers():
                weights = [w for w in layer.get_weights() if w.name.startswith("w")]
                if not weights:
                    continue
                nonzero = int(np.count_nonzero(weights[0].data))  # one multiplication each per output step
                pf = int(layer.get_attr("parallelization_factor", 1) or 1)
                mults += int(np.ceil(nonzero * pf / reuse))
            res = fpga_resources(arch, ZU9EG)
            spec = replace(ZU9EG, reuse_factor=reuse)
            rows.append({"arch": arch.label(), "reuse_factor": reuse, "hls4ml_multipliers": mults,
                         "model_multipliers": hls_model_multipliers(arch, ZU9EG),
                         "model_multipliers_at_reuse": hls_model_multipliers(arch, spec),
                         "model_dsps": int(res.dsps), "model_dsps_at_reuse": int(fpga_resources(arch, spec).dsps)})
    done["multipliers"] = rows
    hls_write(done)
    return rows


def hls_search(task: Any, lookback: int, width: int, evals: int, seed: int,
               done: dict[str, Any]) -> list[dict[str, Any]]:
    """Section 4: a small evolution search of the FPGA space with float and with QAT scoring; each
    choice's deployed fixed-point (PTQ, hls4ml) test score."""
    import hwnas
    from hwnas.proxy.fixed_point import evaluate_fixed_point
    from hwnas.search.base import SearchProblem
    from hwnas.search.evaluator import Evaluator
    from hwnas.search.loop import minimize

    rows = list(done.get("search", []))
    space = hls_space(task, lookback)
    profile = hwnas.fpga_profile(hwnas.ZU9EG)
    for mode in ("float", "qat"):
        if any(r["mode"] == mode for r in rows):
            continue
        print(f"  search, {mode} scoring ...", flush=True)
        problem = SearchProblem(space, profile, 20.0, evals, task=task, constraint="hard")
        evaluator = Evaluator(task, profile, fixed_point=mode, fixed_point_width=width)
        start = time.perf_counter()
        result = minimize(problem, "evolution", seed=seed, evaluator=evaluator, progress=False)
        search_s = time.perf_counter() - start
        best = result.best()
        if best is None:
            continue
        deployed, _ = evaluate_fixed_point(best.arch, task, seed, mode="ptq", width=width)
        rows.append({"mode": mode, "evals": evals, "arch": best.arch.label(), "proxy_val": best.metrics.score,
                     "deployed_val": deployed["val"].score, "deployed_test": deployed["test"].score,
                     "search_s": search_s, "load": load()})
        done["search"] = rows
        hls_write(done)
    return rows


def hls_model_multipliers(arch: Any, spec: Any) -> int:
    """Multipliers of the analytical engine model: the parallel multiply-adds of every engine."""
    from hwnas.opspec import arch_op_specs
    from hwnas.targets.fpga import fpga_engines, fpga_unsupported

    total = 0
    for key in arch_op_specs(arch):
        parts = [key.main_branch()] + ([key.shortcut_branch()] if key.use_skip else [])
        for part in parts:
            if not fpga_unsupported(part):
                total += sum(e.parallel_macs for e in fpga_engines(part, spec))
    return total


def hls_write(done: dict[str, Any]) -> None:
    """Write results/toolchains_hls.{json,txt} (after every step)."""
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "toolchains_hls.json", json.dumps(done, indent=2, default=float) + "\n")
    write_text_atomic(RESULTS / "toolchains_hls.txt", hls_text(done))


def hls_text(done: dict[str, Any]) -> str:
    """The human-readable report."""
    s = done.get("settings", {})
    lines = [f"hls4ml for the FPGA target. Measured on a SHARED, LOADED machine ({s.get('machine')}, "
             f"{s.get('cores')} cores, load at start {s.get('load_start')}); times are upper bounds.",
             f"settings: {json.dumps(s)}", ""]
    if done.get("precisions"):
        lines.append("1. One model in several precisions (compile uncached; out: 64 calibration windows)")
        lines.append(f"{'precision':<34}{'compile s':>10}{'max|d|':>9}{'mean|y|':>9}{'corr':>8}"
                     f"{'val':>8}{'dval':>8}{'test':>8}{'dtest':>8}")
        for r in done["precisions"]:
            lines.append(f"{r['precision']:<34}{r['compile_s']:>10.1f}{r['max_abs_diff_out']:>9.4f}"
                         f"{r['mean_abs_out']:>9.3f}{r['corr_out']:>8.4f}{r['val']:>8.4f}"
                         f"{r['val'] - r['val_float']:>+8.4f}{r['test']:>8.4f}{r['test'] - r['test_float']:>+8.4f}")
        lines.append(f"  arch: {done['precisions'][0]['arch']}")
        lines.append("")
    if done.get("ranking_rows"):
        lines.append("2. Fixed point in the FPGA search: proxies against the deployed fixed-point (PTQ, hls4ml) test "
                     "score")
        lines.append(f"{'arch':<58}{'float v':>8}{'qat v':>8}{'ptq v':>8}{'ptq t':>8}{'flt s':>7}{'qat s':>7}"
                     f"{'ptq s':>7}")
        for r in done["ranking_rows"]:
            lines.append(f"{r['arch'][:57]:<58}{r['float_val']:>8.4f}{r['qat_val']:>8.4f}{r['ptq_val']:>8.4f}"
                         f"{r['ptq_test']:>8.4f}{r['float_s']:>7.1f}{r['qat_s']:>7.1f}{r['ptq_s']:>7.1f}")
        if done.get("ranking"):
            r = done["ranking"]
            lines.append("  " + json.dumps(r))
            rhos = {p: r[f"spearman_{p}_val_vs_deployed_test"] for p in ("float", "qat", "ptq")}
            best = max(rhos, key=lambda p: rhos[p] if np.isfinite(rhos[p]) else -2)
            lines.append(f"  Spearman of each proxy's validation score with the deployed {r['width']}-bit model's "
                         f"validation score (the ranking a search selects on) over {r['n']} architectures "
                         f"({r.get('distinct_models', r['n'])} distinct models: draws can repeat an architecture "
                         f"and different labels can compute the same function, a kernel-1 convolution being a "
                         f"dense layer; such models score identically): float "
                         f"{r.get('spearman_float_val_vs_deployed_val', float('nan')):+.3f}, QAT "
                         f"{r.get('spearman_qat_val_vs_deployed_val', float('nan')):+.3f} (PTQ is the deployed model: "
                         f"+1 by construction).")
            ci = r.get("qat_minus_float_spearman_val_ci90")
            if ci:
                lines.append(f"  QAT minus float Spearman, paired bootstrap over the {r['n']} architectures (2,000 "
                             f"resamples): 90% interval [{ci[0]:+.3f}, {ci[1]:+.3f}], positive in "
                             f"{r['qat_minus_float_spearman_val_share_positive']:.0%} of resamples and negative in "
                             f"{r.get('qat_minus_float_spearman_val_share_negative', float('nan')):.0%}: "
                             + ("QAT ranks the deployed model better beyond the draw of architectures"
                                if ci[0] > 0 else "the edge is within the draw of architectures (not established)"))
            val_test = r.get("spearman_deployed_val_vs_deployed_test", float("nan"))
            verdict = (f"on these {r['n']} candidates validation does not predict the test order for any proxy"
                       if not val_test >= 0.3 else
                       f"validation predicts the test order {'weakly' if val_test < 0.6 else 'well'} here")
            lines.append(f"  Spearman with the deployed {r['width']}-bit TEST score: "
                         + ", ".join(f"{p} {v:+.3f}" for p, v in rhos.items()) + f" (highest: {best}); the deployed "
                         f"model's own validation-to-test rank agreement is {val_test:+.3f}: {verdict}. "
                         f"Cost per candidate (median): float {r['median_float_s']:.1f} s, QAT "
                         f"{r['median_qat_s']:.1f} s, PTQ {r['median_ptq_s']:.1f} s (compile "
                         f"{r['median_ptq_compile_s']:.1f} s, emulation predict {r['median_ptq_predict_s']:.1f} s).")
        lines.append("")
    if done.get("multipliers"):
        lines.append("3. Multipliers: hls4ml (non-zero weights of one output step x parallelisation / reuse) vs the "
                     "analytical engine model (parallel multiply-adds): its default (dsp_per_engine cap) and with "
                     "FpgaSpec.reuse_factor set to hls4ml's")
        for r in done["multipliers"]:
            lines.append(f"  {r['arch'][:60]:<62} reuse {r['reuse_factor']}: hls4ml {r['hls4ml_multipliers']:>6}"
                         f"  model default {r.get('model_multipliers', 0):>6} ({r['model_dsps']} DSPs)"
                         f"  model at reuse {r.get('model_multipliers_at_reuse', 0):>6} "
                         f"({r.get('model_dsps_at_reuse', 0)} DSPs)")
        lines.append("")
    if done.get("search"):
        lines.append("4. The FPGA search's choice (evolution, 20 us budget) with float and with QAT scoring; the "
                     "choice's deployed fixed-point (PTQ, hls4ml) scores")
        for r in done["search"]:
            lines.append(f"  {r['mode']:<6} {r['evals']} evals, {r['search_s']:.0f} s: {r['arch'][:60]:<62} proxy val "
                         f"{r['proxy_val']:.4f}  deployed val {r['deployed_val']:.4f}  test {r['deployed_test']:.4f}")
        by = {r["mode"]: r for r in done["search"]}
        if {"float", "qat"} <= set(by):
            same = by["float"]["arch"] == by["qat"]["arch"]
            lines.append(f"  {'both searches chose the same architecture' if same else 'the choices differ'}: "
                         f"deployed validation {by['qat']['deployed_val'] - by['float']['deployed_val']:+.4f} and "
                         f"deployed test {by['qat']['deployed_test'] - by['float']['deployed_test']:+.4f} for QAT "
                         f"scoring over float scoring (one seed, {by['qat']['evals']} evaluations: an illustration, "
                         f"not a law)")
        lines.append("")
    return "\n".join(lines) + "\n"


def hls_main(args: argparse.Namespace) -> None:
    path = RESULTS / "toolchains_hls.json"
    done: dict[str, Any] = json.loads(path.read_text()) if path.is_file() and not args.fresh else {}
    done["settings"] = {**done.get("settings", {}), "archs": args.hls_archs, "width": args.width, "seed": args.seed,
                        "lookback": args.lookback, "candles": args.candles, "machine": platform.platform(),
                        "cores": os.cpu_count(), "load_start": done.get("settings", {}).get("load_start", load()),
                        "note": "shared, loaded machine (several other jobs running)"}
    task = hls_task(args.candles, args.lookback)
    done["settings"]["task"] = task.describe() if hasattr(task, "describe") else str(task)
    print("hls 1: precisions", flush=True)
    hls_precisions(task, args.lookback, args.seed, done)
    print("hls 3: multipliers", flush=True)
    hls_multipliers(task, args.lookback, args.seed, done)
    print("hls 2: ranking", flush=True)
    hls_ranking(task, args.lookback, args.hls_archs, args.width, args.seed, done)
    print("hls 4: search with and without fixed point", flush=True)
    hls_search(task, args.lookback, args.width, args.evals, args.seed, done)
    print(hls_text(done))


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"executorch": section_executorch, "hls": hls_main}
"""Section name -> the function that runs it (the FPGA's hls4ml section registers here too)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="run only these sections")
    parser.add_argument("--archs", type=int, default=32, help="validation models of the table")
    parser.add_argument("--calibration", type=int, default=16, help="calibration models of the table")
    parser.add_argument("--passes", type=int, default=4, help="shuffled passes")
    parser.add_argument("--target-ms", type=float, default=6.0, help="timed-call time per table entry")
    parser.add_argument("--lookbacks", type=int, nargs="*", default=None, help="the space's lookbacks (None: mobile's)")
    parser.add_argument("--depths", type=int, nargs="*", default=None, help="the space's depths (None: mobile's)")
    parser.add_argument("--widths", type=int, nargs="*", default=None, help="the space's widths (None: mobile's)")
    parser.add_argument("--ops", nargs="*", default=None, help="the space's ops (None: mobile's)")
    parser.add_argument("--no-skip", action="store_true", help="no skip connections in the space")
    parser.add_argument("--heads", nargs="*", default=None, help="the space's heads (None: mobile's)")
    parser.add_argument("--activations", nargs="*", default=None, help="the space's activations (None: mobile's)")
    parser.add_argument("--runtimes", nargs="*", default=["executorch", "onnxruntime"],
                        help="runtimes whose tables are built and scored")
    parser.add_argument("--steps", nargs="*", default=["table", "side", "delegation"],
                        choices=["table", "side", "delegation"], help="steps of the executorch section")
    parser.add_argument("--no-int8", action="store_true", help="skip the INT8 .pte")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append", action="store_true",
                        help="executorch: time only the table at --seed and append it to the committed results "
                             "(as table_seedN, with the spread over seeds)")
    hls = parser.add_argument_group("section hls")
    hls.add_argument("--hls-archs", type=int, default=30, help="random FPGA architectures of the ranking study")
    hls.add_argument("--width", type=int, default=8, help="fixed-point width of QAT and PTQ")
    hls.add_argument("--evals", type=int, default=16, help="evaluations of each search in step 4")
    hls.add_argument("--lookback", type=int, default=32)
    hls.add_argument("--candles", type=int, default=6000)
    hls.add_argument("--fresh", action="store_true", help="ignore saved partial results")
    args = parser.parse_args(argv)
    for name in args.only or sorted(SECTIONS):
        SECTIONS[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
