"""Tests of the analytical GPU (roofline) and FPGA (cycle) hardware profiles."""

from __future__ import annotations

import math
from dataclasses import asdict, fields

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hwnas.architecture import Architecture, LayerSpec
from hwnas.cost import count_flops, count_params
from hwnas.hardware import HardwareProfile
from hwnas.opspec import OpSpec, arch_op_specs
from hwnas.space import SearchSpace
from hwnas.targets import (
    A100_40GB,
    T4,
    ZU3EG,
    ZU9EG,
    AnalyticalProfile,
    FpgaSpec,
    GpuKernel,
    GpuSpec,
    fpga_engines,
    fpga_op_cycles,
    fpga_profile,
    fpga_resources,
    gpu_kernel_time_us,
    gpu_kernels,
    gpu_op_latency_us,
    gpu_profile,
)

SPACES = ("default", "fpga", "gpu", "mobile")


def fc(cin: int, cout: int, L: int, batch: int = 1, act: str = "none") -> OpSpec:
    return OpSpec("fc", cin, cout, L, activation=act, batch=batch)


def archs(name: str, n: int, seed: int = 0) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    space = SearchSpace.named(name)
    return [space.sample(rng) for _ in range(n)]


# --------------------------------------------------------------------------- GPU


def test_gpu_tiny_op_is_floored_by_launch_overhead():
    for spec in (A100_40GB, T4):
        t = gpu_op_latency_us(fc(1, 1, 1), spec)
        assert spec.launch_overhead_us <= t < spec.launch_overhead_us + 0.2
        # fc + relu = two kernels, each paying the launch
        t2 = gpu_op_latency_us(fc(1, 1, 1, act="relu"), spec)
        assert 2 * spec.launch_overhead_us <= t2 < 2 * spec.launch_overhead_us + 0.3
        # a 16x larger op is still launch-bound
        assert gpu_op_latency_us(fc(16, 16, 16), spec) < spec.launch_overhead_us + 0.2


def test_gpu_latency_grows_with_flops_at_large_sizes():
    sizes = [2**i for i in range(6, 15)]
    lat = [gpu_op_latency_us(OpSpec("conv", 64, 64, L, kernel_size=5, batch=64), A100_40GB) for L in sizes]
    assert all(b >= a for a, b in zip(lat, lat[1:]))
    assert lat[-1] > 20 * lat[0]  # far past the launch floor it scales with the work


@given(
    op=st.sampled_from(["conv", "fc", "dwsep_conv", "attention"]),
    width=st.sampled_from([8, 16, 24, 32, 64]),
    length=st.sampled_from([8, 32, 128]),
    b1=st.integers(1, 512),
    b2=st.integers(1, 512),
    precision=st.sampled_from(["fp32", "fp16", "int8"]),
)
def test_gpu_latency_is_monotone_in_batch(op, width, length, b1, b2, precision):
    lo, hi = sorted((b1, b2))
    k = 3 if op in ("conv", "dwsep_conv") else 1
    heads = 2 if op == "attention" else 1
    make = lambda b: OpSpec(op, width, width, length, kernel_size=k, heads=heads, batch=b)  # noqa: E731
    assert gpu_op_latency_us(make(lo), A100_40GB, precision) <= gpu_op_latency_us(make(hi), A100_40GB, precision)


def test_misaligned_width_falls_off_the_tensor_cores():
    big = dict(seq_len=128, batch=256)
    t63 = gpu_op_latency_us(OpSpec("fc", 63, 63, **big), A100_40GB, "fp16")
    t64 = gpu_op_latency_us(OpSpec("fc", 64, 64, **big), A100_40GB, "fp16")
    assert t63 > 2 * t64  # fewer FLOPs, yet much slower: CUDA-core rate
    # at fp32 neither width uses tensor cores: no cliff, the smaller one is not slower
    assert gpu_op_latency_us(OpSpec("fc", 63, 63, **big), A100_40GB, "fp32") <= gpu_op_latency_us(
        OpSpec("fc", 64, 64, **big), A100_40GB, "fp32")


def test_int8_needs_multiples_of_16_fp16_of_8():
    (k24,) = gpu_kernels(OpSpec("fc", 24, 24, 16), "fp16")
    assert k24.uses_tensor_cores("fp16") and not k24.uses_tensor_cores("int8")
    (k32,) = gpu_kernels(OpSpec("fc", 32, 32, 16), "int8")
    assert k32.uses_tensor_cores("int8") and not k32.uses_tensor_cores("fp32")


def test_kernel_counts_per_op():
    count = lambda op, **kw: len(gpu_kernels(OpSpec(op, 32, 32, 16, **kw)))  # noqa: E731
    assert count("conv", kernel_size=3) == 1
    assert count("conv", kernel_size=3, activation="relu") == 2
    assert count("dwsep_conv", kernel_size=3) == 2
    assert count("attention", heads=2) == 8
    assert count("identity") == 0
    assert count("max_pool", kernel_size=2, stride=2) == 1
    assert count("add") == 1
    assert len(gpu_kernels(OpSpec("shortcut", 32, 32, 16))) == 0  # identity shortcut
    assert len(gpu_kernels(OpSpec("shortcut", 32, 64, 16))) == 1  # projection
    assert len(gpu_kernels(OpSpec("head_gap", 32, 1, 16))) == 2


def test_roofline_hand_computed():
    toy = GpuSpec("toy", peak_flops_fp32=1e12, peak_flops_fp16_tensor=8e12, peak_ops_int8_tensor=16e12,
                  mem_bandwidth_bytes_s=1e11, memory_bytes=2**30, sm_count=4, launch_overhead_us=2.0,
                  compute_efficiency=0.5, memory_efficiency=0.5, tile=64)
    # 320x64 output, K=64: 5 tiles of 64x64 on 4 SMs -> 2 waves; a tile is 2*64*64*64 FLOPs
    # at 8e12 x 0.5 / 4 SMs = 1e12 FLOP/s per SM -> 2 x 0.524288 µs; 10 kB at 5e10 B/s -> 0.2 µs
    kernel = GpuKernel("k", flops=2.0 * 320 * 64 * 64, bytes=1e4, gemm=(320, 64, 64), aligned_dims=(64,))
    assert gpu_kernel_time_us(kernel, toy, "fp16") == pytest.approx(2.0 + 2 * 0.524288)
    # misaligned: CUDA-core rate 1e12 x 0.5 / 4 -> 8x slower
    kernel = GpuKernel("k", flops=2.0 * 320 * 64 * 64, bytes=1e4, gemm=(320, 64, 64), aligned_dims=(63,))
    assert gpu_kernel_time_us(kernel, toy, "fp16") == pytest.approx(2.0 + 8 * 2 * 0.524288)
    # memory-bound: 1 GB of traffic, tiny compute -> 20,000 µs
    kernel = GpuKernel("m", flops=1.0, bytes=1e9, elements=1)
    assert gpu_kernel_time_us(kernel, toy, "fp16") == pytest.approx(2.0 + 20_000.0)


@pytest.mark.parametrize("name", SPACES)
def test_gpu_kernel_flops_match_the_cost_model(name):
    for arch in archs(name, 15, seed=1):
        for batch in (1, 4):
            total = 0.0
            for key in arch_op_specs(arch, batch):
                parts = [key.main_branch(), key.shortcut_branch()] if key.use_skip else [key]
                for part in parts:
                    total += sum(k.flops for k in gpu_kernels(part)
                                 if k.gemm is not None or k.name == "depthwise conv")
            assert total == count_flops(arch, batch)


def test_gpu_batch_efficiency():
    gpu = gpu_profile(A100_40GB, measure=False)
    for arch in archs("gpu", 10, seed=2):
        one, many = gpu.predict_latency(arch, 1), gpu.predict_latency(arch, 256)
        assert many >= one
        assert many / 256 < one / 20  # per-sample cost falls by far more than 20x


def test_gpu_profile_is_labelled_and_documented():
    gpu = gpu_profile(T4, "int8", measure=False)
    assert gpu.is_model and "model" in gpu.name and "analytical model" in gpu.label
    assert gpu.parallel_branches and gpu.precision == "int8"
    assert gpu.memory_budget_bytes == T4.memory_bytes
    assert gpu.peak_flops == T4.peak_ops_int8_tensor
    assert gpu.conditions["parameters"] == asdict(T4)
    assert "datasheet" in gpu.conditions["sources"]
    for name in ("launch_overhead_us", "sync_overhead_us", "compute_efficiency", "memory_efficiency"):
        assert name in gpu.conditions["sources"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the measured path applies")
def test_gpu_measure_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA"):
        gpu_profile(measure=True)
    assert gpu_profile().is_model  # measure=None falls back to the model


def test_gpu_spec_validation_names_the_field():
    with pytest.raises(ValueError, match="mem_bandwidth_bytes_s"):
        GpuSpec("bad", 1e12, 1e12, 1e12, 0.0, 2**30, 10)
    with pytest.raises(ValueError, match="compute_efficiency"):
        GpuSpec("bad", 1e12, 1e12, 1e12, 1e9, 2**30, 10, compute_efficiency=1.5)
    with pytest.raises(ValueError, match="precision"):
        gpu_profile(precision="fp8", measure=False)


# --------------------------------------------------------------------------- FPGA


def test_fpga_cycles_hand_computed():
    # conv k3 32->32 on 64 steps: dot 3*32*32 = 3072 MACs per step, 128 DSPs x 2 = 256 in parallel
    conv = OpSpec("conv", 32, 32, 64, kernel_size=3, activation="relu")
    (engine,) = fpga_engines(conv, ZU9EG)
    assert (engine.dot_length, engine.parallel_macs, engine.dsps) == (3072, 256, 128)
    assert fpga_op_cycles(conv, ZU9EG) == 64 * 3072 / 256 + 10 == 778
    # stem fc 8->16 on 32 steps: dot 128 fits fully (64 DSPs), one step per cycle
    assert fpga_op_cycles(fc(8, 16, 32, act="relu"), ZU9EG) == 32 + 10
    # GELU adds a table read; ReLU is free
    assert fpga_op_cycles(fc(8, 16, 32, act="gelu"), ZU9EG) == 32 + 10 + 2
    # depthwise-separable k3 16->32 on 32 steps: depthwise dot 48, pointwise dot 512 -> 256
    dw = OpSpec("dwsep_conv", 16, 32, 32, kernel_size=3)
    assert fpga_op_cycles(dw, ZU9EG) == (32 + 10) + (32 * 512 / 256 + 10)
    # batch 4: four samples one after another
    assert fpga_op_cycles(OpSpec("conv", 32, 32, 64, kernel_size=3, batch=4), ZU9EG) == 4 * 64 * 12 + 10
    # head last 32 -> 1: 32 MACs; pooling: one output step per cycle plus the adder stage
    assert fpga_op_cycles(OpSpec("head_last", 32, 1, 16), ZU9EG) == 1 + 10
    assert fpga_op_cycles(OpSpec("max_pool", 16, 16, 32, kernel_size=2, stride=2), ZU9EG) == 16 + 1
    # µs = cycles / clock
    prof = fpga_profile(ZU9EG)
    assert prof.op_latency(conv) == pytest.approx(778 / 300e6 * 1e6)
    assert prof.overhead_latency() == pytest.approx(100 / 300e6 * 1e6)  # host I/O, once per inference
    assert prof.tabulate(SearchSpace.fpga()).overhead_latency() == pytest.approx(100 / 300e6 * 1e6)


def test_fpga_rejects_attention_with_a_reason():
    attn = LayerSpec("attention", 32, 32, heads=2)
    arch = Architecture((LayerSpec("fc", 8, 32), attn), input_features=8, lookback=32)
    prof = fpga_profile()
    reasons = prof.check(arch)
    assert any("attention" in r and "layer 1" in r for r in reasons)
    assert not prof.is_feasible(arch)
    assert math.isinf(prof.predict_latency(arch))  # no budget accepts it
    # dilated convolutions and GELU are fine (GELU is a table)
    ok = Architecture((LayerSpec("fc", 8, 16), LayerSpec("dilated_conv", 16, 16, 3, dilation=2, activation="gelu")),
                      input_features=8, lookback=32)
    assert prof.check(ok) == [] and math.isfinite(prof.predict_latency(ok))


def test_fpga_bram_and_dsp_over_budget_are_infeasible():
    wide = Architecture(
        (LayerSpec("fc", 8, 1024), LayerSpec("fc", 1024, 1024), LayerSpec("fc", 1024, 1024)),
        input_features=8, lookback=32,
    )
    small = fpga_profile(ZU3EG)
    reasons = small.check(wide)
    assert any(r.startswith("BRAM") for r in reasons), reasons
    assert any(r.startswith("DSP") for r in reasons), reasons
    res = fpga_resources(wide, ZU3EG)
    assert res.weight_bytes == count_params(wide)
    assert res.bram_bytes > ZU3EG.bram_bytes and res.dsps > ZU3EG.dsp_slices
    # the big part has the DSPs (3 engines x 128 + the head's) and the 2.1 MB of weights
    assert fpga_profile(ZU9EG).check(wide) == []


def test_fpga_resources_hand_computed():
    arch = Architecture(
        (LayerSpec("fc", 8, 16), LayerSpec("conv", 16, 32, 3, use_skip=True)),
        input_features=8, lookback=32, head="last",
    )
    res = fpga_resources(arch, ZU9EG)
    # fc dot 128 -> 64 DSPs; conv dot 1536 -> 128 DSPs; projection dot 512 -> 128; head dot 32 -> 16
    assert res.per_layer_dsps == (64, 128 + 128, 16)
    assert res.dsps == 336
    # input buffers: 8x32 (fc), 16x32 (conv), 16x32 (projection), 32x32 (head)
    assert res.buffer_bytes == 8 * 32 + 16 * 32 + 16 * 32 + 32 * 32
    assert res.fifo_bytes == 32 * 32  # the projection's output waits for the main branch
    assert res.table_bytes == 0


def test_parallel_branches_take_the_slowest_path():
    for prof in (fpga_profile(), gpu_profile(measure=False)):
        layer = LayerSpec("conv", 16, 32, 3, use_skip=True)
        key = OpSpec.from_layer(layer, 32)
        main, short, add = (prof.op_latency(k) for k in (key.main_branch(), key.shortcut_branch(), key.add_op()))
        assert prof.spec_latency(key) == pytest.approx(max(main, short) + add)
        assert prof.spec_latency(key) < main + short + add


def test_fpga_profile_is_labelled_and_documented():
    prof = fpga_profile(ZU9EG)
    assert prof.is_model and "model" in prof.name and "analytical model" in prof.label
    assert prof.precision == "int8" and prof.parallel_branches
    assert prof.memory_budget_bytes == ZU9EG.bram_bytes
    assert prof.peak_flops == pytest.approx(2 * 2520 * 2 * 300e6)
    assert prof.conditions["parameters"] == asdict(ZU9EG)
    for f in fields(FpgaSpec):
        if f.name not in ("name", "source", "dsp_slices"):
            assert f.name in prof.conditions["sources"], f.name


def test_fpga_spec_validation_names_the_field():
    with pytest.raises(ValueError, match="dsp_per_engine"):
        FpgaSpec("bad", 100, 4096, dsp_per_engine=0)
    with pytest.raises(ValueError, match="clock_hz"):
        FpgaSpec("bad", 100, 4096, clock_hz=0.0)


# --------------------------------------------------------------------------- both, as searches use them


@pytest.mark.parametrize("name", SPACES)
def test_every_architecture_gets_a_prediction(name):
    gpu, fpga = gpu_profile(measure=False), fpga_profile()
    for arch in archs(name, 25, seed=3):
        # the FPGA refuses attention, the recurrent layers and the gated convolution
        refused = any(layer.op.value in ("attention", "gru", "lstm", "gated_tcn") for layer in arch.layers)
        assert 0 < gpu.predict_latency(arch) < math.inf
        assert math.isfinite(fpga.predict_latency(arch)) != refused
        assert isinstance(gpu.check(arch), list) and isinstance(fpga.check(arch), list)


@pytest.mark.parametrize("make", [lambda: fpga_profile(ZU9EG), lambda: gpu_profile(T4, measure=False)])
def test_tabulate_save_load_keeps_predictions(make, tmp_path):
    prof = make()
    space = SearchSpace.fpga()
    table = prof.tabulate(space)
    assert isinstance(table, AnalyticalProfile) and len(table.latency_table) > 100
    path = table.save(tmp_path / "profile.json")
    plain = HardwareProfile.load(path)  # the table only
    full = AnalyticalProfile.load(path)  # the table and the model rebuilt from conditions
    assert plain.is_model and plain.name == prof.name and plain.latency_model is None
    for arch in archs("fpga", 20, seed=4):
        want = prof.predict_latency(arch)
        assert plain.predict_latency(arch) == pytest.approx(want)
        assert full.predict_latency(arch) == pytest.approx(want)
        assert full.check(arch) == prof.check(arch)
    # the rebuilt model answers keys outside the table (another space, another batch)
    other = archs("default", 5, seed=5)
    for arch in other:
        assert full.predict_latency(arch, 8) == pytest.approx(prof.predict_latency(arch, 8))


def test_saved_fpga_profile_is_strict_json_and_keeps_infeasible_ops(tmp_path):
    import json
    import math

    from hwnas import SearchSpace
    from hwnas.hardware import HardwareProfile
    from hwnas.targets import fpga_profile

    profile = fpga_profile().tabulate(SearchSpace.default(depths=(2,), lookbacks=(32,)))
    assert any(math.isinf(v) for v in profile.latency_table.values())  # attention
    path = profile.save(tmp_path / "fpga.json")
    text = path.read_text()
    assert "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    again = HardwareProfile.load(path)
    assert again.latency_table == profile.latency_table
