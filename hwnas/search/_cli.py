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
import sys
from pathlib import Path
from typing import Any

from .._cli import DefaultsFormatter
from .weights import WEIGHTS_SAVE

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``search`` command to the ``hwnas`` command line.

    Taught in: notebooks/07_pareto.
    """
    p = subparsers.add_parser("search", help="search a space for fast, accurate architectures; save the front",
                              description="Run hwnas.search, print the Pareto front as a table, save the result "
                                          "and the front models' trained weights (RESULT.weights/) beside it.",
                              formatter_class=DefaultsFormatter)
    p.add_argument("--strategy", default="evolution", help="random, evolution, surrogate, optuna, tpe, pymoo, "
                                                            "mnasnet, fbnet, scaling "
                                                            "(fbnet trains one supernet: --evals caps its "
                                                            "sampled architectures, it may use fewer)")
    p.add_argument("--budget-us", type=float, required=True, help="latency budget T in microseconds")
    p.add_argument("--evals", type=int, required=True, help="number of evaluations")
    p.add_argument("--profile", required=True, help="hardware profile JSON (hwnas profile-cpu --out ...); "
                                                    "checked against --space before the search")
    p.add_argument("--data", default=None, help="kline CSV file or a folder of recorded files "
                                               "(None: recorded, cached, live, else synthetic)")
    p.add_argument("--space", default="default", help="default, fpga, mobile or gpu")
    p.add_argument("--store", default=None, help="SQLite evaluation store, resumes a killed search "
                                                 "(None: OUT with the suffix .sqlite)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, help="evaluate on a local process pool")
    where.add_argument("--scheduler", default=None, help="dask scheduler address, e.g. tcp://scheduler:8786")
    p.add_argument("--constraint", default="soft", help="soft (MnasNet reward) or hard")
    p.add_argument("--memory-budget", type=int, default=None, help="memory budget in bytes (third objective)")
    p.add_argument("--batch-size", type=int, default=8, help="candidates per round")
    p.add_argument("--seed", type=int, default=0, help="seed of the strategy (an integer >= 0)")
    p.add_argument("--out", required=True, help="result JSON file")
    p.add_argument("--save-weights", choices=WEIGHTS_SAVE, default="front",
                   help="train the front's models (or the best one) with the proxy recipe and save their "
                        "weights in OUT's .weights folder, for hwnas export")
    p.add_argument("--plot", default=None, help="also draw the front to this image file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
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
        from ..data.loader import find_recorded_file

        if find_recorded_file(path, "BTCUSDT", "15") is None:  # before load_klines, which would fall back
            raise ValueError(f"--data {data!r}: no recorded BTCUSDT 15-minute file (BTCUSDT_15m_*.csv) in "
                             f"that folder")
        loaded = load_klines("BTCUSDT", "15", recorded_dir=path, offline=True)
        frame, source = loaded.frame, loaded.description
    elif path.is_file():
        try:
            frame, source = read_kline_csv(path), f"kline CSV {path}"
        except ValueError as err:
            raise ValueError(f"--data: {err}") from None
    else:
        raise ValueError(f"--data {data!r} is neither a file nor a folder")
    if progress:
        print(f"Data source: {source}: {len(frame):,} candles", file=sys.stderr)
    return make_proxy_task(frame, lookback=lookback, source=source), source


def _run(args: argparse.Namespace) -> int:
    """The ``search`` command's handler (exit status 0; ValueError for bad arguments)."""
    from ..checks import check_profile_covers, require_choice, require_int, require_positive
    from ..fileio import check_out_dir, check_writable
    from ..space import SearchSpace
    from .base import CONSTRAINTS, get_strategy
    from .weights import weights_folder

    out = check_writable(args.out, "--out")
    plot = check_writable(args.plot, "--plot") if args.plot else None
    require_positive(args.budget_us, "--budget-us")
    require_int(args.evals, "--evals", 1)
    require_int(args.batch_size, "--batch-size", 1)
    require_int(args.seed, "--seed", 0)
    require_choice(args.constraint, "--constraint", CONSTRAINTS)
    require_choice(args.space, "--space", ("default", "fpga", "mobile", "gpu"))
    if args.workers is not None:
        require_int(args.workers, "--workers", 1)
    if args.memory_budget is not None:
        require_int(args.memory_budget, "--memory-budget", 1)
    store = check_writable(args.store or out.with_suffix(".sqlite"), "--store")
    weights = weights_folder(out)
    if args.save_weights != "none":
        check_out_dir(weights, "--out (its .weights folder)")
    try:
        get_strategy(args.strategy)  # an unknown strategy fails before any work
    except ValueError as err:
        raise ValueError(f"--strategy: {err}") from None
    profile = load_profile_option(args.profile)
    check_profile_covers(profile, SearchSpace.named(args.space), "--profile")
    task, _ = _task(args.data, args.space, not args.quiet)
    space = SearchSpace.named(args.space, input_features=task.num_features)
    executor, closer = _executor(args)
    try:
        from .loop import search

        result = search(space, profile, args.budget_us, args.evals, strategy=args.strategy, task=task,
                        seed=args.seed, executor=executor, store=store,
                        memory_budget=args.memory_budget, constraint=args.constraint,
                        batch_size=args.batch_size, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\nevery finished evaluation is kept in {store}: the same command resumes the search",
              file=sys.stderr)
        raise
    finally:
        closer()
    print(result.summary())
    if args.save_weights != "none":
        chosen = list(result) if args.save_weights == "front" else [m for m in [result.best()] if m is not None]
        _save_weights([m.arch for m in chosen], task, weights, result.run.eval_seed)
        print(f"wrote the trained weights of {len(chosen)} model(s) to {weights}/")
    result.save(out)
    print(f"wrote {out} (evaluations in {store})")
    if plot is not None:
        _plot(result, plot)
        print(f"wrote {plot}")
    return 0


def load_profile_option(path: str, option: str = "--profile") -> Any:
    """The profile file of ``option``, an analytical one rebuilt with its model (ValueError naming
    ``option`` and the file when it cannot be read or parsed).

    Taught in: notebooks/07_pareto.
    """
    from ..hardware import HardwareProfile

    try:
        profile = HardwareProfile.load(path)
        if profile.is_model:  # an analytical model (GPU, FPGA) comes back with its model, not a bare table
            from ..targets.profiles import AnalyticalProfile

            profile = AnalyticalProfile.load(path)
    except OSError as exc:
        raise ValueError(f"{option} {path!r} cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None
    return profile


def _save_weights(archs: list[Any], task: Any, folder: Path, seed: int) -> None:
    """Train and save ``archs``' weights in ``folder``; on any error (Ctrl-C included) remove the folder."""
    import shutil

    from .weights import save_trained

    existed = folder.is_dir()
    try:
        save_trained(archs, task, folder, seed)
    except BaseException:
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise


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
