"""The ``export`` and ``report`` commands of ``hwnas`` (registered by :mod:`hwnas.__main__`).

Taught in: notebooks/11_deployment.

``hwnas export ARCH.json [--weights W.pt] --out model.onnx [--format onnx|torch.export|pte|hls]``
writes a checked ONNX, ``torch.export`` (``.pt2``) or ExecuTorch (``.pte``) file, the
format inferred from the suffix unless given, or with ``--format hls`` the hls4ml Vitis HLS
project folder of an FPGA model (:func:`hwnas.deploy.hls.export_hls`); ``hwnas report ARCH.json|model.onnx|model.pte
--budget-us N [--runtime onnxruntime] [--threads 1]`` measures the deployed model
and exits 0 when it meets the budget at the SLA percentile, 1 when it misses,
2 on bad arguments (a ValueError naming the argument, printed as one line).
Heavy packages are imported inside the handlers, so ``hwnas --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._cli import DefaultsFormatter

__all__ = ["REPEATS_UNCONFIRMED", "cmd_export", "cmd_report", "register", "resolve_source"]


def _load_model(arch: Any, weights: str | None, seed: int, *, untrained: bool = False,
                what: str = "weights") -> Any:
    """The model of ``arch`` with the weights of the file ``weights``; fresh seeded weights only when
    ``untrained`` is set (else a ValueError: an untrained model is never deployed by accident).
    A model too large for this machine's memory is refused before it is built."""
    from ..model import build_model
    from ..search.weights import load_state_dict

    _check_fits_memory(arch)
    if weights is None:
        if not untrained:
            raise ValueError(f"no trained weights for {arch.label()}: give --weights FILE (a state dict), a "
                             f"search result or run folder that saved them, or --untrained to deploy fresh "
                             f"weights from --seed")
        return build_model(arch, seed=seed).eval()
    state = load_state_dict(weights, what)
    model = build_model(arch, seed=seed)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{what} {weights!r}: not a state dict of {arch.label()} ({first})") from None
    return model.eval()


def _check_fits_memory(arch: Any) -> None:
    """ValueError before building a model whose weights and activations would not fit in the memory
    this machine has available (a 10^7-channel architecture is refused, not killed by the OOM killer)."""
    import os

    from ..cost import memory_footprint

    need = memory_footprint(arch, "fp32", 1).total_bytes * 3  # weights, a copy while exporting, gradients off
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > available:
        raise ValueError(f"architecture {arch.label()} needs about {need / 2**30:,.1f} GiB to build and export; "
                         f"this machine has {available / 2**30:,.1f} GiB available")


def resolve_source(source: str, *, rank: int | None = None, target: str | None = None) -> tuple[Any, Path | None, str]:
    """The architecture a user names and the trained weights saved with it: ``source`` is an
    architecture JSON, a search result JSON (``rank``: 1-based row of its front table, default its
    best model within budget) or a ``hwnas run`` folder (``target`` when it holds several).
    Returns ``(arch, weights file or None, description)``; ValueError naming the file otherwise.

    Taught in: notebooks/11_deployment.
    """
    import json

    from ..architecture import Architecture
    from ..search.result import RESULT_FORMAT, SearchResult
    from ..search.weights import weights_file, weights_folder

    path = Path(source)
    if path.is_dir():
        archs = sorted(path.glob("*_arch.json"))
        if target is not None:
            archs = [a for a in archs if a.name == f"{target}_arch.json"]
        if not archs:
            raise ValueError(f"{source!r}: no hwnas run output in that folder (no "
                             f"{target or '<target>'}_arch.json); give an architecture or search result file")
        if len(archs) > 1:
            names = ", ".join(a.name.removesuffix("_arch.json") for a in archs)
            raise ValueError(f"{source!r} holds the runs of several targets ({names}); pick one with --target")
        name = archs[0].name.removesuffix("_arch.json")
        if (path / f"{name}_INCOMPLETE").exists():
            raise ValueError(f"{source!r}: the {name} run in that folder did not finish ({name}_INCOMPLETE is "
                             f"there: it was interrupted or is still running); run it again to finish it")
        arch = Architecture.load(archs[0])
        weights = path / f"{name}_weights.pt"
        return arch, weights if weights.is_file() else None, f"run {name} in {source}"
    if rank is not None and rank < 1:
        raise ValueError(f"--rank must be >= 1, got {rank}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"{source!r}: {err.strerror or err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{source!r} is not JSON (an architecture, a search result or a run folder): "
                         f"{err}") from None
    if isinstance(data, dict) and data.get("format") == RESULT_FORMAT:
        result = SearchResult.load(path)
        if not result:
            raise ValueError(f"{source!r}: the search result's front is empty")
        if rank is None:
            best = result.best()
            rank = result.index(best) + 1 if best is not None else 1
        if rank > len(result):
            raise ValueError(f"--rank {rank}: the front of {source!r} has {len(result)} model(s)")
        arch = result[rank - 1].arch
        weights = weights_file(weights_folder(path), arch)
        return arch, weights if weights.is_file() else None, f"front model {rank} of {source}"
    if rank is not None:
        raise ValueError(f"--rank applies to a search result; {source!r} is an architecture file")
    return _load_arch(source), None, f"architecture {source}"


def _load_arch(path: str) -> Any:
    from ..__main__ import load_arch_file

    return load_arch_file(path)


def cmd_export(args: argparse.Namespace) -> int:
    """Export a trained model (an architecture with ``--weights``, a search result's front model with the
    weights saved beside it, or a run folder's model) to ONNX or torch.export, checked; exit 0.

    Taught in: notebooks/11_deployment.
    """
    from ..fileio import check_writable
    from .export import export

    if args.format == "hls":
        return _export_hls(args)
    out = check_writable(args.out, "--out")
    format = _export_format(args.format, out)
    if args.seed < 0:
        raise ValueError(f"--seed must be an integer >= 0, got {args.seed}")
    arch, saved, what = resolve_source(args.source, rank=args.rank, target=args.target)
    weights = args.weights if args.weights is not None else (str(saved) if saved is not None else None)
    model = _load_model(arch, weights, args.seed, untrained=args.untrained,
                        what="--weights" if args.weights is not None else "saved weights")
    result = export(model, out, format=format, check=not args.no_check, seed=args.seed)
    print(f"{what}: {arch.label()}, " + (f"weights {weights}" if weights else "UNTRAINED weights (--untrained)"))
    print(result.summary())
    return 0


def _export_format(option: str | None, out: Path) -> str:
    """The format of ``export``: ``--format`` when given (checked against :data:`~hwnas.deploy.export.EXPORTERS`,
    whose suffix ``--out`` must then carry), else the one ``--out``'s suffix implies."""
    from .export import EXPORTERS, SUFFIXES, format_for_path

    if option is None:
        return format_for_path(out, "--out")
    if option not in EXPORTERS:
        raise ValueError(f"--format {option!r} is not a format; choose one of {', '.join([*EXPORTERS, 'hls'])}")
    if out.suffix != SUFFIXES[option]:
        raise ValueError(f"--format {option} writes a {SUFFIXES[option]} file; --out {str(out)!r} ends in "
                         f"{out.suffix or 'no suffix'}")
    return option


def _export_hls(args: argparse.Namespace) -> int:
    """``export --format hls``: the hls4ml Vitis HLS project of the model, precisions chosen on
    calibration windows of the training data (``--data``, else the default task)."""
    from ..search._cli import _task
    from .hls import export_hls, hls_unsupported
    from .quantize import calibration_windows

    out = Path(args.out)
    if out.exists():
        raise ValueError(f"--out {args.out!r} already exists; give a new folder for the HLS project")
    if not out.parent.is_dir():
        raise ValueError(f"--out {args.out!r}: its parent folder does not exist")
    arch, saved, what = resolve_source(args.source, rank=args.rank, target=args.target)
    reasons = hls_unsupported(arch)
    if reasons:
        raise ValueError("; ".join(reasons))
    weights = args.weights if args.weights is not None else (str(saved) if saved is not None else None)
    model = _load_model(arch, weights, args.seed, untrained=args.untrained,
                        what="--weights" if args.weights is not None else "saved weights")
    task, source = _task(args.data, "fpga", False)
    if task.num_features != arch.input_features or task.lookback < arch.lookback:
        raise ValueError(f"the calibration data has {task.num_features} features and {task.lookback}-step "
                         f"windows; {arch.label()} needs {arch.input_features} and {arch.lookback}")
    windows = calibration_windows(task, arch.lookback, 256, args.seed)
    folder = export_hls(model, arch, out, windows)
    print(f"{what}: {arch.label()}, " + (f"weights {weights}" if weights else "UNTRAINED weights (--untrained)"))
    print(f"hls4ml project written to {folder} (precisions calibrated on {len(windows)} training windows of "
          f"{source}); synthesise with: cd {folder} && vitis_hls -f build_prj.tcl")
    return 0


REPEATS_UNCONFIRMED = 1_000_000
"""The most timed calls ``report`` makes without ``--yes`` (about 10 s at 10 µs a call; more asks first)."""


def _check_report_args(args: argparse.Namespace) -> None:
    """Validate the numbers of ``report`` with the options' own names."""
    from ..checks import require_float, require_int, require_positive

    require_positive(args.budget_us, "--budget-us")
    require_int(args.threads, "--threads", 1)
    _check_threads(args.threads, args.force_threads)
    require_int(args.batch, "--batch", 1)
    require_int(args.repeats, "--repeats", 1)
    if args.repeats > REPEATS_UNCONFIRMED and not args.yes:
        seconds = args.repeats * max(args.budget_us, 10.0) * 1e-6
        raise ValueError(f"--repeats {args.repeats:,} would take about {seconds:,.0f} s or more "
                         f"(at >= {max(args.budget_us, 10.0):g} µs a call); pass --yes to run it, or at "
                         f"most {REPEATS_UNCONFIRMED:,}")
    require_int(args.bursts, "--bursts", 1, args.repeats)
    require_int(args.seed, "--seed", 0)
    require_float(args.percentile, "--percentile", minimum=0.0, maximum=100.0)
    if args.memory_budget_bytes is not None:
        require_int(args.memory_budget_bytes, "--memory-budget-bytes", 1)
    if args.json_out is not None:
        from ..fileio import check_writable

        check_writable(args.json_out, "--json-out")


def _check_threads(threads: int, force: bool) -> None:
    """``--threads`` at most this machine's cores, unless forced (ValueError naming the option)."""
    import os

    cores = os.cpu_count() or 1
    if threads > cores and not force:
        raise ValueError(f"--threads {threads} is more than this machine's {cores} cores; "
                         f"pass --force-threads to oversubscribe")


def _check_onnx_file(path: Path) -> None:
    """ValueError naming the file when it is missing, truncated or not an ONNX model."""
    if not path.is_file():
        raise ValueError(f"model {str(path)!r}: no such file")
    import onnx

    try:
        onnx.checker.check_model(onnx.load(str(path)))
    except Exception as err:  # DecodeError, ValidationError: the file is not a model
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"model {str(path)!r} is not a valid ONNX file ({type(err).__name__}: "
                         f"{first[:160]})") from None


def _check_pte_file(path: Path) -> None:
    """ValueError naming the file when it is missing or ExecuTorch cannot load it as a program."""
    if not path.is_file():
        raise ValueError(f"model {str(path)!r}: no such file")
    with path.open("rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or head[4:6] != b"ET":  # a flatbuffer with ExecuTorch's file identifier "ET12"
        raise ValueError(f"model {str(path)!r} is not an ExecuTorch program (no ExecuTorch file identifier "
                         f"in its first 8 bytes)")
    from .executorch import PteModule

    try:
        PteModule(path)
    except Exception as err:  # the binding raises RuntimeError/ValueError for a bad flatbuffer
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"model {str(path)!r} is not an ExecuTorch program ({type(err).__name__}: "
                         f"{first[:160]})") from None


def _report_runtime(args: argparse.Namespace, profile: Any) -> str:
    """The runtime of ``report``: ``--runtime``, else the profile's, else ONNX Runtime; a profile
    measured in another runtime than ``--runtime`` is refused (its prediction would not compare)."""
    profile_runtime = None if profile is None else str(profile.conditions.get("runtime", "eager"))
    if profile is not None and profile.is_model:
        profile_runtime = None  # an analytical target's model: no runtime on this CPU to agree with
    if args.runtime is None:
        return profile_runtime or ("executorch" if str(args.model).endswith(".pte") else "onnxruntime")
    if profile_runtime is not None and args.runtime != profile_runtime:
        raise ValueError(f"--profile {args.profile!r} was measured in {profile_runtime} but --runtime is "
                         f"{args.runtime}: its predictions would not compare; drop --runtime or give a "
                         f"profile measured in {args.runtime}")
    return str(args.runtime)


def cmd_report(args: argparse.Namespace) -> int:
    """Measure a deployed model against a latency budget: exit 0 on pass, 1 on a miss.

    Taught in: notebooks/11_deployment.
    """
    _check_report_args(args)
    from ..latency.spec import TimingSpec, timing_from_options
    from ..runtime import get_runtime
    from .sla import sla_report

    profile = None
    if args.profile is not None:
        from ..search._cli import load_profile_option

        profile = load_profile_option(args.profile)
    runtime_name = _report_runtime(args, profile)
    timing = timing_from_options(TimingSpec.SLA, {"warmup": args.warmup, "warmup_ms": args.warmup_ms})
    try:
        runtime = get_runtime(runtime_name, args.threads)
    except ValueError as err:
        raise ValueError(f"--runtime: {err}") from None
    path = Path(args.model)
    if path.suffix == ".pte" and runtime.name != "executorch":
        source = "--runtime" if args.runtime is not None else "the --profile's runtime"
        raise ValueError(f"--runtime {runtime.name} ({source}): a .pte program runs in ExecuTorch; give "
                         f"--runtime executorch (and a profile measured in it)")
    if path.suffix in (".onnx", ".pte"):
        if args.weights is not None:
            raise ValueError(f"--weights applies to an architecture file, not to an {path.suffix} model")
        if path.suffix == ".pte":
            _check_pte_file(path)
        else:
            _check_onnx_file(path)
        deployable: Any = path
        if profile is not None:
            print(f"note: {path.name} carries no architecture, so --profile adds its memory budget but no "
                  f"latency prediction; report the architecture (or the search result) to compare both",
                  file=sys.stderr)
    else:
        arch, saved, _ = resolve_source(args.model, rank=args.rank, target=args.target)
        weights = args.weights if args.weights is not None else (str(saved) if saved is not None else None)
        if profile is not None and profile.missing(arch, args.batch):
            raise ValueError(f"--profile: {profile.coverage_error(arch, args.batch)}")
        deployable = _load_model(arch, weights, args.seed, untrained=True,  # latency does not depend on weights
                                 what="--weights" if args.weights is not None else "saved weights")
    report = sla_report(deployable, args.budget_us, runtime=runtime, threads=args.threads, batch=args.batch,
                        profile=profile, memory_budget_bytes=args.memory_budget_bytes,
                        percentile=args.percentile, repeats=args.repeats, bursts=args.bursts,
                        label=path.name, seed=args.seed, timing=timing)
    if args.json:
        import json

        from ..search.base import nan_to_none

        print(json.dumps(nan_to_none({k: v for k, v in report.to_dict().items() if k != "samples_us"}), indent=1,
                         allow_nan=False, default=str))
    else:
        print(report.summary())
    if args.json_out is not None:
        import json

        from ..fileio import write_text_atomic
        from ..search.base import nan_to_none

        write_text_atomic(args.json_out, json.dumps(nan_to_none(report.to_dict()), indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.json_out}", file=sys.stderr if args.json else sys.stdout)
    return 0 if report.passed else 1


def register(subparsers: Any) -> None:
    """Add ``export`` and ``report`` to the ``hwnas`` command line.

    Taught in: notebooks/11_deployment.
    """
    fmt = DefaultsFormatter
    exp = subparsers.add_parser("export", help="export a trained model to ONNX (.onnx), torch.export (.pt2) "
                                               "or ExecuTorch (.pte)",
                                description="Export a model, check the file against eager PyTorch, and write it "
                                            "atomically. SOURCE is an architecture JSON (with --weights), a "
                                            "search result JSON (its front's weights saved beside it; --rank) "
                                            "or a `hwnas run` folder. Untrained weights need --untrained.",
                                formatter_class=fmt)
    exp.add_argument("source", help="architecture JSON, search result JSON or hwnas run folder")
    exp.add_argument("--rank", type=int, default=None,
                     help="row of a search result's front table, 1 = first (None: its best model within budget)")
    exp.add_argument("--target", default=None, help="which run of a folder holding several (cpu, gpu, fpga)")
    exp.add_argument("--weights", help="state dict saved with torch.save(model.state_dict()) (None: the "
                                       "weights saved with SOURCE)")
    exp.add_argument("--untrained", action="store_true", help="allow fresh weights from --seed (no training)")
    exp.add_argument("--out", required=True,
                     help="file to write: .onnx, .pt2 or .pte (a new folder with --format hls)")
    exp.add_argument("--format", default=None,
                     help="onnx, torch.export, pte (ExecuTorch, XNNPACK) or hls (an hls4ml Vitis HLS project "
                          "folder) (None: from --out's suffix)")
    exp.add_argument("--seed", type=int, default=0, help="seed of the check windows (and of --untrained weights)")
    exp.add_argument("--no-check", action="store_true", help="skip the reload-and-compare check")
    exp.add_argument("--data", default=None, help="with --format hls: kline CSV or recorded folder whose "
                                                  "training windows calibrate the fixed-point precisions")
    exp.set_defaults(handler=cmd_export)

    rep = subparsers.add_parser("report", help="latency SLA report of a deployed model (exit 1 on a miss)",
                                description="Time a deployed model and judge its tail latency against a budget. "
                                            "Exit 0: pass, 1: SLA missed, 2: bad arguments.",
                                formatter_class=fmt)
    rep.add_argument("model", help="exported .onnx or .pte model, architecture JSON, search result JSON or "
                                   "run folder")
    rep.add_argument("--budget-us", type=float, required=True, help="latency budget in microseconds")
    rep.add_argument("--runtime", default=None,
                     help="onnxruntime, executorch or eager (None: the --profile's runtime, else "
                          "executorch for a .pte, onnxruntime otherwise)")
    rep.add_argument("--threads", type=int, default=1, help="threads of the runtime (at most the cores)")
    rep.add_argument("--force-threads", action="store_true", help="allow more threads than cores")
    rep.add_argument("--batch", type=int, default=1, help="windows per call")
    rep.add_argument("--percentile", type=float, default=99.0, help="the SLA percentile")
    rep.add_argument("--repeats", type=int, default=10_000,
                     help=f"timed calls in all (over {REPEATS_UNCONFIRMED:,} needs --yes)")
    rep.add_argument("--yes", action="store_true", help="confirm a --repeats over the bound")
    rep.add_argument("--bursts", type=int, default=5, help="bursts the calls are split into")
    rep.add_argument("--warmup", type=int, default=None, help="warm-up calls before each burst (None: 10)")
    rep.add_argument("--warmup-ms", type=float, default=None, help="warm-up time before each burst in ms (None: 5)")
    rep.add_argument("--profile", help="hardware profile JSON: adds the LUT prediction and memory budget")
    rep.add_argument("--memory-budget-bytes", type=int, default=None, help="memory budget (None: the profile's)")
    rep.add_argument("--rank", type=int, default=None, help="row of a search result's front (see export)")
    rep.add_argument("--target", default=None, help="which run of a folder holding several")
    rep.add_argument("--weights", help="state dict for an architecture file")
    rep.add_argument("--seed", type=int, default=0, help="weights and input seed")
    rep.add_argument("--json", action="store_true", help="print the report as JSON on stdout (no samples)")
    rep.add_argument("--json-out", default=None, help="also write the report (with raw samples) to this file")
    rep.set_defaults(handler=cmd_report)
