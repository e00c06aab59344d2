"""How a latency is measured: the frozen :class:`TimingSpec`, its presets and the estimator names.

Taught in: notebooks/04_latency_lut.

One spec travels through the harness (:mod:`hwnas.latency.timing`), the table, the
fidelity checks, the coverage extension, the SLA report and the pipeline, in the
spirit of ``torch.utils.benchmark``'s task spec: a timing setting is a field of the
spec, never a loose keyword of a function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, ClassVar

from ..checks import require_enum, require_float, require_int

__all__ = ["DEFAULT_ESTIMATOR", "ESTIMATORS", "MAX_PASSES", "Estimator", "TimingSpec", "check_estimator",
           "timing_from_options"]

MAX_PASSES = 1000
"""Passes above this are a mistake (each pass re-warms every callable)."""


class Estimator(StrEnum):
    """The statistic of a :class:`Timing` a table uses (see :meth:`Timing.estimate`).

    ``MIN`` (the fastest call) is the default: interference only ever slows a call
    down, so it is the figure that reproduces (see :mod:`hwnas.latency`, "Drift").

    Taught in: notebooks/04_latency_lut.
    """

    MEDIAN = "median"
    BEST_MEDIAN = "best_median"
    MIN = "min"

    def __repr__(self) -> str:
        return repr(self.value)


ESTIMATORS = tuple(e.value for e in Estimator)
DEFAULT_ESTIMATOR = Estimator.MIN  # see hwnas.latency's docstring, "Drift"


def check_estimator(estimator: Estimator | str, where: str = "estimator") -> Estimator:
    """``estimator`` as an :class:`Estimator`; else a ValueError listing the allowed names.

    Taught in: notebooks/04_latency_lut.
    """
    return require_enum(Estimator, estimator, where)


@dataclass(frozen=True)
class TimingSpec:
    """How the harness times: one frozen record instead of loose keywords (``torch.utils.benchmark``'s
    ``TaskSpec`` is the model).

    * ``passes``: shuffled passes (bursts) the samples of each callable are spread over;
    * ``target_ms``: about this much timed-call time per callable in all (whole models
      in a table build get ``model_weight`` times as much), within
    * ``min_reps`` .. ``max_reps`` timed calls per callable in all;
    * ``warmup`` calls and ``warmup_ms`` of warm-up before the first pass (oneDNN builds
      its kernels on the first call of a shape; later passes re-warm with one call);
    * ``estimator``: the :class:`Estimator` a table or fidelity check reads off a Timing;
    * ``group``: callables per round-robin group (each timed call follows another one);
    * ``seed``: the shuffle of the passes (and, in a table build, the weights of the
      timed modules and the draw of the calibration models).

    Threads and batch are not here: they are the *target* being measured (the
    runtime prepares its callables for a thread count before the harness sees them,
    and a profile is named by both), not how it is sampled. Every field is checked
    on construction (ValueError naming the field and its allowed range). Presets:
    :attr:`CALL`, :attr:`COMPARE`, :attr:`TABLE`, :attr:`MODELS`, :attr:`QUICK`,
    :attr:`SLA`; change a field with :meth:`replace`.

    Taught in: notebooks/04_latency_lut.
    """

    passes: int = 8
    target_ms: float = 12.0
    min_reps: int = 24
    max_reps: int = 1000
    warmup: int = 3
    warmup_ms: float = 1.0
    estimator: Estimator = DEFAULT_ESTIMATOR
    group: int = 6
    seed: int = 0

    CALL: ClassVar[TimingSpec]
    COMPARE: ClassVar[TimingSpec]
    TABLE: ClassVar[TimingSpec]
    MODELS: ClassVar[TimingSpec]
    QUICK: ClassVar[TimingSpec]
    SLA: ClassVar[TimingSpec]

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "passes", require_int(self.passes, "passes", 1, MAX_PASSES))
        put(self, "target_ms", require_float(self.target_ms, "target_ms", minimum=0.0, strict_minimum=True))
        put(self, "min_reps", require_int(self.min_reps, "min_reps", 1))
        put(self, "max_reps", require_int(self.max_reps, "max_reps", self.min_reps))
        put(self, "warmup", require_int(self.warmup, "warmup", 0))
        put(self, "warmup_ms", require_float(self.warmup_ms, "warmup_ms", minimum=0.0))
        put(self, "estimator", check_estimator(self.estimator))
        put(self, "group", require_int(self.group, "group", 1))
        put(self, "seed", require_int(self.seed, "seed", 0))

    def replace(self, **changes: Any) -> TimingSpec:
        """A copy with ``changes`` (checked like a new spec; an unknown name is a TypeError)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the estimator by name)."""
        return {f.name: (str(getattr(self, f.name)) if f.name == "estimator" else getattr(self, f.name))
                for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimingSpec:
        """The spec of :meth:`to_dict` (missing fields take the defaults; unknown ones are an error)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"timing spec must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"timing spec: unknown field(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(known))}")
        return cls(**dict(data))

    @classmethod
    def from_conditions(cls, conditions: Mapping[str, Any]) -> TimingSpec:
        """The spec a profile's ``conditions`` record (see :meth:`record`).

        Profiles saved before the spec existed recorded ``passes``,
        ``target_ms_per_entry``, ``reps_range``, ``round_robin_group`` and
        ``estimator`` as loose keys: those are read into a spec (fields they lack,
        such as the seed, take :attr:`TABLE`'s values). A profile that recorded
        nothing gets :attr:`TABLE`.
        """
        if "timing" in conditions:
            return cls.from_dict(conditions["timing"])
        legacy: dict[str, Any] = {}
        if "passes" in conditions:
            legacy["passes"] = conditions["passes"]
        if "target_ms_per_entry" in conditions:
            legacy["target_ms"] = conditions["target_ms_per_entry"]
        if "reps_range" in conditions:
            legacy["min_reps"], legacy["max_reps"] = conditions["reps_range"]
        if "round_robin_group" in conditions:
            legacy["group"] = conditions["round_robin_group"]
        if "estimator" in conditions:
            legacy["estimator"] = conditions["estimator"]
        return cls.TABLE.replace(**legacy)

    def record(self) -> dict[str, Any]:
        """What a profile's ``conditions`` store of this spec: ``{"timing": to_dict()}``."""
        return {"timing": self.to_dict()}

    def reps_for(self, estimate_us: float) -> int:
        """Timed calls that spend about ``target_ms`` on a callable of ``estimate_us``, within the limits."""
        if estimate_us <= 0:
            return self.max_reps
        return int(min(max(round(self.target_ms * 1e3 / estimate_us), self.min_reps), self.max_reps))

    def describe(self) -> str:
        """One line: passes, time per callable, reps, warm-up, estimator, group, seed."""
        return (f"{self.passes} pass{'es' if self.passes > 1 else ''} x {self.target_ms:g} ms per callable "
                f"({self.min_reps}-{self.max_reps} reps), warm-up {self.warmup} calls/{self.warmup_ms:g} ms, "
                f"estimator {self.estimator.value}, groups of {self.group}, seed {self.seed}")


TimingSpec.CALL = TimingSpec(passes=1, target_ms=20.0, min_reps=20, max_reps=2000, warmup_ms=2.0)
"""One callable timed alone (:func:`time_callable`): a chapter's demonstration, peak FLOP/s."""
TimingSpec.COMPARE = TimingSpec(passes=4, target_ms=20.0, min_reps=20, max_reps=2000)
"""A few callables side by side (:func:`time_round_robin`): precisions, runtimes, model kinds."""
TimingSpec.TABLE = TimingSpec()
"""The lookup table's entries (:func:`~hwnas.latency.build_lut`): ``benchmarks/bench_latency.py``'s setting
(acc10 93% with ``min`` on 200 models of the default space, a 48.5 s build on a quiet 2-vCPU EPYC)."""
TimingSpec.MODELS = TimingSpec(target_ms=48.0)
"""Whole models for a fidelity check (:func:`~hwnas.latency.validate`): 4x an entry's time, their spread counts."""
TimingSpec.QUICK = TimingSpec(passes=2, target_ms=3.0, min_reps=10)
"""Small tables of chapters and tests, and keys measured on demand during a search: seconds, noisier."""
TimingSpec.SLA = TimingSpec(passes=1, warmup=10, warmup_ms=5.0)
"""An SLA or tail run (:func:`~hwnas.deploy.sla.timed_calls`): only the longer warm-up applies there."""


def timing_from_options(preset: TimingSpec, options: Mapping[str, Any]) -> TimingSpec:
    """``preset`` with the command-line ``options`` that were given (None: not given).

    Built once, where the options enter; a bad value is a ValueError naming the
    option as typed (``--min-reps``), with the allowed range.

    Taught in: notebooks/04_latency_lut.
    """
    given = {name: value for name, value in options.items() if value is not None}
    try:
        return preset.replace(**given)
    except ValueError as err:
        text = str(err)
        for name in sorted(given, key=len, reverse=True):
            if text.startswith(name):
                text = "--" + name.replace("_", "-") + text[len(name):]
                break
        raise ValueError(text) from None
