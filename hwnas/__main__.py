"""Command line: ``python -m hwnas <command>`` (or the ``hwnas`` script).

Commands:
  space        describe a named search space
  sample       draw an architecture and write its JSON
  cost         FLOPs, parameters and memory of an architecture JSON file
  profile-cpu  measure this CPU's latency lookup table for a space, save the profile
  predict      predicted latency and feasibility of an architecture on a saved profile
  fetch        download Bybit V5 klines into the disk cache
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .data.bybit import BybitAPIError
from .fileio import write_text_atomic
from .cost import BYTES_PER_VALUE, cost_breakdown, count_flops, count_params, memory_footprint
from .space import Architecture, SearchSpace

SPACE_NAMES = ("default", "fpga", "mobile", "gpu")


def _load_arch(path: str) -> Architecture:
    """Read an architecture JSON file, naming the file in any error."""
    try:
        return Architecture.from_json(Path(path).read_text())
    except OSError as err:
        raise ValueError(f"cannot read architecture file {path}: {err.strerror}") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def cmd_space(args: argparse.Namespace) -> None:
    """Print a search space's summary and candidates."""
    space = SearchSpace.named(args.name, input_features=args.features)
    print(space.summary())
    for index, choice in enumerate(space.candidates()):
        print(f"{index:>3}  {choice.label()}")


def cmd_sample(args: argparse.Namespace) -> None:
    """Sample architectures and print or write them."""
    space = SearchSpace.named(args.space, input_features=args.features)
    arch = space.sample(np.random.default_rng(args.seed))
    text = arch.to_json(indent=2)
    if args.out:
        write_text_atomic(Path(args.out), text + "\n")
        print(f"wrote {args.out}")
    print(arch.describe())


def cmd_cost(args: argparse.Namespace) -> None:
    """Print the cost table of an architecture file."""
    arch = _load_arch(args.arch)
    print(arch.describe())
    print(f"{'layer':<18}{'FLOPs':>14}{'params':>10}")
    for row in cost_breakdown(arch):
        print(f"{row.name:<18}{row.flops:>14,}{row.params:>10,}")
    mem = memory_footprint(arch, args.precision, args.batch)
    print(f"total FLOPs (batch {args.batch}): {count_flops(arch, args.batch):,}")
    print(f"parameters: {count_params(arch):,}")
    print(
        f"memory ({args.precision}): params {mem.params_bytes:,} B + peak activations "
        f"{mem.activation_bytes:,} B = {mem.total_bytes:,} B (eager PyTorch peak "
        f"{mem.eager_activation_bytes:,} B)"
    )


def cmd_profile_cpu(args: argparse.Namespace) -> None:
    """Measure and save a CPU hardware profile."""
    from .latency import EDGE_MEMORY_BUDGET, SERVER_MEMORY_BUDGET, profile_cpu

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    space = SearchSpace.named(args.space, input_features=args.features)
    budget = EDGE_MEMORY_BUDGET if args.budget == "edge" else SERVER_MEMORY_BUDGET
    profile = profile_cpu(space, threads=args.threads, batch=args.batch, memory_budget_bytes=budget,
                          progress=not args.quiet)
    profile.save(Path(args.out))
    print(profile.summary())
    print(f"wrote {args.out}")


def cmd_predict(args: argparse.Namespace) -> None:
    """Print an architecture's predicted latency and feasibility on a profile."""
    from .hardware import HardwareProfile

    arch = _load_arch(args.arch)
    try:
        profile = HardwareProfile.load(args.profile)
    except OSError as err:
        raise ValueError(f"cannot read profile {args.profile}: {err.strerror}") from None
    try:
        latency = profile.predict_latency(arch, batch=args.batch)
    except KeyError as err:
        raise ValueError(str(err.args[0]) if err.args else str(err)) from None
    problems = profile.check(arch, batch=args.batch)
    print(f"{profile.label}: predicted {latency:.1f} µs at batch {args.batch}")
    print("feasible" if not problems else "infeasible: " + "; ".join(problems))


def cmd_fetch(args: argparse.Namespace) -> None:
    """Fetch klines from Bybit into the cache and report what is cached."""
    from .data import KlineCache

    cache = KlineCache(args.cache_dir)
    frame = cache.update(args.symbol, args.interval, category=args.category, limit=args.limit,
                         base_url=args.base_url)
    path = cache.path_for(args.symbol, args.interval, args.category)
    print(f"{len(frame):,} candles of {args.category} {args.symbol} {args.interval} "
          f"from {frame.index[0]} to {frame.index[-1]} in {path}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command line."""
    parser = argparse.ArgumentParser(prog="hwnas", description="Hardware-aware NAS for trading models")
    sub = parser.add_subparsers(dest="command", required=True)

    space = sub.add_parser("space", help="describe a named search space")
    space.add_argument("--name", choices=SPACE_NAMES, default="default")
    space.add_argument("--features", type=int, default=8)
    space.set_defaults(func=cmd_space)

    sample = sub.add_parser("sample", help="sample an architecture")
    sample.add_argument("--space", choices=SPACE_NAMES, default="default")
    sample.add_argument("--features", type=int, default=8)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", help="write the architecture JSON here")
    sample.set_defaults(func=cmd_sample)

    cost = sub.add_parser("cost", help="FLOPs, parameters and memory of an architecture JSON")
    cost.add_argument("arch", help="architecture JSON file")
    cost.add_argument("--precision", choices=sorted(BYTES_PER_VALUE), default="fp32")
    cost.add_argument("--batch", type=int, default=1)
    cost.set_defaults(func=cmd_cost)

    prof = sub.add_parser("profile-cpu", help="measure this CPU's latency table for a space")
    prof.add_argument("--space", choices=SPACE_NAMES, default="default")
    prof.add_argument("--features", type=int, default=8)
    prof.add_argument("--threads", type=int, default=1)
    prof.add_argument("--batch", type=int, default=1)
    prof.add_argument("--budget", choices=("edge", "server"), default="server",
                      help="memory budget: edge (10 MB app limit) or server (4 GB)")
    prof.add_argument("--out", required=True, help="profile JSON to write")
    prof.add_argument("--quiet", action="store_true", help="no progress bar")
    prof.set_defaults(func=cmd_profile_cpu)

    predict = sub.add_parser("predict", help="predicted latency of an architecture on a profile")
    predict.add_argument("arch", help="architecture JSON file")
    predict.add_argument("--profile", required=True, help="hardware profile JSON file")
    predict.add_argument("--batch", type=int, default=1)
    predict.set_defaults(func=cmd_predict)

    fetch = sub.add_parser("fetch", help="download Bybit V5 klines into the disk cache")
    fetch.add_argument("symbol", help="e.g. BTCUSDT")
    fetch.add_argument("--interval", default="15")
    fetch.add_argument("--category", default="linear")
    fetch.add_argument("--limit", type=int, default=1000)
    fetch.add_argument("--cache-dir", default=None, help="default: $HWNAS_CACHE_DIR or ~/.cache/hwnas/klines")
    fetch.add_argument("--base-url", default="https://api.bybit.com")
    fetch.set_defaults(func=cmd_fetch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input or a refused request exits 2 with a one-line message."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except (ValueError, BybitAPIError) as err:
        print(f"hwnas {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
