"""The hls4ml fixed-point path of the FPGA target (hwnas.deploy.hls)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwnas import Activation, Architecture, LayerSpec, OpType, SearchSpace, build_model
from hwnas.deploy.hls import (
    HLS_PROJECT_FILES,
    choose_precisions,
    compile_hls,
    export_hls,
    fixed_point_type,
    hls_available,
    hls_ready_model,
    hls_unsupported,
)
from hwnas.deploy.quantize import calibration_windows
from tests.helpers import hwnas_cli

needs_hls = pytest.mark.skipif(not hls_available(), reason="hls4ml or g++ is not installed")

#: The emulation's outputs may differ from float by this much: 16-bit values with 11-14 fractional
#: bits and rounding at every layer output (a few 2^-12 steps through six layers).
TOLERANCE = 2e-2


def fpga_arch(features: int) -> Architecture:
    """Every op of the FPGA space: fc stem, conv with identity skip, dwsep with projection skip,
    max pool, identity, the last head."""
    return Architecture(
        layers=(
            LayerSpec(OpType.FC, features, 16, activation=Activation.RELU),
            LayerSpec(OpType.CONV, 16, 16, kernel_size=3, use_skip=True, activation=Activation.RELU),
            LayerSpec(OpType.DWSEP_CONV, 16, 32, kernel_size=3, use_skip=True, activation=Activation.RELU),
            LayerSpec(OpType.MAX_POOL, 32, 32, kernel_size=2, stride=2, activation=Activation.NONE),
            LayerSpec(OpType.IDENTITY, 32, 32, activation=Activation.RELU),
        ),
        input_features=features, lookback=16, head="last",
    )


@pytest.fixture(scope="session")
def hls_build(task, tmp_path_factory):
    """One compiled emulation per test session (a g++ build takes 15-40 s), in a private cache."""
    arch = fpga_arch(task.num_features)
    model = build_model(arch, seed=0)
    windows = calibration_windows(task, arch.lookback, n=128)
    cache = tmp_path_factory.mktemp("hls-cache")
    return model, windows, cache, compile_hls(model, windows, cache_dir=cache)


@pytest.mark.parametrize("seed", range(8))
def test_rewritten_model_computes_the_original(seed):
    arch = SearchSpace.fpga().sample(np.random.default_rng(seed))
    model = build_model(arch, seed=seed)
    net = hls_ready_model(model)
    x = torch.randn(5, arch.input_features, arch.lookback, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        torch.testing.assert_close(net(x), model(x), atol=1e-5, rtol=1e-5)


def test_precision_rule_on_hand_examples():
    suffix = ",AP_RND_CONV,AP_SAT>"
    assert fixed_point_type(3.0, 16, 1) == "ap_fixed<16,4" + suffix  # sign + 2 magnitude bits + 1 margin
    assert fixed_point_type(4.0, 16, 0) == "ap_fixed<16,4" + suffix  # 4 needs 3 magnitude bits
    assert fixed_point_type(3.99, 16, 0) == "ap_fixed<16,3" + suffix
    assert fixed_point_type(0.3, 8, 1) == "ap_fixed<8,2" + suffix  # below 1: no magnitude bits
    assert fixed_point_type(0.0, 8, 0) == "ap_fixed<8,1" + suffix
    assert fixed_point_type(1e6, 8, 1) == "ap_fixed<8,8" + suffix  # clamped to the width
    with pytest.raises(ValueError, match="width"):
        fixed_point_type(1.0, 1)
    with pytest.raises(ValueError, match="peak"):
        fixed_point_type(float("nan"))


def test_precisions_follow_calibration_peaks(task):
    arch = fpga_arch(task.num_features)
    model = build_model(arch, seed=0)
    net = hls_ready_model(model)
    windows = calibration_windows(task, arch.lookback, n=64)
    chosen = choose_precisions(net, windows, width=12, margin=1)
    assert chosen["x"].peak == pytest.approx(float(np.abs(windows).max()))
    assert chosen["x"].result == fixed_point_type(float(np.abs(windows).max()), 12, 1)
    stem = net.layers[0].op
    assert chosen["layers_0_op"].weight == fixed_point_type(float(stem.weight.detach().abs().max()), 12, 0)
    with torch.no_grad():
        head_in = net.layers(torch.from_numpy(windows))
    assert chosen["layers_4_act"].result.startswith("ap_fixed<12,")
    assert max(p.peak for p in chosen.values() if p.layer.startswith("add")) >= float(head_in.abs().max()) - 1e-5
    with pytest.raises(ValueError, match="calibration"):
        choose_precisions(net, windows[0])


@pytest.mark.parametrize(("layer", "head", "named"), [
    (LayerSpec(OpType.ATTENTION, 16, 16, heads=2), "last", "attention"),
    (LayerSpec(OpType.CONV, 16, 16, kernel_size=3, activation=Activation.GELU), "last", "gelu"),
    (LayerSpec(OpType.AVG_POOL, 16, 16, kernel_size=2, stride=2), "last", "avg_pool"),
    (LayerSpec(OpType.CONV, 16, 16, kernel_size=3), "gap", "gap"),
])
def test_unsupported_ops_are_refused_naming_op_and_target(layer, head, named, mentions):
    arch = Architecture(layers=(LayerSpec(OpType.FC, 10, 16), layer), input_features=10, lookback=16, head=head)
    reasons = hls_unsupported(arch)
    assert any(named in r and "FPGA" in r for r in reasons)
    with pytest.raises(ValueError, match=mentions(named, "FPGA")):
        hls_ready_model(build_model(arch, seed=0))
    assert hls_unsupported(fpga_arch(10)) == []


@needs_hls
def test_emulation_agrees_with_float_and_is_cached(hls_build):
    model, windows, cache, build = hls_build
    x = windows[:24]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = build.predict(x)
    assert got.shape == want.shape
    gap = np.abs(got - want).max()
    assert gap <= TOLERANCE * max(1.0, float(np.abs(want).max()))
    assert gap > 0  # fixed point, not float: some rounding shows
    again = compile_hls(model, windows, cache_dir=cache)
    assert again.cached and again.compile_s == 0.0
    np.testing.assert_array_equal(again.predict(x), got)


@needs_hls
def test_export_writes_the_project_atomically(task, tmp_path, monkeypatch):
    arch = fpga_arch(task.num_features)
    model = build_model(arch, seed=0)
    windows = calibration_windows(task, arch.lookback, n=32)
    out = export_hls(model, arch, tmp_path / "proj", windows)
    for name in HLS_PROJECT_FILES:
        assert (out / name).is_file(), name
    meta = json.loads((out / "hwnas_hls.json").read_text())
    assert Architecture.from_dict(meta["architecture"]) == arch
    assert {p["layer"] for p in meta["precisions"]} >= {"x", "layers_0_op", "head"}
    assert "ap_fixed<16," in (out / "firmware" / "parameters.h").read_text() + (
        out / "firmware" / "defines.h").read_text()
    assert len((out / "tb_data" / "tb_input_features.dat").read_text().splitlines()) == 16  # C-sim testbench
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]  # no temporary folder left
    with pytest.raises(ValueError, match="exists"):
        export_hls(model, arch, out, windows)

    import hwnas.deploy.hls as hls

    def broken(*_args, **_kwargs):
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(hls, "_convert", broken)
    with pytest.raises(RuntimeError):
        export_hls(model, arch, tmp_path / "failed", windows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


@needs_hls
def test_cli_export_format_hls(task, cli_inputs, tmp_path):
    arch = fpga_arch(10)
    path = tmp_path / "arch.json"
    path.write_text(arch.to_json())
    out = tmp_path / "hls_project"
    done = hwnas_cli("export", str(path), "--untrained", "--format", "hls", "--data", str(cli_inputs["csv"]),
                     "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "build_prj.tcl").is_file() and (out / "hwnas_hls.json").is_file()
    again = hwnas_cli("export", str(path), "--untrained", "--format", "hls", "--out", str(out))
    assert again.returncode == 2 and "--out" in again.stderr and "Traceback" not in again.stderr
    bad = hwnas_cli("export", str(path), "--untrained", "--format", "tflite", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2
    gap = Architecture(layers=arch.layers, input_features=10, lookback=16, head="gap")
    path.write_text(gap.to_json())
    refused = hwnas_cli("export", str(path), "--untrained", "--format", "hls", "--out", str(tmp_path / "g"))
    assert refused.returncode == 2 and "FPGA" in refused.stderr and "gap" in refused.stderr
    assert not (tmp_path / "g").exists()


@needs_hls
def test_score_precisions_runs_the_fpga_fixed_point_through_hls4ml(task, hls_build, monkeypatch):
    from hwnas.deploy.quantize import HLS_FIXED_POINT, SIM_FIXED_POINT, fixed_point_precision, score_precisions
    from hwnas.latency import TimingSpec

    model, windows, cache, _ = hls_build
    monkeypatch.setenv("HWNAS_HLS_CACHE", str(cache))  # the session's compile is reused
    arch = model.arch
    assert fixed_point_precision(arch) == HLS_FIXED_POINT
    attention = Architecture(layers=(LayerSpec(OpType.FC, arch.input_features, 16),
                                     LayerSpec(OpType.ATTENTION, 16, 16, heads=2)),
                             input_features=arch.input_features, lookback=16, head="last")
    assert fixed_point_precision(attention) == SIM_FIXED_POINT  # the stated fallback
    results = score_precisions(model, arch, task, windows, precisions=("fp32 eager", HLS_FIXED_POINT),
                               timing=TimingSpec.COMPARE.replace(target_ms=5.0))
    fp32, fixed = results
    assert fixed.name == HLS_FIXED_POINT and fixed.runtime == "hls4ml" and fixed.latency_us is None
    assert 0 < fixed.max_abs_diff <= TOLERANCE
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    assert fixed.weight_bytes == nonzero * 16 // 8  # 16-bit weights and biases, zeros removed
    assert abs(fixed.test_score - fp32.test_score) < 0.05


def test_fake_fixed_rounds_to_the_grid_and_passes_gradients_straight_through():
    from hwnas.proxy.fixed_point import fake_fixed, integer_bits

    assert integer_bits(3.0, 8, 1) == 4 and integer_bits(0.0, 8, 0) == 1 and integer_bits(1e9, 8, 1) == 8
    x = torch.tensor([0.30, -1.26, 2.9, 100.0, -100.0], requires_grad=True)
    y = fake_fixed(x, 3.0, 8, 1)  # ap_fixed<8,4>: step 2^-4, range [-8, 8 - 2^-4]
    step = 2.0 ** -4
    assert torch.allclose(y / step, (y / step).round())
    assert y[3].item() == 8 - step and y[4].item() == -8
    assert abs(y[0].item() - 0.3125) < 1e-7  # 0.30 -> nearest multiple of 1/16
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]  # straight through, zero where saturated


def test_qat_model_computes_on_the_fixed_point_grid(task):
    from hwnas.proxy.fixed_point import FixedPointMode, evaluate_fixed_point, qat_model

    arch = fpga_arch(task.num_features)
    model = qat_model(build_model(arch, seed=0), width=8)
    x = torch.from_numpy(calibration_windows(task, arch.lookback, n=16))
    model.train()
    model(x)  # peaks tracked
    model.eval()
    with torch.no_grad():
        out = model(x)
    weight = model.layers[0].op.weight  # parametrised: on an 8-bit grid
    levels = torch.unique(weight.detach())
    assert len(levels) <= 256
    assert torch.isfinite(out).all() and len(torch.unique(out)) <= 256
    scores, seconds = evaluate_fixed_point(arch, task, 0, mode=FixedPointMode.QAT, width=8)
    assert set(scores) == {"val", "test"} and seconds["compile"] == 0.0
    with pytest.raises(ValueError, match="qat"):
        evaluate_fixed_point(arch, task, 0, mode="int4")


def test_evaluator_scores_fpga_candidates_in_fixed_point(task):
    import dataclasses

    import hwnas
    from hwnas.search.evaluator import Evaluator

    profile = hwnas.fpga_profile(hwnas.ZU9EG)
    arch = fpga_arch(task.num_features)
    plain = Evaluator(task, profile)
    qat = Evaluator(task, profile, fixed_point="qat", fixed_point_width=8)
    assert qat.remote_trainer().fixed_point == "qat"
    assert plain.fingerprints()[1] != qat.fingerprints()[1]  # a store never mixes float and fixed scores
    float_score, fixed_score = plain.trainer(arch).score, qat.trainer(arch).score
    assert np.isfinite(fixed_score) and fixed_score != float_score
    with pytest.raises(ValueError, match="fixed_point"):
        Evaluator(task, profile, fixed_point="int4")
    assert dataclasses.replace(qat.trainer, fixed_point="float")(arch).score == float_score


def test_cycle_model_takes_bit_width_and_reuse_factor():
    import dataclasses

    from hwnas.opspec import arch_op_specs
    from hwnas.targets.fpga import ZU9EG, fpga_engines, fpga_resources

    arch = fpga_arch(10)
    conv = next(op for op in arch_op_specs(arch) if op.op == "conv")
    dot = conv.kernel_size * conv.in_channels * conv.out_channels  # 3 * 16 * 16 = 768
    int8 = fpga_engines(conv, ZU9EG)[0]
    assert int8.parallel_macs == 256 and int8.dsps == 128  # the dsp_per_engine cap, 2 MACs a DSP
    wide = fpga_engines(conv, dataclasses.replace(ZU9EG, bits=16))[0]
    assert wide.parallel_macs == 128 and wide.dsps == 128 and wide.cycles > int8.cycles
    reuse = fpga_engines(conv, dataclasses.replace(ZU9EG, reuse_factor=4))[0]
    assert reuse.parallel_macs == dot // 4 and reuse.dsps == dot // 8  # hls4ml: multipliers = dot / reuse
    assert fpga_resources(arch, dataclasses.replace(ZU9EG, bits=16)).weight_bytes == \
        2 * fpga_resources(arch, ZU9EG).weight_bytes
