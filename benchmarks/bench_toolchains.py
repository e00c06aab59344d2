"""Each target in the toolchain it ships with. Section ``hls``: the FPGA model through hls4ml.

``--only hls`` runs the hls4ml section (functions prefixed ``hls_``):

1. One trained FPGA-space model in several fixed-point precisions (hls4ml's default
   ``ap_fixed<16,6>``, ``<12,4>``, ``<8,3>`` everywhere, and the per-layer rule of
   :func:`hwnas.deploy.hls.choose_precisions` at 16 and 8 bits): g++ compile time (no cache),
   agreement of the emulation's outputs with float (max |diff|, correlation) and the change in
   validation and test score.
2. Fixed point in the FPGA search: ``--archs`` random FPGA architectures, each scored in float, with
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

    PYTHONPATH=. .venv/bin/python benchmarks/bench_toolchains.py --only hls --archs 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas.fileio import write_text_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("hls",)


def load() -> float:
    return round(os.getloadavg()[0], 2)


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
    summary: dict[str, Any] = {"n": len(rows), "width": width}
    for proxy in ("float_val", "qat_val", "ptq_val"):
        rho = stats.spearmanr([r[proxy] for r in rows], truth).statistic if len(rows) > 2 else float("nan")
        summary[f"spearman_{proxy}_vs_deployed_test"] = float(rho)
    deployed_val = [r["ptq_val"] for r in rows]
    for proxy in ("float_val", "qat_val"):  # the deployed ranking on the split a search selects on
        rho = stats.spearmanr([r[proxy] for r in rows], deployed_val).statistic if len(rows) > 2 else float("nan")
        summary[f"spearman_{proxy}_vs_deployed_val"] = float(rho)
    val_test = stats.spearmanr(deployed_val, truth).statistic if len(rows) > 2 else float("nan")
    summary["spearman_deployed_val_vs_deployed_test"] = float(val_test)
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
                         f"validation score (the ranking a search selects on) over {r['n']} architectures: float "
                         f"{r.get('spearman_float_val_vs_deployed_val', float('nan')):+.3f}, QAT "
                         f"{r.get('spearman_qat_val_vs_deployed_val', float('nan')):+.3f} (PTQ is the deployed model: "
                         f"+1 by construction).")
            lines.append(f"  Spearman with the deployed {r['width']}-bit TEST score: "
                         + ", ".join(f"{p} {v:+.3f}" for p, v in rhos.items()) + f" (highest: {best}); the deployed "
                         f"model's own validation-to-test rank agreement is "
                         f"{r.get('spearman_deployed_val_vs_deployed_test', float('nan')):+.3f}: on these "
                         f"{r['n']} close candidates validation does not predict the test order for any proxy. "
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
    done["settings"] = {**done.get("settings", {}), "archs": args.archs, "width": args.width, "seed": args.seed,
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
    hls_ranking(task, args.lookback, args.archs, args.width, args.seed, done)
    print("hls 4: search with and without fixed point", flush=True)
    hls_search(task, args.lookback, args.width, args.evals, args.seed, done)
    print(hls_text(done))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SECTIONS, default=None, help="run one section (None: all)")
    parser.add_argument("--archs", type=int, default=10)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--evals", type=int, default=16, help="evaluations of each search in section 4")
    parser.add_argument("--lookback", type=int, default=32)
    parser.add_argument("--candles", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="ignore saved partial results")
    args = parser.parse_args()
    if args.only in (None, "hls"):
        hls_main(args)


if __name__ == "__main__":
    main()
