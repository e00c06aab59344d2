"""The proxy's noise study: is a score a property of the architecture, or of the seed?

Taught in: notebooks/06_bybit_data.

A research tool kept apart from the proxy task itself (:mod:`hwnas.proxy`):
it trains every architecture with several seeds, with the proxy recipe and
longer, and asks with a one-way ANOVA and rank correlations whether the score
ranks architectures (``benchmarks/proxy_noise_study.py`` runs the full study).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .architecture import Architecture
from .checks import require_choice
from .fileio import write_text_atomic
from .numerics import spearman
from .proxy.baselines import train_baseline
from .proxy.metrics import one_way_anova
from .proxy.task import BASELINES, MODEL_METRICS, PRIMARY_METRIC, TARGETS, ProxyTask
from .proxy.training import evaluate, evaluate_splits

TABLE_KINDS = ("short", "long", "short_test", "long_test")
RANK_AGREEMENTS = ("short_long", "one_seed_long", "val_test", "val_test_long")


def _tables(raw: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {metric: np.asarray(rows, dtype=float) for metric, rows in raw.items()}


@dataclass(frozen=True, eq=False)
class TargetStudy:
    """The noise study of one target (see :func:`noise_study`), read by attribute.

    ``short``, ``long``, ``short_test`` and ``long_test`` map each metric to an
    ``(architectures, seeds)`` array; ``anova_short``/``anova_long`` map a
    metric to :func:`~hwnas.proxy.one_way_anova`'s figures; ``rank_agreement``
    maps a metric to the Spearman agreements named in :data:`RANK_AGREEMENTS`;
    ``baselines[name][split][metric]`` are the baselines' mean metrics.

    Taught in: notebooks/06_bybit_data.
    """

    target: str
    primary: str
    short: dict[str, np.ndarray]
    long: dict[str, np.ndarray]
    short_test: dict[str, np.ndarray] = field(default_factory=dict)
    long_test: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    anova_short: dict[str, dict[str, float]] = field(default_factory=dict)
    anova_long: dict[str, dict[str, float]] = field(default_factory=dict)
    rank_agreement: dict[str, dict[str, float]] = field(default_factory=dict)
    baselines: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    context: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_eval: int = 0
    diverged: int = 0
    seconds: dict[str, list[list[float]]] = field(default_factory=dict)

    def seed_means(self, kind: str = "short", metric: str | None = None) -> np.ndarray:
        """Each architecture's mean over seeds of ``metric`` (the primary one by default)."""
        return np.nanmean(self.table(kind, metric), axis=1)

    def table(self, kind: str = "short", metric: str | None = None) -> np.ndarray:
        """The ``(architectures, seeds)`` array of ``kind`` (one of :data:`TABLE_KINDS`)."""
        tables: dict[str, np.ndarray] = getattr(self, require_choice(kind, "kind", TABLE_KINDS))
        return tables[metric or self.primary]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the layout of ``benchmarks/results/proxy_noise_study.json``)."""
        out: dict[str, Any] = {"primary": self.primary, "metrics": list(self.metrics), "context": self.context,
                               "n_train": self.n_train, "n_eval": self.n_eval, "diverged": self.diverged,
                               "seconds": self.seconds}
        for kind in TABLE_KINDS:
            out[kind] = {m: v.tolist() for m, v in getattr(self, kind).items()}
        out.update(anova_short=self.anova_short, anova_long=self.anova_long,
                   rank_agreement=self.rank_agreement, baselines=self.baselines)
        return out

    @classmethod
    def from_dict(cls, target: str, data: Mapping[str, Any]) -> TargetStudy:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            target=target, primary=str(data["primary"]),
            **{kind: _tables(data.get(kind, {})) for kind in TABLE_KINDS},
            metrics=tuple(data.get("metrics", ())), anova_short=dict(data.get("anova_short", {})),
            anova_long=dict(data.get("anova_long", {})), rank_agreement=dict(data.get("rank_agreement", {})),
            baselines=dict(data.get("baselines", {})), context=dict(data.get("context", {})),
            n_train=int(data.get("n_train", 0)), n_eval=int(data.get("n_eval", 0)),
            diverged=int(data.get("diverged", 0)), seconds=dict(data.get("seconds", {})),
        )

    def __repr__(self) -> str:
        n_arch, n_seeds = self.table().shape if self.short else (0, 0)
        return f"TargetStudy({self.target!r}, {self.primary}: {n_arch} architectures x {n_seeds} seeds)"


@dataclass(frozen=True, eq=False)
class NoiseStudy:
    """What :func:`noise_study` found, per target; ``info`` holds provenance (data, task,
    machine, command) that ``benchmarks/proxy_noise_study.py`` adds.

    Taught in: notebooks/06_bybit_data.
    """

    seeds: tuple[int, ...]
    long_factor: int
    architectures: tuple[Architecture, ...]
    targets: dict[str, TargetStudy]
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self, **thresholds: float) -> pd.DataFrame:
        """:func:`summarize_noise_study` of this study (``alpha``, ``min_icc``, ``min_agreement``)."""
        return summarize_noise_study(self, **thresholds)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: ``seeds``, ``long_factor``, ``architectures``, ``targets`` and the info keys."""
        return {**self.info, "seeds": list(self.seeds), "long_factor": self.long_factor,
                "architectures": [a.to_dict() for a in self.architectures],
                "targets": {name: t.to_dict() for name, t in self.targets.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseStudy:
        """Rebuild from :meth:`to_dict` output (keys other than the fields go to ``info``)."""
        fields_ = ("seeds", "long_factor", "architectures", "targets")
        missing = [k for k in fields_ if k not in data]
        if missing:
            raise ValueError(f"not a noise study: missing {missing}")
        return cls(
            seeds=tuple(int(s) for s in data["seeds"]), long_factor=int(data["long_factor"]),
            architectures=tuple(Architecture.from_dict(a) for a in data["architectures"]),
            targets={name: TargetStudy.from_dict(name, t) for name, t in data["targets"].items()},
            info={k: v for k, v in data.items() if k not in fields_},
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the study as JSON, atomically."""
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NoiseStudy:
        """Read a study saved by :meth:`save` (ValueError naming the file when it is not one)."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"noise study {path}: {err}") from None

    def __repr__(self) -> str:
        return (f"NoiseStudy({len(self.architectures)} architectures x {len(self.seeds)} seeds, "
                f"long = {self.long_factor}x epochs, targets {list(self.targets)})")


def noise_study(
    task: ProxyTask,
    archs: Sequence[Architecture],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    targets: Sequence[str] = TARGETS,
    long_factor: int = 5,
    baselines: Sequence[str] = BASELINES[:4],
    progress: Callable[[str], Any] | None = None,
) -> NoiseStudy:
    """Is the proxy score a property of the architecture, or of the seed and the period?

    For each target, every architecture is trained with every seed twice: with
    the proxy recipe (``task.epochs``, ``"short"``) and with ``long_factor`` times
    as many epochs (``"long"``), each scored on the validation and the test
    windows. Returned as a :class:`NoiseStudy`; per target (:class:`TargetStudy`), for
    each of :data:`MODEL_METRICS`:

    * ``short``, ``long``, ``short_test``, ``long_test``: ``(architectures, seeds)`` tables;
    * ``anova_short`` / ``anova_long``: :func:`one_way_anova` of the validation
      tables (F-test p-value; ICC, the share of the variance of one run that the
      architecture explains);
    * ``rank_agreement``: Spearman correlations across architectures of the short
      proxy with the long training (seed means, and one short seed against the
      long means, which is what a search sees) and of validation with test
      (does the ranking survive a later period?);
    * ``baselines``: the baselines' mean metrics over the seeds on val and test.

    ``progress`` is called with a message after each architecture when given.

    Taught in: notebooks/06_bybit_data.
    """
    seeds = [int(s) for s in seeds]
    out: dict[str, Any] = {
        "seeds": seeds,
        "long_factor": long_factor,
        "architectures": [a.to_dict() for a in archs],
        "targets": {},
    }
    for target in targets:
        t_task = replace(task, target=target)
        metric_names = list(MODEL_METRICS[target])
        tables: dict[str, list[list[dict[str, float]]]] = {
            "short": [], "long": [], "short_test": [], "long_test": []}
        seconds: dict[str, list[list[float]]] = {"short": [], "long": []}
        diverged = 0
        for i, arch in enumerate(archs):
            for kind, epochs in (("short", t_task.epochs), ("long", t_task.epochs * long_factor)):
                runs = [evaluate_splits(arch, t_task, seed, epochs=epochs) for seed in seeds]
                tables[kind].append([r["val"].metrics for r in runs])
                tables[f"{kind}_test"].append([r["test"].metrics for r in runs])
                seconds[kind].append([r["val"].total_seconds for r in runs])
                diverged += sum(r["val"].diverged for r in runs)
            if progress is not None:
                short = " ".join(f"{m[PRIMARY_METRIC[target]]:+.3f}" for m in tables["short"][-1])
                long = " ".join(f"{m[PRIMARY_METRIC[target]]:+.3f}" for m in tables["long"][-1])
                progress(f"{target} arch {i + 1}/{len(archs)} short {short} | long {long}")
        first = evaluate(archs[0], t_task, seeds[0])
        result: dict[str, Any] = {
            "primary": PRIMARY_METRIC[target],
            "metrics": metric_names,
            "context": {k: v for k, v in first.metrics.items() if k not in metric_names},
            "n_train": first.n_train,
            "n_eval": first.n_eval,
            "diverged": int(diverged),
            "seconds": seconds,
        }
        for kind, rows in tables.items():
            result[kind] = {m: [[run[m] for run in row] for row in rows] for m in metric_names}
        for kind in ("short", "long"):
            result[f"anova_{kind}"] = {
                m: one_way_anova(np.array(v)) for m, v in result[kind].items()
                if np.isfinite(np.array(v)).all(axis=1).sum() >= 2
            }
        def mean(kind: str, m: str, tables: dict[str, Any] = result) -> np.ndarray:
            return np.nanmean(np.array(tables[kind][m], float), axis=1)
        result["rank_agreement"] = {
            m: {
                "short_long": spearman(mean("short", m), mean("long", m)),
                "one_seed_long": spearman(np.array(result["short"][m], float)[:, 0], mean("long", m)),
                "val_test": spearman(mean("short", m), mean("short_test", m)),
                "val_test_long": spearman(mean("long", m), mean("long_test", m)),
            }
            for m in metric_names
        }
        base: dict[str, Any] = {}
        for kind in baselines:
            for split in ("val", "test"):
                scored = [train_baseline(kind, t_task, seed, split=split) for seed in
                          (seeds[:1] if kind in ("persistence", "mean") else seeds)]
                base.setdefault(kind, {})[split] = {
                    m: float(np.mean([s.metrics[m] for s in scored])) for m in scored[0].metrics}
            if progress is not None:
                progress(f"{target} baseline {kind}: {scored[0].summary()}")
        result["baselines"] = base
        out["targets"][target] = result
    return NoiseStudy.from_dict(out)


def summarize_noise_study(study: NoiseStudy | Mapping[str, Any], *, alpha: float = 0.01,
                          min_icc: float = 0.5, min_agreement: float = 0.5) -> pd.DataFrame:
    """One row per (target, metric) of a :func:`noise_study` result, with a verdict.

    Columns: ``icc`` and ``p`` (one-way ANOVA of the short proxy on validation),
    ``short_long``, ``one_seed_long`` and ``val_test`` (Spearman rank agreements),
    the mean score on validation and test, and ``verdict``:

    * ``"ranks"`` when the architecture explains the score (``p < alpha`` and
      ``icc >= min_icc``) and the ranking carries over to longer training and to
      the later test period (both agreements ``>= min_agreement``);
    * ``"noise"`` when the architecture does not explain the score (``p >= 0.05``)
      or the ranking carries over to neither;
    * ``"weak"`` otherwise.

    Taught in: notebooks/06_bybit_data.
    """
    if not isinstance(study, NoiseStudy):
        study = NoiseStudy.from_dict(study)
    rows = []
    for target, res in study.targets.items():
        for metric in res.metrics:
            anova = res.anova_short.get(metric)
            if anova is None:
                continue
            agree = res.rank_agreement[metric]
            carries = [agree["short_long"], agree["val_test"]]
            if anova["p"] < alpha and anova["icc"] >= min_icc and all(a >= min_agreement for a in carries):
                verdict = "ranks"
            elif anova["p"] >= 0.05 or all(not a >= min_agreement for a in carries):
                verdict = "noise"
            else:
                verdict = "weak"
            rows.append({
                "target": target, "metric": metric, "icc": anova["icc"], "p": anova["p"],
                "short_long": agree["short_long"], "one_seed_long": agree["one_seed_long"],
                "val_test": agree["val_test"],
                "mean_val": float(np.nanmean(res.short[metric])),
                "mean_test": float(np.nanmean(res.short_test[metric])),
                "verdict": verdict,
            })
    return pd.DataFrame(rows).set_index(["target", "metric"])


__all__ = ["RANK_AGREEMENTS", "TABLE_KINDS", "NoiseStudy", "TargetStudy", "noise_study", "summarize_noise_study"]
