"""FBNet's supernet: every candidate block per layer, mixed by Gumbel-softmax weights.

Taught in: notebooks/10_fbnet.

The supernet of a :class:`~hwnas.space.SearchSpace` at one lookback has the
space's stem, ``max(depths)`` searchable layers and one head. Layer ``i`` holds
every candidate block ``j`` that keeps the sequence length (pooling halves it,
so a mixture could not add its output to the others': pooling is left out,
and so is any block that does not fit the lookback or that the profile cannot
run), identity included, so depth is searched too. Its output is
``sum_j m_ij * block_j(x)`` with ``m_i`` a Gumbel-softmax sample of the logits
``theta_i`` at temperature ``tau`` (``mode="soft"``, FBNet's mixture, every
block computed), or the straight-through one-hot of that sample
(``mode="hard"``, GDAS: only the sampled block runs, so a step costs what one
network costs; the default, because the soft mixture of the default space's
83 blocks costs about 80 networks per step).

Widths: blocks of different output widths are mixed as FBNetV2 masks channels:
every block reads the widest width ``W`` any layer can produce and its output
is zero-padded to ``W``. Built with :func:`hwnas.model.build_layer`, each block
is the module the derived architecture runs (read on ``W`` input channels
instead of the chosen ones: the derived model is retrained from scratch, so
this only shapes the search signal).

Latency (:func:`chain_expected_latency`): the input width of a layer depends on
the choices before it (identity and attention keep it, the others set it). The
expected latency under the independent categorical ``softmax(theta_i)`` is
computed exactly by carrying the distribution ``p_i`` of the width entering
layer ``i``::

    E[LAT] = fixed + sum_i sum_s p_i(s) sum_j q_ij LUT(o_j, (s, L)) + sum_s p_D(s) LUT(head, s)
    p_{i+1}(s') = sum_j q_ij sum_s p_i(s) [block j maps width s to s']

For one-hot ``theta`` it is the LUT sum of the derived architecture, i.e.
``profile.predict_latency(derived)``; for a space of one width it is the
reference chapter's ``sum_i sum_j softmax(alpha_i)_j LUT(o_j, d_i)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..architecture import POOL_OPS, Activation, Architecture, HeadType, LayerSpec, OpType, check_layer_fits
from ..checks import require_choice, require_float, require_int
from ..cost import bytes_per_value, layer_params
from ..hardware import HardwareProfile
from ..latency.expected import expected_latency_from_weights
from ..model import Head, build_layer
from ..opspec import OpKind, OpSpec
from ..space import BlockChoice, SearchSpace

MODES = ("hard", "soft")

__all__ = [
    "MODES",
    "SupernetSpec",
    "Supernet",
    "chain_expected_latency",
    "gumbel_softmax",
    "supernet_spec",
]


def gumbel_softmax(logits: torch.Tensor, tau: float, *, generator: torch.Generator | None = None,
                   hard: bool = False) -> torch.Tensor:
    """A Gumbel-softmax sample of ``logits`` (last axis) at temperature ``tau``.

    ``softmax((logits + g) / tau)`` with ``g = -log(E)``, ``E ~ Exp(1)`` drawn
    from ``generator``: the same draws as ``torch.nn.functional.gumbel_softmax``
    after ``torch.manual_seed`` with the generator's seed, so both agree; this one
    takes a private generator. ``hard``: the one-hot of the argmax, with the
    soft sample's gradient (straight-through).

    Taught in: notebooks/10_fbnet.
    """
    tau = require_float(tau, "tau", minimum=0.0, strict_minimum=True)
    exponential = torch.empty_like(logits, memory_format=torch.legacy_contiguous_format)
    gumbels = -exponential.exponential_(generator=generator).log()
    soft = ((logits + gumbels) / tau).softmax(-1)
    if not hard:
        return soft
    index = soft.argmax(-1, keepdim=True)
    one_hot = torch.zeros_like(logits).scatter_(-1, index, 1.0)
    return one_hot - soft.detach() + soft


@dataclass(frozen=True, eq=False)
class SupernetSpec:
    """The blocks of a supernet and the tables its losses read.

    ``indices`` index :meth:`SearchSpace.candidates`; ``excluded`` maps the
    labels of the blocks left out to why. ``widths`` are the states of the width
    chain (the stem's and every block's), ``lut[s, j]`` the µs of block ``j`` on
    a ``(widths[s], lookback)`` input, ``params[s, j]`` its parameter bytes,
    ``transition[j, s, s']`` 1 where block ``j`` maps width ``s`` to ``s'``,
    ``head_lut[s]`` the head's µs and ``fixed_us`` stem plus overhead.

    Taught in: notebooks/10_fbnet.
    """

    space: SearchSpace
    lookback: int
    depth: int
    head: HeadType
    use_skip: bool
    batch: int
    indices: tuple[int, ...]
    excluded: dict[str, str]
    widths: tuple[int, ...]
    lut: torch.Tensor
    params: torch.Tensor
    transition: torch.Tensor
    head_lut: torch.Tensor
    head_params: torch.Tensor
    fixed_us: float
    fixed_params: float
    labels: tuple[str, ...] = field(default=())

    @property
    def choices(self) -> tuple[BlockChoice, ...]:
        """The candidate blocks of each layer, in order."""
        every = self.space.candidates()
        return tuple(every[i] for i in self.indices)

    @property
    def max_width(self) -> int:
        """The width every block reads and every output is padded to."""
        return max(self.widths)

    def stem(self) -> LayerSpec:
        """The space's fixed stem layer."""
        space = self.space
        return LayerSpec(OpType.FC, space.input_features, space.stem_width, activation=Activation.RELU)

    def derive(self, choice_per_layer: Sequence[int]) -> Architecture:
        """The architecture that picks block ``choice_per_layer[i]`` at layer ``i``.

        Identity choices stay in as identity layers (depth ``max(depths)``): the
        table times them, so the prediction of this architecture is the
        expected latency at one-hot ``theta``.
        """
        if len(choice_per_layer) != self.depth:
            raise ValueError(f"choice_per_layer needs {self.depth} entries, got {len(choice_per_layer)}")
        layers = [self.stem()]
        for position, j in enumerate(choice_per_layer):
            if not 0 <= int(j) < len(self.indices):
                raise ValueError(f"choice_per_layer[{position}] = {j} is out of range 0..{len(self.indices) - 1}")
            layers.append(self.choices[int(j)].layer(layers[-1].out_channels, self.use_skip))
        return Architecture(layers=tuple(layers), input_features=self.space.input_features,
                            lookback=self.lookback, head=self.head, num_outputs=self.space.num_outputs)


def _width_after(choice: BlockChoice, width: int) -> int:
    return width if choice.width is None else choice.width


def _exclusion(choice: BlockChoice, space: SearchSpace, profile: HardwareProfile, widths: Sequence[int],
               lookback: int, use_skip: bool, batch: int) -> str | None:
    """Why ``choice`` cannot be a supernet block (None when it can)."""
    if choice.op in POOL_OPS:
        return "pooling changes the sequence length, which a mixture cannot add up"
    for width in widths:
        if not space.fits(choice, width, lookback):
            return f"does not fit a ({width}, {lookback}) input"
        try:
            check_layer_fits(0, choice.layer(width, use_skip), width, lookback)
        except ValueError as err:
            return str(err)
        if profile.unsupported is not None:
            reason = profile.unsupported(OpSpec.from_layer(choice.layer(width, use_skip), lookback, batch))
            if reason:
                return f"the profile cannot run it: {reason}"
    return None


def _latency(profile: HardwareProfile, key: OpSpec) -> float:
    try:
        return profile.spec_latency(key)
    except KeyError as err:
        raise ValueError(f"profile: {err.args[0]}") from None


def supernet_spec(space: SearchSpace, profile: HardwareProfile, lookback: int, *,
                  head: HeadType | str | None = None, use_skip: bool | None = None,
                  candidates: Sequence[int] | None = None, batch: int = 1,
                  precision: str | None = None) -> SupernetSpec:
    """The supernet of ``space`` at ``lookback``: its blocks and latency/memory tables.

    ``head`` defaults to the space's first head type, ``use_skip`` to its first
    skip choice (one setting per run: sweep them by running again);
    ``candidates`` restricts the blocks to these indices of
    ``space.candidates()``. Raises ValueError when no block is left.

    Taught in: notebooks/10_fbnet.
    """
    lookback = require_choice(require_int(lookback, "lookback", 1), "lookback", space.lookbacks)
    head = HeadType(head) if head is not None else space.head_types[0]
    require_choice(head, "head", space.head_types)
    use_skip = space.skip_choices[0] if use_skip is None else bool(use_skip)
    require_choice(use_skip, "use_skip", space.skip_choices)
    batch = require_int(batch, "batch", 1)
    every = space.candidates()
    if candidates is None:
        pool = list(range(len(every)))
    else:
        pool = [require_int(i, "candidates entry", 0, len(every) - 1) for i in candidates]
        if not pool:
            raise ValueError("candidates must name at least one block of the space, got none")
    widths = tuple(sorted({space.stem_width} | {c.width for i in pool if (c := every[i]).width is not None
                                                 and c.op not in POOL_OPS}))
    excluded: dict[str, str] = {}
    kept: list[int] = []
    for i in pool:
        reason = _exclusion(every[i], space, profile, widths, lookback, use_skip, batch)
        if reason:
            excluded[every[i].label()] = reason
        else:
            kept.append(i)
    if not kept:
        raise ValueError(f"candidates: no block of space {space.name!r} can be a supernet block at "
                         f"lookback {lookback} ({'; '.join(f'{k}: {v}' for k, v in excluded.items())})")
    widths = tuple(sorted({space.stem_width} | {w for i in kept if (w := every[i].width) is not None}))
    return _tables(space, profile, lookback, head, use_skip, batch, tuple(kept), excluded, widths,
                   precision or profile.precision)


def _tables(space: SearchSpace, profile: HardwareProfile, lookback: int, head: HeadType, use_skip: bool,
            batch: int, kept: tuple[int, ...], excluded: dict[str, str], widths: tuple[int, ...],
            precision: str) -> SupernetSpec:
    """Fill the latency, parameter and transition tables of a :class:`SupernetSpec`."""
    every = space.candidates()
    per_value = bytes_per_value(precision)
    n_s, n_j = len(widths), len(kept)
    lut = np.zeros((n_s, n_j))
    params = np.zeros((n_s, n_j))
    transition = np.zeros((n_j, n_s, n_s))
    for s, width in enumerate(widths):
        for j, index in enumerate(kept):
            layer = every[index].layer(width, use_skip)
            lut[s, j] = _latency(profile, OpSpec.from_layer(layer, lookback, batch))
            params[s, j] = layer_params(layer) * per_value
            transition[j, s, widths.index(_width_after(every[index], width))] = 1.0
    outputs = space.num_outputs
    head_lut = [_latency(profile, OpSpec(op=OpKind(f"head_{head.value}"), in_channels=w, out_channels=outputs,
                                         seq_len=lookback, batch=batch)) for w in widths]
    head_in = [w * lookback if head == HeadType.FLATTEN else w for w in widths]
    head_params = [(n * outputs + outputs) * per_value for n in head_in]
    stem = LayerSpec(OpType.FC, space.input_features, space.stem_width, activation=Activation.RELU)
    fixed_us = _latency(profile, OpSpec.from_layer(stem, lookback, batch)) + profile.overhead_latency(batch)
    as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    return SupernetSpec(
        space=space, lookback=lookback, depth=max(space.depths), head=head, use_skip=use_skip,
        batch=batch, indices=kept, excluded=excluded, widths=widths, lut=as_tensor(lut),
        params=as_tensor(params), transition=as_tensor(transition), head_lut=as_tensor(head_lut),
        head_params=as_tensor(head_params), fixed_us=fixed_us,
        fixed_params=float(layer_params(stem) * per_value),
        labels=tuple(every[i].label() for i in kept),
    )


def chain_expected_latency(probs: torch.Tensor, lut: torch.Tensor, transition: torch.Tensor,
                           head: torch.Tensor, start: int, fixed: float = 0.0) -> torch.Tensor:
    """Expected latency (or any additive cost) of independent per-layer choices.

    ``probs`` ``(D, J)``: the choice distribution of each layer; ``lut``
    ``(D, S, J)`` or ``(S, J)``: the cost of block ``j`` at layer ``i`` when
    ``s`` is the state (width) entering it; ``transition`` ``(J, S, S)``: where
    block ``j`` takes each state; ``head`` ``(S,)``: the cost after the last
    layer; ``start``: the state entering layer 0. Differentiable in ``probs``;
    exact for the independent choices (see the module docstring).

    Taught in: notebooks/10_fbnet.
    """
    depth, n_choices = probs.shape
    tables = lut.expand(depth, *lut.shape[-2:]) if lut.dim() == 2 else lut
    if tables.shape != (depth, transition.shape[1], n_choices):
        raise ValueError(f"lut has shape {tuple(lut.shape)}; need (S, J) or (D, S, J) with D={depth}, "
                         f"S={transition.shape[1]}, J={n_choices}")
    state = torch.zeros(transition.shape[1], dtype=probs.dtype)
    state[start] = 1.0
    total = torch.as_tensor(fixed, dtype=probs.dtype)
    for i in range(depth):
        q = probs[i]
        total = total + expected_latency_from_weights(state[:, None] * q[None, :], tables[i])
        state = torch.einsum("j,s,jst->t", q, state, transition.to(probs.dtype))
    return total + (state * head.to(probs.dtype)).sum()


class MixedLayer(nn.Module):
    """One searchable layer: every block, read on ``width`` channels, outputs padded to it."""

    def __init__(self, choices: Sequence[BlockChoice], width: int, use_skip: bool) -> None:
        super().__init__()
        self.width = width
        self.blocks = nn.ModuleList(build_layer(c.layer(width, use_skip)) for c in choices)
        self.out_widths = [_width_after(c, width) for c in choices]

    def _run(self, j: int, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks[j](x)
        return F.pad(y, (0, 0, 0, self.width - self.out_widths[j])) if self.out_widths[j] < self.width else y

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool) -> torch.Tensor:
        if hard:  # straight-through: only the sampled block runs; its weight is 1 with a gradient
            j = int(weights.detach().argmax())
            return weights[j] * self._run(j, x)
        return sum((weights[j] * self._run(j, x) for j in range(len(self.blocks))), torch.zeros(()))


class Supernet(nn.Module):
    """Stem, ``spec.depth`` mixed layers and a head; ``forward(x, weights)`` with ``weights`` ``(D, J)``.

    Taught in: notebooks/10_fbnet.
    """

    def __init__(self, spec: SupernetSpec, mode: str = "hard") -> None:
        super().__init__()
        self.mode = require_choice(mode, "mode", MODES)
        width = spec.max_width
        stem = spec.stem()
        self.stem = build_layer(stem)
        self.stem_pad = width - stem.out_channels
        self.layers = nn.ModuleList(MixedLayer(spec.choices, width, spec.use_skip) for _ in range(spec.depth))
        head_in = width * spec.lookback if spec.head == HeadType.FLATTEN else width
        self.head = Head(spec.head, head_in, spec.space.num_outputs)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        x = F.pad(self.stem(x), (0, 0, 0, self.stem_pad))
        for i, layer in enumerate(self.layers):
            x = layer(x, weights[i], self.mode == "hard")
        return self.head(x)
