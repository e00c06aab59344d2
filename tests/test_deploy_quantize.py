"""INT8 / FP16 ONNX models and the fixed-point simulation (hwnas.deploy.quantize)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from hwnas.architecture import Activation, Architecture, LayerSpec, OpType
from hwnas.deploy.onnx_graph import onnx_bytes
from hwnas.deploy.quantize import (
    calibration_windows,
    compare_precisions,
    convert_fp16,
    fixed_point_model,
    quantize_int8,
    weight_bytes,
)
from hwnas.deploy.runtimes import OrtModule
from hwnas.latency import TimingSpec
from hwnas.model import Head, Layer, build_model


def small_arch(features: int) -> Architecture:
    return Architecture(
        layers=(
            LayerSpec(OpType.FC, features, 16),
            LayerSpec(OpType.CONV, 16, 16, kernel_size=3, use_skip=True),
            LayerSpec(OpType.DWSEP_CONV, 16, 32, kernel_size=3, use_skip=True, activation=Activation.GELU),
            LayerSpec(OpType.ATTENTION, 32, 32, heads=2),
        ),
        input_features=features, lookback=16, head="gap",
    )


def test_calibration_windows_are_seeded_training_windows(task):
    windows = calibration_windows(task, 12, n=40, seed=1)
    assert windows.shape == (40, task.num_features, 12) and windows.dtype == np.float32
    np.testing.assert_array_equal(windows, calibration_windows(task, 12, n=40, seed=1))
    train = task.train.X[:, :, -12:].numpy()
    allowed = set(task.train_indices().tolist())
    for window in windows[:5]:  # each is one of the training windows the task trains on
        rows = np.flatnonzero((train == window).all(axis=(1, 2)))
        assert rows.size and set(rows.tolist()) & allowed


def test_int8_qdq_model_is_smaller_runs_and_stays_close(task):
    arch = small_arch(task.num_features)
    model = build_model(arch, seed=0)
    windows = calibration_windows(task, 16, n=128)
    fp32 = onnx_bytes(model, (torch.from_numpy(windows[:2]),))
    int8 = quantize_int8(fp32, windows)
    params = sum(p.numel() for p in model.parameters())
    # the float32 weights, plus a few constants (GELU's formula, attention's reshape sizes)
    assert 4 * params <= weight_bytes(fp32) <= 4 * params + 256
    assert weight_bytes(int8) < 0.4 * weight_bytes(fp32)
    graph = onnx.load_from_string(int8).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weights = {init.name: init for init in graph.initializer}
    conv = weights["layers.1.op.weight_quantized"]
    assert conv.data_type == onnx.TensorProto.INT8
    assert list(weights["layers.1.op.weight_scale"].dims) == [16]  # one scale per output channel
    x = torch.from_numpy(windows[:64])
    with torch.inference_mode():
        want = model(x).numpy()
    got = OrtModule(int8)(x).numpy()
    assert np.abs(got - want).max() > 0  # it did change the arithmetic
    assert np.corrcoef(got[:, 0], want[:, 0])[0, 1] > 0.9  # ... and kept the model's ranking


def test_fp16_model_is_smaller_and_close(task):
    arch = small_arch(task.num_features)
    model = build_model(arch, seed=0)
    x = torch.from_numpy(calibration_windows(task, 16, n=32))
    fp32 = onnx_bytes(model, (x[:2],))
    fp16 = convert_fp16(fp32)
    assert len(fp16) < len(fp32) and weight_bytes(fp16) < 0.51 * weight_bytes(fp32)
    types = {init.data_type for init in onnx.load_from_string(fp16).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types and onnx.TensorProto.FLOAT not in types
    with torch.inference_mode():
        want = model(x).numpy()
    np.testing.assert_allclose(OrtModule(fp16)(x).numpy(), want, atol=5e-3, rtol=1e-2)


def test_fixed_point_weights_and_layer_inputs_lie_on_the_int8_grid(task):
    model = build_model(small_arch(task.num_features), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    windows = calibration_windows(task, 16, n=64)
    sim = fixed_point_model(model, windows)
    for key, value in model.state_dict().items():  # the original is untouched
        assert torch.equal(value, before[key])
    for module in sim.modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.Linear)):
            w = module.weight.detach()
            dims = tuple(range(1, w.dim()))
            scale = w.abs().amax(dim=dims, keepdim=True) / 127
            k = w / scale
            assert torch.allclose(k, k.round(), atol=1e-3) and k.abs().max() <= 127 + 1e-3
            assert torch.allclose(k.abs().amax(dim=dims), torch.full((w.shape[0],), 127.0), atol=1e-3)
    seen = []
    boundaries = [m for m in sim.modules() if isinstance(m, (Layer, Head))]
    handles = [m.register_forward_pre_hook(lambda _, a: seen.append(a[0].detach())) for m in boundaries]
    with torch.no_grad():
        out = sim(torch.from_numpy(windows))
        ref = model(torch.from_numpy(windows))
    for h in handles:
        h.remove()
    for tensor in seen:  # per channel: at most 255 levels, a common step
        for channel in tensor.transpose(0, 1).reshape(tensor.shape[1], -1)[:4]:
            levels = torch.unique(channel)
            assert len(levels) <= 255
            if len(levels) > 2:
                steps = torch.diff(levels)
                base = steps.min()
                assert torch.allclose(steps / base, (steps / base).round(), atol=1e-2)
    assert 0 < (out - ref).abs().max() < 0.1 * ref.abs().max() + 1e-3
    with pytest.raises(ValueError, match="bits"):
        fixed_point_model(model, windows, bits=1)


def test_compare_precisions_reports_every_variant(task):
    results = compare_precisions(small_arch(task.num_features), task, calibration=128,
                                 timing=TimingSpec.COMPARE.replace(target_ms=5.0))
    by_name = {r.name: r for r in results}
    assert list(by_name) == ["fp32 eager", "fp32 onnx", "int8 onnx (QDQ)", "fp16 onnx", "int8 fixed point (sim)"]
    assert by_name["fp32 onnx"].val_score == pytest.approx(by_name["fp32 eager"].val_score, abs=1e-5)
    assert by_name["fp32 onnx"].max_abs_diff < 1e-4
    assert by_name["int8 onnx (QDQ)"].weight_bytes < 0.4 * by_name["fp32 onnx"].weight_bytes
    assert by_name["fp16 onnx"].size_bytes < by_name["fp32 onnx"].size_bytes
    assert by_name["int8 fixed point (sim)"].weight_bytes < 0.4 * by_name["fp32 eager"].weight_bytes
    assert by_name["int8 fixed point (sim)"].latency_us is None
    assert all(r.latency_us > 0 for r in results if r.latency_us is not None)
    assert all(np.isfinite([r.val_score, r.test_score]).all() for r in results)


def test_precision_graphs_are_converted_once_and_scored_as_given(task):
    from hwnas.deploy.quantize import calibration_windows, precision_graphs, score_precisions
    from hwnas.proxy import train_model

    arch = small_arch(task.num_features)
    model = train_model(arch, task, 0)
    windows = calibration_windows(task, arch.lookback, 64, 0)
    fp32 = onnx_bytes(model, (torch.from_numpy(windows[:2]),))
    graphs = precision_graphs(fp32, windows, ("fp32 onnx", "fp16 onnx", "int8 fixed point (sim)"))
    assert list(graphs) == ["fp32 onnx", "fp16 onnx"] and graphs["fp32 onnx"] is fp32  # no graph for the simulation
    with pytest.raises(ValueError, match="precisions entry"):
        precision_graphs(fp32, windows, ("fp8 onnx",))
    results = score_precisions(model, arch, task, windows, precisions=("fp32 onnx", "fp16 onnx"), graphs=graphs,
                               timing=TimingSpec.COMPARE.replace(target_ms=2.0))
    assert [r.size_bytes for r in results] == [len(graphs["fp32 onnx"]), len(graphs["fp16 onnx"])]
