"""Latency SLA report: tail percentiles of the deployed model against a budget.

Taught in: notebooks/11_deployment.

A trading system does not care about a model's median: it cares whether the
call that decides an order returns within its share of the latency budget
nearly every time. :func:`sla_report` runs the deployed model the way it will
be served (a runtime from :mod:`hwnas.runtime`, fixed threads, batch 1), keeps
every timed call (in several bursts, with :func:`hwnas.latency.time_callable`),
and judges the SLA percentile (p99 by default) against the budget, beside the
lookup table's prediction and the memory budget. Like
``torch.utils.benchmark``'s ``Measurement`` it computes its statistics from the
raw samples on demand and warns when the spread (IQR / median) is too wide to
judge; on a shared machine the tail includes other tenants' interference, so
the report records the load average and the per-burst p99s (repeat when they
disagree).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..architecture import Architecture
from ..checks import require_float, require_int, require_optional_int
from ..hardware import current_conditions
from ..latency.spec import TimingSpec
from ..latency.timing import load_average, time_callable

__all__ = ["SLAReport", "sla_report", "SPREAD_WARN", "deployable_callable", "timed_calls",
           "burst_quantiles"]

SPREAD_WARN = 0.1
"""IQR / median above which a report warns (``torch.utils.benchmark`` warns above 10%)."""


@dataclass(frozen=True, eq=False)
class SLAReport:
    """Raw latency samples of one deployed model and their verdict against a budget.

    Statistics (``p50_us``, ``p99_us``, ``p999_us``, ``max_us``, ``spread``) are
    computed from ``samples_us`` when asked for. ``passed`` is true when the
    ``percentile`` (99 by default) is within ``budget_us`` and the memory, where
    known, within its budget; ``reasons`` says why not; ``notes`` and
    ``warnings`` say what the verdict rests on.

    Taught in: notebooks/11_deployment.
    """

    label: str
    budget_us: float
    samples_us: tuple[float, ...] = field(repr=False)
    bursts: int
    percentile: float = 99.0
    predicted_us: float | None = None
    memory_bytes: int | None = None
    memory_budget_bytes: int | None = None
    memory_basis: str = ""
    conditions: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.samples_us) == 0:
            raise ValueError("samples_us must hold at least one sample")
        require_float(self.percentile, "percentile", minimum=0.0, maximum=100.0)
        require_int(self.bursts, "bursts", 1, len(self.samples_us))

    # ---- statistics, from the raw samples
    @property
    def n(self) -> int:
        """Number of timed calls."""
        return len(self.samples_us)

    def quantile_us(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the samples, µs."""
        return float(np.percentile(np.asarray(self.samples_us), q))

    @property
    def p50_us(self) -> float:
        """Median latency, µs."""
        return self.quantile_us(50)

    @property
    def p99_us(self) -> float:
        """99th percentile, µs."""
        return self.quantile_us(99)

    @property
    def p999_us(self) -> float:
        """99.9th percentile, µs (rests on ``n / 1000`` calls beyond it)."""
        return self.quantile_us(99.9)

    @property
    def min_us(self) -> float:
        """The fastest call, µs: what a lookup table predicts."""
        return float(min(self.samples_us))

    @property
    def max_us(self) -> float:
        """The slowest call, µs."""
        return float(max(self.samples_us))

    @property
    def sla_us(self) -> float:
        """The latency the SLA judges: the ``percentile``-th percentile, µs."""
        return self.quantile_us(self.percentile)

    @property
    def spread(self) -> float:
        """Interquartile range over median (``Measurement``'s measure of a noisy timing)."""
        q1, q3 = np.percentile(np.asarray(self.samples_us), [25, 75])
        median = self.p50_us
        return float((q3 - q1) / median) if median > 0 else float("inf")

    def burst_quantiles_us(self, q: float | None = None) -> list[float]:
        """The ``q``-th percentile (default: the SLA's) of each burst, in order."""
        return burst_quantiles(self.samples_us, self.bursts, self.percentile if q is None else q)

    # ---- verdict
    @property
    def reasons(self) -> list[str]:
        """Why the SLA is missed (empty when it is met)."""
        out = []
        if self.sla_us > self.budget_us:
            out.append(f"p{self.percentile:g} {self.sla_us:.1f} µs > budget {self.budget_us:g} µs")
        if (self.memory_bytes is not None and self.memory_budget_bytes is not None
                and self.memory_bytes > self.memory_budget_bytes):
            out.append(f"memory {self.memory_bytes:,} B > budget {self.memory_budget_bytes:,} B")
        return out

    @property
    def passed(self) -> bool:
        """Whether the latency percentile and the memory (where known) are within budget."""
        return not self.reasons

    @property
    def warnings(self) -> list[str]:
        """What makes the verdict less certain than it looks."""
        out = []
        if self.spread > SPREAD_WARN:
            out.append(f"IQR is {100 * self.spread:.0f}% of the median (> {100 * SPREAD_WARN:.0f}%): "
                       f"the machine or the model is too noisy to judge closely; repeat on a quiet machine")
        if self.n < 1000:
            out.append(f"only {self.n} calls: p99.9 rests on fewer than one call beyond it")
        load = self.conditions.get("load_avg_1min_start")
        cpus = self.conditions.get("cpu_count") or 1
        if load is not None and load > 0.5 * cpus:
            out.append(f"load average {load} on {cpus} CPUs: other processes ran, and the tail "
                       f"(p99, p99.9, max) includes their interference; repeat")
        bursts = self.burst_quantiles_us()
        if self.bursts > 1 and max(bursts) > 1.5 * min(bursts):
            out.append(f"per-burst p{self.percentile:g} ranges {min(bursts):.1f}-{max(bursts):.1f} µs: "
                       f"the tail did not repeat")
        return out

    @property
    def notes(self) -> list[str]:
        """The lookup table's prediction and the memory basis, where there are any."""
        out = []
        if self.predicted_us is not None:
            c = self.conditions
            made = c.get("profile_runtime", "?")
            here = c.get("runtime", "?")
            out.append(f"predicted {self.predicted_us:.1f} µs by {c.get('profile', 'the profile')} (a table "
                       f"measured in {made}); measured here in {here}: fastest {self.min_us:.1f}, "
                       f"p50 {self.p50_us:.1f} µs (p50/predicted {self.p50_us / self.predicted_us:.2f})"
                       + ("" if made == here else f"; NOT comparable: {made} against {here}"))
        if self.memory_bytes is None:
            out.append("memory not known for this deployable: not checked")
        elif self.memory_budget_bytes is None:
            out.append(f"memory {self.memory_bytes:,} B ({self.memory_basis}); no budget given")
        else:
            out.append(f"memory {self.memory_bytes:,} B ({self.memory_basis}) of {self.memory_budget_bytes:,} B")
        return out

    def summary(self) -> str:
        """A few lines: verdict, percentiles, prediction, memory, conditions, warnings."""
        verdict = ("PASS" if self.passed else "MISS: " + "; ".join(self.reasons)) + (
            f" (basis: measured p{self.percentile:g} here)")
        c = self.conditions
        lines = [
            f"{self.label}: budget {self.budget_us:g} µs at p{self.percentile:g} -> {verdict}",
            f"  p50 {self.p50_us:.1f}  p99 {self.p99_us:.1f}  p99.9 {self.p999_us:.1f}  "
            f"max {self.max_us:.1f} µs over {self.n:,} calls in {self.bursts} bursts",
            f"  {c.get('runtime', '?')} ({c.get('runtime_version', '?')}), {c.get('threads', '?')} thread(s), "
            f"batch {c.get('batch', '?')}, load average {c.get('load_avg_1min_start')} -> "
            f"{c.get('load_avg_1min_end')}",
        ]
        lines += [f"  note: {text}" for text in self.notes]
        lines += [f"  warning: {text}" for text in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"SLAReport({self.label!r}, {'pass' if self.passed else 'MISS'}, p{self.percentile:g} "
                f"{self.sla_us:.1f} µs vs {self.budget_us:g} µs, n={self.n})")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: the statistics, verdict and conditions (and the raw samples)."""
        return {
            "label": self.label, "budget_us": self.budget_us, "percentile": self.percentile,
            "passed": self.passed, "reasons": self.reasons, "warnings": self.warnings, "notes": self.notes,
            "p50_us": self.p50_us, "p99_us": self.p99_us, "p999_us": self.p999_us, "min_us": self.min_us,
            "max_us": self.max_us,
            "spread": self.spread, "n": self.n, "bursts": self.bursts,
            "burst_sla_us": self.burst_quantiles_us(), "predicted_us": self.predicted_us,
            "memory_bytes": self.memory_bytes, "memory_budget_bytes": self.memory_budget_bytes,
            "memory_basis": self.memory_basis, "conditions": self.conditions,
            "samples_us": list(self.samples_us),
        }


@dataclass(frozen=True)
class _Deployable:
    """What :func:`sla_report` times and what it knows about it."""

    fn: Callable[[], Any]
    label: str
    arch: Architecture | None
    memory_bytes: int | None
    memory_basis: str
    runtime: str
    runtime_version: str


def _module_bytes(module: Any) -> int:
    """Bytes of a module's parameters and buffers."""
    tensors = [*module.parameters(), *module.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


_FILE_RUNNERS: dict[str, tuple[str, str]] = {".onnx": ("prepare_onnx", "onnxruntime"),
                                             ".pte": ("prepare_pte", "executorch")}
"""An exported file's suffix -> the runtime method that runs it, and the runtime that has it."""


def deployable_callable(deployable: Any, *, runtime: Any = "onnxruntime", threads: int = 1, batch: int = 1,
                        example: Any = None, seed: int = 0) -> _Deployable:
    """Turn an Architecture, a module (with ``example``), an ``.onnx`` or ``.pte`` path or a callable into
    what is timed.

    Taught in: notebooks/11_deployment.
    """
    import torch
    from torch import nn

    from ..cost import memory_footprint
    from ..model import build_model
    from ..runtime import get_runtime

    if callable(deployable) and not isinstance(deployable, nn.Module):
        name = getattr(deployable, "__name__", type(deployable).__name__)
        return _Deployable(deployable, f"callable {name}", None, None, "", "callable", "as given")
    rt = get_runtime(runtime, threads)
    if isinstance(deployable, (str, Path)):
        path = Path(deployable)
        if path.suffix not in _FILE_RUNNERS or not path.is_file():
            raise ValueError(f"deployable {str(path)!r} must be an existing .onnx or .pte file")
        method, runtime_name = _FILE_RUNNERS[path.suffix]
        prepare_file = getattr(rt, method, None)
        if prepare_file is None:
            raise ValueError(f"runtime {rt.name!r} cannot run a {path.suffix} file; use runtime={runtime_name!r}")
        return _Deployable(prepare_file(path, batch, seed), path.name, None, path.stat().st_size,
                           f"weights: the {path.suffix} file's size", rt.name, rt.version())
    gen = torch.Generator().manual_seed(seed)
    if isinstance(deployable, Architecture):
        arch: Architecture | None = deployable
        module: nn.Module = build_model(deployable, seed=seed)
    elif isinstance(deployable, nn.Module):
        module, arch = deployable.eval(), getattr(deployable, "arch", None)
        arch = arch if isinstance(arch, Architecture) else None
    else:
        raise ValueError(f"deployable must be an Architecture, a torch.nn.Module, an .onnx or .pte path or a "
                         f"callable, got {type(deployable).__name__}")
    if example is None:
        if arch is None:
            raise ValueError("example is required for a module without an .arch (its input shape is unknown)")
        example = torch.randn(batch, arch.input_features, arch.lookback, generator=gen)
    inputs = tuple(example) if isinstance(example, (tuple, list)) else (example,)
    if arch is not None:
        memory, basis = memory_footprint(arch, "fp32", batch).total_bytes, "fp32 weights + peak activations"
    else:
        memory, basis = _module_bytes(module), "weights and buffers only"
    label = f"arch L{arch.lookback} d{arch.depth}" if arch is not None else type(module).__name__
    return _Deployable(rt.prepare(module, inputs), label, arch, memory, basis, rt.name, rt.version())


def burst_quantiles(samples: Any, bursts: int, q: float) -> list[float]:
    """The ``q``-th percentile of each of the ``bursts`` consecutive chunks of ``samples`` (as
    :func:`timed_calls` timed them), in order.

    Taught in: notebooks/11_deployment.
    """
    return [float(np.percentile(chunk, q)) for chunk in np.array_split(np.asarray(samples), bursts)]


def timed_calls(fn: Callable[[], Any], repeats: int, bursts: int, *, timing: TimingSpec = TimingSpec.SLA,
                threads: int = 1, batch: int = 1) -> list[float]:
    """Every one of ``repeats`` calls of ``fn`` timed (µs), in ``bursts`` each with its own warm-up.

    ``repeats`` and ``bursts`` stay apart from ``timing``: a percentile needs a
    fixed number of samples (a p99 of fewer than 100 calls per burst is the
    maximum), not a time budget, so each burst is one
    :func:`~hwnas.latency.time_callable` of exactly its share of ``repeats``;
    of ``timing`` only the warm-up (``warmup`` calls, ``warmup_ms``) applies.

    Taught in: notebooks/11_deployment.
    """
    samples: list[float] = []
    for size in (len(chunk) for chunk in np.array_split(np.arange(repeats), bursts)):
        spec = timing.replace(passes=1, min_reps=size, max_reps=size)
        measured = time_callable(fn, timing=spec, threads=threads, batch=batch, keep_samples=True)
        samples.extend(measured.samples_us)
    return samples


def sla_report(
    deployable: Any,
    budget_us: float,
    *,
    runtime: Any = "onnxruntime",
    threads: int = 1,
    batch: int = 1,
    profile: Any = None,
    memory_budget_bytes: int | None = None,
    percentile: float = 99.0,
    repeats: int = 10_000,
    bursts: int = 5,
    example: Any = None,
    label: str | None = None,
    seed: int = 0,
    timing: TimingSpec = TimingSpec.SLA,
) -> SLAReport:
    """Time a deployed model ``repeats`` times (in ``bursts``) and judge it against ``budget_us``.

    ``deployable``: an :class:`~hwnas.space.Architecture` (built with
    ``build_model(arch, seed)``), a torch module (with ``example`` inputs unless
    it has an ``.arch``), a path to an ``.onnx`` file (ONNX Runtime) or a ``.pte``
    program (``runtime="executorch"``), or any zero-argument
    callable (timed as it is). ``runtime`` (a name or a
    :class:`~hwnas.runtime.Runtime`) runs the first three; ``profile`` adds
    the lookup table's prediction and, unless ``memory_budget_bytes`` is given,
    its memory budget. The verdict is on the ``percentile``-th percentile.
    ``repeats`` and ``bursts`` are the sample design of the percentile, not
    harness settings (see :func:`timed_calls`); ``timing`` gives the warm-up
    (:attr:`~hwnas.latency.TimingSpec.SLA` by default). ``seed`` makes the
    model's weights and input, not the timing.

    Taught in: notebooks/11_deployment.
    """
    budget_us = require_float(budget_us, "budget_us", minimum=0.0, strict_minimum=True)
    threads = require_int(threads, "threads", 1)
    batch = require_int(batch, "batch", 1)
    repeats = require_int(repeats, "repeats", 1)
    bursts = require_int(bursts, "bursts", 1, repeats)
    percentile = require_float(percentile, "percentile", minimum=0.0, maximum=100.0)
    memory_budget_bytes = require_optional_int(memory_budget_bytes, "memory_budget_bytes", 1)
    target = deployable_callable(deployable, runtime=runtime, threads=threads, batch=batch,
                                 example=example, seed=seed)
    predicted = None
    if profile is not None:
        if memory_budget_bytes is None:
            memory_budget_bytes = int(profile.memory_budget_bytes)
        if target.arch is not None:
            predicted = float(profile.predict_latency(target.arch, batch))
    conditions = dict(current_conditions(), runtime=target.runtime, runtime_version=target.runtime_version,
                      threads=threads, batch=batch, cpu_count=os.cpu_count(), repeats=repeats,
                      **timing.record(), load_avg_1min_start=load_average())
    if profile is not None:
        conditions["profile"] = profile.label
        conditions["profile_runtime"] = profile.conditions.get("runtime", "eager")
    samples = timed_calls(target.fn, repeats, bursts, timing=timing, threads=threads, batch=batch)
    conditions["load_avg_1min_end"] = load_average()
    return SLAReport(
        label=label or target.label, budget_us=budget_us, samples_us=tuple(samples), bursts=bursts,
        percentile=percentile, predicted_us=predicted, memory_bytes=target.memory_bytes,
        memory_budget_bytes=memory_budget_bytes, memory_basis=target.memory_basis, conditions=conditions,
    )
