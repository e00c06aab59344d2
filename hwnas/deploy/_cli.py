"""The ``export`` and ``report`` commands of ``hwnas`` (registered by :mod:`hwnas.__main__`).

Taught in: notebooks/11_deployment.

``hwnas export ARCH.json [--weights W.pt] --out model.onnx`` writes a checked
ONNX (or, for ``.pt2``, ``torch.export``) file; ``hwnas report ARCH.json|model.onnx
--budget-us N [--runtime onnxruntime] [--threads 1]`` measures the deployed model
and exits 0 when it meets the budget at the SLA percentile, 1 when it misses,
2 on bad arguments (a ValueError naming the argument, printed as one line).
Heavy packages are imported inside the handlers, so ``hwnas --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register", "cmd_export", "cmd_report"]


def _load_model(arch_path: str, weights: str | None, seed: int) -> Any:
    """The model of an architecture file, with the weights of ``--weights`` when given."""
    import torch

    from ..architecture import Architecture
    from ..model import build_model

    try:
        arch = Architecture.load(arch_path)
    except OSError as err:
        raise ValueError(f"cannot read architecture file {arch_path}: {err.strerror or err}") from None
    model = build_model(arch, seed=seed)
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (OSError, RuntimeError, KeyError, TypeError, AttributeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"--weights {weights!r}: not a state dict of this architecture ({first})") from None
        model.eval()
    return model


def cmd_export(args: argparse.Namespace) -> int:
    """Export an architecture (with trained weights) to ONNX or torch.export, checked; exit 0.

    Taught in: notebooks/11_deployment.
    """
    from ..fileio import check_writable
    from .export import export

    out = check_writable(args.out, "--out")
    if out.suffix not in (".onnx", ".pt2"):
        raise ValueError(f"--out {args.out!r} must end in .onnx (ONNX) or .pt2 (torch.export)")
    model = _load_model(args.arch, args.weights, args.seed)
    result = export(model, out, format="onnx" if out.suffix == ".onnx" else "torch.export",
                    check=not args.no_check, seed=args.seed)
    print(result.summary())
    return 0


def _check_report_args(args: argparse.Namespace) -> None:
    """Validate the numbers of ``report`` with the options' own names."""
    from ..checks import require_float, require_int, require_positive

    require_positive(args.budget_us, "--budget-us")
    require_int(args.threads, "--threads", 1)
    require_int(args.batch, "--batch", 1)
    require_int(args.repeats, "--repeats", 1)
    require_int(args.bursts, "--bursts", 1, args.repeats)
    require_float(args.percentile, "--percentile", minimum=0.0, maximum=100.0)
    if args.memory_budget_bytes is not None:
        require_int(args.memory_budget_bytes, "--memory-budget-bytes", 1)
    if args.json is not None:
        from ..fileio import check_writable

        check_writable(args.json, "--json")


def cmd_report(args: argparse.Namespace) -> int:
    """Measure a deployed model against a latency budget: exit 0 on pass, 1 on a miss.

    Taught in: notebooks/11_deployment.
    """
    _check_report_args(args)
    from ..latency.spec import TimingSpec, timing_from_options
    from ..runtime import get_runtime
    from .sla import sla_report

    timing = timing_from_options(TimingSpec.SLA, {"warmup": args.warmup, "warmup_ms": args.warmup_ms})
    try:
        runtime = get_runtime(args.runtime, args.threads)
    except ValueError as err:
        raise ValueError(f"--runtime: {err}") from None
    path = Path(args.model)
    if path.suffix == ".onnx":
        if args.weights is not None:
            raise ValueError("--weights applies to an architecture file, not to an .onnx model")
        if not path.is_file():
            raise ValueError(f"model {args.model!r}: no such file")
        deployable: Any = path
    else:
        deployable = _load_model(args.model, args.weights, args.seed)
    profile = None
    if args.profile is not None:
        from ..hardware import HardwareProfile

        try:
            profile = HardwareProfile.load(args.profile)
        except OSError as err:
            raise ValueError(f"--profile {args.profile!r}: {err.strerror or err}") from None
    report = sla_report(deployable, args.budget_us, runtime=runtime, threads=args.threads, batch=args.batch,
                        profile=profile, memory_budget_bytes=args.memory_budget_bytes,
                        percentile=args.percentile, repeats=args.repeats, bursts=args.bursts,
                        label=path.name, seed=args.seed, timing=timing)
    print(report.summary())
    if args.json is not None:
        import json

        from ..fileio import write_text_atomic

        write_text_atomic(args.json, json.dumps(report.to_dict(), indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0 if report.passed else 1


def register(subparsers: Any) -> None:
    """Add ``export`` and ``report`` to the ``hwnas`` command line.

    Taught in: notebooks/11_deployment.
    """
    exp = subparsers.add_parser("export", help="export an architecture to ONNX (.onnx) or torch.export (.pt2)",
                                description="Export an architecture's model, check the file against eager "
                                            "PyTorch, and write it atomically.")
    exp.add_argument("arch", help="architecture JSON file")
    exp.add_argument("--weights", help="state dict saved with torch.save(model.state_dict()); "
                                       "default: fresh weights from --seed")
    exp.add_argument("--out", required=True, help="file to write: .onnx or .pt2")
    exp.add_argument("--seed", type=int, default=0, help="weights seed when --weights is not given")
    exp.add_argument("--no-check", action="store_true", help="skip the reload-and-compare check")
    exp.set_defaults(handler=cmd_export)

    rep = subparsers.add_parser("report", help="latency SLA report of a deployed model (exit 1 on a miss)",
                                description="Time a deployed model and judge its tail latency against a budget. "
                                            "Exit 0: pass, 1: SLA missed, 2: bad arguments.")
    rep.add_argument("model", help="architecture JSON file or exported .onnx model")
    rep.add_argument("--budget-us", type=float, required=True, help="latency budget in microseconds")
    rep.add_argument("--runtime", default="onnxruntime", help="onnxruntime (default) or eager")
    rep.add_argument("--threads", type=int, default=1)
    rep.add_argument("--batch", type=int, default=1)
    rep.add_argument("--percentile", type=float, default=99.0, help="the SLA percentile (default 99)")
    rep.add_argument("--repeats", type=int, default=10_000, help="timed calls in all")
    rep.add_argument("--bursts", type=int, default=5, help="bursts the calls are split into")
    rep.add_argument("--warmup", type=int, default=None, help="warm-up calls before each burst (default 10)")
    rep.add_argument("--warmup-ms", type=float, default=None, help="warm-up time before each burst in ms (default 5)")
    rep.add_argument("--profile", help="hardware profile JSON: adds the LUT prediction and memory budget")
    rep.add_argument("--memory-budget-bytes", type=int, default=None)
    rep.add_argument("--weights", help="state dict for an architecture file")
    rep.add_argument("--seed", type=int, default=0, help="weights and input seed")
    rep.add_argument("--json", help="also write the report (with raw samples) here")
    rep.set_defaults(handler=cmd_report)
