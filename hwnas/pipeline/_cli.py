"""``hwnas run``: the whole pipeline for one target from the command line.

Taught in: notebooks/12_capstone.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._cli import DefaultsFormatter
from ..checks import require_choice, require_enum, require_float, require_int, require_optional_int, require_positive
from .plan import TARGET_NAMES
from .run import run_pipeline

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``run`` (the whole pipeline for one target) to the ``hwnas`` command line.

    Taught in: notebooks/12_capstone.
    """
    run = subparsers.add_parser(
        "run", help="the whole pipeline for one target: data, profile, search, retrain, export, report",
        description="Search one hardware target end to end and write <target>_summary.json and "
                    "<target>_front.png into --out-dir. Exit 0 when the chosen model meets the target's "
                    "budget, 1 when it misses, 2 on bad arguments. The trained chosen model is saved as "
                    "<target>_weights.pt: `hwnas export OUT_DIR --out model.onnx` deploys it.",
        formatter_class=DefaultsFormatter)
    run.add_argument("--target", required=True, help="cpu, gpu or fpga")
    run.add_argument("--task", default="volatility",
                     help="what is predicted: volatility (the next bars' realised volatility) or direction "
                          "(the next bar's sign, traded)")
    run.add_argument("--data", default=None,
                     help="a kline CSV file (any symbol and interval) or a folder of SYMBOL_LABEL*.csv files "
                          "(None: Bybit --symbol/--interval: recorded, cached, live, else synthetic)")
    run.add_argument("--symbol", default="BTCUSDT", help="Bybit symbol (of the Bybit data or the --data folder)")
    run.add_argument("--interval", default=None,
                     help="Bybit interval: 1 3 5 15 30 60 120 240 360 720 D W (None: 15, or a CSV's own)")
    run.add_argument("--out-dir", default="hwnas_run", help="folder for the outputs (created if its parent exists)")
    run.add_argument("--strategy", default=None, help="search strategy (None: the target's plan)")
    run.add_argument("--space", default=None,
                     help="search space: default, mobile, gpu or fpga (None: the target's plan; e.g. default on "
                          "a server CPU, where GRU and LSTM layers run in ONNX Runtime)")
    run.add_argument("--lookbacks", default=None,
                     help="the space's lookbacks in bars, comma-separated, e.g. 8,16,32 (None: the space's)")
    run.add_argument("--evals", type=int, default=40, help="architectures evaluated by the search")
    run.add_argument("--budget-us", type=float, default=None, help="latency budget, µs (None: the plan's)")
    run.add_argument("--tail-factor", type=float, default=None,
                     help="p99 / fastest call, at least 1: the search holds the table to budget / factor "
                          "(None: measured for the CPU, 1 for the GPU and FPGA models)")
    run.add_argument("--memory-budget", type=int, default=None, help="memory budget, bytes (None: the plan's)")
    run.add_argument("--retrain-epochs", type=int, default=5, help="epochs of the longer recipe")
    run.add_argument("--retrain-windows", type=int, default=4096, help="training windows of the longer recipe")
    run.add_argument("--sla-repeats", type=int, default=10_000, help="timed calls of the SLA report")
    run.add_argument("--profile", default=None, help="a saved hardware profile JSON, checked against the "
                                                     "target's space first (None: the one in --out-dir, "
                                                     "else build it)")
    run.add_argument("--remeasure", action="store_true",
                     help="measure the CPU profile again even when --out-dir holds one")
    run.add_argument("--multi-fidelity", action="store_true",
                     help="search with successive halving: 1 epoch x 1 seed for all, 3 x 2 for the top third, "
                          "9 x 3 for the top ninth (hwnas.search.fidelity.DEFAULT_RUNGS)")
    run.add_argument("--seed", type=int, default=0, help="seed of the search and of the retraining")
    run.add_argument("--quick", action="store_true", help="a small space and short measurements (tests, demos)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    run.set_defaults(handler=_run)


def _option(option: str, check: Any, value: Any) -> Any:
    """``check(value)``, its ValueError naming ``option``."""
    try:
        return check(value)
    except ValueError as err:
        raise ValueError(f"{option}: {err}") from None


def _lookbacks(text: str) -> tuple[int, ...]:
    """``--lookbacks``: comma-separated whole numbers of bars, each at least 1."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise ValueError(f"--lookbacks: expected comma-separated whole numbers of bars >= 1, e.g. 8,16,32; "
                         f"got {text!r}")
    return values


def _space(args: argparse.Namespace) -> Any:
    """The searched space: the target's plan's or ``--space``, the quick one with ``--quick``, ``--lookbacks``."""
    from ..space import SpaceName
    from .run import target_space

    name = None if args.space is None else require_enum(SpaceName, args.space, "--space").value
    overrides = {} if args.lookbacks is None else {"lookbacks": _lookbacks(args.lookbacks)}
    return target_space(args.target, args.quick, space=name, **overrides)


def _task(args: argparse.Namespace) -> Any:
    """The proxy task of ``--task`` on ``--data`` (or Bybit ``--symbol``/``--interval``), built before
    any output is written; too few candles for the space's longest lookback is a one-line error."""
    from ..data.klines import check_symbol, normalize_interval
    from ..data.loader import load_kline_path, load_klines
    from ..proxy.task import TARGETS, make_proxy_task, min_task_rows
    require_choice(args.task, "--task", TARGETS)
    symbol = _option("--symbol", check_symbol, args.symbol)
    interval = None if args.interval is None else _option("--interval", normalize_interval, args.interval)
    if args.data is not None:
        data = load_kline_path(args.data, symbol, interval, option="--data")
        what = f"--data {data.frame.attrs.get('path', args.data)!r}"
    else:
        data = load_klines(symbol, interval or "15")
        what = f"{data.source} {symbol} {data.interval} data ({data.description})"
    lookback = max(_space(args).lookbacks)
    needed = min_task_rows(lookback)
    if len(data.frame) < needed:
        raise ValueError(f"{what} has {len(data.frame):,} rows; the {args.task} task with lookback {lookback} "
                         f"needs at least {needed:,}")
    return make_proxy_task(data.frame, args.task, lookback=lookback, interval=data.interval,
                           source=f"{data.source}: {data.description}")


def _rungs(multi_fidelity: bool) -> Any:
    """The ladder of ``--multi-fidelity`` (None without it)."""
    from ..search.fidelity import DEFAULT_RUNGS

    return DEFAULT_RUNGS if multi_fidelity else None


def _run(args: argparse.Namespace) -> int:
    """The ``run`` command: exit 0 when the chosen model passes on its target, 1 when it fails."""
    require_choice(args.target, "--target", TARGET_NAMES)
    from ..proxy.task import TARGETS

    require_choice(args.task, "--task", TARGETS)
    for option in ("evals", "retrain_epochs", "retrain_windows", "sla_repeats"):
        require_int(getattr(args, option), f"--{option.replace('_', '-')}", 10 if option == "sla_repeats" else 1)
    require_int(args.seed, "--seed", 0)
    if args.budget_us is not None:
        require_positive(args.budget_us, "--budget-us")
    require_optional_int(args.memory_budget, "--memory-budget", 1)
    if args.tail_factor is not None:
        require_float(args.tail_factor, "--tail-factor", minimum=1.0)
    from ..fileio import check_out_dir

    space = _space(args)
    check_out_dir(args.out_dir, "--out-dir")
    if args.profile is not None:
        from ..checks import check_profile_covers
        from ..search._cli import load_profile_option
        from .plan import PLANS

        check_profile_covers(load_profile_option(args.profile), space, "--profile", batch=PLANS[args.target].batch)
    if args.strategy is not None:
        from ..search.base import get_strategy

        try:
            get_strategy(args.strategy)
        except ValueError as err:
            raise ValueError(f"--strategy: {err}") from None
    task = _task(args)
    result = run_pipeline(args.target, space=space, strategy=args.strategy, evals=args.evals,
                          latency_budget_us=args.budget_us,
                          memory_budget=args.memory_budget, retrain_epochs=args.retrain_epochs,
                          retrain_windows=args.retrain_windows, out_dir=args.out_dir, seed=args.seed,
                          progress=not args.quiet, quick=args.quick, sla_repeats=args.sla_repeats,
                          profile=args.profile, tail_factor=args.tail_factor, remeasure=args.remeasure,
                          task=task, rungs=_rungs(args.multi_fidelity))
    print(result.summary())
    print(f"wrote {result.outputs['summary']} and {result.outputs['front']}")
    return 0 if result.verdict["passed"] else 1
