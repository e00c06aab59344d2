"""Runnable ops: the torch module (and inputs) each lookup-table key stands for.

Taught in: notebooks/04_latency_lut.
"""

from __future__ import annotations

import torch
from torch import nn

from ..architecture import HeadType
from ..model import Head, build_layer
from ..opspec import OpSpec


class _Add(nn.Module):
    """The residual sum ``a + b`` (the join of a skip layer's branches)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def _module_of(spec: OpSpec) -> nn.Module:
    """The module of ``spec`` (weights from the current torch random state)."""
    if spec.is_layer:
        return build_layer(spec.layer_spec())
    if spec.is_head:
        kind = HeadType(str(spec.op).removeprefix("head_"))
        features = spec.in_channels * (spec.seq_len if kind == HeadType.FLATTEN else 1)
        return Head(kind, features, spec.out_channels)
    if spec.op == "shortcut":
        return (nn.Conv1d(spec.in_channels, spec.out_channels, 1, stride=spec.stride)
                if spec.is_projection else nn.Identity())
    if spec.op == "add":
        return _Add()
    raise ValueError(f"op {str(spec.op)!r} has no module to time (the overhead is calibrated, not timed)")


def op_module(spec: OpSpec, seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The module an :class:`OpSpec` stands for and contiguous float32 inputs for it.

    Layers use :func:`hwnas.model.build_layer` (exactly what the model runs),
    heads the model's ``Head``; ``shortcut`` is the 1x1 strided projection (or
    the identity) and ``add`` the residual sum.

    Taught in: notebooks/04_latency_lut.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _module_of(spec)
    module.eval()
    shape = (spec.batch, spec.in_channels, spec.seq_len)
    inputs: tuple[torch.Tensor, ...] = (torch.randn(shape, generator=gen),)
    if spec.op == "add":
        inputs = inputs + (torch.randn(shape, generator=gen),)
    return module, inputs


__all__ = ["op_module"]
