"""The space a search draws architectures from: per-layer choices, sampling, mutation.

Taught in: notebooks/01_search_space.

A :class:`SearchSpace` lists the choices per layer and samples or mutates
architectures (:mod:`hwnas.architecture`) with a seeded :class:`numpy.random.Generator`;
:class:`SpaceName` names the spaces :meth:`SearchSpace.named` builds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from .architecture import (
    DEFAULT_INPUT_FEATURES,
    GATED_OPS,
    NO_SKIP_OPS,
    POOL_OPS,
    RECURRENT_OPS,
    WIDTH_PRESERVING_OPS,
    Activation,
    Architecture,
    HeadType,
    LayerSpec,
    OpType,
    output_length,
    setting_tags,
)
from .checks import check_fields, integer, require_enum, require_int

__all__ = ["BlockChoice", "Genome", "SearchSpace", "SpaceName"]

# operations the space offers without an activation after them
_NO_ACTIVATION_OPS = POOL_OPS | GATED_OPS | {OpType.IDENTITY}


class SpaceName(StrEnum):
    """The named search spaces of :meth:`SearchSpace.named`: the one list of space names.

    A ``str`` enum: ``SpaceName.FPGA == "fpga"``, so command-line choices, saved
    runs and plain-string comparisons keep working.

    Taught in: notebooks/01_search_space.
    """

    DEFAULT = "default"
    MOBILE = "mobile"
    GPU = "gpu"
    FPGA = "fpga"


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
            use_skip=use_skip and self.op not in NO_SKIP_OPS,
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

    The lookbacks start at 8 bars: a trained recurrent layer on these data forgets within
    a few steps (its score is the same over 8 to 64 steps,
    ``benchmarks/results/front_reach.txt``), and its cost grows with every step, so the
    short windows are where recurrence can be both accurate and fast.

    Taught in: notebooks/01_search_space.
    """

    name: str = SpaceName.DEFAULT.value
    input_features: int = DEFAULT_INPUT_FEATURES
    lookbacks: tuple[int, ...] = (8, 16, 32, 64, 128)
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
    _op_cache: dict[tuple[int, int], dict[OpType, tuple[int, ...]]] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict)
    _shape_cache: dict[tuple[int, bool, int, int], tuple[int, int]] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict)

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
        check_fields(self, {("input_features", "stem_width", "num_outputs", "pool_kernel", "min_length"): integer(1)},
                     "SearchSpace.")
        set_(self, "_candidates", tuple(self._enumerate_candidates()))
        if not self._candidates:
            raise ValueError(f"SearchSpace {self.name!r} has no candidate blocks")

    # ---- named spaces
    @classmethod
    def default(cls, input_features: int = DEFAULT_INPUT_FEATURES, **overrides: Any) -> SearchSpace:
        """Every operation, kernels 3/5/7, widths 16/32/64, lookbacks 8/16/32/64/128."""
        return cls(name=SpaceName.DEFAULT.value, input_features=input_features, **overrides)

    @classmethod
    def fpga(cls, input_features: int = DEFAULT_INPUT_FEATURES, **overrides: Any) -> SearchSpace:
        """FPGA-friendly: small kernels (1, 3), ReLU only, a residual on every
        block (fixed topology), no attention or softmax, no dilation."""
        settings: dict[str, Any] = dict(
            name=SpaceName.FPGA.value,
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
    def mobile(cls, input_features: int = DEFAULT_INPUT_FEATURES, **overrides: Any) -> SearchSpace:
        """Retail-app CPUs: cheap ops, narrow widths, single-thread friendly.

        The gated temporal convolution is in (two convolutions, tanh, sigmoid and a
        product: ExecuTorch's XNNPACK partitioner delegates the whole unit as one
        partition); GRU and LSTM are not (XNNPACK has no recurrent operator:
        ``torch.export`` unrolls the recurrence into one small delegated matrix
        product per step, with portable-kernel splits between them)."""
        settings: dict[str, Any] = dict(
            name=SpaceName.MOBILE.value,
            input_features=input_features,
            ops=(OpType.CONV, OpType.DWSEP_CONV, OpType.DILATED_CONV, OpType.FC,
                 OpType.IDENTITY, OpType.AVG_POOL, OpType.GATED_TCN),
            widths=(8, 16, 32),
            stem_width=16,
        )
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def gpu(cls, input_features: int = DEFAULT_INPUT_FEATURES, **overrides: Any) -> SearchSpace:
        """Batch inference on GPUs: widths aligned to tensor-core multiples of 16."""
        settings: dict[str, Any] = dict(
            name=SpaceName.GPU.value, input_features=input_features, widths=(32, 64, 128), stem_width=64
        )
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def named(cls, name: SpaceName | str, input_features: int = DEFAULT_INPUT_FEATURES,
              **overrides: Any) -> SearchSpace:
        """One of the named spaces (a :class:`SpaceName`: default, mobile, gpu, fpga)."""
        makers = {SpaceName.DEFAULT: cls.default, SpaceName.MOBILE: cls.mobile, SpaceName.GPU: cls.gpu,
                  SpaceName.FPGA: cls.fpga}
        return makers[require_enum(SpaceName, name, "search space name")](input_features=input_features,
                                                                          **overrides)

    # ---- candidates and size
    def _enumerate_candidates(self) -> Iterable[BlockChoice]:
        """All distinct blocks the ops, kernels, widths, dilations and heads allow."""
        for op in self.ops:
            # pooling and identity compute nothing to activate; recurrent and gated layers end
            # in their own bounded nonlinearity (tanh, and sigmoid gates), so no ReLU/GELU variants
            acts = (Activation.NONE,) if op in _NO_ACTIVATION_OPS else self.activations
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
                elif op == OpType.GATED_TCN:  # dilation 1 (a plain gated conv) and the space's dilations
                    for k in (k for k in self.kernel_sizes if k > 1):
                        for d in (1, *(d for d in self.dilations if d > 1)):
                            for w in self.widths:
                                yield BlockChoice(op, kernel_size=k, dilation=d, width=w, activation=act)
                elif op in (OpType.FC, *RECURRENT_OPS):
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

    def op_choices(self, channels: int, length: int) -> dict[OpType, tuple[int, ...]]:
        """The operations with at least one candidate that fits a ``(channels, length)`` map,
        each with the indices of its candidates that fit (in :attr:`ops` order; cached)."""
        key = (channels, length)
        cache = self._op_cache
        if key not in cache:
            fitting: dict[OpType, list[int]] = {}
            for index in self._allowed(channels, length):
                fitting.setdefault(self._candidates[int(index)].op, []).append(int(index))
            cache[key] = {op: tuple(fitting[op]) for op in self.ops if op in fitting}
        return cache[key]

    def prior(self) -> dict[str, dict[Any, float]]:
        """The stated probabilities of :meth:`sample_genome`'s top-level choices.

        ``"depth"``: each of :attr:`depths` equally likely; ``"op"``: each of
        :attr:`ops` equally likely at a position where every op has a candidate
        that fits (elsewhere: uniform over the ops that fit); ``"lookback"`` and
        ``"head"`` uniform. Within an op every fitting candidate is equally likely.
        """
        def uniform(values: Iterable[Any]) -> dict[Any, float]:
            items = list(values)
            return {v: 1.0 / len(items) for v in items}

        return {"depth": uniform(self.depths), "op": uniform(self.ops), "lookback": uniform(self.lookbacks),
                "head": uniform(self.head_types)}

    def _draw_layer(self, rng: np.random.Generator, channels: int, length: int) -> tuple[int, bool]:
        """One layer, op first: an op that fits, then one of its candidates that fit, then the skip."""
        choices = self.op_choices(channels, length)
        if not choices:
            raise ValueError(f"SearchSpace {self.name!r}: no candidate fits a ({channels}, {length}) map")
        indices = list(choices.values())[int(rng.integers(len(choices)))]
        index = indices[int(rng.integers(len(indices)))]
        skip = self.skip_choices[int(rng.integers(len(self.skip_choices)))]
        return index, bool(skip)

    def _after(self, index: int, skip: bool, channels: int, length: int) -> tuple[int, int]:
        """``(channels, length)`` after candidate ``index`` on a ``(channels, length)`` map (cached)."""
        key = (index, skip, channels, length)
        cache = self._shape_cache
        if key not in cache:
            layer = self._candidates[index].layer(channels, skip)
            cache[key] = (layer.out_channels, layer.output_length(length))
        return cache[key]

    def genome_fits(self, genome: Genome) -> bool:
        """Whether every layer of ``genome`` fits the map entering it (:meth:`fits`): the genomes
        :meth:`sample_genome` can draw. A mutation upstream (a shorter lookback, another pooling
        layer) can leave a later layer too long for its input, or pool below ``min_length``.

        Taught in: notebooks/01_search_space.
        """
        channels, length = self.stem_width, genome.lookback
        for index, skip in zip(genome.blocks, genome.skips):
            if not 0 <= index < len(self._candidates):
                return False
            if index not in self.op_choices(channels, length).get(self._candidates[index].op, ()):
                return False
            channels, length = self._after(index, skip, channels, length)
        return True

    def _shapes(self, lookback: int, blocks: Iterable[int], skips: Iterable[bool]) -> list[tuple[int, int]]:
        """The ``(channels, length)`` map entering each searchable layer, then the last one's output."""
        shapes = [(self.stem_width, lookback)]
        for index, skip in zip(blocks, skips):
            shapes.append(self._after(index, skip, *shapes[-1]))
        return shapes

    def sample_genome(self, rng: np.random.Generator) -> Genome:
        """Draw a feasible genome op first, one decision at a time.

        The priors (see :meth:`prior`): lookback uniform, depth uniform over
        :attr:`depths`; then per layer the **operation** uniform over the ops
        that have a candidate fitting the incoming map, that op's parameters
        (kernel, dilation, width, heads, activation) uniform over its fitting
        candidates, the skip uniform; the head uniform last. Drawing the op first
        gives every op the same share whatever its number of variants (a flat
        draw over the candidates would give an identity layer 1 in ~85).
        """
        lookback = int(self.lookbacks[int(rng.integers(len(self.lookbacks)))])
        depth = int(self.depths[int(rng.integers(len(self.depths)))])
        channels, length = self.stem_width, lookback
        blocks, skips = [], []
        for _ in range(depth):
            index, skip = self._draw_layer(rng, channels, length)
            blocks.append(index)
            skips.append(skip)
            channels, length = self._after(index, skip, channels, length)
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
        skips = self.canonical_skips(blocks, [layer.use_skip for layer in arch.layers[1:]])
        return Genome(arch.lookback, tuple(blocks), skips, arch.head)

    def canonical_skips(self, blocks: Sequence[int], skips: Sequence[bool]) -> tuple[bool, ...]:
        """``skips`` with the space's first choice at identity and pooling blocks: they carry no skip,
        so genomes of one architecture agree, and a later block mutation at that position keeps a
        skip the space allows.

        Taught in: notebooks/01_search_space.
        """
        first = self.skip_choices[0]
        return tuple(first if self._candidates[b].op in NO_SKIP_OPS else bool(s) for b, s in zip(blocks, skips))

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A random feasible architecture of this space."""
        from .checks import require_type

        require_type(rng, "rng", np.random.Generator, " (np.random.default_rng(seed))")
        return self.decode(self.sample_genome(rng))

    def mutate(self, arch: Architecture, rng: np.random.Generator, max_tries: int = 100) -> Architecture:
        """Change one gene of the genome: a layer's op (its parameters drawn anew), one parameter
        of a layer's op, a skip, the depth, the lookback or the head (see :meth:`_mutate_genome`)."""
        return self.mutate_genome(self.encode(arch), arch, rng, max_tries)[1]

    def mutate_genome(self, genome: Genome, arch: Architecture, rng: np.random.Generator,
                      max_tries: int = 100) -> tuple[Genome, Architecture]:
        """:meth:`mutate` for a caller that holds the parent's genome too: the child's genome and
        architecture (the parent's after ``max_tries`` draws that were infeasible or unchanged)."""
        for _ in range(max_tries):
            candidate = self._mutate_genome(genome, rng)
            if candidate == genome or not self.genome_fits(candidate):
                continue
            try:
                child = self.decode(candidate)
            except ValueError:
                continue
            if child != arch:  # a skip on identity or pooling changes the genome, not the architecture
                return candidate, child
        return genome, arch

    #: The genes :meth:`_mutate_genome` changes, each equally likely.
    GENES = ("op", "param", "skip", "depth", "lookback", "head")
    #: The parameters of an op a ``"param"`` mutation changes (one of them).
    PARAMETERS = ("kernel_size", "dilation", "heads", "width", "activation")

    def _mutate_genome(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """One random single-gene change of ``genome`` (may be infeasible further down; then
        :meth:`mutate` draws again). Genes: ``op`` (another op that fits at a layer, its
        parameters uniform over its fitting candidates), ``param`` (one parameter of a layer's
        op to another value that fits), ``skip``, ``depth`` (another depth: layers cut, or
        added op first), ``lookback``, ``head``."""
        blocks, skips = list(genome.blocks), list(genome.skips)
        gene = self.GENES[int(rng.integers(len(self.GENES)))]
        position = int(rng.integers(len(blocks)))
        if gene in ("op", "param"):
            channels, length = self._shapes(genome.lookback, blocks[:position], skips[:position])[-1]
            choices = self.op_choices(channels, length)
            current = self._candidates[blocks[position]]
            if gene == "op":
                others = [op for op in choices if op != current.op]
                if not others:
                    return genome
                indices = choices[others[int(rng.integers(len(others)))]]
                blocks[position] = indices[int(rng.integers(len(indices)))]
            else:
                neighbours = [i for i in choices.get(current.op, ())
                              if sum(getattr(self._candidates[i], f) != getattr(current, f)
                                     for f in self.PARAMETERS) == 1]
                if not neighbours:
                    return genome
                blocks[position] = neighbours[int(rng.integers(len(neighbours)))]
        elif gene == "skip":
            skips[position] = bool(self.skip_choices[int(rng.integers(len(self.skip_choices)))])
        elif gene == "depth":
            depths = [d for d in self.depths if d != len(blocks)]
            if not depths:
                return genome
            depth = int(depths[int(rng.integers(len(depths)))])
            del blocks[depth:], skips[depth:]
            channels, length = self._shapes(genome.lookback, blocks, skips)[-1]
            while len(blocks) < depth:
                index, skip = self._draw_layer(rng, channels, length)
                blocks.append(index)
                skips.append(skip)
                channels, length = self._after(index, skip, channels, length)
        elif gene == "lookback":
            return replace(genome, lookback=int(self.lookbacks[int(rng.integers(len(self.lookbacks)))]))
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

