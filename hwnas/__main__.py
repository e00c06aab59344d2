"""Command line: ``python -m hwnas <command>`` (or the ``hwnas`` script).

Taught in: notebooks/01_search_space (sample, cost) and notebooks/04_latency_lut
(profile-cpu, predict).

Commands:
  space        describe a named search space
  sample       draw an architecture; its JSON to stdout (--json) or a file (--out)
  cost         FLOPs, parameters and memory of an architecture JSON file
  profile-cpu  measure this CPU's latency lookup table for a space, save the profile
  predict      predicted latency and feasibility of an architecture on a saved profile
  fetch        download Bybit V5 klines into the disk cache

More commands come from plug-in modules (:data:`_PLUGIN_MODULES`): each has a
``register(subparsers)`` that adds its parsers with
``parser.set_defaults(handler=fn)``, ``fn(args) -> int`` being the exit status.
Every plug-in is part of the package: a missing one is an error, never skipped.
Plug-ins import heavy packages inside their handlers, so ``--help`` stays fast.

Errors: bad input (ValueError), an unreadable or unwritable user path (OSError)
or a refused Bybit request print one line ``hwnas <command>: error: ...`` and
exit 2; Ctrl-C prints one line and exits 130; a closed pipe (``| head``) ends
quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__
from ._cli import DefaultsFormatter
from .architecture import DEFAULT_INPUT_FEATURES, Architecture
from .cost import Precision
from .space import SearchSpace, SpaceName

SPACE_NAMES = tuple(name.value for name in SpaceName)
PRECISIONS = tuple(precision.value for precision in Precision)
BUDGETS = ("edge", "server")
_PLUGIN_MODULES = ("hwnas.search._cli", "hwnas.deploy._cli", "hwnas.pipeline._cli")

Handler = Callable[[argparse.Namespace], int]

__all__ = ["build_parser", "int_at_least", "load_arch_file", "main"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``minimum`` (argparse names the option on error).

    Taught in: notebooks/01_search_space.
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def load_arch_file(path: str | os.PathLike[str]) -> Architecture:
    """Read an architecture JSON file, naming the file in any error (ValueError).

    Taught in: notebooks/01_search_space.
    """
    try:
        return Architecture.load(path)
    except OSError as err:
        raise ValueError(f"cannot read architecture file {path}: {err.strerror or err}") from None


def _print_json(data: object) -> None:
    """``data`` as indented JSON on stdout (the ``--json`` output of the read-only commands)."""
    import json

    print(json.dumps(data, indent=1, allow_nan=False, default=str))


def cmd_space(args: argparse.Namespace) -> int:
    """Print a search space's summary and candidates."""
    space = SearchSpace.named(args.name, input_features=args.features)
    if args.json:
        _print_json({"name": space.name, "summary": space.summary(),
                     "candidates": [choice.label() for choice in space.candidates()]})
        return 0
    print(space.summary())
    for index, choice in enumerate(space.candidates()):
        print(f"{index:>3}  {choice.label()}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Sample an architecture; print its JSON (``--json``), write it (``--out``), or describe it."""
    import numpy as np

    if args.out:
        from .fileio import check_writable

        check_writable(args.out, "--out")
    space = SearchSpace.named(args.space, input_features=args.features)
    arch = space.sample(np.random.default_rng(args.seed))
    if args.out:
        arch.save(args.out)
    if args.json:  # stdout holds the JSON only, so it can be piped or redirected
        print(arch.to_json(indent=2))
        return 0
    if args.out:
        print(f"wrote {args.out}")
    print(arch.summary())
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    """Print the cost table of an architecture file (everything computed before printing)."""
    from .cost import cost_breakdown, count_flops, count_params, memory_footprint

    arch = load_arch_file(args.arch)
    rows = cost_breakdown(arch)
    mem = memory_footprint(arch, args.precision, args.batch)
    if args.json:
        _print_json({"architecture": arch.label(), "flops": count_flops(arch, args.batch),
                     "params": count_params(arch), "precision": args.precision, "batch": args.batch,
                     "params_bytes": mem.params_bytes, "activation_bytes": mem.activation_bytes,
                     "total_bytes": mem.total_bytes,
                     "layers": [{"name": r.name, "flops": r.flops, "params": r.params} for r in rows]})
        return 0
    lines = [arch.summary(), f"{'layer':<18}{'FLOPs':>14}{'params':>10}"]
    lines += [f"{row.name:<18}{row.flops:>14,}{row.params:>10,}" for row in rows]
    lines += [
        f"total FLOPs (batch {args.batch}): {count_flops(arch, args.batch):,}",
        f"parameters: {count_params(arch):,}",
        f"memory ({args.precision}, batch {args.batch}): params {mem.params_bytes:,} B + peak activations "
        f"{mem.activation_bytes:,} B = {mem.total_bytes:,} B (eager PyTorch peak "
        f"{mem.eager_activation_bytes:,} B)",
    ]
    print("\n".join(lines))
    return 0


def cmd_profile_cpu(args: argparse.Namespace) -> int:
    """Measure and save a CPU hardware profile (the output path is checked first)."""
    from .fileio import check_writable

    out = check_writable(args.out, "--out")
    cores = os.cpu_count() or 1
    if args.threads > cores and not args.force_threads:
        raise ValueError(f"--threads {args.threads} is more than this machine's {cores} cores; "
                         f"pass --force-threads to oversubscribe")
    if args.budget == "edge" and args.threads != 1:
        raise ValueError(f"--budget edge is the 1-thread phone case; drop --threads {args.threads} "
                         f"or use --budget server")
    from .latency.cpu import profile_cpu, profile_cpu_edge
    from .latency.lut import SERVER_MEMORY_BUDGET
    from .latency.spec import TimingSpec, timing_from_options
    from .runtime import get_runtime

    timing = timing_from_options(TimingSpec.TABLE, {name: getattr(args, name, None) for name in TIMING_OPTIONS})
    runtime = get_runtime(args.runtime, args.threads)  # fails early if not installed
    space = SearchSpace.named(args.space, input_features=args.features)
    progress = not args.quiet
    if args.budget == "edge":
        profile = profile_cpu_edge(space, batch=args.batch, progress=progress, runtime=runtime, timing=timing)
    else:
        profile = profile_cpu(space, threads=args.threads, batch=args.batch, memory_budget_bytes=SERVER_MEMORY_BUDGET,
                              progress=progress, runtime=runtime, timing=timing)
    profile.save(out)
    print(profile.summary())
    print(f"wrote {out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Print an architecture's predicted latency and feasibility on a profile."""
    from .hardware import HardwareProfile

    arch = load_arch_file(args.arch)
    try:
        profile = HardwareProfile.load(args.profile)
    except OSError as err:
        raise ValueError(f"cannot read profile {args.profile}: {err.strerror or err}") from None
    missing = profile.missing(arch, args.batch)
    if missing:
        raise ValueError(profile.coverage_error(arch, args.batch))
    latency = profile.predict_latency(arch, batch=args.batch)
    problems = profile.check(arch, batch=args.batch)
    if args.json:
        _print_json({"profile": profile.label, "architecture": arch.label(), "batch": args.batch,
                     "predicted_us": latency, "feasible": not problems, "problems": problems})
        return 0
    print(f"{profile.label}: predicted {latency:.1f} µs at batch {args.batch}")
    print("feasible" if not problems else "infeasible: " + "; ".join(problems))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Fetch klines from Bybit into the cache and report what is cached."""
    from .data.klines import normalize_interval
    from .data.loader import OFFLINE_ENV, offline_from_env

    normalize_interval(args.interval)  # a bad --interval is named before anything else
    if offline_from_env():
        raise ValueError(f"{OFFLINE_ENV}=1 is set: no network requests; unset it to fetch")
    from .data.cache import KlineCache

    cache = KlineCache(args.cache_dir)
    frame = cache.update(args.symbol, args.interval, category=args.category, limit=args.limit,
                         base_url=args.base_url)
    path = cache.path_for(args.symbol, args.interval, args.category)
    print(f"{len(frame):,} candles of {args.category} {args.symbol} {args.interval} "
          f"from {frame.index[0]} to {frame.index[-1]} in {path}")
    return 0


TIMING_OPTIONS = ("passes", "target_ms", "min_reps", "max_reps", "warmup", "warmup_ms", "estimator", "seed")
"""The fields of :class:`hwnas.latency.TimingSpec` that ``profile-cpu`` takes as options."""


def _add_timing(parser: argparse.ArgumentParser) -> None:
    """The table's timing options; each left out keeps ``TimingSpec.TABLE``'s value (checked in the handler)."""
    group = parser.add_argument_group("timing (default: hwnas.latency.TimingSpec.TABLE)")
    unset = argparse.SUPPRESS
    group.add_argument("--passes", type=int, default=unset, help="shuffled passes over the table (default 8)")
    group.add_argument("--target-ms", type=float, default=unset, help="timed-call time per entry in ms (default 12)")
    group.add_argument("--min-reps", type=int, default=unset, help="fewest timed calls per entry (default 24)")
    group.add_argument("--max-reps", type=int, default=unset, help="most timed calls per entry (default 1000)")
    group.add_argument("--warmup", type=int, default=unset, help="warm-up calls before the first pass (default 3)")
    group.add_argument("--warmup-ms", type=float, default=unset,
                       help="warm-up time before the first pass in ms (default 1)")
    group.add_argument("--estimator", default=unset,
                       help="the table's statistic: min (fastest call, the default), median or best_median")
    group.add_argument("--seed", type=int_at_least(0), default=unset,
                       help="seed of the passes' order, the weights and the calibration models (default 0)")


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _add_features(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--features", type=int_at_least(1), default=DEFAULT_INPUT_FEATURES,
                        help="input features (channels) of every architecture; the default is the "
                             "proxy task's feature count")


def _add_core_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The built-in subcommands."""
    fmt = DefaultsFormatter
    space = sub.add_parser("space", help="describe a named search space", formatter_class=fmt)
    space.add_argument("--name", choices=SPACE_NAMES, default="default", help="which space")
    _add_features(space)
    _add_json(space)
    space.set_defaults(handler=cmd_space)

    sample = sub.add_parser("sample", help="sample an architecture (JSON with --json or --out)",
                            formatter_class=fmt)
    sample.add_argument("--space", choices=SPACE_NAMES, default="default", help="space to sample from")
    _add_features(sample)
    sample.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the sampler")
    sample.add_argument("--json", action="store_true", help="print only the architecture's JSON to stdout")
    sample.add_argument("--out", default=None, help="write the architecture JSON to this file")
    sample.set_defaults(handler=cmd_sample)

    cost = sub.add_parser("cost", help="FLOPs, parameters and memory of an architecture JSON",
                          formatter_class=fmt)
    cost.add_argument("arch", help="architecture JSON file (from `hwnas sample --out`)")
    cost.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bytes per stored value")
    cost.add_argument("--batch", type=int_at_least(1), default=1, help="batch size")
    _add_json(cost)
    cost.set_defaults(handler=cmd_cost)

    prof = sub.add_parser("profile-cpu", help="measure this CPU's latency table for a space",
                          formatter_class=fmt)
    prof.add_argument("--space", choices=SPACE_NAMES, default="default", help="space whose ops are timed")
    _add_features(prof)
    prof.add_argument("--threads", type=int_at_least(1), default=1, help="torch threads (edge: 1; at most the cores)")
    prof.add_argument("--force-threads", action="store_true", help="allow more threads than this machine's cores")
    prof.add_argument("--batch", type=int_at_least(1), default=1, help="batch size")
    prof.add_argument("--budget", choices=BUDGETS, default="server",
                      help="memory budget: edge (1 thread, 10 MiB app limit, profile cpu-1thread-edge) "
                           "or server (4 GiB, profile cpu-<threads>thread-b<batch>)")
    prof.add_argument("--runtime", default="eager",
                      help="what runs the ops: eager (PyTorch), onnxruntime (needs hwnas[deploy]) or executorch "
                           "(XNNPACK, the phone; needs hwnas[mobile])")
    _add_timing(prof)
    prof.add_argument("--out", required=True, help="profile JSON to write (checked before measuring)")
    prof.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    prof.set_defaults(handler=cmd_profile_cpu)

    predict = sub.add_parser("predict", help="predicted latency of an architecture on a profile",
                             formatter_class=fmt)
    predict.add_argument("arch", help="architecture JSON file")
    predict.add_argument("--profile", required=True, help="hardware profile JSON file (from profile-cpu)")
    predict.add_argument("--batch", type=int_at_least(1), default=1, help="batch size")
    _add_json(predict)
    predict.set_defaults(handler=cmd_predict)

    fetch = sub.add_parser("fetch", help="download Bybit V5 klines into the disk cache (not with HWNAS_OFFLINE=1)",
                           formatter_class=fmt)
    fetch.add_argument("symbol", help="e.g. BTCUSDT")
    fetch.add_argument("--interval", default="15", help="Bybit interval: 1 3 5 15 30 60 120 240 360 720 D W M")
    fetch.add_argument("--category", choices=("linear", "inverse", "spot"), default="linear",
                       help="Bybit market category")
    fetch.add_argument("--limit", type=int_at_least(1), default=1000, help="candles to fetch")
    fetch.add_argument("--cache-dir", default=None,
                       help="cache folder (None: $HWNAS_CACHE_DIR or ~/.cache/hwnas/klines)")
    fetch.add_argument("--base-url", default="https://api.bybit.com", help="Bybit API root")
    fetch.set_defaults(handler=cmd_fetch)


def _register_plugins(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Let each plug-in module add its subcommands (a missing module raises ModuleNotFoundError)."""
    for name in _PLUGIN_MODULES:
        importlib.import_module(name).register(sub)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command line, plug-in subcommands included.

    Taught in: notebooks/01_search_space.
    """
    parser = argparse.ArgumentParser(prog="hwnas", description="Hardware-aware NAS for trading models")
    parser.add_argument("--version", action="version", version=f"hwnas {__version__}")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", action="store_true",
                       help="more detail: a failing command also prints its traceback")
    level.add_argument("-q", "--quiet", dest="global_quiet", action="store_true",
                       help="less output: no progress, no warnings (every command's --quiet, and more)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    _add_core_commands(sub)
    _register_plugins(sub)
    for command in sub.choices.values():  # `hwnas search -v ...` as well as `hwnas -v search ...`
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="more detail: a failing command also prints its traceback")
    return parser


def _is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is the user's input to report in one line (not a bug to show in full)."""
    if isinstance(err, (ValueError, OSError)):
        return True
    bybit = sys.modules.get("hwnas.data.bybit")  # loaded only if a command used the network
    return bybit is not None and isinstance(err, bybit.BybitAPIError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status (see the module docstring for errors).

    Taught in: notebooks/01_search_space.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    if args.global_quiet:
        import warnings

        warnings.simplefilter("ignore")
        if hasattr(args, "quiet"):
            args.quiet = True
    try:
        code = handler(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print(f"\nhwnas {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): what it read was complete; point stdout at devnull so
        # the exit flush is quiet, and exit 0 as `cat` under `head` does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as err:
        if not _is_user_error(err):
            raise
        if args.verbose:
            import traceback

            traceback.print_exc()
        print(f"hwnas {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
