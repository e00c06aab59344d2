"""The one architecture per space that uses every operation with both skip kinds: what export and
delegation checks round-trip.

Taught in: notebooks/11_deployment.
"""

from __future__ import annotations

from typing import Any

from ..architecture import NO_SKIP_OPS, POOL_OPS, Architecture, LayerSpec, OpType
from ..space import SearchSpace

__all__ = ["coverage_architecture"]


def coverage_architecture(space: SearchSpace, lookback: int | None = None) -> Architecture:
    """One architecture of ``space``'s blocks using every operation, with both skip kinds.

    For each operation of the space: its first candidate block without a skip;
    for compute operations also one with an identity skip (same width) and, where
    the space has another width, one with a projection skip (a 1x1 convolution
    on the shortcut). Pooling comes last, so every kernel fits the window. The
    export tests and chapter 11 round-trip this one model per space.

    Taught in: notebooks/11_deployment.
    """
    length = max(space.lookbacks) if lookback is None else lookback
    layers = [LayerSpec(OpType.FC, space.input_features, space.stem_width)]
    by_op: dict[OpType, list[Any]] = {}
    for choice in space.candidates():
        by_op.setdefault(choice.op, []).append(choice)
    pools = [op for op in by_op if op in POOL_OPS]
    for op in [op for op in by_op if op not in POOL_OPS] + pools:
        choices = by_op[op]
        layers.append(choices[0].layer(layers[-1].out_channels, choices[0].op != OpType.IDENTITY
                                       and False not in space.skip_choices))
        if op in NO_SKIP_OPS or True not in space.skip_choices:
            continue
        width = layers[-1].out_channels
        same = [c for c in choices if c.width in (None, width)]
        other = [c for c in choices if c.width not in (None, width)]
        for choice in same[:1] + other[:1]:  # an identity skip, then a projection skip
            layers.append(choice.layer(layers[-1].out_channels, True))
    return Architecture(tuple(layers), space.input_features, length, space.head_types[0], space.num_outputs)
