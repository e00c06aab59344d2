"""The lookup-table key: one layer, head, branch or overhead as the model runs it.

Taught in: notebooks/04_latency_lut.

An :class:`OpSpec` names what a profile prices (see :mod:`hwnas.hardware` for
how a profile sums them): its :class:`OpKind`, channels, input length,
settings and batch. :func:`arch_op_specs` lists an architecture's keys,
:func:`space_op_specs` every key a search space can produce.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from enum import Enum, StrEnum
from typing import Any

from .architecture import (
    POOL_OPS,
    Activation,
    Architecture,
    LayerSpec,
    OpType,
    check_layer_fits,
    output_length,
    setting_tags,
)
from .checks import check_fields, flag, integer, member, require_enum
from .cost import layer_flops
from .space import SearchSpace


class OpKind(StrEnum):
    """What an :class:`OpSpec` times: a layer's operation (the values of
    :class:`~hwnas.space.OpType`), a head, a skip layer's branch, or the overhead.

    A ``str`` enum, so keys compare equal to their names and saved profiles,
    which store the plain strings, load unchanged.

    Taught in: notebooks/04_latency_lut.
    """

    CONV = "conv"
    DWSEP_CONV = "dwsep_conv"
    DILATED_CONV = "dilated_conv"
    FC = "fc"
    ATTENTION = "attention"
    IDENTITY = "identity"
    MAX_POOL = "max_pool"
    AVG_POOL = "avg_pool"
    GRU = "gru"
    LSTM = "lstm"
    GATED_TCN = "gated_tcn"
    HEAD_GAP = "head_gap"
    HEAD_LAST = "head_last"
    HEAD_FLATTEN = "head_flatten"
    SHORTCUT = "shortcut"
    ADD = "add"
    OVERHEAD = "overhead"


#: The groups of :class:`OpKind` members (str enum members: ``"head_gap" in HEAD_OPS`` holds).
LAYER_OPS: tuple[OpKind, ...] = tuple(OpKind(o.value) for o in OpType)
HEAD_OPS: tuple[OpKind, ...] = (OpKind.HEAD_GAP, OpKind.HEAD_LAST, OpKind.HEAD_FLATTEN)
BRANCH_OPS: tuple[OpKind, ...] = (OpKind.SHORTCUT, OpKind.ADD)
OVERHEAD_OP = OpKind.OVERHEAD
ALL_OPS: tuple[OpKind, ...] = tuple(OpKind)
_POOL_KINDS = frozenset(OpKind(o.value) for o in POOL_OPS)


def _as_plain(value: Any) -> Any:
    """Enum members to their string values; everything else unchanged."""
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True)
class OpSpec:
    """The lookup-table key: one layer (or the head) as the model runs it.

    ``seq_len`` is the *input* length of the layer, ``batch`` the batch size the
    latency was measured at. Fields are normalised (``op`` to :class:`OpKind`,
    ``activation`` to :class:`~hwnas.architecture.Activation`, both ``str`` enums; plain
    ``int``/``bool``) so that keys built from enums, numpy integers or JSON compare and hash equal.

    Taught in: notebooks/04_latency_lut.
    """

    op: OpKind
    in_channels: int
    out_channels: int
    seq_len: int
    kernel_size: int = 1
    stride: int = 1
    dilation: int = 1
    heads: int = 1
    activation: Activation = Activation.NONE
    use_skip: bool = False
    batch: int = 1

    def __post_init__(self) -> None:
        op = require_enum(OpKind, _as_plain(self.op), "OpSpec.op")
        object.__setattr__(self, "op", op)
        channels = integer(0 if op == OpKind.OVERHEAD else 1)  # the overhead key has no channels
        check_fields(self, {
            "activation": member(Activation),
            ("in_channels", "out_channels", "seq_len"): channels,
            ("kernel_size", "stride", "dilation", "heads", "batch"): integer(1),
            "use_skip": flag,
        }, "OpSpec.")

    # ---- constructors
    @classmethod
    def from_layer(cls, spec: LayerSpec, seq_len: int, batch: int = 1) -> OpSpec:
        """The key of layer ``spec`` receiving ``seq_len`` steps."""
        return cls(
            op=OpKind(spec.op.value),
            in_channels=spec.in_channels,
            out_channels=spec.out_channels,
            seq_len=seq_len,
            kernel_size=spec.kernel_size,
            stride=spec.stride,
            dilation=spec.dilation,
            heads=spec.heads,
            activation=spec.activation,
            use_skip=spec.use_skip,
            batch=batch,
        )

    @classmethod
    def head_of(cls, arch: Architecture, batch: int = 1) -> OpSpec:
        """The key of the head of ``arch`` (its input map and outputs)."""
        return cls(
            op=OpKind(f"head_{arch.head.value}"),
            in_channels=arch.output_channels,
            out_channels=arch.num_outputs,
            seq_len=arch.output_length,
            batch=batch,
        )

    @classmethod
    def overhead(cls, batch: int = 1) -> OpSpec:
        """The key of the per-inference overhead of a whole model."""
        return cls(op=OpKind.OVERHEAD, in_channels=0, out_channels=0, seq_len=0, batch=batch)

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
        if self.op in (OpKind.ADD, OpKind.OVERHEAD):
            return self.seq_len
        if self.op == OpKind.SHORTCUT:
            return output_length(self.seq_len, 1, self.stride)
        return output_length(self.seq_len, self.kernel_size, self.stride, self.dilation,
                             pooling=self.op in _POOL_KINDS)

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
            features = self.in_channels * (self.seq_len if self.op == OpKind.HEAD_FLATTEN else 1)
            return self.batch * 2 * features * self.out_channels
        if self.is_projection:
            return self.batch * 2 * self.out_len * self.in_channels * self.out_channels
        return 0

    def layer_spec(self) -> LayerSpec:
        """The :class:`~hwnas.space.LayerSpec` of a layer key (ValueError otherwise)."""
        if not self.is_layer:
            raise ValueError(f"OpSpec op {self.op!r} is not a layer; layer_spec() needs one of {list(LAYER_OPS)}")
        return LayerSpec(
            op=OpType(self.op), in_channels=self.in_channels, out_channels=self.out_channels,
            kernel_size=self.kernel_size, stride=self.stride, dilation=self.dilation,
            heads=self.heads, use_skip=self.use_skip, activation=self.activation,
        )

    def main_branch(self) -> OpSpec:
        """The layer without its residual branch (``use_skip=False``)."""
        return replace(self, use_skip=False)

    def shortcut_branch(self) -> OpSpec:
        """The residual branch of a skip layer: a strided 1x1 projection or the identity."""
        return OpSpec(op=OpKind.SHORTCUT, in_channels=self.in_channels, out_channels=self.out_channels,
                      seq_len=self.seq_len, stride=self.stride, batch=self.batch)

    def add_op(self) -> OpSpec:
        """The element-wise sum joining the two branches (on the output shape)."""
        return OpSpec(op=OpKind.ADD, in_channels=self.out_channels, out_channels=self.out_channels,
                      seq_len=self.out_len, batch=self.batch)

    def branches(self) -> tuple[OpSpec, OpSpec, OpSpec]:
        """The split of a skip layer: ``(main_branch(), shortcut_branch(), add_op())``."""
        return self.main_branch(), self.shortcut_branch(), self.add_op()

    @property
    def is_projection(self) -> bool:
        """For ``shortcut`` keys: whether it is a 1x1 projection (not the identity)."""
        return self.op == OpKind.SHORTCUT and (self.in_channels != self.out_channels or self.stride != 1)

    def sort_key(self) -> tuple:
        """A total order on keys (used to list a space's keys deterministically)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def label(self) -> str:
        """Short text such as ``conv k5 32->64 L=64 relu skip b1``."""
        parts = [self.op, *setting_tags(self.kernel_size, self.dilation, self.stride, self.heads)]
        parts.append(f"{self.in_channels}->{self.out_channels} L={self.seq_len}")
        if self.activation != Activation.NONE:
            parts.append(self.activation)
        if self.use_skip:
            parts.append("skip")
        parts.append(f"b{self.batch}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (enum fields as their string values)."""
        return {name: _as_plain(value) for name, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OpSpec:
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
    """The keys of ``arch``: its layers in order (the stem first), then the head.

    Taught in: notebooks/04_latency_lut.
    """
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
    stem = LayerSpec(OpType.FC, space.input_features, space.stem_width, activation=Activation.RELU)
    for lookback in space.lookbacks:
        layers.add((stem, lookback))
        frontier = {(space.stem_width, lookback)}
        for depth in range(1, max_depth + 1):
            nxt: set[tuple[int, int]] = set()
            for channels, length in frontier:
                for choice in candidates:
                    if not space.fits(choice, channels, length):
                        continue
                    for skip in space.skip_choices:
                        layer = choice.layer(channels, skip)
                        try:
                            out = check_layer_fits(0, layer, channels, length)
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

    Taught in: notebooks/04_latency_lut.
    """
    layers, heads = _space_layers(space)
    out: set[OpSpec] = set()
    for layer, length in layers:
        key = OpSpec.from_layer(layer, length, batch)
        if branches and key.use_skip:
            out.update(key.branches())
        else:
            out.add(key)
    for kind, channels, length, outputs in heads:
        out.add(OpSpec(op=OpKind(f"head_{kind}"), in_channels=channels, out_channels=outputs,
                       seq_len=length, batch=batch))
    return sorted(out, key=OpSpec.sort_key)


__all__ = [
    "ALL_OPS",
    "BRANCH_OPS",
    "HEAD_OPS",
    "LAYER_OPS",
    "OVERHEAD_OP",
    "OpKind",
    "OpSpec",
    "arch_op_specs",
    "space_op_specs",
]
