"""Scoring FPGA candidates at their deployed fixed-point precision: quantisation-aware training or
post-training fixed point through the hls4ml emulation.

Taught in: notebooks/11_deployment.

An FPGA computes every value as an ``ap_fixed<W,I>``. A search that scores candidates in float
ranks them by a model it will not deploy. Two ways to score at the deployed precision:

* ``qat`` (quantisation-aware training): the proxy training runs with fake quantisation, every
  weight and every layer output rounded to the grid of the same per-value rule as the deployment
  (:func:`integer_bits`), gradients passed straight through the rounding (the straight-through
  estimator of Bengio, Léonard and Courville 2013, arXiv:1308.3432); scored in torch, no compiler.
* ``ptq`` (post-training fixed point): train in float, convert with hls4ml, compile the C++
  emulation and score its predictions (:func:`hwnas.deploy.hls.compile_hls`): bit-accurate, but a
  g++ compile per candidate.

``benchmarks/bench_toolchains.py --only hls`` measures which ranks candidates closer to the
deployed fixed-point test score, and at what cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..architecture import Architecture
from ..checks import require_enum, require_int
from .task import ProxyScore, ProxyTask, score_run

__all__ = ["FixedPointMode", "integer_bits", "fake_fixed", "qat_model", "evaluate_fixed_point"]


class FixedPointMode(StrEnum):
    """How an FPGA candidate is scored: in float, with quantisation-aware training, or through
    the hls4ml emulation after float training.

    Taught in: notebooks/11_deployment.
    """

    FLOAT = "float"
    QAT = "qat"
    PTQ = "ptq"


def integer_bits(peak: float, width: int, margin: int = 1) -> int:
    """Integer bits (sign included) of an ``ap_fixed<width, I>`` holding values up to ``peak``:
    ``I = 1 + max(0, floor(log2 peak) + 1) + margin``, clamped to ``[1, width]``.

    Taught in: notebooks/11_deployment.
    """
    width = require_int(width, "width", 2, 32)
    margin = require_int(margin, "margin", 0, 8)
    if not math.isfinite(peak) or peak < 0:
        raise ValueError(f"peak must be a finite number >= 0, got {peak}")
    magnitude = max(0, math.floor(math.log2(peak)) + 1) if peak > 0 else 0
    return min(width, max(1, 1 + magnitude + margin))


def fake_fixed(x: torch.Tensor, peak: float, width: int, margin: int = 1) -> torch.Tensor:
    """``x`` rounded to the ``ap_fixed<width, I>`` grid of :func:`integer_bits` and saturated;
    the gradient passes straight through the rounding (zero where it saturates).

    Taught in: notebooks/11_deployment.
    """
    bits = integer_bits(peak, width, margin)
    step = 2.0 ** -(width - bits)
    top = 2.0 ** (bits - 1)
    rounded = x + (torch.round(x / step) * step - x).detach()
    return torch.clamp(rounded, -top, top - step)


class _FakeFixedWeight(nn.Module):
    """A parametrisation: the weight on its own grid (margin 0, its peak known exactly)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_fixed(w, float(w.detach().abs().max()), self.width, 0)


class _OutputQuantiser:
    """A forward hook: track the peak of a module's output while training, round to its grid."""

    def __init__(self, width: int, margin: int) -> None:
        self.width, self.margin, self.peak = width, margin, 0.0

    def __call__(self, module: nn.Module, _args: Any, out: torch.Tensor) -> torch.Tensor:
        if module.training or self.peak == 0.0:
            self.peak = max(self.peak, float(out.detach().abs().max()))
        return fake_fixed(out, self.peak, self.width, self.margin)


def qat_model(model: nn.Module, width: int = 8, margin: int = 1) -> nn.Module:
    """``model`` (changed in place) computing in fake fixed point: the weights and biases of every
    convolution and linear layer on their grids, the output of every convolution, linear layer,
    ReLU, pooling and layer (after the residual add) rounded to the grid of its running peak, the
    ``hls4ml`` points where a value is stored. The input is rounded too.

    Taught in: notebooks/11_deployment.
    """
    from ..model import Layer

    width = require_int(width, "width", 2, 32)
    for module in list(model.modules()):
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            parametrize.register_parametrization(module, "weight", _FakeFixedWeight(width))
            if module.bias is not None:
                parametrize.register_parametrization(module, "bias", _FakeFixedWeight(width))
    for module in list(model.modules()):
        if isinstance(module, (nn.Conv1d, nn.Linear, nn.ReLU, nn.MaxPool1d, Layer)):
            module.register_forward_hook(_OutputQuantiser(width, margin))
    entry = _OutputQuantiser(width, margin)
    model.register_forward_pre_hook(lambda m, args: (entry(m, (), args[0]), *args[1:]))
    return model


def evaluate_fixed_point(arch: Architecture, task: ProxyTask, seed: int = 0, *, mode: FixedPointMode | str,
                         width: int = 8, splits: Sequence[str] = ("val", "test"),
                         calibration: int = 256) -> tuple[dict[str, ProxyScore], dict[str, float]]:
    """Train ``arch`` once and score it at ``width``-bit fixed point on ``splits``.

    ``qat``: trained with :func:`qat_model`, scored in fake fixed point. ``ptq``: trained in float,
    compiled with hls4ml (precisions from ``calibration`` training windows, cached compile) and
    scored through the emulation. ``float``: :func:`~hwnas.proxy.training.evaluate_splits`.
    Returns the scores and the seconds spent ``{"train": ..., "compile": ..., "predict": ...}``.

    Taught in: notebooks/11_deployment.
    """
    from ..model import build_model
    from .training import _check_arch, _check_epochs, _check_splits, _fit, predict_split, torch_settings

    mode = require_enum(FixedPointMode, mode, "mode")
    splits = _check_splits(splits)
    _check_arch(arch, task)
    width = require_int(width, "width", 2, 32)
    epochs = _check_epochs(None, task)
    t_start = time.perf_counter()
    seconds = {"train": 0.0, "compile": 0.0, "predict": 0.0}
    with torch_settings(task.num_threads):
        model = build_model(arch, seed=seed)
        if mode == FixedPointMode.QAT:
            qat_model(model, width)
        seconds["train"], diverged = _fit(model, task, arch.lookback, seed, epochs)
        scored: nn.Module = model
        if mode == FixedPointMode.PTQ and not diverged:
            from ..deploy.hls import HlsModule, compile_hls
            from ..deploy.quantize import calibration_windows

            start = time.perf_counter()
            build = compile_hls(model, calibration_windows(task, arch.lookback, calibration, seed), width=width)
            seconds["compile"] = time.perf_counter() - start
            scored = HlsModule(build)
        start = time.perf_counter()
        preds = {s: predict_split(scored, task, s, arch.lookback) for s in splits}
        seconds["predict"] = time.perf_counter() - start
    diverged = diverged or any(not np.isfinite(p).all() for p in preds.values())
    name = f"arch L{arch.lookback} d{arch.depth} {mode.value}{width}"
    scores = {s: score_run(name, preds[s], task, s, seed, seconds["train"], t_start, epochs, diverged, False,
                           len(task.train_indices())) for s in splits}
    return scores, seconds
