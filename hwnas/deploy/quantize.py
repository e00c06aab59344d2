"""Lower precision for deployment: INT8 and FP16 ONNX models, and an FPGA fixed-point simulation.

Taught in: notebooks/11_deployment.

* INT8: static post-training quantisation with ONNX Runtime's tools
  (``onnxruntime.quantization.quantize_static``): QDQ graphs, symmetric INT8
  weights per output channel, INT8 activations whose ranges are calibrated
  (min-max) on training windows, never on validation or test data.
* FP16: every float tensor of the graph converted with ONNX Runtime's
  ``onnxruntime.transformers.float16`` (the converter of onnxconverter-common),
  inputs and outputs kept float32.
* Fixed point through hls4ml (``"fixed point (hls4ml)"``, :mod:`hwnas.deploy.hls`): the FPGA
  model converted by hls4ml with per-layer ``ap_fixed`` precisions chosen on training windows,
  its C++ emulation compiled with g++ and run bit-accurately. This is the FPGA precision
  wherever hls4ml can run the model (:func:`fixed_point_precision`).
* Fixed point, the stated fallback (:func:`fixed_point_model`, ``"int8 fixed point (sim)"``),
  used only where the hls4ml path cannot run (hls4ml or g++ missing, or an op it does not
  convert, such as attention or GELU): what an FPGA datapath computes, simulated in torch:
  weights rounded to INT8 with a scale per output channel,
  and every tensor that moves between layers (the input of each layer and of
  the head) rounded to INT8 with a scale per channel calibrated on training
  windows. Intermediate values inside a layer (accumulators, attention scores)
  stay in float, as the wide accumulators of a DSP slice would hold them.
  This is the INT8 assumption of :func:`hwnas.fpga_profile`.

:func:`compare_precisions` trains one architecture on the proxy task and
reports, for each precision, size, measured latency and the change in proxy
score on validation and test.
"""

from __future__ import annotations

import copy
import io
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper
import torch
from torch import nn

from ..architecture import Architecture
from ..checks import require_choice, require_int
from ..cost import Precision
from ..latency.spec import TimingSpec
from ..latency.timing import time_round_robin
from ..model import Head, Layer

__all__ = [
    "PRECISION_TIMING",
    "calibration_windows",
    "weight_bytes",
    "quantize_int8",
    "convert_fp16",
    "fixed_point_model",
    "HLS_FIXED_POINT",
    "SIM_FIXED_POINT",
    "fixed_point_precision",
    "default_precisions",
    "PrecisionResult",
    "PRECISIONS",
    "STORAGE_PRECISION",
    "precision_graphs",
    "score_precisions",
    "compare_precisions",
]


QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")

PRECISION_TIMING = TimingSpec.COMPARE.replace(target_ms=40.0)
"""Precisions side by side: twice :attr:`~hwnas.latency.TimingSpec.COMPARE`'s time, as the INT8 and
FP16 graphs differ from FP32 by a few percent only."""
"""ONNX operations whose inputs and weights become INT8 (activations such as GELU stay float)."""


def weight_bytes(model: bytes) -> int:
    """Bytes of an ONNX model's stored tensors (initialisers and constants), without the graph.

    For a small network the graph itself (nodes, names, the quantise and
    dequantise steps of a QDQ model) is a large share of the file: the weights
    shrink 4x in INT8 while the file may not.

    Taught in: notebooks/11_deployment.
    """
    graph = onnx.load_from_string(model).graph
    tensors = list(graph.initializer) + [attr.t for node in graph.node if node.op_type == "Constant"
                                         for attr in node.attribute if attr.type == onnx.AttributeProto.TENSOR]
    return int(sum(onnx.numpy_helper.to_array(t).nbytes for t in tensors))


def calibration_windows(task: Any, lookback: int, n: int = 256, seed: int = 0) -> np.ndarray:
    """``n`` training windows of the task (the last ``lookback`` steps), float32, for calibration.

    Taught in: notebooks/11_deployment.
    """
    n = require_int(n, "n", 1)
    rows = task.train_indices()
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))
    windows = task.train.X.index_select(0, torch.from_numpy(chosen))[:, :, -lookback:]
    return np.ascontiguousarray(windows.numpy(), dtype=np.float32)


class _Reader:
    """An ONNX Runtime calibration data reader over windows, in batches."""

    def __init__(self, name: str, windows: np.ndarray, batch: int) -> None:
        self._batches: Iterator[np.ndarray] = iter(
            [windows[i:i + batch] for i in range(0, len(windows), batch)])
        self.name = name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.name: batch}

    def rewind(self) -> None:  # pragma: no cover - ORT calls it only for some methods
        pass


def quantize_int8(model: bytes, calibration: np.ndarray, *, per_channel: bool = True,
                  batch: int = 32) -> bytes:
    """INT8 static post-training quantisation (QDQ, symmetric per-channel weights) of an ONNX model.

    Only :data:`QUANTIZED_OPS` are quantised. ``model`` is ONNX bytes with a dynamic batch dimension (see
    :func:`hwnas.deploy.onnx_graph.onnx_bytes`); ``calibration`` holds training
    windows ``(n, features, lookback)`` whose activation ranges (min-max) fix the
    activation scales.

    Taught in: notebooks/11_deployment.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    proto = onnx.load_from_string(model)
    name = proto.graph.input[0].name
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the tools log a suggestion to pre-process on every call
    try:
        with tempfile.TemporaryDirectory() as folder:
            source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
            source.write_bytes(model)
            quantize_static(
                str(source), str(target), _Reader(name, np.asarray(calibration, np.float32), batch),
                quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=list(QUANTIZED_OPS),
                extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
            )
            return target.read_bytes()
    finally:
        root.setLevel(level)


def convert_fp16(model: bytes) -> bytes:
    """The ONNX model with its float tensors in float16 (inputs and outputs stay float32).

    Taught in: notebooks/11_deployment.
    """
    import warnings

    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes about values clipped to the float16 range
        converted = convert_float_to_float16(onnx.load_from_string(model), keep_io_types=True)
    return bytes(converted.SerializeToString())


def _round_per_channel(values: torch.Tensor, scale: torch.Tensor, qmax: int) -> torch.Tensor:
    """``values`` rounded to the integer grid ``scale * k``, ``|k| <= qmax``."""
    return torch.clamp(torch.round(values / scale), -qmax, qmax) * scale


def _weight_scale(weight: torch.Tensor, qmax: int) -> torch.Tensor:
    """Symmetric scale per output channel (dimension 0), shaped to broadcast over ``weight``."""
    dims = tuple(range(1, weight.dim()))
    peak = weight.abs().amax(dim=dims, keepdim=True) if dims else weight.abs()
    return torch.clamp(peak, min=1e-12) / qmax


def fixed_point_model(model: nn.Module, calibration: torch.Tensor | np.ndarray, bits: int = 8) -> nn.Module:
    """A copy of ``model`` computing as a fixed-point FPGA datapath would (see the module docstring).

    Weights of every convolution and linear layer are rounded to ``bits``-bit
    integers with one symmetric scale per output channel; biases stay wide (an
    INT32 accumulator's precision). The input of each layer and of the head is
    rounded to ``bits`` bits with one scale per channel, set by the largest
    magnitude that channel reaches on ``calibration`` windows.

    Taught in: notebooks/11_deployment.
    """
    bits = require_int(bits, "bits", 2, 16)
    qmax = 2 ** (bits - 1) - 1
    sim = copy.deepcopy(model).eval()
    with torch.no_grad():
        for module in sim.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                module.weight.copy_(_round_per_channel(module.weight, _weight_scale(module.weight, qmax), qmax))
    boundaries = [m for m in sim.modules() if isinstance(m, (Layer, Head))]
    peaks: dict[int, torch.Tensor] = {}

    def record(index: int) -> Callable[..., None]:
        def hook(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            peak = args[0].abs().amax(dim=(0, 2))
            peaks[index] = torch.maximum(peaks[index], peak) if index in peaks else peak
        return hook

    handles = [m.register_forward_pre_hook(record(i)) for i, m in enumerate(boundaries)]
    with torch.no_grad():
        for chunk in torch.as_tensor(np.asarray(calibration), dtype=torch.float32).split(256):
            sim(chunk)
    for handle in handles:
        handle.remove()

    def quantise(index: int) -> Callable[..., tuple[torch.Tensor, ...]]:
        scale = (torch.clamp(peaks[index], min=1e-12) / qmax).reshape(1, -1, 1)

        def hook(_: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            return (_round_per_channel(args[0], scale, qmax), *args[1:])
        return hook

    for i, module in enumerate(boundaries):
        module.register_forward_pre_hook(quantise(i))
    return sim


def _fixed_point_bytes(model: nn.Module, bits: int) -> int:
    """Storage of a fixed-point model: ``bits`` per weight, 32 bits per bias and per-channel scale."""
    total = 0
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            total += module.weight.numel() * bits // 8 + module.weight.shape[0] * 4
            total += module.bias.numel() * 4 if module.bias is not None else 0
    return total


@dataclass(frozen=True)
class PrecisionResult:
    """One precision of one trained model: size, latency, proxy scores.

    ``size_bytes`` is the file (or ``torch.save``) size, ``weight_bytes`` the
    stored tensors alone (:func:`weight_bytes`; for the fixed-point model the
    INT8 weights plus 32-bit biases and scales). ``latency_us`` is the fastest call at
    batch 1 (``None`` for the fixed-point
    simulation, which runs in float in torch: its speed is not an FPGA's);
    ``val_score``/``test_score`` are the proxy task's primary metric and
    ``max_abs_diff`` the largest gap of its validation predictions from the FP32
    model's.

    Taught in: notebooks/11_deployment.
    """

    name: str
    runtime: str
    size_bytes: int
    weight_bytes: int
    latency_us: float | None
    median_us: float | None
    val_score: float
    test_score: float
    max_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def _hls_weight_bytes(module: Any) -> int:
    """Storage of the hls4ml model's non-zero weights and biases at their chosen widths, in bytes
    (the zeros of the rewritten depthwise and head layers are constants HLS removes)."""
    bits = 0
    for layer in module.build.hls_model.get_layers():
        for var in layer.get_weights():
            bits += int(np.count_nonzero(var.data)) * int(var.type.precision.width)
    return (bits + 7) // 8


def _state_bytes(model: nn.Module) -> int:
    """Size of ``torch.save(model.state_dict())``."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getvalue())


HLS_FIXED_POINT = "fixed point (hls4ml)"
"""The precision name of the hls4ml emulation (16-bit ``ap_fixed`` values by default)."""
SIM_FIXED_POINT = "int8 fixed point (sim)"
"""The precision name of the torch fallback, :func:`fixed_point_model`."""

STORAGE_PRECISION = {"fp32 eager": Precision.FP32, "fp32 onnx": Precision.FP32, "int8 onnx (QDQ)": Precision.INT8,
                     "fp16 onnx": Precision.FP16, SIM_FIXED_POINT: Precision.INT8,
                     HLS_FIXED_POINT: Precision.FP16}
"""Each precision :func:`score_precisions` knows (the names its results carry) and the
precision its values are stored in (for :func:`hwnas.cost.memory_footprint`; the hls4ml model's
16-bit fixed-point values take the bytes of FP16)."""
PRECISIONS = tuple(STORAGE_PRECISION)


def fixed_point_precision(arch: Architecture) -> str:
    """The FPGA's fixed-point precision for ``arch``: :data:`HLS_FIXED_POINT` where hls4ml and g++
    are installed and convert every op of ``arch``, else the fallback :data:`SIM_FIXED_POINT`.

    Taught in: notebooks/11_deployment.
    """
    from .hls import hls_available, hls_unsupported

    return HLS_FIXED_POINT if hls_available() and not hls_unsupported(arch) else SIM_FIXED_POINT


def default_precisions(arch: Architecture) -> tuple[str, ...]:
    """The precisions :func:`score_precisions` compares by default: FP32 eager and ONNX, INT8, FP16 and
    the FPGA's fixed point of :func:`fixed_point_precision`.

    Taught in: notebooks/11_deployment.
    """
    return ("fp32 eager", "fp32 onnx", "int8 onnx (QDQ)", "fp16 onnx", fixed_point_precision(arch))


def precision_graphs(fp32: bytes, windows: np.ndarray, precisions: Sequence[str] = PRECISIONS) -> dict[str, bytes]:
    """The ONNX graph of each ONNX precision among ``precisions`` (names of :data:`PRECISIONS`),
    from the FP32 graph and the calibration ``windows``; each is converted once.

    Taught in: notebooks/11_deployment.
    """
    makers = {"fp32 onnx": lambda: fp32, "int8 onnx (QDQ)": lambda: quantize_int8(fp32, windows),
              "fp16 onnx": lambda: convert_fp16(fp32)}
    for name in precisions:
        require_choice(name, "precisions entry", PRECISIONS)
    return {name: makers[name]() for name in precisions if name in makers}


def score_precisions(model: nn.Module, arch: Architecture, task: Any, windows: np.ndarray, *,
                     precisions: Sequence[str] | None = None, fp32: bytes | None = None,
                     graphs: dict[str, bytes] | None = None, seed: int = 0,
                     threads: int = 1, timing: TimingSpec = PRECISION_TIMING) -> list[PrecisionResult]:
    """A trained model in each of ``precisions`` (names of :data:`PRECISIONS`): size, latency, scores.

    ``windows`` are the calibration windows (training data only); ``fp32`` the
    model's ONNX bytes when already exported; ``graphs`` the
    :func:`precision_graphs` when already converted. Latencies are measured side by
    side (round-robin, :func:`hwnas.latency.time_round_robin` with ``timing``,
    :data:`PRECISION_TIMING` by default) at batch 1 with ``threads`` threads;
    scores with :func:`hwnas.proxy.score_predictions` on the validation and test
    splits. ``seed`` makes the inputs; ``timing.seed`` shuffles the passes.

    Taught in: notebooks/11_deployment.
    """
    from ..proxy.task import PRIMARY_METRIC, score_predictions
    from ..proxy.training import predict_split
    from ..runtime import get_runtime
    from .onnx_graph import onnx_bytes
    from .runtimes import OnnxRuntime, OrtModule

    precisions = default_precisions(arch) if precisions is None else tuple(precisions)
    if graphs is None:
        fp32 = fp32 if fp32 is not None else onnx_bytes(model, (torch.from_numpy(windows[:2]),))
        graphs = precision_graphs(fp32, windows, precisions)
    else:
        for name in precisions:
            require_choice(name, "precisions entry", PRECISIONS)
    modules: dict[str, nn.Module] = {}
    for name in precisions:
        if name in graphs:
            modules[name] = OrtModule(graphs[name], threads)
        elif name == HLS_FIXED_POINT:
            from .hls import HlsModule, compile_hls

            hls = compile_hls(model, windows)
            modules[name] = HlsModule(hls)
        else:
            modules[name] = model if name == "fp32 eager" else fixed_point_model(model, windows)
    ort = OnnxRuntime(threads)
    callables = {k: ort.prepare_onnx(v, batch=1, seed=seed) for k, v in graphs.items()}
    if "fp32 eager" in modules:
        callables["fp32 eager"] = get_runtime("eager", threads).prepare(model, (torch.from_numpy(windows[:1]),))
    timings = time_round_robin(callables, timing=timing, threads=threads)
    metric = PRIMARY_METRIC[task.target]
    reference = predict_split(model, task, "val", arch.lookback)
    results = []
    for name, module in modules.items():
        if name in graphs:
            size, tensors = len(graphs[name]), weight_bytes(graphs[name])
        elif name == "fp32 eager":
            size, tensors = _state_bytes(model), sum(p.numel() * 4 for p in model.parameters())
        elif name == HLS_FIXED_POINT:
            size = tensors = _hls_weight_bytes(modules[name])
        else:
            size = tensors = _fixed_point_bytes(model, 8)
        preds = {split: predict_split(module, task, split, arch.lookback) for split in ("val", "test")}
        scores = {split: score_predictions(preds[split], task, split)[metric] for split in preds}
        measured = timings.get(name)
        results.append(PrecisionResult(
            name=name, size_bytes=size,
            runtime="onnxruntime" if "onnx" in name else "hls4ml" if name == HLS_FIXED_POINT else "torch",
            weight_bytes=int(tensors),
            latency_us=measured.min_us if measured else None,
            median_us=measured.median_us if measured else None,
            val_score=float(scores["val"]), test_score=float(scores["test"]),
            max_abs_diff=float(np.max(np.abs(preds["val"] - reference))),
        ))
    return results


def compare_precisions(arch: Architecture, task: Any, *, seed: int = 0, threads: int = 1,
                       calibration: int = 256, epochs: int | None = None,
                       timing: TimingSpec = PRECISION_TIMING) -> list[PrecisionResult]:
    """Train ``arch`` once on the proxy task; FP32 eager and ONNX, INT8, FP16 and fixed point
    (hls4ml where it runs ``arch``, else the simulation), compared by :func:`score_precisions`
    (``calibration`` training windows calibrate).

    Taught in: notebooks/11_deployment.
    """
    from ..proxy.training import train_model

    model = train_model(arch, task, seed, epochs=epochs)
    windows = calibration_windows(task, arch.lookback, calibration, seed)
    return score_precisions(model, arch, task, windows, seed=seed, threads=threads, timing=timing)
