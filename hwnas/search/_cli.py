"""``python -m hwnas search``: run a search from the command line, print the front, save the result.

Taught in: notebooks/07_pareto.

    python -m hwnas search --strategy evolution --budget-us 800 --evals 300 \\
        --profile cpu.json --store evals.sqlite --workers 2 --out result.json --plot front.png

``--workers N`` evaluates on a local process pool; ``--scheduler tcp://host:8786``
on a dask cluster (``distributed.Client(address).get_executor()``). The
output paths are checked before any work, written atomically, and bad
arguments end with one line naming the argument (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``search`` command to the ``hwnas`` command line.

    Taught in: notebooks/07_pareto.
    """
    p = subparsers.add_parser("search", help="search a space for fast, accurate architectures; save the front",
                              description="Run hwnas.search and print the Pareto front as a table.")
    p.add_argument("--strategy", default="evolution", help="random, evolution, optuna, mnasnet, ... "
                                                            "(default evolution)")
    p.add_argument("--budget-us", type=float, required=True, help="latency budget T in microseconds")
    p.add_argument("--evals", type=int, required=True, help="number of evaluations")
    p.add_argument("--profile", required=True, help="hardware profile JSON (hwnas profile-cpu --out ...)")
    p.add_argument("--data", default=None, help="kline CSV file or a folder of recorded files "
                                               "(default: recorded, cached, live, else synthetic)")
    p.add_argument("--space", default="default", help="default, fpga, mobile or gpu")
    p.add_argument("--store", default=None, help="SQLite evaluation store (resumes a killed search)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, help="evaluate on a local process pool")
    where.add_argument("--scheduler", default=None, help="dask scheduler address, e.g. tcp://scheduler:8786")
    p.add_argument("--constraint", default="soft", help="soft (MnasNet reward) or hard")
    p.add_argument("--memory-budget", type=int, default=None, help="memory budget in bytes (third objective)")
    p.add_argument("--batch-size", type=int, default=8, help="candidates per round")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="result JSON file")
    p.add_argument("--plot", default=None, help="also draw the front to this image file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run)


def _task(data: str | None, space_name: str, progress: bool) -> tuple[Any, str]:
    """The proxy task from ``--data`` (a CSV file or a recorded folder), else the default one."""
    from ..data.cache import read_kline_csv
    from ..data.loader import load_klines
    from ..proxy.task import make_proxy_task
    from ..space import SearchSpace
    from .loop import default_task

    lookback = max(SearchSpace.named(space_name).lookbacks)
    if data is None:
        return default_task(SearchSpace.named(space_name), progress)
    path = Path(data)
    if path.is_dir():
        loaded = load_klines("BTCUSDT", "15", recorded_dir=path, offline=True)
        if loaded.source != "recorded":
            raise ValueError(f"--data {data!r}: no recorded BTCUSDT 15-minute file in that folder")
        frame, source = loaded.frame, loaded.description
    elif path.is_file():
        frame, source = read_kline_csv(path), f"kline CSV {path}"
    else:
        raise ValueError(f"--data {data!r} is neither a file nor a folder")
    print(f"Data source: {source}: {len(frame):,} candles")
    return make_proxy_task(frame, lookback=lookback, source=source), source


def _run(args: argparse.Namespace) -> int:
    """The ``search`` command's handler (exit status 0; ValueError for bad arguments)."""
    from ..checks import require_choice, require_int, require_positive
    from ..fileio import check_writable
    from ..hardware import HardwareProfile
    from ..space import SearchSpace
    from .base import CONSTRAINTS, get_strategy

    out = check_writable(args.out, "--out")
    plot = check_writable(args.plot, "--plot") if args.plot else None
    require_positive(args.budget_us, "--budget-us")
    require_int(args.evals, "--evals", 1)
    require_int(args.batch_size, "--batch-size", 1)
    require_choice(args.constraint, "--constraint", CONSTRAINTS)
    require_choice(args.space, "--space", ("default", "fpga", "mobile", "gpu"))
    if args.workers is not None:
        require_int(args.workers, "--workers", 1)
    if args.memory_budget is not None:
        require_int(args.memory_budget, "--memory-budget", 1)
    if args.store:
        check_writable(args.store, "--store")
    get_strategy(args.strategy)  # an unknown strategy fails before any work
    try:
        profile = HardwareProfile.load(args.profile)
        if profile.is_model:  # an analytical model (GPU, FPGA) comes back with its model, not a bare table
            from ..targets.profiles import AnalyticalProfile

            profile = AnalyticalProfile.load(args.profile)
    except OSError as exc:
        raise ValueError(f"--profile {args.profile!r} cannot be read: {exc.strerror}") from None
    task, _ = _task(args.data, args.space, not args.quiet)
    space = SearchSpace.named(args.space, input_features=task.num_features)
    executor, closer = _executor(args)
    try:
        from .loop import search

        result = search(space, profile, args.budget_us, args.evals, strategy=args.strategy, task=task,
                        seed=args.seed, executor=executor, store=args.store,
                        memory_budget=args.memory_budget, constraint=args.constraint,
                        batch_size=args.batch_size, progress=not args.quiet)
    finally:
        closer()
    print(result.summary())
    result.save(out)
    print(f"wrote {out}")
    if plot is not None:
        _plot(result, plot)
        print(f"wrote {plot}")
    return 0


def _executor(args: argparse.Namespace) -> tuple[Any, Any]:
    """The executor of ``--workers``/``--scheduler`` and a function that shuts it down."""
    if args.workers:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(args.workers)
        return pool, pool.shutdown
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--scheduler needs dask: pip install hwnas[distributed]") from None
        client = Client(args.scheduler)
        return client.get_executor(), client.close
    return None, lambda: None


def _plot(result: Any, path: Path) -> None:
    """Draw the front (and every evaluation) to ``path``, atomically (without pyplot)."""
    from ..fileio import write_bytes_atomic
    from ..plots.capstone import search_front
    from ..plots.foundations import png_bytes

    write_bytes_atomic(path, png_bytes(lambda ax: search_front(
        result, title=f"{result.run.strategy}: {len(result)} on the front", ax=ax), dpi=120))
