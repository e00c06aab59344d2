"""Is the proxy score a property of the architecture or of the seed? (the honesty study)

On the recorded real Bybit BTCUSDT 15-minute candles, train random architectures of
``SearchSpace.default`` with several seeds each, for each target (next-window
realised volatility, next-bar direction), with the proxy recipe and with
``--long-factor`` times as many epochs, and report:

* the one-way ANOVA of score ~ architecture (F-test p-value) and the intraclass
  correlation ICC(1): the share of the variance of one run explained by the
  architecture (the rest is seed noise);
* the Spearman rank agreement of the short proxy with the longer training;
* naive, MLP and LSTM baselines beside them.

Results go to ``benchmarks/results/proxy_noise_study.json`` (written atomically);
notebooks/06_bybit_data loads that file when present.

    HWNAS_BYBIT_DIR=../shared/data/bybit HWNAS_OFFLINE=1 \\
        python benchmarks/proxy_noise_study.py            # ~15-30 min on 2 shared cores
    python benchmarks/proxy_noise_study.py --archs 4 --seeds 2 --long-factor 2 --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwnas import SearchSpace, count_flops  # noqa: E402
from hwnas.data import load_klines  # noqa: E402
from hwnas.fileio import check_writable  # noqa: E402
from hwnas.proxy import TARGETS, make_proxy_task  # noqa: E402
from hwnas.proxy_study import noise_study  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "proxy_noise_study.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=20, help="random architectures (default 20)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per architecture (default 3)")
    parser.add_argument("--long-factor", type=int, default=5, help="epochs of the long run / proxy epochs")
    parser.add_argument("--arch-seed", type=int, default=2024, help="seed of the architecture sampler")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    check_writable(args.out, "--out")

    torch.manual_seed(0)
    data = load_klines("BTCUSDT", "15")
    print(data.summary(), flush=True)
    task = make_proxy_task(data.frame, source=f"{data.source}: {data.description}")
    print(task.summary(), flush=True)
    space = SearchSpace.default(input_features=task.num_features)
    rng = np.random.default_rng(args.arch_seed)
    archs = [space.sample(rng) for _ in range(args.archs)]
    start = time.perf_counter()
    result = noise_study(task, archs, seeds=range(args.seeds), targets=args.targets,
                         long_factor=args.long_factor,
                         progress=lambda msg: print(f"[{time.perf_counter() - start:7.1f} s] {msg}",
                                                    flush=True))
    info = {
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "command": "python benchmarks/proxy_noise_study.py " + " ".join(argv or sys.argv[1:]),
        "data": {"source": data.source, "description": data.description,
                 "symbol": data.symbol, "interval": data.interval, "candles": len(data.frame),
                 "first": str(data.frame.index[0]), "last": str(data.frame.index[-1])},
        "task": {"lookback": task.lookback, "features": list(task.feature_names),
                 "epochs": task.epochs, "batch_size": task.batch_size, "lr": task.lr,
                 "max_train_windows": task.max_train_windows, "cost_bps": task.cost_bps,
                 "num_threads": task.num_threads, "windows": {"train": len(task.train),
                 "val": len(task.val), "test": len(task.test)}, "gap": task.split.gap},
        "flops": [count_flops(a) for a in archs],
        "arch_seed": args.arch_seed,
        "seconds": time.perf_counter() - start,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__,
                    "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
    }
    result = replace(result, info=info)
    result.save(args.out)

    print(f"\n{'target':<11}{'metric':<19}{'ICC':>6}{'F p':>9}{'short~long':>11}{'1 seed~long':>12}"
          f"{'val~test':>9}  mean (val)  mean (test)")
    for target, res in result.targets.items():
        for metric in res.metrics:
            anova = res.anova_short.get(metric)
            if anova is None:
                continue
            agree = res.rank_agreement[metric]
            print(f"{target:<11}{metric:<19}{anova['icc']:>6.2f}{anova['p']:>9.2g}"
                  f"{agree['short_long']:>11.2f}{agree['one_seed_long']:>12.2f}{agree['val_test']:>9.2f}"
                  f"  {np.nanmean(res.short[metric]):+10.4f}  {np.nanmean(res.short_test[metric]):+10.4f}")
        for name, base in res.baselines.items():
            shown = ", ".join(f"{m} {base['val'][m]:+.4f}" for m in res.metrics[:3] if m in base["val"])
            print(f"{'':<11}baseline {name:<12} val: {shown}")
        print(f"{'':<11}context (val): " + ", ".join(f"{k} {v:+.4f}" for k, v in res.context.items()))
    print(f"\nwrote {args.out} in {info['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
