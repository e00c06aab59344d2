"""Export to ONNX / torch.export and the ONNX Runtime runtime (hwnas.deploy.export, .runtimes)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.architecture import POOL_OPS, OpType
from hwnas.data import load_klines, synthetic_klines
from hwnas.deploy.coverage import coverage_architecture
from hwnas.deploy.export import export, load_exported
from hwnas.deploy.onnx_graph import OPSET, onnx_bytes
from hwnas.deploy.runtimes import OnnxRuntime, OrtModule, make_session
from hwnas.latency import op_module
from hwnas.model import build_model
from hwnas.opspec import space_op_specs
from hwnas.proxy import make_proxy_task
from hwnas.runtime import get_runtime
from hwnas.space import SearchSpace

BYBIT_DIR = Path(os.environ.get("HWNAS_BYBIT_DIR", Path(__file__).resolve().parents[2] / "shared/data/bybit"))
SPACES = ("default", "fpga", "mobile", "gpu")


@pytest.fixture(scope="module")
def windows() -> torch.Tensor:
    """128 validation windows of recorded BTCUSDT klines (synthetic ones where the folder is absent)."""
    if BYBIT_DIR.is_dir():
        frame = load_klines(limit=1500, recorded_dir=BYBIT_DIR, offline=True).frame
    else:
        frame = synthetic_klines(1500, "15", seed=0)
    task = make_proxy_task(frame, lookback=128)
    return task.val.X[:128].contiguous()


def _space(name: str, features: int) -> SearchSpace:
    return SearchSpace.named(name, input_features=features)


@pytest.mark.parametrize("name", SPACES)
def test_coverage_architecture_uses_every_op_and_both_skip_kinds(name):
    space = _space(name, 10)
    arch = coverage_architecture(space)
    assert {layer.op for layer in arch.layers} == set(space.ops) | {OpType.FC}
    compute = [layer for layer in arch.layers[1:] if layer.op not in POOL_OPS | {OpType.IDENTITY}]
    assert any(layer.use_skip and not layer.needs_projection for layer in compute)
    if len(space.widths) > 1:
        assert any(layer.needs_projection for layer in compute)
    if space.skip_choices == (True,):
        assert all(layer.use_skip for layer in compute)


@pytest.mark.parametrize("name", SPACES)
def test_onnx_round_trip_on_real_windows(name, windows, tmp_path):
    space = _space(name, windows.shape[1])
    for head in space.head_types:
        arch = coverage_architecture(space)
        arch = type(arch)(arch.layers, arch.input_features, arch.lookback, head, arch.num_outputs)
        path = tmp_path / f"{name}_{head.value}.onnx"
        result = export(arch, path, check_inputs=windows[:, :, -arch.lookback:])
        assert result.checked_windows == len(windows)
        assert result.max_abs_error <= 1e-5 and result.opset == OPSET
        assert path.stat().st_size == result.size_bytes
        # reloaded independently, at another batch size: the batch dimension is dynamic
        reloaded = load_exported(path)
        x = windows[:7, :, -arch.lookback:]
        with torch.inference_mode():
            want = build_model(arch, seed=0)(x)
        got = reloaded(x)
        assert got.shape == (7, 1)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_torch_export_round_trip(windows, tmp_path):
    arch = coverage_architecture(_space("default", windows.shape[1]), lookback=64)
    model = build_model(arch, seed=3)
    result = export(model, tmp_path / "m.pt2", format="torch.export", check_inputs=windows[:, :, -64:])
    assert result.format == "torch.export" and result.opset is None
    assert result.max_abs_error <= 1e-5
    x = windows[:5, :, -64:]
    with torch.inference_mode():
        np.testing.assert_allclose(load_exported(tmp_path / "m.pt2")(x).numpy(), model(x).numpy(),
                                   rtol=1e-5, atol=1e-6)


class _Branchy(nn.Module):
    """A data-dependent branch: tracing records one side only, so the export is wrong."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if bool(x.sum() > 0) else x * 3


def test_failed_check_writes_nothing_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="export check failed"):
        export(_Branchy(), path, example=torch.ones(1, 3), check_inputs=-torch.ones(4, 3))
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]  # no temporary left


def test_export_arguments_are_checked(tmp_path):
    arch = coverage_architecture(_space("mobile", 8))
    with pytest.raises(ValueError, match="format"):
        export(arch, tmp_path / "m.onnx", format="tflite")
    with pytest.raises(ValueError, match="model_or_arch"):
        export("arch.json", tmp_path / "m.onnx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="example"):
        export(nn.Linear(3, 1), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"\.onnx \(onnx\), \.pt2 \(torch\.export\), \.pte \(pte\)"):
        load_exported(tmp_path / "m.txt")


def test_onnxruntime_is_registered_with_its_settings():
    runtime = get_runtime("onnxruntime", threads=2)
    assert isinstance(runtime, OnnxRuntime) and runtime.threads == 2
    assert runtime.version().startswith("onnxruntime 1.")
    module, inputs = op_module(space_op_specs(SearchSpace.default(), 1)[0])
    options = runtime.session(module, inputs).get_session_options()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert str(options.execution_mode).endswith("ORT_SEQUENTIAL")
    assert str(options.graph_optimization_level).endswith("ORT_ENABLE_ALL")
    with pytest.raises(ValueError, match="threads"):
        OnnxRuntime(threads=0)


def test_prepared_callables_match_eager_for_layers_heads_and_the_two_input_add():
    specs = space_op_specs(SearchSpace.default(), 1, branches=True)
    chosen = {}
    for spec in specs:  # one key per op kind, the two-input residual add included
        chosen.setdefault(spec.op, spec)
    assert "add" in chosen and "shortcut" in chosen and "attention" in chosen
    runtime = OnnxRuntime(threads=1)
    for spec in chosen.values():
        module, inputs = op_module(spec)
        run = runtime.prepare(module, inputs)
        with torch.inference_mode():
            want = module(*inputs).numpy()
        first, second = run()[0], run()[0]
        np.testing.assert_allclose(first, want, rtol=1e-5, atol=1e-5, err_msg=spec.label())
        np.testing.assert_array_equal(first, second)


def test_prepare_onnx_and_ort_module_read_exported_bytes():
    arch = coverage_architecture(_space("mobile", 8), lookback=32)
    model = build_model(arch, seed=1)
    data = onnx_bytes(model, (torch.randn(2, 8, 32),))
    out = OnnxRuntime().prepare_onnx(data, batch=3)()[0]
    assert out.shape == (3, 1)
    x = torch.randn(5, 8, 32)
    with torch.inference_mode():
        np.testing.assert_allclose(OrtModule(data)(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    assert [m.shape[0] for m in make_session(data).get_inputs()] == ["batch"]


def test_a_layer_is_exported_once_for_all_lengths_and_stays_exact():
    from hwnas.architecture import LayerSpec
    from hwnas.opspec import OpSpec

    runtime = OnnxRuntime()
    conv = LayerSpec(OpType.DILATED_CONV, 16, 32, kernel_size=3, dilation=2, use_skip=True)
    attention = LayerSpec(OpType.ATTENTION, 16, 16, heads=2)
    for spec, graphs in ((conv, 1), (attention, 1)):  # attention is traced per length: not cached
        for length in (8, 32, 64):
            module, inputs = op_module(OpSpec.from_layer(spec, length))
            with torch.inference_mode():
                want = module(*inputs).numpy()
            np.testing.assert_allclose(runtime.prepare(module, inputs)()[0], want, rtol=1e-5, atol=1e-5)
        assert len(runtime._graphs) == graphs
