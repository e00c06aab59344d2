"""Expected latency of a soft architecture (DARTS/FBNet): differentiable in the weights.

Taught in: notebooks/04_latency_lut (and notebooks/10_fbnet, which trains with it).
"""

from __future__ import annotations

import math

import torch

from ..architecture import check_layer_fits
from ..hardware import HardwareProfile
from ..opspec import OpSpec
from ..space import SearchSpace


def expected_latency(alpha: torch.Tensor, candidate_latencies: torch.Tensor) -> torch.Tensor:
    """Softmax-weighted latency of a soft architecture (differentiable in ``alpha``).

    ``E[LAT] = sum_i sum_j softmax(alpha_i)_j * LUT(o_j, d_i)`` with ``alpha`` and
    ``candidate_latencies`` of shape ``(layers, choices)``. Non-finite latencies
    mark candidates that cannot run at that layer: they get probability 0 (their
    logits are masked) and contribute nothing.

    Taught in: notebooks/04_latency_lut.
    """
    return expected_latency_from_weights(masked_softmax(alpha, candidate_latencies), candidate_latencies)


def masked_softmax(alpha: torch.Tensor, candidate_latencies: torch.Tensor) -> torch.Tensor:
    """Row softmax of ``alpha`` with the non-finite latency entries masked out.

    Taught in: notebooks/04_latency_lut.
    """
    if alpha.shape != candidate_latencies.shape:
        raise ValueError(
            f"alpha has shape {tuple(alpha.shape)} but candidate_latencies {tuple(candidate_latencies.shape)};"
            f" both must be (layers, choices)"
        )
    finite = torch.isfinite(candidate_latencies)
    if not bool(finite.any(dim=-1).all()):
        raise ValueError("every layer needs at least one candidate with a finite latency")
    logits = alpha.masked_fill(~finite, float("-inf"))
    return torch.softmax(logits, dim=-1)


def expected_latency_from_weights(weights: torch.Tensor, candidate_latencies: torch.Tensor) -> torch.Tensor:
    """``sum_ij weights_ij * LUT_ij`` (e.g. Gumbel-softmax weights), masked entries skipped.

    Taught in: notebooks/04_latency_lut.
    """
    finite = torch.isfinite(candidate_latencies)
    lat = torch.where(finite, candidate_latencies, torch.zeros_like(candidate_latencies)).to(weights.dtype)
    return (weights * lat).sum()


def candidate_latencies(
    profile: HardwareProfile,
    space: SearchSpace,
    depth: int,
    lookback: int,
    width: int | None = None,
    use_skip: bool = False,
    batch: int = 1,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The ``(depth, len(space.candidates()))`` matrix ``LUT(o_j, d_i)`` for a supernet.

    Assumption (FBNet's fixed macro-architecture): every searchable layer ``i``
    receives ``width`` channels (default: the stem width) and ``lookback`` steps,
    whatever was chosen before it, so ``d_i`` is the same for all layers. Entry
    ``(i, j)`` is the profile's latency of candidate ``j`` built for that input
    (its own output width, with a skip if ``use_skip`` and the candidate allows
    one). Candidates that do not fit the input (span too long, pooling below the
    space's minimum length, heads not dividing the width) or that the profile
    marks unsupported get ``+inf`` (masked by :func:`expected_latency`). The
    stem, head and overhead are the same for every choice and are left out.

    Taught in: notebooks/04_latency_lut.
    """
    channels = space.stem_width if width is None else width
    row = []
    for choice in space.candidates():
        value = math.inf
        if space.fits(choice, channels, lookback):
            layer = choice.layer(channels, use_skip)
            try:
                check_layer_fits(0, layer, channels, lookback)
            except ValueError:
                layer = choice.layer(channels, False)
            key = OpSpec.from_layer(layer, lookback, batch)
            reason = profile.unsupported(key) if profile.unsupported is not None else None
            if not reason:
                value = profile.spec_latency(key)
        row.append(value)
    return torch.tensor([row] * depth, dtype=dtype)


__all__ = ["candidate_latencies", "expected_latency", "expected_latency_from_weights", "masked_softmax"]
