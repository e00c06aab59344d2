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
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from .cost import layer_flops, memory_footprint
from .fileio import write_text_atomic
from .space import (
    POOL_OPS,
    Architecture,
    LayerSpec,
    OpType,
    SearchSpace,
    _check_layer_fits,
    setting_tags,
)

PROFILE_FORMAT = "hwnas-hardware-profile"
PROFILE_VERSION = 1

HEAD_OPS = ("head_gap", "head_last", "head_flatten")
BRANCH_OPS = ("shortcut", "add")
OVERHEAD_OP = "overhead"
LAYER_OPS = tuple(o.value for o in OpType)
ALL_OPS = LAYER_OPS + HEAD_OPS + BRANCH_OPS + (OVERHEAD_OP,)
_POOL_VALUES = frozenset(o.value for o in POOL_OPS)
_ACTIVATIONS = ("relu", "gelu", "none")


class DeviceType(str, Enum):
    """The kind of processor a profile describes."""

    CPU = "cpu"
    MOBILE = "mobile"
    GPU = "gpu"
    FPGA = "fpga"


def _as_plain(value: Any) -> Any:
    """Enum members to their string values; everything else unchanged."""
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True)
class OpSpec:
    """The lookup-table key: one layer (or the head) as the model runs it.

    ``seq_len`` is the *input* length of the layer, ``batch`` the batch size the
    latency was measured at. Fields are normalised to plain ``str``/``int``/``bool``
    so that keys built from enums, numpy integers or JSON compare and hash equal.
    """

    op: str
    in_channels: int
    out_channels: int
    seq_len: int
    kernel_size: int = 1
    stride: int = 1
    dilation: int = 1
    heads: int = 1
    activation: str = "none"
    use_skip: bool = False
    batch: int = 1

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        op = str(_as_plain(self.op))
        if op not in ALL_OPS:
            raise ValueError(f"OpSpec.op: {op!r} is not allowed; choose one of {list(ALL_OPS)}")
        set_(self, "op", op)
        activation = str(_as_plain(self.activation))
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"OpSpec.activation: {activation!r} is not allowed; choose one of {list(_ACTIVATIONS)}"
            )
        set_(self, "activation", activation)
        minimum = 0 if op == OVERHEAD_OP else 1
        for name in ("in_channels", "out_channels", "seq_len", "kernel_size", "stride",
                     "dilation", "heads", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not hasattr(value, "__index__"):
                raise ValueError(f"OpSpec.{name} must be an integer >= {minimum}, got {value!r}")
            value = int(value)
            lowest = 1 if name in ("kernel_size", "stride", "dilation", "heads", "batch") else minimum
            if value < lowest:
                raise ValueError(f"OpSpec.{name} must be an integer >= {lowest}, got {value}")
            set_(self, name, value)
        if not isinstance(self.use_skip, bool):
            if type(self.use_skip).__name__ == "bool_":  # numpy bool
                set_(self, "use_skip", bool(self.use_skip))
            else:
                raise ValueError(f"OpSpec.use_skip must be True or False, got {self.use_skip!r}")

    # ---- constructors
    @classmethod
    def from_layer(cls, spec: LayerSpec, seq_len: int, batch: int = 1) -> "OpSpec":
        """The key of layer ``spec`` receiving ``seq_len`` steps."""
        return cls(
            op=spec.op.value,
            in_channels=spec.in_channels,
            out_channels=spec.out_channels,
            seq_len=seq_len,
            kernel_size=spec.kernel_size,
            stride=spec.stride,
            dilation=spec.dilation,
            heads=spec.heads,
            activation=spec.activation.value,
            use_skip=spec.use_skip,
            batch=batch,
        )

    @classmethod
    def head_of(cls, arch: Architecture, batch: int = 1) -> "OpSpec":
        """The key of the head of ``arch`` (its input map and outputs)."""
        return cls(
            op=f"head_{arch.head.value}",
            in_channels=arch.output_channels,
            out_channels=arch.num_outputs,
            seq_len=arch.output_length,
            batch=batch,
        )

    @classmethod
    def overhead(cls, batch: int = 1) -> "OpSpec":
        """The key of the per-inference overhead of a whole model."""
        return cls(op=OVERHEAD_OP, in_channels=0, out_channels=0, seq_len=0, batch=batch)

    # ---- queries
    @property
    def is_layer(self) -> bool:
        """Whether the key is a layer (an :class:`~hwnas.space.OpType`)."""
        return self.op in LAYER_OPS

    @property
    def is_head(self) -> bool:
        """Whether the key is a head."""
        return self.op in HEAD_OPS

    @property
    def out_len(self) -> int:
        """Output length (1 for heads, the input length for ``add``/``overhead``)."""
        if self.is_head:
            return 1
        if self.op in ("add", OVERHEAD_OP):
            return self.seq_len
        if self.op == "shortcut":
            return (self.seq_len - 1) // self.stride + 1
        span = self.dilation * (self.kernel_size - 1) + 1
        padding = 0 if self.op in _POOL_VALUES else (span - 1) // 2
        return (self.seq_len + 2 * padding - span) // self.stride + 1

    @property
    def flops(self) -> int:
        """FLOPs of the key for its batch (the convention of :mod:`hwnas.cost`).

        Layers count their skip projection; ``shortcut`` counts its projection
        (0 for the identity); ``add``, ``overhead`` and pooling count 0.

        Taught in: notebooks/04_latency_lut.
        """
        if self.is_layer:
            return self.batch * layer_flops(self.layer_spec(), self.seq_len)
        if self.is_head:
            features = self.in_channels * (self.seq_len if self.op == "head_flatten" else 1)
            return self.batch * 2 * features * self.out_channels
        if self.is_projection:
            return self.batch * 2 * self.out_len * self.in_channels * self.out_channels
        return 0

    def layer_spec(self) -> LayerSpec:
        """The :class:`~hwnas.space.LayerSpec` of a layer key (ValueError otherwise)."""
        if not self.is_layer:
            raise ValueError(f"OpSpec op {self.op!r} is not a layer; layer_spec() needs one of {list(LAYER_OPS)}")
        return LayerSpec(
            op=self.op, in_channels=self.in_channels, out_channels=self.out_channels,
            kernel_size=self.kernel_size, stride=self.stride, dilation=self.dilation,
            heads=self.heads, use_skip=self.use_skip, activation=self.activation,
        )

    def main_branch(self) -> "OpSpec":
        """The layer without its residual branch (``use_skip=False``)."""
        return replace(self, use_skip=False)

    def shortcut_branch(self) -> "OpSpec":
        """The residual branch of a skip layer: a strided 1x1 projection or the identity."""
        return OpSpec(op="shortcut", in_channels=self.in_channels, out_channels=self.out_channels,
                      seq_len=self.seq_len, stride=self.stride, batch=self.batch)

    def add_op(self) -> "OpSpec":
        """The element-wise sum joining the two branches (on the output shape)."""
        return OpSpec(op="add", in_channels=self.out_channels, out_channels=self.out_channels,
                      seq_len=self.out_len, batch=self.batch)

    @property
    def is_projection(self) -> bool:
        """For ``shortcut`` keys: whether it is a 1x1 projection (not the identity)."""
        return self.op == "shortcut" and (self.in_channels != self.out_channels or self.stride != 1)

    def sort_key(self) -> tuple:
        """A total order on keys (used to list a space's keys deterministically)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def label(self) -> str:
        """Short text such as ``conv k5 32->64 L=64 relu skip b1``."""
        parts = [self.op, *setting_tags(self.kernel_size, self.dilation, self.stride, self.heads)]
        parts.append(f"{self.in_channels}->{self.out_channels} L={self.seq_len}")
        if self.activation != "none":
            parts.append(self.activation)
        if self.use_skip:
            parts.append("skip")
        parts.append(f"b{self.batch}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OpSpec":
        """Rebuild from :meth:`to_dict` output (ValueError naming unknown or missing fields)."""
        if not isinstance(d, dict):
            raise ValueError(f"OpSpec must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"OpSpec: unknown field(s) {sorted(unknown)}; allowed: {sorted(known)}")
        missing = {"op", "in_channels", "out_channels", "seq_len"} - set(d)
        if missing:
            raise ValueError(f"OpSpec: missing field(s) {sorted(missing)}")
        return cls(**d)


def arch_op_specs(arch: Architecture, batch: int = 1) -> list[OpSpec]:
    """The keys of ``arch``: its layers in order (the stem first), then the head."""
    shapes = arch.shapes()
    specs = [OpSpec.from_layer(layer, shapes[i][1], batch) for i, layer in enumerate(arch.layers)]
    specs.append(OpSpec.head_of(arch, batch))
    return specs


def _space_layers(space: SearchSpace) -> tuple[set[tuple[LayerSpec, int]], set[tuple[str, int, int, int]]]:
    """Every (layer, input length) and (head, channels, length, outputs) a space can produce."""
    layers: set[tuple[LayerSpec, int]] = set()
    heads: set[tuple[str, int, int, int]] = set()
    max_depth = max(space.depths)
    depths = set(space.depths)
    candidates = space.candidates()
    stem = LayerSpec(OpType.FC, space.input_features, space.stem_width, activation="relu")
    for lookback in space.lookbacks:
        layers.add((stem, lookback))
        frontier = {(space.stem_width, lookback)}
        for depth in range(1, max_depth + 1):
            nxt: set[tuple[int, int]] = set()
            for channels, length in frontier:
                for choice in candidates:
                    if not space._fits(choice, channels, length):
                        continue
                    for skip in space.skip_choices:
                        layer = choice.layer(channels, skip)
                        try:
                            out = _check_layer_fits(0, layer, channels, length)
                        except ValueError:
                            continue
                        layers.add((layer, length))
                        nxt.add(out)
            frontier = nxt
            if depth in depths:
                for channels, length in frontier:
                    for head in space.head_types:
                        heads.add((head.value, channels, length, space.num_outputs))
    return layers, heads


def space_op_specs(space: SearchSpace, batch: int = 1, branches: bool = False) -> list[OpSpec]:
    """Every distinct key the architectures of ``space`` can produce, heads included.

    Sorted by :meth:`OpSpec.sort_key`. With ``branches=False`` (the default, what a
    measured CPU table needs) skip layers appear whole (``use_skip=True``). With
    ``branches=True`` (what parallel-branch and analytical profiles need) skip
    layers are replaced by their main branch, shortcut and add keys.
    """
    layers, heads = _space_layers(space)
    out: set[OpSpec] = set()
    for layer, length in layers:
        key = OpSpec.from_layer(layer, length, batch)
        if branches and key.use_skip:
            out.update((key.main_branch(), key.shortcut_branch(), key.add_op()))
        else:
            out.add(key)
    for kind, channels, length, outputs in heads:
        out.add(OpSpec(op=f"head_{kind}", in_channels=channels, out_channels=outputs,
                       seq_len=length, batch=batch))
    return sorted(out, key=OpSpec.sort_key)


LatencyModel = Callable[[OpSpec], float]


def current_conditions() -> dict[str, Any]:
    """Facts about this machine that a measured table depends on."""
    return {
        "torch_version": torch.__version__,
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else :mod:`platform`)."""
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
    """

    name: str
    device_type: DeviceType
    latency_table: dict[OpSpec, float]
    memory_budget_bytes: int
    peak_flops: float
    parallel_branches: bool = False
    precision: str = "fp32"
    conditions: dict = field(default_factory=dict)
    is_model: bool = False
    latency_model: LatencyModel | None = None
    unsupported: Callable[[OpSpec], str | None] | None = None

    def __post_init__(self) -> None:
        self.device_type = DeviceType(_as_plain(self.device_type)) if not isinstance(
            self.device_type, DeviceType) else self.device_type
        if not isinstance(self.latency_table, dict):
            raise ValueError("latency_table must be a dict mapping OpSpec to microseconds")
        if isinstance(self.memory_budget_bytes, bool) or int(self.memory_budget_bytes) < 0:
            raise ValueError(f"memory_budget_bytes must be an integer >= 0, got {self.memory_budget_bytes!r}")
        self.memory_budget_bytes = int(self.memory_budget_bytes)
        if not self.peak_flops > 0:
            raise ValueError(f"peak_flops must be > 0 FLOP/s, got {self.peak_flops!r}")
        from .cost import bytes_per_value

        bytes_per_value(self.precision)  # validates the name

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
            f"memory budget {self.memory_budget_bytes / 1e6:.1f} MB ({self.precision}), "
            f"peak {self.peak_flops / 1e9:.1f} GFLOP/s, "
            f"{'parallel' if self.parallel_branches else 'sequential'} branches"
            + (f"\n  conditions: {where}" if where else "")
        )

    def __str__(self) -> str:
        return self.summary()

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
        parts = (key.main_branch(), key.shortcut_branch(), key.add_op())
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

    def layer_latencies(self, arch: Architecture, batch: int = 1) -> list[float]:
        """µs per layer (the stem first), then the head; the overhead is not included."""
        return [self.spec_latency(key) for key in arch_op_specs(arch, batch)]

    def predict_latency(self, arch: Architecture, batch: int = 1) -> float:
        """Predicted µs of one inference: overhead + the sum over layers and the head.

        A skip layer costs ``max(main, shortcut) + add`` when ``parallel_branches``,
        its whole (sequential) time otherwise.
        """
        return self.overhead_latency(batch) + sum(self.layer_latencies(arch, batch))

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
    def tabulate(self, space: SearchSpace, batch: int = 1) -> "HardwareProfile":
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
            "precision": self.precision,
            "is_model": bool(self.is_model),
            "conditions": self.conditions,
            "latency_table": rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HardwareProfile":
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
            precision=data.get("precision", "fp32"),
            conditions=conditions,
            is_model=bool(data.get("is_model", False)),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the profile as JSON, atomically (a temporary file renamed into place)."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        return write_text_atomic(path, text)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "HardwareProfile":
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
    "DeviceType",
    "OpSpec",
    "LatencyModel",
    "HardwareProfile",
    "arch_op_specs",
    "space_op_specs",
    "current_conditions",
    "cpu_model",
]
