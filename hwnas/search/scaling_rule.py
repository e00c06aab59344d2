"""EfficientNet's compound scaling rule for 1-D trading models: the constraint and one scaled base.

Taught in: notebooks/09_efficientnet_scaling.

The cost model (:func:`flops_terms`, :func:`flops_growth`, the constraint on
``(alpha, beta, gamma)``) and :func:`compound_scale`, which applies
``d = alpha^phi``, ``w = beta^phi``, ``r = gamma^phi`` to a base architecture. The
derivation and the rounding rules are in :mod:`hwnas.search.scaling`, which searches
with them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..architecture import (
    POOL_OPS,
    RECURRENT_OPS,
    WIDTH_PRESERVING_OPS,
    Architecture,
    HeadType,
    LayerSpec,
    OpType,
)
from ..checks import require_choice, require_float, require_int, require_optional_int, require_positive
from ..cost import recurrent_gates

if TYPE_CHECKING:
    from ..hardware import HardwareProfile

__all__ = [
    "CONSTRAINT_EXPONENTS",
    "Exponents",
    "compound_scale",
    "constraint_grid",
    "constraint_kind",
    "constraint_value",
    "effective_exponents",
    "flops_growth",
    "flops_terms",
    "width_multiple_for",
]

#: Exponents ``(depth, width, lookback)`` of the FLOPs of one kind of layer:
#: ``FLOPs ~ d^a w^b r^c``, so the constraint is ``alpha^a beta^b gamma^c = 2``.
CONSTRAINT_EXPONENTS: dict[str, tuple[int, int, int]] = {
    "conv": (1, 2, 1),       # 2 L K C_in C_out (also fully connected, pointwise)
    "attention": (1, 1, 2),  # 4 n^2 d: the scores and the weighted sum
    "image": (1, 2, 2),      # 2-D convolution: H W K^2 C_in C_out (EfficientNet's form)
}

Exponents = tuple[int, int, int]
_EPS = 1e-9


# --------------------------------------------------------------------------- the cost model


def flops_terms(arch: Architecture) -> dict[Exponents, int]:
    """FLOPs of ``arch`` split by how they grow: ``{(a, b, c): flops}`` with ``FLOPs ~ d^a w^b r^c``.

    The stem (input features fixed) grows as ``w r``; a repeated compute layer
    as ``d w^2 r``, a depthwise part as ``d w r``, attention scores as
    ``d w r^2``; a skip projection (only on a block's first layer) as
    ``w^2 r``; the head as ``w`` (``w r`` when it flattens). The values sum
    to :func:`hwnas.count_flops`.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    terms: dict[Exponents, int] = {}

    def add(key: Exponents, flops: int) -> None:
        if flops:
            terms[key] = terms.get(key, 0) + flops

    shapes = arch.shapes()
    for index, layer in enumerate(arch.layers):
        length, out_len = shapes[index][1], shapes[index + 1][1]
        cin, cout, k = layer.in_channels, layer.out_channels, layer.kernel_size
        depth = 0 if index == 0 else 1
        width = 1 if index == 0 else 2
        if layer.op in (OpType.CONV, OpType.DILATED_CONV):
            add((depth, width, 1), 2 * out_len * k * cin * cout)
        elif layer.op == OpType.GATED_TCN:  # two convolutions
            add((depth, width, 1), 4 * out_len * k * cin * cout)
        elif layer.op in RECURRENT_OPS:  # 2 L G H (C_in + H): input and recurrent projections
            gates, _ = recurrent_gates(layer.op)
            add((depth, width, 1), 2 * length * gates * cout * cin)
            add((depth, 2, 1), 2 * length * gates * cout * cout)
        elif layer.op == OpType.DWSEP_CONV:
            add((depth, 1, 1), 2 * out_len * k * cin)
            add((depth, width, 1), 2 * out_len * cin * cout)
        elif layer.op == OpType.FC:
            add((depth, width, 1), 2 * length * cin * cout)
        elif layer.op == OpType.ATTENTION:
            add((depth, 1, 2), 4 * length * length * cin)
            add((depth, 2, 1), 8 * length * cin * cin)
        if layer.needs_projection:
            add((0, width, 1), 2 * out_len * cin * cout)
    add((0, 1, 1 if arch.head == HeadType.FLATTEN else 0), 2 * arch.head_in_features * arch.num_outputs)
    return terms


def flops_growth(arch: Architecture, depth: float, width: float, lookback: float) -> float:
    """The cost model's FLOPs ratio ``FLOPs(scaled) / FLOPs(arch)`` for multipliers ``d, w, r``.

    ``sum_t F_t d^a_t w^b_t r^c_t / sum_t F_t`` over :func:`flops_terms`:
    no rounding, so a scaled architecture's measured ratio differs from it by
    the rounding of depth, channels and lookback only.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    terms = flops_terms(arch)
    total = sum(terms.values())
    grown = sum(f * depth**a * width**b * lookback**c for (a, b, c), f in terms.items())
    return grown / total


def effective_exponents(arch: Architecture) -> tuple[float, float, float]:
    """FLOPs-weighted mean exponents: ``d ln FLOPs / d phi = a ln alpha + b ln beta + c ln gamma``.

    Below ``(1, 2, 1)`` for a conv base because the stem and head do not repeat.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    terms = flops_terms(arch)
    total = sum(terms.values())
    mean = [sum(f * key[i] for key, f in terms.items()) / total for i in range(3)]
    return mean[0], mean[1], mean[2]


def constraint_kind(arch: Architecture) -> str:
    """``"attention"`` when attention scores (``r^2`` FLOPs) are at least half of ``arch``'s FLOPs, else ``"conv"``.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    terms = flops_terms(arch)
    scores = sum(f for (a, b, c), f in terms.items() if c == 2)
    return "attention" if 2 * scores >= sum(terms.values()) else "conv"


def constraint_value(alpha: float, beta: float, gamma: float, kind: str = "conv") -> float:
    """``alpha^a beta^b gamma^c`` for the exponents of ``kind``: the FLOPs factor per unit ``phi``.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    a, b, c = CONSTRAINT_EXPONENTS[require_choice(kind, "kind", CONSTRAINT_EXPONENTS)]
    alpha, beta, gamma = _coefficients(alpha, beta, gamma)
    return float(alpha**a * beta**b * gamma**c)


def constraint_grid(kind: str = "conv", *, step: float = 0.1, target: float = 2.0,
                    max_gamma: float | None = None) -> list[tuple[float, float, float]]:
    """Every ``(alpha, beta, gamma)`` on the constraint ``alpha^a beta^b gamma^c = target`` (``phi = 1``).

    ``beta`` and ``gamma`` run over a grid of ``step`` from 1 (``gamma`` at
    most ``max_gamma``, the growth the data's windows allow) and ``alpha >= 1``
    is solved: depth is realised in whole layers (``ceil``) whatever its
    coefficient, and a lookback already at the data's limit leaves depth and
    width to share the factor.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    a, b, c = CONSTRAINT_EXPONENTS[require_choice(kind, "kind", CONSTRAINT_EXPONENTS)]
    step = require_float(step, "step", minimum=0.01, maximum=1.0)
    target = require_float(target, "target", minimum=1.0, strict_minimum=True)
    cap = math.inf if max_gamma is None else require_float(max_gamma, "max_gamma", minimum=1.0)
    digits = max(0, -math.floor(math.log10(step)) + 1)
    points = []
    for j in range(int(math.floor((target ** (1 / b) - 1) / step + _EPS)) + 1):
        beta = round(1 + j * step, digits)
        for k in range(int(math.floor(((target / beta**b) ** (1 / c) - 1) / step + _EPS)) + 1):
            gamma = round(1 + k * step, digits)
            if gamma > cap + _EPS:
                break
            alpha = max(1.0, (target / (beta**b * gamma**c)) ** (1 / a))
            points.append((float(alpha), beta, gamma))
    return points


# --------------------------------------------------------------------------- scaling one base


def width_multiple_for(profile: HardwareProfile) -> int:
    """Channel multiple for a target: the tensor-core alignment on a GPU (8 at FP16, 16 at INT8), else 1.

    CPU kernels (oneDNN) and an FPGA's DSP array gain nothing from aligned widths
    in this cost model, so every width stays reachable there.

    Taught in: notebooks/09_efficientnet_scaling.
    """
    from ..hardware import DeviceType
    from ..targets.gpu import TENSOR_CORE_ALIGNMENT

    if profile.device_type == DeviceType.GPU:
        return TENSOR_CORE_ALIGNMENT.get(profile.precision) or 1
    return 1


def _coefficients(alpha: float, beta: float, gamma: float) -> tuple[float, float, float]:
    return (require_positive(alpha, "alpha"), require_positive(beta, "beta"),
            require_positive(gamma, "gamma"))


def _repeats(blocks: int, target: int) -> list[int]:
    """How often each of ``blocks`` blocks appears among ``target`` layers, spread evenly."""
    return [(i + 1) * target // blocks - i * target // blocks for i in range(blocks)]


def _round_channels(channels: int, width: float, multiple: int) -> int:
    return max(multiple, int(round(channels * width / multiple)) * multiple)


def _layers_fit(layers: Sequence[LayerSpec], lookback: int, min_length: int) -> bool:
    """Whether ``layers`` run on ``lookback`` steps with every pooling output >= ``min_length``."""
    length = lookback
    for layer in layers:
        if layer.span > length:
            return False
        out = layer.output_length(length)
        if out < 1 or (layer.op in POOL_OPS and out < min_length):
            return False
        if layer.use_skip and layer.shortcut_length(length) != out:
            return False
        length = out
    return True


def _min_pool_output(arch: Architecture) -> int:
    lengths = [arch.shapes()[i + 1][1] for i, layer in enumerate(arch.layers) if layer.op in POOL_OPS]
    return min(lengths, default=1)


def _scaled_layers(base: Architecture, depth: float, width: float, multiple: int,
                   min_depth: int) -> tuple[list[LayerSpec], bool]:
    """The stem, repeated/dropped compute blocks and kept pools; and whether depth was at its floor."""
    stem, body = base.layers[0], base.layers[1:]
    compute = [i for i, layer in enumerate(body) if layer.op not in POOL_OPS]
    floor = min(min_depth, len(compute))
    target = max(floor, math.ceil(depth * len(compute) - _EPS)) if compute else 0
    copies = dict(zip(compute, _repeats(len(compute), target))) if compute else {}
    channels = _round_channels(stem.out_channels, width, multiple)
    layers = [replace(stem, out_channels=channels)]
    for i, layer in enumerate(body):
        for copy in range(copies.get(i, 1)):
            out = channels if layer.op in WIDTH_PRESERVING_OPS else _round_channels(
                layer.out_channels, width, multiple)
            layers.append(replace(layer, in_channels=channels, out_channels=out,
                                  stride=layer.stride if copy == 0 else 1))
            channels = out
    return layers, target <= floor


def compound_scale(base: Architecture, phi: float, alpha: float, beta: float, gamma: float, *,
                   width_multiple: int = 1, max_lookback: int | None = None, min_depth: int = 1,
                   min_length: int = 4) -> Architecture:
    """``base`` scaled by ``d = alpha^phi`` (layers), ``w = beta^phi`` (channels), ``r = gamma^phi`` (lookback).

    See the module docstring for how each dimension is rounded. ``phi = 0``
    returns ``base``; negative ``phi`` scales down, and raises ValueError when
    ``base`` is already at every floor (``min_depth`` compute layers, widths
    at ``width_multiple``, the shortest lookback its layers accept).

    Taught in: notebooks/09_efficientnet_scaling.
    """
    if not isinstance(base, Architecture):
        raise ValueError(f"base must be an Architecture, got {type(base).__name__}")
    phi = require_float(phi, "phi", minimum=-20.0, maximum=20.0)
    alpha, beta, gamma = _coefficients(alpha, beta, gamma)
    width_multiple = require_int(width_multiple, "width_multiple", 1, 1024)
    max_lookback = require_optional_int(max_lookback, "max_lookback", 1)
    min_depth = require_int(min_depth, "min_depth", 1)
    min_length = require_int(min_length, "min_length", 1)
    if max_lookback is not None and max_lookback < base.lookback:
        raise ValueError(f"max_lookback must be >= base.lookback ({base.lookback}), got {max_lookback}")
    if phi == 0:
        return base
    heads = [layer.heads for layer in base.layers if layer.op == OpType.ATTENTION]
    multiple = math.lcm(width_multiple, *heads)
    layers, depth_floor = _scaled_layers(base, alpha**phi, beta**phi, multiple, min_depth)
    min_length = min(min_length, _min_pool_output(base))
    lookback = max(1, int(round(base.lookback * gamma**phi)))
    if max_lookback is not None:
        lookback = min(lookback, max_lookback)
    shortest = next(n for n in range(1, max(lookback, base.lookback) * 4 + 2)
                    if _layers_fit(layers, n, min_length))
    lookback_floor = lookback <= shortest
    lookback = max(lookback, shortest)
    widths_floor = all(layer.out_channels == multiple for layer in layers)
    if phi < 0 and depth_floor and widths_floor and lookback_floor and _same_shape(base, layers, lookback):
        raise ValueError(
            f"phi={phi} asks to scale base down, but base cannot be scaled down further: "
            f"{len(layers) - 1} layer(s) after the stem (min_depth {min_depth}), every width at "
            f"the multiple {multiple}, lookback {lookback} (the shortest its layers accept)")
    return Architecture(tuple(layers), base.input_features, lookback, base.head, base.num_outputs)


def _same_shape(base: Architecture, layers: list[LayerSpec], lookback: int) -> bool:
    return tuple(layers) == base.layers and lookback == base.lookback
