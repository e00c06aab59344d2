"""The whole method for one hardware target: data, profile, search, retrain, baselines, deploy, report.

Taught in: notebooks/12_capstone.

:func:`run_pipeline` is what ``hwnas run --target cpu|gpu|fpga`` calls:

1. **data**: :func:`hwnas.load_klines` (recorded folder, cache, live, or the
   labelled synthetic fallback; the source is printed and recorded) and the proxy task;
2. **profile**: the target's latency model (:data:`PLANS` says which and why);
   for the CPU also the **tail** factor k = p99 / fastest call of three
   calibration models in ONNX Runtime (:func:`hwnas.deploy.tail.measure_tail`),
   since the table predicts the fastest call and the SLA judges the p99;
3. **search**: :func:`hwnas.search.search` through the SQLite store with the
   table's latency held to budget / k (one :class:`~hwnas.search.SearchProblem`),
   then the best architecture *within the budgets*: among the best three front members
   within the budgets, the one with the best mean score over three walk-forward folds of the
   training and validation windows (never the test period); when
   none is (a loaded machine's tail can leave no room), the fastest trained one,
   and the verdict is FAIL with the reason: a measurement outcome, never a crash;
4. **retrain**: the chosen architecture with a longer recipe (``retrain_epochs``
   over ``retrain_windows`` training windows), scored on validation and on the
   held-out test period, which no step before this one has read;
5. **baselines**: persistence, the MLP and the LSTM of :mod:`hwnas.proxy`, trained
   with the same recipe and scored on the same test period, and the latency of
   the chosen model beside the MLP's and the LSTM's, measured side by side in
   eager PyTorch and ONNX Runtime (one thread, batch 1, fastest call);
6. **export**: ONNX, checked against eager PyTorch on real test windows;
7. **quantise**: CPU: INT8 (QDQ) and FP16 graphs timed beside FP32, kept when
   faster by at least :data:`QUANT_MIN_SPEEDUP` at a validation score no more
   than :data:`QUANT_MAX_SCORE_LOSS` lower; GPU: FP16, FPGA: INT8 fixed point
   (the precisions their profiles assume), with the change in score;
8. **SLA**: :func:`hwnas.deploy.sla_report` of the deployed file in ONNX Runtime on
   this CPU; for the GPU and the FPGA that is a stand-in, and their verdict is
   the analytical model's prediction against the budget (labelled so);
9. **write**: ``<target>_summary.json``, ``<target>_front.png`` (the searched
   models and the front), the search result, the architecture and the ONNX file.

Every stage is timed; :meth:`PipelineResult.summary` says where the time went.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks import require_choice, require_float, require_int, require_optional_int, require_positive
from .deploy import cpu_runtime, deploy_precisions, has_onnxruntime, side_by_side_latency
from .plan import PLANS, QUICK_SPACE, TARGET_NAMES, TargetPlan, scoring_width
from .result import PipelineResult

if TYPE_CHECKING:
    from typing import Unpack

    from ..architecture import Architecture
    from ..data.loader import KlineData
    from ..hardware import HardwareProfile
    from ..latency.lut import LUTOptions
    from ..latency.spec import TimingSpec
    from ..proxy.task import ProxyTask
    from ..search.base import Metrics
    from ..search.fidelity import Rung
    from ..search.result import SearchResult
    from ..space import SearchSpace

__all__ = ["CHOICE_RULES", "QUICK_LUT", "SELECT_EPOCHS", "SELECT_RULE", "TAIL_FACTOR_MAX", "TAIL_SPREAD_MAX",
           "bounded_tail", "quick_lut_options", "run_pipeline", "target_profile", "target_space"]

QUICK_LUT: dict[str, Any] = {"calibration": 16}
"""Latency-table options of ``quick`` runs besides their timing (:func:`quick_lut_options` adds it)."""


def quick_lut_options() -> LUTOptions:
    """The CPU table's options in ``quick`` runs: :data:`QUICK_LUT` and about a tenth of the
    default measurement time (:attr:`~hwnas.latency.TimingSpec.QUICK` at 1 ms, 8 calls at least).

    Taught in: notebooks/12_capstone.
    """
    from ..latency.spec import TimingSpec

    return {"calibration": int(QUICK_LUT["calibration"]),
            "timing": TimingSpec.QUICK.replace(target_ms=1.0, min_reps=8)}


def _comparison_timing(timing: TimingSpec | None, seed: int) -> TimingSpec:
    """The side-by-side comparisons' timing: ``timing``, or :attr:`TimingSpec.COMPARE` seeded with ``seed``."""
    from ..latency.spec import TimingSpec

    if timing is None:
        return TimingSpec.COMPARE.replace(seed=seed)
    if not isinstance(timing, TimingSpec):
        raise TypeError(f"timing must be a TimingSpec, got {type(timing).__name__}")
    return timing


# --------------------------------------------------------------------------- stages


class _Stages:
    """Wall time per stage, and progress lines that say what they count."""

    def __init__(self, target: str, progress: bool) -> None:
        self.target, self.progress = target, progress
        self.seconds: dict[str, float] = {}

    def say(self, text: str) -> None:
        if self.progress:
            print(f"[run {self.target}] {text}", file=sys.stderr, flush=True)

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        self.say(f"stage {len(self.seconds) + 1} {name}: {what}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - start
            self.say(f"stage {name} done in {self.seconds[name]:.1f} s")


def target_space(target: str, quick: bool = False, space: str | None = None, **overrides: Any) -> SearchSpace:
    """The named space of ``target``'s plan, or the named ``space`` instead (``quick``: with
    :data:`QUICK_SPACE`'s smaller settings), then ``overrides`` (e.g. ``lookbacks``).

    Taught in: notebooks/12_capstone.
    """
    from ..space import SearchSpace

    plan = PLANS[require_choice(target, "target", TARGET_NAMES)]
    return SearchSpace.named(plan.space if space is None else space,
                             **{**(QUICK_SPACE if quick else {}), **overrides})


def target_profile(target: str, space: SearchSpace, *, quick: bool = False, progress: bool = True,
                   **lut_options: Unpack[LUTOptions]) -> tuple[HardwareProfile, str]:
    """``target``'s profile and what it is (measured in which runtime, or an analytical model).

    CPU: this machine, one thread, the 10 MiB edge budget, the table measured in
    the runtime :func:`~hwnas.pipeline.deploy.cpu_runtime` picks: ExecuTorch with
    XNNPACK (the phone's), ONNX Runtime for quick runs (eager PyTorch, with a
    warning saying so, when neither is installed). GPU: :func:`hwnas.gpu_profile` (CUDA-measured when a device is
    present, else the A100 roofline model). FPGA: :func:`hwnas.fpga_profile`.

    Taught in: notebooks/12_capstone.
    """
    target = require_choice(target, "target", TARGET_NAMES)
    if target == "gpu":
        from ..targets.profiles import gpu_profile

        profile = gpu_profile()
        return profile, ("analytical model (roofline), not a measurement" if profile.is_model
                         else "measured on this machine's CUDA device")
    if target == "fpga":
        from ..targets.profiles import fpga_profile

        return fpga_profile(), "analytical model (INT8 cycle model), not a measurement"
    from ..latency.cpu import profile_cpu_edge

    options: dict[str, Any] = {**(quick_lut_options() if quick else {}), **lut_options}
    runtime, why = cpu_runtime(quick)
    if runtime != "eager":
        return (profile_cpu_edge(space, progress=progress, runtime=runtime, **options),
                f"measured on this CPU in {why}, 1 thread")
    warnings.warn("onnxruntime is not installed: the CPU table is eager PyTorch's, whose per-op "
                  "overhead a deployed model does not pay (pip install hwnas[deploy])", stacklevel=2)
    return (profile_cpu_edge(space, progress=progress, **options),
            "measured on this CPU in eager PyTorch, 1 thread (ONNX Runtime not installed)")


def _load_profile(path: str | Path, target: str) -> HardwareProfile:
    """A saved profile (an analytical one rebuilt with its model for the GPU and FPGA)."""
    from ..hardware import HardwareProfile
    from ..targets.profiles import AnalyticalProfile

    try:
        return (AnalyticalProfile if target != "cpu" else HardwareProfile).load(path)
    except OSError as err:
        raise ValueError(f"profile {str(path)!r}: {err.strerror or err}") from None


# --------------------------------------------------------------------------- helpers


CHOICE_RULES = {True: "the best validation score among the trained candidates within the budgets",
                False: "nothing was within the budgets: the lowest predicted latency among the trained "
                       "candidates (among all evaluated when none was trained)"}
"""How :func:`run_pipeline` chooses, by whether a candidate met the search problem's budgets."""

SELECT_RULE = ("the best mean validation score over walk-forward folds of train+validation among the "
               "best front members within the budgets")
"""How :func:`run_pipeline` chooses when several front members meet the budgets (the test period is never read)."""
SELECT_EPOCHS = 3
"""Epochs of each walk-forward fold's training in the selection (at most the retraining's)."""

TAIL_FACTOR_MAX = 10.0
"""The largest p99 / fastest-call factor a search budget is divided by: the course machine measured
2-3 quiet and 4-8 under ordinary load; above 10 (245 at load ~300) the machine is too noisy for a
tail to be measured, and the factor used is this bound."""
TAIL_SPREAD_MAX = 3.0
"""The largest ratio between the calibration models' factors (worst / best) for a tail to count as
measured; quiet, they differ 1.7-3.2x model to model."""


def _choose(search: SearchResult) -> tuple[Architecture, Metrics, bool]:
    """The chosen architecture, its metrics, and whether it met the problem's budgets (rule in
    :data:`CHOICE_RULES`): the best within the budgets (``search.best()``), else the fastest."""
    from ..search.base import trained

    best = search.best()
    if best is not None and best.within_budget:
        return best.arch, best.metrics, True
    pool = [(s.arch, s.metrics) for s in search.history if trained(s.metrics)] or [
        (s.arch, s.metrics) for s in search.history]
    arch, metrics = min(pool, key=lambda c: (c[1].latency_us, -c[1].score if trained(c[1]) else 0.0))
    return arch, metrics, False


def bounded_tail(calibration: Mapping[str, Any]) -> dict[str, Any]:
    """The tail factor the search uses from a calibration's ``to_dict()``, bounded by
    :data:`TAIL_FACTOR_MAX`, with its spread over the calibration models and whether the
    machine was too noisy to measure a tail (factor over the bound, or the models' factors
    disagreeing by more than :data:`TAIL_SPREAD_MAX`).

    Taught in: notebooks/12_capstone.
    """
    ratios = [float(r) for r in calibration["ratios"]]
    measured = max(1.0, max(ratios))
    low, high = min(ratios), max(ratios)
    spread = high / low if low > 0 else math.inf
    too_noisy = measured > TAIL_FACTOR_MAX or spread > TAIL_SPREAD_MAX
    factor = min(measured, TAIL_FACTOR_MAX)
    line = (f"{factor:.2f}x (calibration models {low:.2f}-{high:.2f}x, load average "
            f"{calibration.get('conditions', {}).get('load_avg_1min')})")
    if too_noisy:
        why = (f"measured {measured:.2f}x > bound {TAIL_FACTOR_MAX:g}x" if measured > TAIL_FACTOR_MAX
               else f"the calibration models disagree {spread:.1f}x > {TAIL_SPREAD_MAX:g}x")
        line = (f"the machine is too noisy to measure a tail ({why}); {line}"
                + (f", bounded to {TAIL_FACTOR_MAX:g}x" if measured > TAIL_FACTOR_MAX else ""))
    return {"factor": factor, "measured_factor": measured, "spread": [low, high], "too_noisy": too_noisy,
            "line": line}


def _measured_tail(space: SearchSpace, profile: HardwareProfile, plan: TargetPlan, quick: bool,
                   seed: int) -> dict[str, Any]:
    """The tail factor of three calibration models priced below the budget, measured in the table's runtime."""
    from ..deploy.tail import measure_tail, near_budget_models

    archs = near_budget_models(space, profile, plan.latency_budget_us, models=3, batch=plan.batch, seed=seed)
    calibration = measure_tail(archs, runtime=_table_runtime(profile), threads=1,
                               batch=plan.batch, repeats=10_000, bursts=5, seed=seed)
    bounded = bounded_tail(calibration.to_dict())
    return {**bounded, "basis": "measured on this CPU", "summary": f"{bounded['line']}; {calibration.summary()}",
            "calibration": calibration.to_dict()}


def _table_runtime(profile: HardwareProfile) -> str:
    """The runtime a measured CPU table was built in (its SLA and tail are measured there too)."""
    default = "onnxruntime" if has_onnxruntime() else "eager"
    return str(profile.conditions.get("runtime", default)) if not profile.is_model else default


_RUNTIME_WORDS = {"executorch": "ExecuTorch (XNNPACK)", "onnxruntime": "ONNX Runtime", "eager": "eager PyTorch"}


def _stated_tail(tail_factor: float | None, target: str) -> dict[str, Any]:
    """The tail factor given by the caller, or 1 for an analytical model (it predicts a steady call)."""
    if tail_factor is not None:
        return {"factor": tail_factor, "basis": "given by the caller", "summary": f"given: {tail_factor:g}x"}
    basis = ("the FPGA cycle model: a fixed pipeline has deterministic timing (reference §3.1)" if target == "fpga"
             else "the target's model predicts a steady call; its tail is not modelled")
    return {"factor": 1.0, "basis": basis, "summary": f"1x ({basis})"}


def _verdict(target: str, sla: Any, predicted: float, reasons: Sequence[str],
             latency_budget_us: float) -> dict[str, Any]:
    """Pass/fail on the target: the measured SLA for the CPU, the model's prediction otherwise."""
    if target == "cpu":
        where = _RUNTIME_WORDS.get(str(sla.conditions.get("runtime")), str(sla.conditions.get("runtime")))
        return {"passed": bool(sla.passed), "basis": f"measured p{sla.percentile:g} in {where} on this CPU",
                "reasons": list(sla.reasons)}
    out = list(reasons)
    if predicted > latency_budget_us:
        out.append(f"predicted {predicted:.1f} µs > budget {latency_budget_us:g} µs")
    return {"passed": not out, "basis": "the target's analytical model (this CPU's SLA is a stand-in)",
            "reasons": out}


def _miss_reason(plan: TargetPlan, search: SearchResult, tail: Mapping[str, Any], metrics: Metrics,
                 sla: Any) -> str:
    """Why nothing met the budget: the budgets, the tail factor with its spread, the fastest model's p99."""
    table = search.problem.latency_budget_us
    spread = tail.get("spread")
    factor = f"tail factor {tail['factor']:.2f}x" + (
        f" (calibration models {spread[0]:.2f}-{spread[1]:.2f}x)" if spread else f" ({tail['basis']})")
    return (f"nothing met the budget on this machine now: no evaluated architecture is predicted within the "
            f"table budget {table:.3g} µs (p99 budget {plan.latency_budget_us:g} µs / {factor})"
            + ("; the machine is too noisy to measure a tail" if tail.get("too_noisy") else "")
            + f"; the fastest model found: predicted {metrics.latency_us:.1f} µs, measured "
            f"p{sla.percentile:g} {sla.sla_us:.1f} µs on this CPU")


def _budget_label(latency_budget_us: float, table_budget_us: float) -> str:
    """The front figure's budget line: the budget itself, or the table budget the tail left of it."""
    if table_budget_us == latency_budget_us:
        return f"budget {latency_budget_us:g} µs"
    return (f"table budget {table_budget_us:.3g} µs (p99 budget {latency_budget_us:g} µs / "
            f"{latency_budget_us / table_budget_us:.2f})")


def _front_png(search: SearchResult, arch: Architecture, title: str, budget_label: str) -> bytes:
    """The front figure as PNG bytes (drawn without pyplot: a notebook's backend stays as it is)."""
    from ..plots.capstone import search_front
    from ..plots.foundations import png_bytes

    return png_bytes(lambda ax: search_front(search, chosen=arch, title=title, budget_label=budget_label, ax=ax))


def _outputs(out_dir: Path, target: str) -> dict[str, Path]:
    """The files a run writes, each checked for writability before any work."""
    from ..fileio import check_writable

    if not out_dir.is_dir():
        if not out_dir.parent.is_dir():
            raise ValueError(f"out_dir {str(out_dir)!r}: folder {str(out_dir.parent)!r} does not exist")
        out_dir.mkdir()
    names = {"summary": "summary.json", "front": "front.png", "search": "search.json", "arch": "arch.json",
             "onnx": "model.onnx", "deployed": "deployed.onnx", "profile": "profile.json",
             "store": "evals.sqlite", "weights": "weights.pt", "pte": "model.pte", "incomplete": "INCOMPLETE"}
    paths = {k: out_dir / (v if k == "store" else f"{target}_{v}") for k, v in names.items()}
    for key, path in paths.items():
        check_writable(path, f"out_dir ({key})")
    return paths


# --------------------------------------------------------------------------- the pipeline


def run_pipeline(
    target: str,
    *,
    data: KlineData | None = None,
    task: ProxyTask | None = None,
    space: SearchSpace | None = None,
    profile: HardwareProfile | str | Path | None = None,
    strategy: str | None = None,
    evals: int = 40,
    latency_budget_us: float | None = None,
    memory_budget: int | None = None,
    retrain_epochs: int = 5,
    retrain_windows: int | None = 4096,
    out_dir: str | Path = "hwnas_run",
    seed: int = 0,
    progress: bool = True,
    quick: bool = False,
    sla_repeats: int = 10_000,
    timing: TimingSpec | None = None,
    lut_options: LUTOptions | None = None,
    tail_factor: float | None = None,
    remeasure: bool = False,
    select_top: int = 3,
    select_folds: int = 3,
    rungs: Sequence[Rung] | None = None,
) -> PipelineResult:
    """Search, retrain, compare, export, quantise and check one target end to end (module docstring).

    ``target`` is ``"cpu"``, ``"gpu"`` or ``"fpga"``; unset arguments come from
    :data:`PLANS`. ``data`` (default :func:`hwnas.load_klines` of BTCUSDT 15m) or a
    ready ``task`` (its recipe is the search's proxy). ``profile`` is a
    :class:`~hwnas.hardware.HardwareProfile` or a saved one's path (default: built
    by :func:`target_profile`). ``retrain_windows=None`` trains on every training
    window. ``quick`` shrinks the space (:data:`QUICK_SPACE`) and the latency
    measurements (:data:`QUICK_LUT`, ``sla_repeats`` at most 2,000) for tests and
    the chapter. ``timing`` says how the side-by-side latency comparisons and the
    precisions are timed (default :attr:`~hwnas.latency.TimingSpec.COMPARE` with
    ``seed``); ``lut_options`` go to the CPU table's build
    (:class:`~hwnas.latency.lut.LUTOptions`, its ``timing`` included).
    ``tail_factor`` (at least 1) divides the budget the search holds the table's latency
    to, since the table predicts the fastest call and the SLA judges the p99; ``None`` measures it for a measured CPU
    table (:func:`hwnas.deploy.tail.measure_tail`) and takes 1 for the
    GPU and FPGA, whose models predict a steady call; a measured factor is bounded
    by :data:`TAIL_FACTOR_MAX` (:func:`bounded_tail`). A CPU profile an earlier run left in
    ``out_dir`` is reused when it prices the space, unless ``remeasure``. The final model is chosen
    among the ``select_top`` best front members within the budgets by their mean score over
    ``select_folds`` walk-forward folds of the training and validation windows
    (:func:`hwnas.proxy.walk_forward_select`, :data:`SELECT_RULE`; never the test period);
    ``select_top=1`` or ``select_folds=1`` keeps the best validation score. ``rungs`` (e.g.
    :data:`hwnas.search.fidelity.DEFAULT_RUNGS`) searches with multi-fidelity evaluation
    (:class:`~hwnas.search.fidelity.MultiFidelityEvaluator`); None trains every candidate with
    the task's recipe once. Candidates are scored at the plan's ``fixed_point`` (the FPGA's:
    quantisation-aware training at its part's ``bits``, :func:`~hwnas.pipeline.plan.scoring_width`);
    the result's ``scoring`` and summary say at which precision. A run that fails removes the
    folder it created (a Ctrl-C keeps it, so the search's store resumes); until the summary is
    written, ``<target>_INCOMPLETE`` marks the
    folder unfinished and ``hwnas export`` refuses it. Nothing within the budgets is a
    result: the run continues with the fastest trained model (``result.choice``
    says so), writes every file, and its verdict is FAIL with the reason.

    Taught in: notebooks/12_capstone.
    """
    target = require_choice(target, "target", TARGET_NAMES)
    plan = PLANS[target]
    plan = replace(plan, strategy=strategy or plan.strategy,
                   latency_budget_us=plan.latency_budget_us if latency_budget_us is None
                   else require_positive(latency_budget_us, "latency_budget_us"),
                   memory_budget=plan.memory_budget if memory_budget is None
                   else require_optional_int(memory_budget, "memory_budget", 1))
    evals = require_int(evals, "evals", 1)
    retrain_epochs = require_int(retrain_epochs, "retrain_epochs", 1)
    retrain_windows = require_optional_int(retrain_windows, "retrain_windows", 1)
    seed = require_int(seed, "seed", 0)
    select_top = require_int(select_top, "select_top", 1)
    select_folds = require_int(select_folds, "select_folds", 1)
    sla_repeats = min(require_int(sla_repeats, "sla_repeats", 10), 2000 if quick else sla_repeats)
    timing = _comparison_timing(timing, seed)
    if tail_factor is not None:
        tail_factor = require_float(tail_factor, "tail_factor", minimum=1.0)
    from ..search.base import get_strategy

    get_strategy(plan.strategy)  # an unknown name fails here, before any work
    space = space if space is not None else target_space(target, quick)
    kind = None
    if isinstance(profile, (str, Path)):  # a file: read and checked against the space before any work
        from ..checks import check_profile_covers

        kind = f"loaded from {profile}"
        profile = _load_profile(profile, target)
        check_profile_covers(profile, space, "profile", batch=plan.batch)
    created = not Path(out_dir).exists()
    paths = _outputs(Path(out_dir), target)
    if profile is None and target == "cpu" and not remeasure and paths["profile"].is_file():
        kind = f"reused from {paths['profile']} (remeasure=True measures it again)"
        profile = _reused_profile(paths["profile"], space, plan.batch)
    stages = _Stages(target, progress)
    _mark_incomplete(paths["incomplete"], target)
    try:
        result = _run_stages(plan, stages, paths, data=data, task=task, space=space, profile=profile,
                             evals=evals, retrain_epochs=retrain_epochs, retrain_windows=retrain_windows,
                             seed=seed, progress=progress, quick=quick, sla_repeats=sla_repeats,
                             timing=timing, lut_options=lut_options or {}, tail_factor=tail_factor,
                             profile_kind=kind, select_top=select_top, select_folds=select_folds,
                             rungs=rungs)
    except Exception:  # a failed run leaves no partial folder (Ctrl-C keeps it: its store resumes the search)
        _clean_failed(Path(out_dir), paths, created)
        raise
    paths["incomplete"].unlink(missing_ok=True)  # the summary is written: the folder is complete
    stages.say("time by stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.stage_seconds.items()))
    return result


INCOMPLETE_NOTE = ("hwnas run is writing this folder (or was interrupted: a Ctrl-C, a kill); it is complete only "
                   "once this file is gone. Run the same command again to finish: its store resumes the search.\n")
"""The text of ``<target>_INCOMPLETE``, the marker a run writes before any work and removes after its summary."""


def _mark_incomplete(path: Path, target: str) -> None:
    """Write the marker that says the folder is not complete yet (read by ``hwnas export``)."""
    import os

    from ..fileio import write_text_atomic

    write_text_atomic(path, f"target {target}, pid {os.getpid()}, started "
                            f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n{INCOMPLETE_NOTE}")


def _reused_profile(path: Path, space: SearchSpace, batch: int) -> HardwareProfile | None:
    """The profile an earlier run left in the output folder, when it still prices ``space`` (else None)."""
    from ..checks import check_profile_covers

    try:
        profile = _load_profile(path, "cpu")
        check_profile_covers(profile, space, "profile", batch=batch)
    except ValueError:
        return None
    return profile


def _clean_failed(out_dir: Path, paths: Mapping[str, Path], created: bool) -> None:
    """Remove what a failed run wrote: the whole folder when the run created it, else its summary
    (so the folder never looks complete) and any temporary files."""
    import shutil

    from ..fileio import remove_stale_temps

    if created:
        shutil.rmtree(out_dir, ignore_errors=True)
        return
    paths["summary"].unlink(missing_ok=True)
    paths["incomplete"].unlink(missing_ok=True)
    for path in paths.values():
        remove_stale_temps(path)


def _run_stages(plan: TargetPlan, stages: _Stages, paths: dict[str, Path], *, data: Any, task: Any,
                space: Any, profile: Any, evals: int, retrain_epochs: int, retrain_windows: int | None,
                seed: int, progress: bool, quick: bool, sla_repeats: int, timing: TimingSpec,
                lut_options: LUTOptions, tail_factor: float | None,
                profile_kind: str | None = None, select_top: int = 3, select_folds: int = 3,
                rungs: Sequence[Rung] | None = None) -> PipelineResult:
    """The stages of :func:`run_pipeline`, arguments already checked."""
    import torch

    from ..cost import memory_footprint
    from ..deploy.export import export
    from ..deploy.sla import sla_report
    from ..fileio import write_bytes_atomic, write_text_atomic
    from ..proxy.baselines import LSTMBaseline, MLPBaseline, train_baseline
    from ..proxy.task import make_proxy_task
    from ..proxy.training import train_model
    from ..proxy.walk_forward import split_score, walk_forward_select
    from ..search.base import SearchProblem, nan_to_none
    from ..search.loop import minimize

    target = plan.target
    with stages.stage("data", "klines and the proxy task"):
        if task is None:
            if data is None:
                from ..data.loader import load_klines

                data = load_klines("BTCUSDT", "15")
            task = make_proxy_task(data.frame, lookback=max(space.lookbacks), interval=data.interval,
                                   source=data.description)
            source = f"{data.source}: {data.description}"
        else:
            source = task.source or "a proxy task given by the caller"
        stages.say(f"data: {source}; {len(task.train):,} train / {len(task.val):,} val / "
                   f"{len(task.test):,} test windows")
    with stages.stage("profile", f"the {target} latency model"):
        if profile is None:
            profile, kind = target_profile(target, space, quick=quick, progress=progress, **lut_options)
        elif profile_kind is not None:
            kind = profile_kind
        else:
            kind = "given by the caller" + (" (analytical model)" if profile.is_model else "")
        if not profile.is_model:  # a measured table: keep it, so a rerun can pass --profile
            profile.save(paths["profile"])
    memory_budget = plan.memory_budget or int(profile.memory_budget_bytes)
    if tail_factor is None and target == "cpu" and not profile.is_model:
        with stages.stage("tail", f"p99 over fastest call of calibration models in "
                                  f"{_RUNTIME_WORDS.get(_table_runtime(profile), 'the table runtime')}"):
            tail = _measured_tail(space, profile, plan, quick, seed)
            stages.say(f"tail: {tail['summary']}")
    else:
        tail = _stated_tail(tail_factor, target)
    problem = SearchProblem(space, profile, plan.latency_budget_us / tail["factor"], evals,
                            memory_budget_bytes=memory_budget, task=task, constraint="hard", batch=plan.batch)
    width = scoring_width(profile)
    scoring = {"fixed_point": plan.fixed_point, "width": None if plan.fixed_point == "float" else width,
               "description": plan.scoring(width)}
    with stages.stage("search", f"{evals} evaluations ({plan.strategy}, table budget "
                                f"{problem.latency_budget_us:.3g} µs, candidates scored in {scoring['description']})"):
        evaluator = None
        if rungs or plan.fixed_point != "float":  # multi-fidelity, or FPGA candidates at their fixed point
            from ..search.evaluator import Evaluator
            from ..search.fidelity import MultiFidelityEvaluator

            options: dict[str, Any] = dict(precision=problem.precision, batch=plan.batch,
                                           fixed_point=plan.fixed_point, fixed_point_width=width)
            evaluator = (MultiFidelityEvaluator(task, profile, rungs=tuple(rungs), **options) if rungs
                         else Evaluator(task, profile, **options))
        result = minimize(problem, plan.strategy, seed=seed, store=paths["store"], progress=progress,
                          evaluator=evaluator)
        arch, metrics, within = _choose(result)
        stages.say(f"chosen ({CHOICE_RULES[within]}): validation {metrics.score:+.4f}, "
                   f"predicted {metrics.latency_us:.1f} µs")
    choice: dict[str, Any] = {"rule": CHOICE_RULES[within], "within_budget": within}
    finalists = [m for m in result.within_budget][:select_top] if within else []
    if len(finalists) > 1 and select_folds > 1:
        stask = replace(task, epochs=min(retrain_epochs, SELECT_EPOCHS))
        with stages.stage("select", f"the {len(finalists)} best front members within the budgets over "
                                    f"{select_folds} walk-forward folds of train+validation "
                                    f"({stask.epochs} epochs each; the test period is not read)"):
            names = {f"front {i}": m for i, m in enumerate(finalists)}
            name, rows = walk_forward_select({k: m.arch for k, m in names.items()}, stask, folds=select_folds,
                                             seed=seed)
            arch, metrics = names[name].arch, names[name].metrics
            choice = {"rule": SELECT_RULE, "within_budget": True, "walk_forward": nan_to_none(rows),
                      "finalists": {k: m.arch.label() for k, m in names.items()}, "chosen": name}
            stages.say(f"chosen by walk-forward ({name}): validation {metrics.score:+.4f}, "
                       f"predicted {metrics.latency_us:.1f} µs")
    rtask = replace(task, epochs=retrain_epochs, max_train_windows=retrain_windows)
    recipe = (f"{retrain_epochs} epochs over {len(rtask.train_indices()):,} training windows, "
              f"batch {rtask.batch_size}, Adam lr {rtask.lr}")
    with stages.stage("retrain", f"the chosen model: {recipe}"):
        model = train_model(arch, rtask, seed)
        from ..search.weights import save_state_dict

        save_state_dict(model, paths["weights"])  # the trained model, for `hwnas export OUT_DIR`
        scores = {split: split_score(model, rtask, split, arch.lookback) for split in ("val", "test")}
    lookback = min(64, task.lookback)
    with stages.stage("baselines", "persistence, MLP and LSTM on the test period; latency side by side"):
        baselines = {name: {"test": float(train_baseline(name, rtask, seed, split="test").score)}
                     for name in ("persistence", "mlp", "lstm")}
        x = torch.randn(1, task.num_features, lookback)
        mlp, lstm = MLPBaseline(task.num_features, lookback).eval(), LSTMBaseline(task.num_features).eval()
        measured = side_by_side_latency({"chosen": (model, torch.randn(1, arch.input_features, arch.lookback)),
                                  "mlp": (mlp, x), "lstm": (lstm, x)}, timing)
        for name, module in (("mlp", mlp), ("lstm", lstm)):
            baselines[name].update(measured[name], params=sum(p.numel() for p in module.parameters()))
        baselines["persistence"].update(params=0)
    predicted = float(profile.predict_latency(arch, plan.batch))
    latency: dict[str, float | None] = {"predicted_us": predicted, **measured["chosen"]}
    with stages.stage("export", "ONNX, checked on real test windows"):
        probe = task.test.X[:64, :, -arch.lookback:].contiguous()
        exported = export(model, paths["onnx"], check_inputs=probe, seed=seed)
        stages.say(exported.summary())
    with stages.stage("quantise", "lower precisions, kept where they help"):
        precisions, precision, deployed = deploy_precisions(target, model, arch, rtask, paths["onnx"].read_bytes(),
                                                    seed, timing)
        sla_file = paths["onnx"]  # the GPU's and FPGA's stand-in on this CPU: the FP32 graph
        if deployed is not None and precision != "fp32 onnx":
            written = write_bytes_atomic(paths["deployed"], deployed)
            sla_file = written if target == "cpu" else sla_file
        else:  # FP32 is deployed: a lower-precision file from an earlier run here must not be listed
            paths["deployed"].unlink(missing_ok=True)
    sla_runtime = "onnxruntime"
    if target == "cpu" and _table_runtime(profile) == "executorch":  # the phone ships the FP32 .pte
        with stages.stage("pte", "ExecuTorch program (XNNPACK), checked on real test windows"):
            stages.say(export(model, paths["pte"], format="pte", check_inputs=probe, seed=seed).summary())
        sla_file, sla_runtime, precision = paths["pte"], "executorch", "fp32 pte"
    if plan.batch > 1:
        sla_repeats = min(sla_repeats, 50)  # a batch of 256 takes tens of ms on one CPU thread
    with stages.stage("sla", f"{sla_repeats:,} calls in {_RUNTIME_WORDS[sla_runtime]} on this CPU, "
                             f"batch {plan.batch}"):
        report = sla_report(sla_file, plan.latency_budget_us, runtime=sla_runtime, threads=1, batch=plan.batch,
                            memory_budget_bytes=memory_budget, repeats=sla_repeats,
                            bursts=min(5, sla_repeats), label=f"{target} {precision}", seed=seed)
        stages.say(report.summary().splitlines()[0])
    sla = {k: v for k, v in report.to_dict().items() if k != "samples_us"} | {"file": str(sla_file)}
    verdict = _verdict(target, report, predicted, profile.check(arch, plan.batch), plan.latency_budget_us)
    if not within:
        verdict["passed"] = False
        verdict["reasons"].insert(0, _miss_reason(plan, result, tail, metrics, report))
    from ..deploy.quantize import STORAGE_PRECISION

    memory = int(memory_footprint(arch, STORAGE_PRECISION.get(precision, "fp32"), plan.batch).total_bytes)
    if memory > memory_budget:
        verdict["passed"] = False
        verdict["reasons"].append(f"memory {memory:,} B > budget {memory_budget:,} B")
    with stages.stage("write", "front PNG, search result, architecture (then the summary JSON)"):
        result.save(paths["search"])
        arch.save(paths["arch"])
        write_bytes_atomic(paths["front"], _front_png(
            result, arch, f"{target}: {profile.label}",
            _budget_label(plan.latency_budget_us, problem.latency_budget_us)))
        out = PipelineResult(
            target=target, plan=plan, data_source=source, profile_label=profile.label, profile_kind=kind,
            recipe=recipe, search=result, arch=arch, search_score=float(metrics.score), scores=scores,
            baselines=baselines, latency=latency, memory_bytes=memory, export=exported.to_dict(),
            precisions=precisions, precision=precision, sla=sla, verdict=verdict, stage_seconds=stages.seconds,
            tail=tail, choice=choice, scoring=scoring,
            outputs={k: str(v) for k, v in paths.items()
                     if k != "incomplete" and (v.exists() or k in ("summary",))})
    write_text_atomic(paths["summary"], json.dumps(out.to_dict(), indent=1, allow_nan=False) + "\n")
    return out
