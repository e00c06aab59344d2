"""Command line: ``python -m hwnas <command>`` (or the ``hwnas`` script).

Commands:
  space    describe a named search space
  sample   draw an architecture and write its JSON
  cost     FLOPs, parameters and memory of an architecture JSON file
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .cost import BYTES_PER_VALUE, cost_breakdown, count_flops, count_params, memory_footprint
from .space import Architecture, SearchSpace

SPACE_NAMES = ("default", "fpga", "mobile", "gpu")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input exits with status 2 and a one-line message."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except ValueError as err:
        print(f"hwnas {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
