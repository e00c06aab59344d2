"""Architectures for trading time series: operations, layers, and the chain they form.

Taught in: notebooks/01_search_space.

An :class:`Architecture` is a chain of :class:`LayerSpec` over an input of shape
``(batch, input_features, lookback)`` followed by a prediction head. Both are frozen
dataclasses, validated on construction and round-tripped through JSON exactly.
The space a search draws them from is :mod:`hwnas.space`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from .checks import check_fields, flag, integer, member

__all__ = [
    "CONV_OPS",
    "DEFAULT_INPUT_FEATURES",
    "FORMAT_VERSION",
    "GATED_OPS",
    "POOL_OPS",
    "RECURRENT_OPS",
    "NO_SKIP_OPS",
    "UNGATED_OPS",
    "WIDTH_PRESERVING_OPS",
    "Activation",
    "Architecture",
    "HeadType",
    "LayerSpec",
    "OpType",
    "check_layer_fits",
    "output_length",
    "receptive_fields",
    "setting_tags",
]

FORMAT_VERSION = 1
# The input channels of an architecture by default: the proxy task's feature count
# (hwnas.data.features.make_features with its defaults; tests/test_house.py checks they agree).
DEFAULT_INPUT_FEATURES = 10


class OpType(StrEnum):
    """The operations a layer can perform on a ``(channels, length)`` sequence.

    Taught in: notebooks/01_search_space.
    """

    CONV = "conv"  # standard 1-D convolution
    DWSEP_CONV = "dwsep_conv"  # depthwise K-tap convolution, then pointwise 1x1
    DILATED_CONV = "dilated_conv"  # 1-D convolution with dilation > 1
    FC = "fc"  # fully connected per time step (a 1x1 convolution)
    ATTENTION = "attention"  # multi-head self-attention over time
    IDENTITY = "identity"  # pass-through (a "zero-cost" choice in a search)
    MAX_POOL = "max_pool"
    AVG_POOL = "avg_pool"
    GRU = "gru"  # single-layer unidirectional GRU over the window, hidden size out_channels
    LSTM = "lstm"  # single-layer unidirectional LSTM over the window, hidden size out_channels
    GATED_TCN = "gated_tcn"  # WaveNet-style tanh(conv_f(x)) * sigmoid(conv_g(x)), dilation >= 1


class Activation(StrEnum):
    """Non-linearity applied after a layer's operation.

    Taught in: notebooks/01_search_space.
    """

    RELU = "relu"
    GELU = "gelu"
    NONE = "none"


class HeadType(StrEnum):
    """How the final ``(channels, length)`` map becomes a prediction.

    Taught in: notebooks/01_search_space.
    """

    GAP = "gap"  # mean over time, then a linear layer
    LAST = "last"  # the last time step, then a linear layer
    FLATTEN = "flatten"  # flatten channels x length, then a linear layer


CONV_OPS = frozenset({OpType.CONV, OpType.DWSEP_CONV, OpType.DILATED_CONV})
POOL_OPS = frozenset({OpType.MAX_POOL, OpType.AVG_POOL})
#: Recurrent layers: they return the whole sequence of hidden states, shape ``(out_channels, L)``;
#: the last state alone is what ``HeadType.LAST`` reads, so no separate "last state" mode is encoded.
RECURRENT_OPS = frozenset({OpType.GRU, OpType.LSTM})
#: Gated temporal layers (recurrent gates, or WaveNet's tanh x sigmoid): the space's newest ops,
#: which the FPGA cannot build and which tables measured before them do not price.
GATED_OPS = RECURRENT_OPS | {OpType.GATED_TCN}
#: Every other op, in ``OpType`` order: the op set of a space priced by a table without gated entries.
UNGATED_OPS = tuple(op for op in OpType if op not in GATED_OPS)
# operations whose kernel_size and stride must stay 1 (they see every step of the window)
_POINTWISE_OR_GLOBAL_OPS = frozenset({OpType.FC, OpType.ATTENTION, OpType.IDENTITY}) | RECURRENT_OPS
# operations that take a dilation
_DILATABLE_OPS = CONV_OPS | {OpType.GATED_TCN}
WIDTH_PRESERVING_OPS = frozenset({OpType.ATTENTION, OpType.IDENTITY}) | POOL_OPS
#: Layers that carry no skip connection (they compute nothing a residual would bypass).
NO_SKIP_OPS = POOL_OPS | {OpType.IDENTITY}


def output_length(length: int, kernel_size: int = 1, stride: int = 1, dilation: int = 1,
                  pooling: bool = False) -> int:
    """Output steps of a 1-D layer on ``length`` input steps: the one formula every module uses.

    ``(L + 2 p - s) // stride + 1`` with span ``s = dilation (k - 1) + 1`` and
    "same" padding ``p = (s - 1) // 2`` for convolutions, ``p = 0`` for pooling
    (and for a skip branch's strided 1x1 projection, ``kernel_size=1``).

    Taught in: notebooks/01_search_space.
    """
    span = dilation * (kernel_size - 1) + 1
    padding = 0 if pooling else (span - 1) // 2
    return (length + 2 * padding - span) // stride + 1


def setting_tags(kernel_size: int, dilation: int = 1, stride: int = 1, heads: int = 1,
                 sep: str = "") -> list[str]:
    """Tags of a layer's non-default settings, e.g. ``['k5', 'd2']`` (``sep="="``: ``k=5``).

    Taught in: notebooks/01_search_space.
    """
    settings = (("k", kernel_size), ("d", dilation), ("s", stride), ("h", heads))
    return [f"{name}{sep}{value}" for name, value in settings if value > 1]


@dataclass(frozen=True)
class LayerSpec:
    """One layer: an operation with its channels, kernel and skip flag.

    ``use_skip`` adds a residual branch ``y = act(op(x)) + shortcut(x)``; the
    shortcut is the identity when shapes match and a strided 1x1 projection
    otherwise (a parallel branch with its own cost).

    Taught in: notebooks/01_search_space.
    """

    op: OpType
    in_channels: int
    out_channels: int
    kernel_size: int = 1
    stride: int = 1
    dilation: int = 1
    heads: int = 1
    use_skip: bool = False
    activation: Activation = Activation.RELU

    def __post_init__(self) -> None:
        check_fields(self, {
            "op": member(OpType), "activation": member(Activation),
            ("in_channels", "out_channels", "kernel_size", "stride", "dilation", "heads"): integer(1),
            "use_skip": flag,
        })
        self._check_op_rules()

    def _check_op_rules(self) -> None:
        """Enforce the field combinations each operation allows."""
        op = self.op
        if op in WIDTH_PRESERVING_OPS and self.in_channels != self.out_channels:
            raise ValueError(
                f"out_channels must equal in_channels ({self.in_channels}) for op "
                f"{op.value!r}, got {self.out_channels}"
            )
        if op in _POINTWISE_OR_GLOBAL_OPS and self.kernel_size != 1:
            raise ValueError(f"kernel_size must be 1 for op {op.value!r}, got {self.kernel_size}")
        if op in _POINTWISE_OR_GLOBAL_OPS and self.stride != 1:
            raise ValueError(f"stride must be 1 for op {op.value!r}, got {self.stride}")
        if op == OpType.DILATED_CONV and self.dilation < 2:
            raise ValueError(f"dilation must be >= 2 for op 'dilated_conv', got {self.dilation}")
        if op not in _DILATABLE_OPS and self.dilation != 1:
            raise ValueError(f"dilation must be 1 for op {op.value!r}, got {self.dilation}")
        if op == OpType.ATTENTION and self.in_channels % self.heads != 0:
            raise ValueError(
                f"heads must divide the width: {self.heads} heads do not divide "
                f"{self.in_channels} channels (allowed: divisors of {self.in_channels})"
            )
        if op != OpType.ATTENTION and self.heads != 1:
            raise ValueError(f"heads must be 1 for op {op.value!r}, got {self.heads}")
        if self.use_skip and op in NO_SKIP_OPS:
            raise ValueError(f"use_skip is only allowed on compute layers, not op {op.value!r}")

    @property
    def span(self) -> int:
        """Number of input time steps one output position sees."""
        return self.dilation * (self.kernel_size - 1) + 1

    @property
    def padding(self) -> int:
        """Zero padding on each side ("same" length for odd spans at stride 1)."""
        return 0 if self.op in POOL_OPS else (self.span - 1) // 2

    def output_length(self, length: int) -> int:
        """Sequence length after this layer for an input of ``length`` steps."""
        return output_length(length, self.kernel_size, self.stride, self.dilation, self.op in POOL_OPS)

    def shortcut_length(self, length: int) -> int:
        """Sequence length of the skip branch (a strided 1x1 projection or identity)."""
        return output_length(length, 1, self.stride)

    @property
    def needs_projection(self) -> bool:
        """Whether the skip branch needs a 1x1 projection to match shapes."""
        return self.use_skip and (self.in_channels != self.out_channels or self.stride != 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the layer."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["op"] = self.op.value
        out["activation"] = self.activation.value
        return out


@dataclass(frozen=True)
class Architecture:
    """A validated chain of layers over ``(batch, input_features, lookback)`` inputs.

    Taught in: notebooks/01_search_space.
    """

    layers: tuple[LayerSpec, ...]
    input_features: int
    lookback: int
    head: HeadType = HeadType.GAP
    num_outputs: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        check_fields(self, {"head": member(HeadType), ("input_features", "lookback", "num_outputs"): integer(1)})
        if not self.layers:
            raise ValueError("layers must hold at least one LayerSpec, got none")
        channels, length = self.input_features, self.lookback
        for index, layer in enumerate(self.layers):
            if not isinstance(layer, LayerSpec):
                raise ValueError(f"layer {index}: expected a LayerSpec, got {type(layer).__name__}")
            channels, length = check_layer_fits(index, layer, channels, length)

    def shapes(self) -> list[tuple[int, int]]:
        """``(channels, length)`` of the input and of each layer's output."""
        shape = [(self.input_features, self.lookback)]
        for layer in self.layers:
            shape.append((layer.out_channels, layer.output_length(shape[-1][1])))
        return shape

    @property
    def output_channels(self) -> int:
        """Channels of the feature map that reaches the head."""
        return self.layers[-1].out_channels

    @property
    def output_length(self) -> int:
        """Length of the feature map that reaches the head."""
        return self.shapes()[-1][1]

    @property
    def head_in_features(self) -> int:
        """Inputs of the head's linear layer."""
        if self.head == HeadType.FLATTEN:
            return self.output_channels * self.output_length
        return self.output_channels

    @property
    def depth(self) -> int:
        """Number of layers (the stem included)."""
        return len(self.layers)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the architecture."""
        return {
            "format_version": FORMAT_VERSION,
            "input_features": self.input_features,
            "lookback": self.lookback,
            "head": self.head.value,
            "num_outputs": self.num_outputs,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        """Rebuild an architecture from :meth:`to_dict` output, validating every field."""
        if not isinstance(data, dict):
            raise ValueError(f"architecture must be a JSON object, got {type(data).__name__}")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"format_version must be {FORMAT_VERSION}, got {version!r}")
        missing = {"input_features", "lookback", "layers"} - data.keys()
        if missing:
            raise ValueError(f"architecture is missing field(s): {', '.join(sorted(missing))}")
        if not isinstance(data["layers"], list):
            raise ValueError("layers must be a list of layer objects")
        known = {f.name for f in fields(LayerSpec)}
        layers = []
        for index, item in enumerate(data["layers"]):
            if not isinstance(item, dict):
                raise ValueError(f"layer {index}: expected an object, got {type(item).__name__}")
            unknown = set(item) - known
            if unknown:
                raise ValueError(
                    f"layer {index}: unknown field(s) {sorted(unknown)}; allowed: {sorted(known)}"
                )
            try:
                layers.append(LayerSpec(**item))
            except (TypeError, ValueError) as err:
                raise ValueError(f"layer {index}: {err}") from None
        return cls(
            layers=tuple(layers),
            input_features=data["input_features"],
            lookback=data["lookback"],
            head=data.get("head", HeadType.GAP.value),
            num_outputs=data.get("num_outputs", 1),
        )

    def to_json(self, indent: int | None = None) -> str:
        """JSON text of the architecture."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"architecture JSON is malformed: {err}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the architecture's JSON to ``path`` atomically (a temporary file renamed).

        Like every ``save`` of the library (profiles, results) it creates missing
        folders; the command line's ``--out`` refuses them instead, so a typo in a
        shell never creates a stray tree. A path that cannot be written (``/proc``)
        is a ValueError naming it, as on the command line.

        Taught in: notebooks/01_search_space.
        """
        from .fileio import check_writable, write_text_atomic

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(check_writable(path, "path"), self.to_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Architecture:
        """Read an architecture saved by :meth:`save` (or ``hwnas sample --out``).

        A ValueError names the file when it is not UTF-8 text, not JSON or not a
        valid architecture; OSError when it cannot be read.

        Taught in: notebooks/01_search_space.
        """
        raw = Path(path).read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text (byte {err.start}: {raw[err.start:err.start + 1]!r}); "
                             f"an architecture file is JSON from `hwnas sample --out`") from None
        try:
            return cls.from_json(text)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def summary(self) -> str:
        """One line per layer, for printing in a chapter (``describe()`` is the same)."""
        lines = [f"input: {self.input_features} features x {self.lookback} steps"]
        for index, (layer, (ch, length)) in enumerate(zip(self.layers, self.shapes()[1:])):
            extra = setting_tags(layer.kernel_size, layer.dilation, layer.stride, layer.heads, sep="=")
            if layer.use_skip:
                extra.append("skip")
            detail = f" ({', '.join(extra)})" if extra else ""
            lines.append(
                f"{index:>2} {layer.op.value:<13}{detail:<24} -> {ch:>4} x {length:<4} "
                f"{layer.activation.value}"
            )
        lines.append(f"head: {self.head.value} -> {self.num_outputs}")
        return "\n".join(lines)

    describe = summary

    def label(self) -> str:
        """One line naming the lookback, the layers after the stem and the head, e.g.
        ``L64 [conv5/32 attention/32+] gap``: each layer is its op, its kernel size when above 1,
        ``/`` its output width, and ``+`` when it has a skip connection, so two architectures
        that differ in widths or skips get different labels; how tables and search logs name a model."""
        def one(layer: LayerSpec) -> str:
            kernel = str(layer.kernel_size) if layer.kernel_size > 1 else ""
            return f"{layer.op.value}{kernel}/{layer.out_channels}{'+' if layer.use_skip else ''}"

        return f"L{self.lookback} [{' '.join(one(layer) for layer in self.layers[1:])}] {self.head.value}"


def check_layer_fits(index: int, layer: LayerSpec, channels: int, length: int) -> tuple[int, int]:
    """Check that ``layer`` accepts a ``(channels, length)`` input; return its output shape.

    Taught in: notebooks/01_search_space.
    """
    if layer.in_channels != channels:
        raise ValueError(
            f"layer {index}: in_channels is {layer.in_channels} but the previous "
            f"{'layer gives' if index else 'input has'} {channels} channels (allowed: {channels})"
        )
    if layer.span > length:
        raise ValueError(
            f"layer {index}: kernel_size={layer.kernel_size} with dilation={layer.dilation} spans "
            f"{layer.span} steps, longer than the sequence of {length} (allowed span <= {length})"
        )
    out_length = layer.output_length(length)
    if layer.stride > length or out_length < 1:
        raise ValueError(
            f"layer {index}: stride={layer.stride} empties the sequence of {length} steps "
            f"(allowed stride <= {length})"
        )
    if layer.use_skip and layer.shortcut_length(length) != out_length:
        raise ValueError(
            f"layer {index}: use_skip needs the branch lengths to match, but the op gives "
            f"{out_length} steps and the shortcut {layer.shortcut_length(length)} "
            f"(use an odd span kernel_size, or use_skip=False)"
        )
    return layer.out_channels, out_length


def receptive_fields(layers: Iterable[LayerSpec], lookback: int) -> list[int]:
    """Input steps one output step spans after each layer (attention and recurrent
    layers: the whole window, as the last step's state has seen every step).

    Taught in: notebooks/01_search_space. With padding a field may exceed the window.
    """
    field_, jump, out = 1, 1, []
    for layer in layers:
        if layer.op == OpType.ATTENTION or layer.op in RECURRENT_OPS:
            field_ = lookback
        else:
            field_ += (layer.span - 1) * jump
            jump *= layer.stride
        out.append(field_)
    return out
