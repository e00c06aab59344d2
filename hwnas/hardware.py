"""Hardware profiles: what a target costs per operation, and what it can hold.

Taught in: notebooks/04_latency_lut (measured CPU tables) and
notebooks/05_hardware_targets (analytical GPU and FPGA models).

A :class:`HardwareProfile` maps each :class:`OpSpec` (one layer, or the head, as
the model runs it, with its input length and batch size) to a latency in
microseconds, and carries the target's memory budget and peak FLOP/s. It
predicts the latency of a whole :class:`~hwnas.space.Architecture` with the
chapter's lookup-table sum

    LAT(a) = overhead + sum_i LUT(o_i, d_i)

The keys of the table
---------------------
* A layer: ``OpSpec.from_layer(spec, seq_len)``; ``op`` is the
  :class:`~hwnas.space.OpType` value and ``use_skip`` says whether the entry
  includes the residual branch and the add.
* The head: ``OpSpec.head_of(arch)``, ``op`` one of ``head_gap``, ``head_last``,
  ``head_flatten``; ``in_channels``/``seq_len`` are the channels and length of the
  map that reaches it, ``out_channels`` the number of outputs.
* Branches of a skip layer, for profiles whose branches run in parallel:
  ``spec.main_branch()`` (the same layer with ``use_skip=False``),
  ``spec.shortcut_branch()`` (``op="shortcut"``: a strided 1x1 projection when
  channels or stride change, the identity otherwise) and ``spec.add_op()``
  (``op="add"``: the element-wise sum of the two branches on the output shape).
* The per-inference overhead of the whole model (the model's own Python
  ``forward``: input check, layer loop; for other targets e.g. a host round
  trip): ``OpSpec.overhead(batch)`` (``op="overhead"``). It is added when the
  table holds it, and counts 0 otherwise.

How a skip layer is costed
--------------------------
* ``parallel_branches=False`` (eager PyTorch on a CPU: the shortcut runs after
  the main branch): the whole-layer entry (``use_skip=True``) when the table has
  it (measured tables do: that is the most faithful figure), else
  ``main + shortcut + add``.
* ``parallel_branches=True`` (FPGA dataflow, GPU streams): the chapter's
  maximum over parallel paths, ``max(main, shortcut) + add``.

A ``latency_model`` (analytical targets) is only ever asked for OpSpecs with
``use_skip=False``: layers' main branches, heads, ``shortcut``, ``add`` and, by
:meth:`HardwareProfile.tabulate`, ``overhead`` (it may raise ``KeyError``,
``ValueError`` or ``NotImplementedError`` for ``overhead`` to mean "none").
"""

from __future__ import annotations

import json
import math
import os
import platform
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from .architecture import Architecture
from .checks import POSITIVE, check_fields, integer, member
from .cost import Precision, memory_footprint
from .fileio import write_text_atomic
from .opspec import OpSpec, arch_op_specs, space_op_specs
from .space import SearchSpace

PROFILE_FORMAT = "hwnas-hardware-profile"
PROFILE_VERSION = 1



class DeviceType(StrEnum):
    """The kind of processor a profile describes; its values name the hardware targets
    (``"cpu"``, ``"gpu"``, ``"fpga"``; ``"mobile"`` for a phone-class CPU).

    A ``str`` enum: ``DeviceType.GPU == "gpu"``, and saved profiles holding the
    plain strings load unchanged.

    Taught in: notebooks/05_hardware_targets.
    """

    CPU = "cpu"
    MOBILE = "mobile"
    GPU = "gpu"
    FPGA = "fpga"


def _mib(n_bytes: int) -> str:
    """Bytes as binary megabytes: ``10 MiB`` for 10,485,760."""
    value = n_bytes / 2**20
    return f"{value:.0f} MiB" if value == round(value) else f"{value:.1f} MiB"


LatencyModel = Callable[[OpSpec], float]


def current_conditions() -> dict[str, Any]:
    """Facts about this machine that a measured table depends on.

    Taught in: notebooks/04_latency_lut.
    """
    import torch  # here, so that reading a profile or its DeviceType needs no torch

    return {
        "torch_version": torch.__version__,
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else :mod:`platform`).

    Taught in: notebooks/04_latency_lut.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@dataclass
class HardwareProfile:
    """A target: latency table (µs per :class:`OpSpec`), memory budget, peak FLOP/s.

    Measured profiles (``is_model=False``) come from :func:`hwnas.latency.profile_cpu`;
    analytical ones (``is_model=True``) give a ``latency_model`` for keys missing
    from the table and are labelled "analytical model" wherever they print.
    Callables (``latency_model``, ``unsupported``) are not saved by :meth:`save`:
    a loaded model profile has only its table (call :meth:`tabulate` before saving).

    Taught in: notebooks/04_latency_lut.
    """

    name: str
    device_type: DeviceType
    latency_table: dict[OpSpec, float]
    memory_budget_bytes: int
    peak_flops: float
    parallel_branches: bool = False
    precision: Precision | str = Precision.FP32  # stored as a Precision
    conditions: dict = field(default_factory=dict)
    is_model: bool = False
    latency_model: LatencyModel | None = None
    unsupported: Callable[[OpSpec], str | None] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.latency_table, dict):
            raise ValueError("latency_table must be a dict mapping OpSpec to microseconds")
        check_fields(self, {"device_type": member(DeviceType), "memory_budget_bytes": integer(0),
                            "peak_flops": POSITIVE, "precision": member(Precision)}, "HardwareProfile.")

    # ---- labels
    @property
    def kind(self) -> str:
        """``"analytical model"`` or ``"measured"``."""
        return "analytical model" if self.is_model else "measured"

    @property
    def label(self) -> str:
        """The name with its kind, e.g. ``cpu-1thread-edge (measured)``."""
        return f"{self.name} ({self.kind})"

    def summary(self) -> str:
        """A few lines describing the profile, for printing."""
        where = ", ".join(f"{k}={v}" for k, v in self.conditions.items() if not isinstance(v, (dict, list)))
        return (
            f"{self.label}: {self.device_type.value}, {len(self.latency_table)} table entries, "
            f"memory budget {_mib(self.memory_budget_bytes)} ({self.precision}), "
            f"peak {self.peak_flops / 1e9:.1f} GFLOP/s, "
            f"{'parallel' if self.parallel_branches else 'sequential'} branches"
            + (f"\n  conditions: {where}" if where else "")
        )

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, {self.kind}, {len(self.latency_table)} entries, "
                f"budget {self.memory_budget_bytes:,} B, {self.precision})")

    # ---- latency
    def op_latency(self, op: OpSpec) -> float:
        """Latency of one key in µs: the table, else ``latency_model``, else KeyError."""
        value = self.latency_table.get(op)
        if value is not None:
            return float(value)
        if self.latency_model is not None:
            return float(self.latency_model(op))
        raise KeyError(
            f"{self.label} has no latency for {op.label()} ({op!r}). Build the table for the "
            f"search space this architecture comes from (hwnas.latency.profile_cpu(space, "
            f"batch={op.batch}) or hwnas.latency.build_lut), or tabulate() a model profile for it."
        )

    def overhead_latency(self, batch: int = 1) -> float:
        """The per-inference overhead: the table's entry, else the model's, else 0.

        So an analytical profile predicts the same before and after :meth:`tabulate`.
        """
        key = OpSpec.overhead(batch)
        if key in self.latency_table:
            return float(self.latency_table[key])
        if self.latency_model is None:
            return 0.0
        try:
            return float(self.latency_model(key))
        except (KeyError, ValueError, NotImplementedError):
            return 0.0

    def spec_latency(self, key: OpSpec) -> float:
        """Latency of a layer or head key, applying the skip rule of the module docstring."""
        if not key.use_skip:
            return self.op_latency(key)
        parts = key.branches()
        if self.parallel_branches:
            main, shortcut, add = (self.op_latency(p) for p in parts)
            return max(main, shortcut) + add
        if key in self.latency_table:
            return float(self.latency_table[key])
        try:
            return sum(self.op_latency(p) for p in parts)
        except KeyError:
            raise KeyError(
                f"{self.label} has no latency for {key.label()}: neither the whole layer nor its "
                f"branches (main, shortcut, add) are in the table. Build the table for the search "
                f"space this architecture comes from (hwnas.latency.profile_cpu(space, batch={key.batch}))."
            ) from None

    def missing(self, arch: Architecture, batch: int = 1) -> list[OpSpec]:
        """The keys of ``arch`` (layers, head) this profile cannot price; ``[]`` when covered.

        Taught in: notebooks/04_latency_lut.
        """
        out = []
        for key in arch_op_specs(arch, batch):
            try:
                self.spec_latency(key)
            except KeyError:
                out.append(key)
        return out

    def coverage(self) -> dict[str, list[int]]:
        """What the table was built for: layer widths, kernel sizes, input features,
        input lengths (lookbacks) and batch sizes of its keys.

        Taught in: notebooks/04_latency_lut.
        """
        layers = [k for k in self.latency_table if k.is_layer]
        widths = {k.out_channels for k in layers}
        return {
            "widths": sorted(widths),
            "kernel_sizes": sorted({k.kernel_size for k in layers}),
            "input_features": sorted({k.in_channels for k in layers} - widths),
            "lookbacks": sorted({k.seq_len for k in layers if k.in_channels not in widths}),
            "batch": sorted({k.batch for k in self.latency_table}),
        }

    def coverage_error(self, arch: Architecture, batch: int = 1) -> str:
        """The message for an architecture the table does not cover: what is missing,
        what the profile covers, and how to measure the rest.

        Taught in: notebooks/04_latency_lut.
        """
        missing = self.missing(arch, batch)
        cover = ", ".join(f"{name.replace('_', ' ')} {values}" for name, values in self.coverage().items())
        first = "; ".join(k.label() for k in missing[:3]) + (" ..." if len(missing) > 3 else "")
        return (
            f"{self.label} has no latency for {len(missing)} of the {len(arch_op_specs(arch, batch))} "
            f"layer settings of this architecture ({arch.input_features} features, lookback "
            f"{arch.lookback}, batch {batch}): {first}. The profile covers {cover}. Measure the "
            f"missing entries with hwnas.latency.extend_profile(profile, [arch]), or build the "
            f"profile for the space this architecture comes from (hwnas.latency.profile_cpu(space, "
            f"batch={batch}), `hwnas profile-cpu --features {arch.input_features}`)."
        )

    def layer_latencies(self, arch: Architecture, batch: int = 1) -> list[float]:
        """µs per layer (the stem first), then the head; the overhead is not included."""
        return [self.spec_latency(key) for key in arch_op_specs(arch, batch)]

    def predict_latency(self, arch: Architecture, batch: int = 1) -> float:
        """Predicted µs of one inference: overhead + the sum over layers and the head.

        A skip layer costs ``max(main, shortcut) + add`` when ``parallel_branches``,
        its whole (sequential) time otherwise. A key the table lacks raises
        KeyError with :meth:`coverage_error`'s message.
        """
        try:
            layers = self.layer_latencies(arch, batch)
        except KeyError:
            raise KeyError(self.coverage_error(arch, batch)) from None
        return self.overhead_latency(batch) + sum(layers)

    # ---- feasibility
    def check(self, arch: Architecture, batch: int = 1) -> list[str]:
        """Reasons ``arch`` is infeasible on this target; ``[]`` when it is feasible."""
        reasons: list[str] = []
        mem = memory_footprint(arch, self.precision, batch)
        if mem.total_bytes > self.memory_budget_bytes:
            reasons.append(
                f"memory {mem.total_bytes:,} bytes ({self.precision}, batch {batch}) exceeds the "
                f"budget of {self.memory_budget_bytes:,} bytes of {self.label}"
            )
        if self.unsupported is not None:
            keys = arch_op_specs(arch, batch)
            for index, key in enumerate(keys):
                reason = self.unsupported(key)
                if reason:
                    where = "head" if key.is_head else f"layer {index}"
                    reasons.append(f"{where} ({key.label()}): {reason}")
        return reasons

    def is_feasible(self, arch: Architecture, batch: int = 1) -> bool:
        """Whether :meth:`check` finds nothing."""
        return not self.check(arch, batch)

    # ---- tables from models
    def tabulate(self, space: SearchSpace, batch: int = 1) -> HardwareProfile:
        """A copy whose table holds ``latency_model``'s value for every key of ``space``.

        Skip layers are tabulated as branches (main, shortcut, add); the
        ``overhead`` key too when the model answers it.
        """
        if self.latency_model is None:
            raise ValueError(f"{self.label} has no latency_model to tabulate from")
        table = dict(self.latency_table)
        for key in space_op_specs(space, batch, branches=True):
            if key not in table:
                table[key] = float(self.latency_model(key))
        overhead = OpSpec.overhead(batch)
        if overhead not in table:
            try:
                table[overhead] = float(self.latency_model(overhead))
            except (KeyError, ValueError, NotImplementedError):
                pass
        return replace(self, latency_table=table)

    # ---- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (without the callables)."""
        rows = []
        for key in sorted(self.latency_table, key=OpSpec.sort_key):
            row = key.to_dict()
            value = float(self.latency_table[key])
            # strict JSON has no Infinity: an op the target cannot run is stored as null
            row["latency_us"] = value if math.isfinite(value) else None
            rows.append(row)
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "name": self.name,
            "device_type": self.device_type.value,
            "memory_budget_bytes": self.memory_budget_bytes,
            "peak_flops": float(self.peak_flops),
            "parallel_branches": bool(self.parallel_branches),
            "precision": Precision(self.precision).value,
            "is_model": bool(self.is_model),
            "conditions": self.conditions,
            "latency_table": rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HardwareProfile:
        """Rebuild from :meth:`to_dict` output (ValueError naming the problem)."""
        if not isinstance(data, dict):
            raise ValueError(f"a profile must be a JSON object, got {type(data).__name__}")
        if data.get("format") != PROFILE_FORMAT:
            raise ValueError(f"not a hardware profile: format is {data.get('format')!r}, expected {PROFILE_FORMAT!r}")
        if data.get("version") != PROFILE_VERSION:
            raise ValueError(f"profile version {data.get('version')!r} unsupported; expected {PROFILE_VERSION}")
        required = {"name", "device_type", "memory_budget_bytes", "peak_flops", "latency_table"}
        missing = required - set(data)
        if missing:
            raise ValueError(f"profile is missing field(s) {sorted(missing)}")
        if not isinstance(data["latency_table"], list):
            raise ValueError("profile latency_table must be a list of entries")
        table: dict[OpSpec, float] = {}
        for index, row in enumerate(data["latency_table"]):
            if not isinstance(row, dict) or "latency_us" not in row:
                raise ValueError(f"latency_table[{index}] must be an object with a latency_us field")
            row = dict(row)
            value = row.pop("latency_us")
            if value is None:  # an op the target cannot run (saved from an infinite latency)
                value = math.inf
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value or value < 0:
                raise ValueError(
                    f"latency_table[{index}].latency_us must be a number >= 0 or null, got {value!r}"
                )
            try:
                key = OpSpec.from_dict(row)
            except (TypeError, ValueError) as err:
                raise ValueError(f"latency_table[{index}]: {err}") from None
            table[key] = float(value)
        try:
            device = DeviceType(data["device_type"])
        except ValueError:
            raise ValueError(
                f"device_type {data['device_type']!r} unknown; choose one of {[d.value for d in DeviceType]}"
            ) from None
        conditions = data.get("conditions", {})
        if not isinstance(conditions, dict):
            raise ValueError("profile conditions must be a JSON object")
        return cls(
            name=str(data["name"]),
            device_type=device,
            latency_table=table,
            memory_budget_bytes=data["memory_budget_bytes"],
            peak_flops=float(data["peak_flops"]),
            parallel_branches=bool(data.get("parallel_branches", False)),
            precision=data.get("precision", Precision.FP32),
            conditions=conditions,
            is_model=bool(data.get("is_model", False)),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the profile as JSON, atomically (a temporary file renamed into place)."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        return write_text_atomic(path, text)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HardwareProfile:
        """Read a profile saved by :meth:`save`.

        Raises ValueError naming the file when it is corrupt, truncated or not a
        profile. Warns when a measured table was made on another CPU model or
        torch version than this machine's. A loaded analytical profile has its
        table only: ``latency_model`` and ``unsupported`` are not saved.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"hardware profile {path} is not UTF-8 text: {err}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"hardware profile {path} is corrupt or truncated (invalid JSON: {err})"
            ) from None
        try:
            profile = cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"hardware profile {path} is invalid: {err}") from None
        if not profile.is_model:
            here = current_conditions()
            for key, what in (("cpu_model", "CPU model"), ("torch_version", "torch version")):
                made = profile.conditions.get(key)
                if made is not None and made != here[key]:
                    warnings.warn(
                        f"hardware profile {path} was measured with {what} {made!r}, but this "
                        f"machine has {here[key]!r}: its latencies may not hold here; re-measure "
                        f"with hwnas.latency.profile_cpu",
                        UserWarning,
                        stacklevel=2,
                    )
        return profile


def profiles_table(profiles: Iterable[HardwareProfile]) -> str:
    """One line per profile (name and kind, device, budget, peak), for printing."""
    return "\n".join(p.summary().splitlines()[0] for p in profiles)


__all__ = [
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "DeviceType",
    "LatencyModel",
    "HardwareProfile",
    "current_conditions",
    "cpu_model",
]

