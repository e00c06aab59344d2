"""HardwareProfile, OpSpec and their JSON files (no timing here: hand-built tables)."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

from hwnas.architecture import Architecture, LayerSpec, OpType
from hwnas.hardware import DeviceType, HardwareProfile
from hwnas.opspec import OpKind, OpSpec, arch_op_specs, space_op_specs
from hwnas.space import SearchSpace

SMALL = SearchSpace.default(
    lookbacks=(32,), depths=(2, 3), ops=(OpType.CONV, OpType.DWSEP_CONV, OpType.FC, OpType.IDENTITY,
                                         OpType.MAX_POOL, OpType.ATTENTION),
    kernel_sizes=(3,), widths=(16, 32), heads=(2,), activations=("relu",), stem_width=16,
)


def skip_arch() -> Architecture:
    """Stem, a conv with a projected skip (16 -> 32), an attention with an identity skip."""
    return Architecture(
        layers=(
            LayerSpec("fc", 8, 16),
            LayerSpec("conv", 16, 32, kernel_size=3, use_skip=True),
            LayerSpec("attention", 32, 32, heads=2, use_skip=True, activation="none"),
        ),
        input_features=8,
        lookback=32,
    )


def table_for(arch: Architecture, value: float = 1.0) -> dict[OpSpec, float]:
    return {key: value for key in arch_op_specs(arch)}


def profile(table, **kw) -> HardwareProfile:
    settings = dict(name="t", device_type=DeviceType.CPU, latency_table=table,
                    memory_budget_bytes=10**9, peak_flops=1e11)
    settings.update(kw)
    return HardwareProfile(**settings)


# ---------------------------------------------------------------- OpSpec


def test_opspec_normalises_enums_and_numpy_ints_so_keys_match():
    a = OpSpec(OpType.CONV, np.int64(16), 32, 64, kernel_size=np.int32(3), activation="relu")
    b = OpSpec("conv", 16, 32, 64, kernel_size=3, activation="relu")
    assert a == b and hash(a) == hash(b)
    # one canonical type per field: the op is an OpKind (a str enum, equal to its name)
    assert type(a.op) is OpKind and a.op == "conv" and type(a.in_channels) is int
    assert {a: 1.0}[b] == 1.0


def test_opspec_rejects_unknown_op_and_bad_fields_with_allowed_values():
    with pytest.raises(ValueError, match="op.*'convolution'.*choose one of"):
        OpSpec("convolution", 1, 1, 1)
    with pytest.raises(ValueError, match="seq_len"):
        OpSpec("conv", 1, 1, 0)
    with pytest.raises(ValueError, match="activation"):
        OpSpec("conv", 1, 1, 4, activation="swish")


def test_opspec_round_trips_through_dict_and_json():
    key = OpSpec("dilated_conv", 16, 32, 64, kernel_size=5, dilation=2, activation="gelu", use_skip=True, batch=4)
    assert OpSpec.from_dict(json.loads(json.dumps(key.to_dict()))) == key
    with pytest.raises(ValueError, match="unknown field"):
        OpSpec.from_dict({**key.to_dict(), "colour": 1})


def test_arch_op_specs_follow_the_shapes_of_the_architecture():
    rng = np.random.default_rng(0)
    for _ in range(30):
        arch = SearchSpace.default().sample(rng)
        keys = arch_op_specs(arch, batch=2)
        shapes = arch.shapes()
        assert len(keys) == len(arch.layers) + 1 and keys[-1].is_head
        for i, (key, layer) in enumerate(zip(keys, arch.layers)):
            assert key.seq_len == shapes[i][1] and key.batch == 2
            assert key.out_len == layer.output_length(shapes[i][1]) == shapes[i + 1][1]
            assert key.layer_spec() == layer
        assert keys[-1].op == f"head_{arch.head.value}"
        assert (keys[-1].in_channels, keys[-1].seq_len) == shapes[-1]


def test_opspec_flops_add_up_to_count_flops():
    from hwnas.cost import count_flops

    rng = np.random.default_rng(3)
    for _ in range(50):
        arch = SearchSpace.default().sample(rng)
        for batch in (1, 4):
            assert sum(k.flops for k in arch_op_specs(arch, batch)) == count_flops(arch, batch)
    skip = OpSpec("conv", 16, 32, 40, kernel_size=3, activation="relu", use_skip=True)
    assert skip.flops == skip.main_branch().flops + skip.shortcut_branch().flops
    assert skip.add_op().flops == 0 and OpSpec.overhead().flops == 0


def test_space_op_specs_cover_every_sampled_architecture_sorted_and_unique():
    keys = space_op_specs(SMALL)
    assert keys == sorted(set(keys), key=OpSpec.sort_key)
    rng = np.random.default_rng(1)
    for _ in range(200):
        for key in arch_op_specs(SMALL.sample(rng)):
            assert key in set(keys), key
    branches = space_op_specs(SMALL, branches=True)
    assert not any(k.use_skip for k in branches)
    assert any(k.op == "shortcut" for k in branches) and any(k.op == "add" for k in branches)


# ---------------------------------------------------------------- prediction


def test_sequential_prediction_is_overhead_plus_sum_of_entries():
    arch = skip_arch()
    keys = arch_op_specs(arch)
    table = {k: float(10 * (i + 1)) for i, k in enumerate(keys)}  # 10, 20, 30, 40
    p = profile(table)
    assert p.layer_latencies(arch) == [10.0, 20.0, 30.0, 40.0]
    assert p.predict_latency(arch) == 100.0
    table[OpSpec.overhead(1)] = 7.0
    assert profile(table).predict_latency(arch) == 107.0


def test_parallel_branches_take_the_max_of_main_and_shortcut_plus_the_add():
    arch = skip_arch()
    stem, conv, attn, head = arch_op_specs(arch)
    assert conv.add_op() == attn.add_op()  # both join 32 channels x 32 steps
    table = {
        stem: 5.0, head: 2.0, conv.add_op(): 1.5,
        conv.main_branch(): 30.0, conv.shortcut_branch(): 8.0,
        attn.main_branch(): 20.0, attn.shortcut_branch(): 25.0,
    }
    assert conv.shortcut_branch().is_projection and not attn.shortcut_branch().is_projection
    par = profile(table, parallel_branches=True)
    assert par.layer_latencies(arch) == [5.0, 31.5, 26.5, 2.0]
    assert par.predict_latency(arch) == pytest.approx(65.0)
    seq = profile(table, parallel_branches=False)  # no whole-layer entries: branches one after another
    assert seq.predict_latency(arch) == pytest.approx(5 + 39.5 + 46.5 + 2)


def test_measured_whole_skip_layer_wins_over_branches_when_sequential():
    arch = skip_arch()
    stem, conv, attn, head = arch_op_specs(arch)
    table = table_for(arch, 10.0)
    table[conv.main_branch()] = 1000.0  # ignored: the whole layer is in the table
    assert profile(table).predict_latency(arch) == 40.0


def test_missing_op_raises_keyerror_naming_it_and_the_fix():
    arch = skip_arch()
    table = table_for(arch)
    missing = arch_op_specs(arch)[0]
    del table[missing]
    with pytest.raises(KeyError) as err:
        profile(table).predict_latency(arch)
    text = str(err.value)
    assert "fc" in text and "L=32" in text and "profile_cpu" in text


def test_latency_model_fills_gaps_and_tabulate_freezes_it():
    calls = []

    def model(key: OpSpec) -> float:
        calls.append(key)
        if key.op == "overhead":
            return 3.0
        assert not key.use_skip  # models are only asked for branches
        return float(key.in_channels)

    p = profile({}, is_model=True, latency_model=model, parallel_branches=True)
    arch = skip_arch()
    # the model's overhead (3) counts before tabulating as after
    assert p.predict_latency(arch) == pytest.approx(3 + 8 + max(16, 16) + 32 + max(32, 32) + 32 + 32)
    assert "analytical model" in p.label and "analytical model" in p.summary()
    tab = p.tabulate(SMALL)
    assert tab.predict_latency(arch) == p.predict_latency(arch)
    assert len(tab.latency_table) == len(space_op_specs(SMALL, branches=True)) + 1
    assert tab.latency_table[OpSpec.overhead(1)] == 3.0
    with pytest.raises(ValueError, match="latency_model"):
        profile({}).tabulate(SMALL)


# ---------------------------------------------------------------- feasibility


def test_check_reports_memory_over_budget_and_unsupported_ops():
    arch = skip_arch()
    from hwnas.cost import memory_footprint

    need = memory_footprint(arch, "fp32").total_bytes
    assert profile(table_for(arch), memory_budget_bytes=need).check(arch) == []
    reasons = profile(table_for(arch), memory_budget_bytes=need - 1).check(arch)
    assert len(reasons) == 1 and "memory" in reasons[0] and f"{need:,}" in reasons[0]
    int8 = profile(table_for(arch), memory_budget_bytes=need // 3, precision="int8")
    assert int8.is_feasible(arch)  # a quarter of the bytes at int8
    no_attn = profile(table_for(arch), unsupported=lambda k: "softmax" if k.op == "attention" else None)
    reasons = no_attn.check(arch)
    assert len(reasons) == 1 and "layer 2" in reasons[0] and "softmax" in reasons[0]
    assert not no_attn.is_feasible(arch)


def test_profile_validates_its_fields():
    with pytest.raises(ValueError, match="peak_flops"):
        profile({}, peak_flops=0)
    with pytest.raises(ValueError, match="precision"):
        profile({}, precision="fp8")
    with pytest.raises(ValueError):
        profile({}, device_type="tpu")


# ---------------------------------------------------------------- JSON files


def measured_profile() -> HardwareProfile:
    from hwnas.hardware import current_conditions

    table = table_for(skip_arch(), 12.5)
    table[OpSpec.overhead(1)] = 4.25
    return profile(table, name="cpu-test", device_type=DeviceType.MOBILE,
                   conditions={**current_conditions(), "threads": 1, "batch": 1})


def test_save_load_round_trip_is_exact_and_leaves_no_temporary_file(tmp_path):
    p = measured_profile()
    path = p.save(tmp_path / "sub" / "cpu.json")
    assert os.listdir(path.parent) == ["cpu.json"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        q = HardwareProfile.load(path)
    assert q.latency_table == p.latency_table
    assert (q.name, q.device_type, q.memory_budget_bytes, q.peak_flops, q.conditions, q.precision) == (
        p.name, p.device_type, p.memory_budget_bytes, p.peak_flops, p.conditions, p.precision)
    assert q.predict_latency(skip_arch()) == p.predict_latency(skip_arch())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not_profile", "bad_entry"])
def test_corrupt_or_truncated_file_raises_valueerror_naming_the_file(tmp_path, damage):
    path = measured_profile().save(tmp_path / "cpu.json")
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff not json")
    elif damage == "not_profile":
        path.write_text(json.dumps({"hello": 1}))
    else:
        data = json.loads(text)
        data["latency_table"][0]["latency_us"] = "fast"
        path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as err:
        HardwareProfile.load(path)
    assert str(path) in str(err.value)


def test_loading_a_table_from_another_cpu_or_torch_warns_naming_both(tmp_path):
    p = measured_profile()
    p.conditions.update(cpu_model="Imaginary CPU 9000", torch_version="0.0.1")
    path = p.save(tmp_path / "other.json")
    with pytest.warns(UserWarning) as record:
        HardwareProfile.load(path)
    text = " ".join(str(w.message) for w in record)
    assert "Imaginary CPU 9000" in text and "0.0.1" in text
    from hwnas.hardware import current_conditions

    here = current_conditions()
    assert here["cpu_model"] in text and here["torch_version"] in text


def test_a_loaded_model_profile_keeps_its_table_but_not_its_callables(tmp_path):
    p = profile({}, is_model=True, latency_model=lambda k: 1.0, name="gpu-model")
    tab = p.tabulate(SMALL)
    q = HardwareProfile.load(tab.save(tmp_path / "m.json"))
    assert q.is_model and q.latency_model is None and q.latency_table == tab.latency_table
