"""Architectures for trading time series and the space a search draws them from.

Taught in: notebooks/01_search_space.

An :class:`Architecture` is a chain of :class:`LayerSpec` over an input of shape
``(batch, input_features, lookback)`` followed by a prediction head. Both are frozen
dataclasses, validated on construction and round-tripped through JSON exactly.
A :class:`SearchSpace` lists the choices per layer and samples or mutates
architectures with a seeded :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .checks import require_enum, require_int

FORMAT_VERSION = 1
# The input channels of an architecture by default: the proxy task's feature count
# (hwnas.data.features.make_features with its defaults; tests/test_house.py checks they agree).
DEFAULT_INPUT_FEATURES = 10


class OpType(str, Enum):
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


class Activation(str, Enum):
    """Non-linearity applied after a layer's operation.

    Taught in: notebooks/01_search_space.
    """

    RELU = "relu"
    GELU = "gelu"
    NONE = "none"


class HeadType(str, Enum):
    """How the final ``(channels, length)`` map becomes a prediction.

    Taught in: notebooks/01_search_space.
    """

    GAP = "gap"  # mean over time, then a linear layer
    LAST = "last"  # the last time step, then a linear layer
    FLATTEN = "flatten"  # flatten channels x length, then a linear layer


CONV_OPS = frozenset({OpType.CONV, OpType.DWSEP_CONV, OpType.DILATED_CONV})
POOL_OPS = frozenset({OpType.MAX_POOL, OpType.AVG_POOL})
WIDTH_PRESERVING_OPS = frozenset({OpType.ATTENTION, OpType.IDENTITY}) | POOL_OPS


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
        set_ = object.__setattr__
        set_(self, "op", require_enum(OpType, self.op, "op"))
        set_(self, "activation", require_enum(Activation, self.activation, "activation"))
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "dilation", "heads"):
            set_(self, name, require_int(getattr(self, name), name, 1))
        if not isinstance(self.use_skip, (bool, np.bool_)):
            raise ValueError(f"use_skip must be True or False, got {self.use_skip!r}")
        set_(self, "use_skip", bool(self.use_skip))
        self._check_op_rules()

    def _check_op_rules(self) -> None:
        """Enforce the field combinations each operation allows."""
        op = self.op
        if op in WIDTH_PRESERVING_OPS and self.in_channels != self.out_channels:
            raise ValueError(
                f"out_channels must equal in_channels ({self.in_channels}) for op "
                f"{op.value!r}, got {self.out_channels}"
            )
        if op in (OpType.FC, OpType.ATTENTION, OpType.IDENTITY) and self.kernel_size != 1:
            raise ValueError(f"kernel_size must be 1 for op {op.value!r}, got {self.kernel_size}")
        if op in (OpType.FC, OpType.ATTENTION, OpType.IDENTITY) and self.stride != 1:
            raise ValueError(f"stride must be 1 for op {op.value!r}, got {self.stride}")
        if op == OpType.DILATED_CONV and self.dilation < 2:
            raise ValueError(f"dilation must be >= 2 for op 'dilated_conv', got {self.dilation}")
        if op not in (OpType.DILATED_CONV, OpType.DWSEP_CONV, OpType.CONV) and self.dilation != 1:
            raise ValueError(f"dilation must be 1 for op {op.value!r}, got {self.dilation}")
        if op == OpType.ATTENTION and self.in_channels % self.heads != 0:
            raise ValueError(
                f"heads must divide the width: {self.heads} heads do not divide "
                f"{self.in_channels} channels (allowed: divisors of {self.in_channels})"
            )
        if op != OpType.ATTENTION and self.heads != 1:
            raise ValueError(f"heads must be 1 for op {op.value!r}, got {self.heads}")
        if self.use_skip and op in POOL_OPS | {OpType.IDENTITY}:
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
        set_ = object.__setattr__
        set_(self, "layers", tuple(self.layers))
        set_(self, "head", require_enum(HeadType, self.head, "head"))
        for name in ("input_features", "lookback", "num_outputs"):
            set_(self, name, require_int(getattr(self, name), name, 1))
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
    def from_dict(cls, data: dict[str, Any]) -> "Architecture":
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
    def from_json(cls, text: str) -> "Architecture":
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"architecture JSON is malformed: {err}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the architecture's JSON to ``path`` atomically (a temporary file renamed).

        Taught in: notebooks/01_search_space.
        """
        from .fileio import write_text_atomic

        return write_text_atomic(path, self.to_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Architecture":
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
    """Input steps one output step spans after each layer (attention: the whole window).

    Taught in: notebooks/01_search_space. With padding a field may exceed the window.
    """
    field_, jump, out = 1, 1, []
    for layer in layers:
        if layer.op == OpType.ATTENTION:
            field_ = lookback
        else:
            field_ += (layer.span - 1) * jump
            jump *= layer.stride
        out.append(field_)
    return out


# --------------------------------------------------------------------------- search space


@dataclass(frozen=True)
class BlockChoice:
    """One candidate block a searchable layer may pick.

    ``width`` is ``None`` for operations that keep the incoming width
    (attention, identity, pooling).

    Taught in: notebooks/01_search_space.
    """

    op: OpType
    kernel_size: int = 1
    dilation: int = 1
    heads: int = 1
    width: int | None = None
    stride: int = 1
    activation: Activation = Activation.RELU

    def layer(self, in_channels: int, use_skip: bool) -> LayerSpec:
        """The concrete layer this choice makes for a given input width."""
        return LayerSpec(
            op=self.op,
            in_channels=in_channels,
            out_channels=in_channels if self.width is None else self.width,
            kernel_size=self.kernel_size,
            stride=self.stride,
            dilation=self.dilation,
            heads=self.heads,
            use_skip=use_skip and self.op not in POOL_OPS | {OpType.IDENTITY},
            activation=self.activation,
        )

    def label(self) -> str:
        """Short human-readable name, e.g. ``conv k5 w32``."""
        parts = [self.op.value, *setting_tags(self.kernel_size, self.dilation, heads=self.heads)]
        if self.width is not None:
            parts.append(f"w{self.width}")
        if self.activation != Activation.RELU:
            parts.append(self.activation.value)
        return " ".join(parts)


@dataclass(frozen=True)
class Genome:
    """The decisions that define one architecture of a :class:`SearchSpace`.

    Taught in: notebooks/01_search_space.
    """

    lookback: int
    blocks: tuple[int, ...]  # index into SearchSpace.candidates() per searchable layer
    skips: tuple[bool, ...]
    head: HeadType


@dataclass(frozen=True)
class SearchSpace:
    """The per-layer choices of a hardware-aware search.

    Every architecture starts with a fixed stem (a per-step fully connected layer
    from the input features to ``stem_width`` channels), then ``depth`` searchable
    layers, each one of :meth:`candidates`, optionally with a skip connection,
    then a head. Pooling halves the sequence; a choice that would not fit the
    current length is never sampled.

    Taught in: notebooks/01_search_space.
    """

    name: str = "default"
    input_features: int = DEFAULT_INPUT_FEATURES
    lookbacks: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (2, 3, 4, 5, 6)
    ops: tuple[OpType, ...] = tuple(OpType)
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    dilations: tuple[int, ...] = (2, 4)
    widths: tuple[int, ...] = (16, 32, 64)
    heads: tuple[int, ...] = (2, 4)
    activations: tuple[Activation, ...] = (Activation.RELU, Activation.GELU)
    skip_choices: tuple[bool, ...] = (False, True)
    head_types: tuple[HeadType, ...] = (HeadType.GAP, HeadType.LAST)
    stem_width: int = 32
    num_outputs: int = 1
    pool_kernel: int = 2
    min_length: int = 4
    _candidates: tuple[BlockChoice, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "ops", tuple(require_enum(OpType, o, "ops") for o in self.ops))
        set_(self, "activations", tuple(require_enum(Activation, a, "activations") for a in self.activations))
        set_(self, "head_types", tuple(require_enum(HeadType, h, "head_types") for h in self.head_types))
        for name in ("lookbacks", "depths", "kernel_sizes", "widths", "ops", "activations",
                     "skip_choices", "head_types"):
            if not getattr(self, name):
                raise ValueError(f"SearchSpace.{name} must not be empty")
        for name in ("lookbacks", "depths", "kernel_sizes", "dilations", "widths", "heads"):
            for value in getattr(self, name):
                require_int(value, f"SearchSpace.{name} entry", 1)
        for name in ("input_features", "stem_width", "num_outputs", "pool_kernel", "min_length"):
            require_int(getattr(self, name), f"SearchSpace.{name}", 1)
        set_(self, "_candidates", tuple(self._enumerate_candidates()))
        if not self._candidates:
            raise ValueError(f"SearchSpace {self.name!r} has no candidate blocks")

    # ---- named spaces
    @classmethod
    def default(cls, input_features: int = DEFAULT_INPUT_FEATURES, **overrides: Any) -> "SearchSpace":
        """Every operation, kernels 3/5/7, widths 16/32/64, lookbacks 32/64/128."""
        return cls(name="default", input_features=input_features, **overrides)

    @classmethod
    def fpga(cls, input_features: int = DEFAULT_INPUT_FEATURES, **overrides: Any) -> "SearchSpace":
        """FPGA-friendly: small kernels (1, 3), ReLU only, a residual on every
        block (fixed topology), no attention or softmax, no dilation."""
        settings: dict[str, Any] = dict(
            name="fpga",
            input_features=input_features,
            ops=(OpType.CONV, OpType.DWSEP_CONV, OpType.FC, OpType.IDENTITY, OpType.MAX_POOL),
            kernel_sizes=(1, 3),
            dilations=(),
            widths=(16, 32),
            heads=(),
            activations=(Activation.RELU,),
            skip_choices=(True,),
            head_types=(HeadType.LAST,),
            stem_width=16,
        )
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def mobile(cls, input_features: int = DEFAULT_INPUT_FEATURES, **overrides: Any) -> "SearchSpace":
        """Retail-app CPUs: cheap ops, narrow widths, single-thread friendly."""
        settings: dict[str, Any] = dict(
            name="mobile",
            input_features=input_features,
            ops=(OpType.CONV, OpType.DWSEP_CONV, OpType.DILATED_CONV, OpType.FC,
                 OpType.IDENTITY, OpType.AVG_POOL),
            widths=(8, 16, 32),
            stem_width=16,
        )
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def gpu(cls, input_features: int = DEFAULT_INPUT_FEATURES, **overrides: Any) -> "SearchSpace":
        """Batch inference on GPUs: widths aligned to tensor-core multiples of 16."""
        settings: dict[str, Any] = dict(
            name="gpu", input_features=input_features, widths=(32, 64, 128), stem_width=64
        )
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def named(cls, name: str, input_features: int = DEFAULT_INPUT_FEATURES, **overrides: Any) -> "SearchSpace":
        """One of the named spaces: default, fpga, mobile, gpu."""
        makers = {"default": cls.default, "fpga": cls.fpga, "mobile": cls.mobile, "gpu": cls.gpu}
        if name not in makers:
            raise ValueError(f"search space name {name!r} unknown; choose one of {sorted(makers)}")
        return makers[name](input_features=input_features, **overrides)

    # ---- candidates and size
    def _enumerate_candidates(self) -> Iterable[BlockChoice]:
        """All distinct blocks the ops, kernels, widths, dilations and heads allow."""
        for op in self.ops:
            acts = (Activation.NONE,) if op in POOL_OPS | {OpType.IDENTITY} else self.activations
            for act in acts:
                if op in (OpType.CONV, OpType.DWSEP_CONV):
                    for k in self.kernel_sizes:
                        for w in self.widths:
                            yield BlockChoice(op, kernel_size=k, width=w, activation=act)
                elif op == OpType.DILATED_CONV:
                    for k in (k for k in self.kernel_sizes if k > 1):
                        for d in self.dilations:
                            for w in self.widths:
                                yield BlockChoice(op, kernel_size=k, dilation=d, width=w, activation=act)
                elif op == OpType.FC:
                    for w in self.widths:
                        yield BlockChoice(op, width=w, activation=act)
                elif op == OpType.ATTENTION:
                    for h in self.heads:
                        yield BlockChoice(op, heads=h, activation=act)
                elif op in POOL_OPS:
                    yield BlockChoice(op, kernel_size=self.pool_kernel, stride=self.pool_kernel, activation=act)
                else:
                    yield BlockChoice(op, activation=act)

    def candidates(self) -> tuple[BlockChoice, ...]:
        """The candidate blocks, in a fixed order (indices are stable)."""
        return self._candidates

    def size(self) -> int:
        """Number of distinct genomes (choice sequences), an upper bound on the
        number of distinct architectures; infeasible sequences are counted too."""
        per_layer = len(self._candidates) * len(self.skip_choices)
        return len(self.lookbacks) * len(self.head_types) * sum(per_layer**d for d in self.depths)

    def log10_size(self) -> float:
        """``log10`` of :meth:`size`."""
        return math.log10(self.size())

    # ---- genomes
    def fits(self, choice: BlockChoice, channels: int, length: int) -> bool:
        """Whether ``choice`` can follow a ``(channels, length)`` map."""
        if choice.op == OpType.ATTENTION and channels % choice.heads:
            return False
        span = choice.dilation * (choice.kernel_size - 1) + 1
        if span > length:
            return False
        if choice.op in POOL_OPS:
            return output_length(length, choice.kernel_size, choice.stride, pooling=True) >= self.min_length
        return True

    def _allowed(self, channels: int, length: int) -> np.ndarray:
        """Indices of candidates that fit a ``(channels, length)`` map."""
        return np.array(
            [i for i, c in enumerate(self._candidates) if self.fits(c, channels, length)], dtype=int
        )

    def sample_genome(self, rng: np.random.Generator) -> Genome:
        """Draw a feasible genome uniformly, one decision at a time."""
        lookback = int(rng.choice(self.lookbacks))
        depth = int(rng.choice(self.depths))
        channels, length = self.stem_width, lookback
        blocks, skips = [], []
        for _ in range(depth):
            index = int(rng.choice(self._allowed(channels, length)))
            skip = bool(rng.choice(self.skip_choices))
            layer = self._candidates[index].layer(channels, skip)
            blocks.append(index)
            skips.append(skip)
            channels, length = layer.out_channels, layer.output_length(length)
        head = self.head_types[int(rng.integers(len(self.head_types)))]
        return Genome(lookback, tuple(blocks), tuple(skips), head)

    def decode(self, genome: Genome) -> Architecture:
        """The architecture a genome describes (raises ValueError if infeasible)."""
        if len(genome.blocks) != len(genome.skips):
            raise ValueError("genome.blocks and genome.skips must have the same length")
        stem = LayerSpec(OpType.FC, self.input_features, self.stem_width, activation=Activation.RELU)
        layers = [stem]
        for position, (index, skip) in enumerate(zip(genome.blocks, genome.skips)):
            if not 0 <= index < len(self._candidates):
                raise ValueError(
                    f"genome.blocks[{position}] = {index} is out of range 0..{len(self._candidates) - 1}"
                )
            if skip not in self.skip_choices:
                raise ValueError(
                    f"genome.skips[{position}] = {skip} is not allowed; choose from {list(self.skip_choices)}"
                )
            layers.append(self._candidates[index].layer(layers[-1].out_channels, skip))
        return Architecture(
            layers=tuple(layers),
            input_features=self.input_features,
            lookback=genome.lookback,
            head=genome.head,
            num_outputs=self.num_outputs,
        )

    def encode(self, arch: Architecture) -> Genome:
        """The genome of an architecture of this space (inverse of :meth:`decode`)."""
        lookup = {c: i for i, c in enumerate(self._candidates)}
        blocks = []
        for index, layer in enumerate(arch.layers[1:], start=1):
            width = None if layer.op in WIDTH_PRESERVING_OPS else layer.out_channels
            choice = BlockChoice(layer.op, layer.kernel_size, layer.dilation, layer.heads, width,
                                 layer.stride, layer.activation)
            if choice not in lookup:
                raise ValueError(f"layer {index} ({choice.label()}) is not a candidate of space {self.name!r}")
            blocks.append(lookup[choice])
        # identity and pooling carry no skip; record the space's first choice so that a
        # later block mutation at that position keeps a skip the space allows
        skips = tuple(
            layer.use_skip if layer.op not in POOL_OPS | {OpType.IDENTITY} else self.skip_choices[0]
            for layer in arch.layers[1:]
        )
        return Genome(arch.lookback, tuple(blocks), skips, arch.head)

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A random feasible architecture of this space."""
        return self.decode(self.sample_genome(rng))

    def mutate(self, arch: Architecture, rng: np.random.Generator, max_tries: int = 100) -> Architecture:
        """Change one decision (a block, a skip, the depth, the lookback or the head)."""
        genome = self.encode(arch)
        for _ in range(max_tries):
            candidate = self._mutate_genome(genome, rng)
            if candidate == genome:
                continue
            try:
                return self.decode(candidate)
            except ValueError:
                continue
        return arch

    def _mutate_genome(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """One random single-decision change of ``genome`` (may be infeasible)."""
        blocks, skips = list(genome.blocks), list(genome.skips)
        kind = rng.choice(["block", "block", "skip", "depth", "lookback", "head"])
        position = int(rng.integers(len(blocks)))
        if kind == "block":
            blocks[position] = int(rng.integers(len(self._candidates)))
        elif kind == "skip":
            skips[position] = bool(rng.choice(self.skip_choices))
        elif kind == "depth":
            depth = int(rng.choice(self.depths))
            while len(blocks) < depth:
                blocks.append(int(rng.integers(len(self._candidates))))
                skips.append(bool(rng.choice(self.skip_choices)))
            del blocks[depth:], skips[depth:]
        elif kind == "lookback":
            return replace(genome, lookback=int(rng.choice(self.lookbacks)))
        else:
            return replace(genome, head=self.head_types[int(rng.integers(len(self.head_types)))])
        return Genome(genome.lookback, tuple(blocks), tuple(skips), genome.head)

    def summary(self) -> str:
        """A few lines describing the space, for a chapter to print."""
        counts: dict[str, int] = {}
        for c in self._candidates:
            counts[c.op.value] = counts.get(c.op.value, 0) + 1
        ops = ", ".join(f"{op} x{n}" for op, n in counts.items())
        return (
            f"space {self.name!r}: {len(self._candidates)} candidate blocks ({ops}); "
            f"depths {list(self.depths)}, lookbacks {list(self.lookbacks)}, "
            f"skips {list(self.skip_choices)}, heads {[h.value for h in self.head_types]}; "
            f"size {self.size():.3e} genomes"
        )

