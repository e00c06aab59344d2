"""The recurrent (GRU, LSTM) and gated temporal (gated_tcn) operations, end to end:
cost against torch's counters, JSON, ONNX, the lookup table, the GPU model and the FPGA refusal."""

import io

import numpy as np
import onnx
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hwnas import (
    Architecture,
    LayerSpec,
    OpType,
    SearchSpace,
    build_model,
    count_flops,
    count_params,
    measure_activation_peak,
    memory_footprint,
    receptive_fields,
)
from hwnas.architecture import RECURRENT_OPS
from hwnas.cost import recurrent_gates
from hwnas.cost_measure import measure_flops
from hwnas.deploy.onnx_graph import onnx_bytes
from hwnas.deploy.runtimes import OrtModule
from hwnas.hardware import HardwareProfile
from hwnas.latency.lut import build_lut_detailed
from hwnas.latency.spec import TimingSpec
from hwnas.opspec import OpKind, OpSpec, arch_op_specs, space_op_specs
from hwnas.targets.fpga import fpga_engines, fpga_unsupported
from hwnas.targets.gpu import gpu_kernels, gpu_op_latency_us
from hwnas.targets.profiles import fpga_profile

NEW_OPS = (OpType.GRU, OpType.LSTM, OpType.GATED_TCN)
ACTIVATIONS = ("none", "relu", "gelu")


@st.composite
def new_layer_archs(draw):
    """A one-layer architecture whose layer is a random GRU, LSTM or gated_tcn."""
    op = draw(st.sampled_from(NEW_OPS))
    cin, cout = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    lookback = draw(st.integers(1, 40))
    settings_: dict = {}
    if op == OpType.GATED_TCN:
        settings_ = dict(kernel_size=draw(st.integers(1, 7)), dilation=draw(st.integers(1, 4)),
                         stride=draw(st.integers(1, 2)))
    spec_args = dict(op=op, in_channels=cin, out_channels=cout, use_skip=draw(st.booleans()),
                     activation=draw(st.sampled_from(ACTIVATIONS)), **settings_)
    try:
        return Architecture([LayerSpec(**spec_args)], cin, lookback, head=draw(st.sampled_from(["gap", "last"])))
    except ValueError:
        assume(False)


def counted_flops(arch: Architecture, batch: int) -> int:
    return measure_flops(build_model(arch, seed=0), torch.randn(batch, arch.input_features, arch.lookback))


# ---------------------------------------------------------------- cost


@settings(max_examples=120, deadline=None)
@given(arch=new_layer_archs(), batch=st.integers(1, 3))
def test_flops_params_and_eager_memory_equal_torch(arch, batch):
    model = build_model(arch, seed=0)
    assert count_flops(arch, batch_size=batch) == counted_flops(arch, batch)
    assert count_params(arch) == sum(p.numel() for p in model.parameters())
    layer = arch.layers[0]
    # torch's kernels special-case one step or one hidden unit (a state shared with the
    # output, an extra buffer): the eager memory model holds from 2 of each
    assume(layer.op not in RECURRENT_OPS or min(layer.out_channels, arch.lookback) >= 2)
    x = torch.randn(1, arch.input_features, arch.lookback)
    mem = memory_footprint(arch)
    assert measure_activation_peak(model, x) == mem.eager_activation_bytes
    if arch.lookback >= 4:  # the spaces' shortest map (min_length): there the schedule model is a lower bound
        # (with fewer steps than an LSTM's 4 gates, one step's G H gate buffer outweighs torch's sequence copy)
        assert mem.activation_bytes <= mem.eager_activation_bytes


@pytest.mark.parametrize("spec, flops, params", [
    # 2 L G H (C_in + H) + head 2 H; params G H (C_in + H) + 2 G H (torch's two biases) + head H + 1
    (LayerSpec("gru", 8, 16), 2 * 32 * 3 * 16 * (8 + 16) + 2 * 16, 3 * 16 * 24 + 2 * 3 * 16 + 17),
    (LayerSpec("lstm", 8, 16), 2 * 32 * 4 * 16 * (8 + 16) + 2 * 16, 4 * 16 * 24 + 2 * 4 * 16 + 17),
    # two convolutions of 2 L_out K C_in C_out each
    (LayerSpec("gated_tcn", 8, 16, kernel_size=3, dilation=4), 2 * 2 * 32 * 3 * 8 * 16 + 2 * 16,
     2 * (3 * 8 * 16 + 16) + 17),
])
def test_hand_counts(spec, flops, params):
    arch = Architecture([spec], 8, 32)
    assert count_flops(arch) == flops == counted_flops(arch, 1)
    assert count_params(arch) == params


def test_gate_arithmetic_is_not_counted_by_the_course_or_by_torch():
    # the counter sees only matrix products: a GRU's FLOPs are exactly its projections, whatever L
    for op, gates in ((OpType.GRU, 3), (OpType.LSTM, 4)):
        assert recurrent_gates(op)[0] == gates
        for length in (1, 7):
            arch = Architecture([LayerSpec(op, 5, 6)], 5, length, head="last")
            projections = 2 * length * gates * 6 * (5 + 6)
            assert count_flops(arch) - 2 * 6 == projections == counted_flops(arch, 1) - 2 * 6
    with pytest.raises(ValueError, match="op must be one of"):
        recurrent_gates(OpType.CONV)


def test_schedule_memory_holds_the_state_and_gate_buffers():
    # LSTM 8 -> 16 over 10 steps: input 80 + output 160 + 4 H gate pre-activations + the H cell state
    lstm = Architecture([LayerSpec("lstm", 8, 16)], 8, 10)
    assert memory_footprint(lstm).activation_bytes == (80 + 160 + 4 * 16 + 16) * 4
    gru = Architecture([LayerSpec("gru", 8, 16)], 8, 10)
    assert memory_footprint(gru).activation_bytes == (80 + 160 + 3 * 16) * 4
    gated = Architecture([LayerSpec("gated_tcn", 8, 16, kernel_size=3)], 8, 10)
    assert memory_footprint(gated, "fp16").activation_bytes == (80 + 2 * 160) * 2


# ---------------------------------------------------------------- architecture and space


def test_layer_rules(mentions):
    with pytest.raises(ValueError, match=mentions("kernel_size", "1", "'gru'", "3")):
        LayerSpec("gru", 4, 4, kernel_size=3)
    with pytest.raises(ValueError, match=mentions("stride", "1", "'lstm'", "2")):
        LayerSpec("lstm", 4, 4, stride=2)
    with pytest.raises(ValueError, match=mentions("dilation", "1", "'lstm'", "2")):
        LayerSpec("lstm", 4, 4, dilation=2)
    assert LayerSpec("gated_tcn", 4, 8, kernel_size=3, dilation=2).span == 5
    layers = [LayerSpec("fc", 4, 8), LayerSpec("conv", 8, 8, kernel_size=3), LayerSpec("gru", 8, 8)]
    assert receptive_fields(layers, 32) == [1, 3, 32]


@settings(max_examples=60, deadline=None)
@given(arch=new_layer_archs())
def test_json_round_trip(arch):
    again = Architecture.from_json(arch.to_json())
    assert again == arch and again.to_dict() == arch.to_dict()
    assert arch.label() == again.label()


def test_spaces_offer_the_new_ops_where_they_belong():
    default = SearchSpace.default()
    by_op = {op: [c for c in default.candidates() if c.op == op] for op in NEW_OPS}
    for op in RECURRENT_OPS:  # a width choice each, no kernel, no activation variant
        assert [c.width for c in by_op[op]] == list(default.widths)
        assert {(c.kernel_size, c.dilation, c.activation) for c in by_op[op]} == {(1, 1, "none")}
    kernels = [k for k in default.kernel_sizes if k > 1]
    assert len(by_op[OpType.GATED_TCN]) == len(kernels) * (1 + len(default.dilations)) * len(default.widths)
    assert {c.dilation for c in by_op[OpType.GATED_TCN]} == {1, *default.dilations}
    assert set(NEW_OPS) <= {c.op for c in SearchSpace.gpu().candidates()}
    mobile = {c.op for c in SearchSpace.mobile().candidates()}
    assert OpType.GATED_TCN in mobile and not RECURRENT_OPS & mobile
    assert not set(NEW_OPS) & {c.op for c in SearchSpace.fpga().candidates()}
    # every new candidate decodes, runs and encodes back to its genome
    rng = np.random.default_rng(0)
    seen: set[OpType] = set()
    while seen != set(NEW_OPS):
        arch = default.sample(rng)
        seen |= {layer.op for layer in arch.layers} & set(NEW_OPS)
        assert default.decode(default.encode(arch)) == arch


# ---------------------------------------------------------------- ONNX


@pytest.mark.parametrize("op, node", [("gru", "GRU"), ("lstm", "LSTM")])
@pytest.mark.parametrize("skip", [False, True])
def test_onnx_keeps_one_fused_recurrent_node_and_matches_eager(op, node, skip):
    arch = Architecture([LayerSpec("fc", 6, 16), LayerSpec(op, 16, 8, use_skip=skip), LayerSpec("fc", 8, 8)],
                        6, 24, head="last")
    model = build_model(arch, seed=3)
    graph = onnx.load_from_string(onnx_bytes(model, (torch.randn(2, 6, 24),)))
    types = [n.op_type for n in graph.graph.node]
    assert types.count(node) == 1 and not {"Loop", "Scan", "GRU", "LSTM"} - {node} & set(types)
    ort = OrtModule(onnx_bytes(model, (torch.randn(2, 6, 24),)))
    x = torch.randn(5, 6, 24, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = model(x)
    # float32 recurrences in two libraries: agreement to 1e-5 absolute + 1e-4 relative
    torch.testing.assert_close(ort(x), want, atol=1e-5, rtol=1e-4)


def test_onnx_gated_tcn_is_two_convs_tanh_sigmoid_and_a_product():
    arch = Architecture([LayerSpec("gated_tcn", 6, 8, kernel_size=3, dilation=2)], 6, 16)
    model = build_model(arch, seed=0)
    data = onnx_bytes(model, (torch.randn(1, 6, 16),))
    types = [n.op_type for n in onnx.load_model(io.BytesIO(data)).graph.node]
    assert types.count("Conv") == 2 and {"Tanh", "Sigmoid", "Mul"} <= set(types)
    x = torch.randn(4, 6, 16)
    with torch.inference_mode():
        torch.testing.assert_close(OrtModule(data)(x), model(x), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- lookup table

ONLY_NEW = SearchSpace(name="recurrent", ops=NEW_OPS, lookbacks=(16,), depths=(1,), kernel_sizes=(3,),
                       dilations=(2,), widths=(8,), skip_choices=(False,), head_types=("last",), stem_width=8)


@pytest.mark.parametrize("runtime", ["eager", "onnxruntime"])
def test_lookup_table_keys_round_trip(runtime, tmp_path):
    keys = space_op_specs(ONLY_NEW)
    layer_ops = {k.op for k in keys if k.is_layer}
    assert layer_ops == {OpKind.FC, OpKind.GRU, OpKind.LSTM, OpKind.GATED_TCN}
    for key in keys:
        assert OpSpec.from_dict(key.to_dict()) == key
        if key.is_layer:
            assert key.layer_spec() == key.main_branch().layer_spec()
            assert key.flops == count_flops(Architecture([key.layer_spec()], key.in_channels, key.seq_len)) - \
                2 * key.out_channels
    build = build_lut_detailed(ONLY_NEW, progress=False, calibration=2, runtime=runtime,
                               timing=TimingSpec.QUICK)
    assert set(keys) <= set(build.timings)
    profile = build.profile("recurrent-cpu")
    path = profile.save(tmp_path / "profile.json")
    loaded = HardwareProfile.load(path)
    assert loaded.latency_table == profile.latency_table
    for arch in (ONLY_NEW.decode(ONLY_NEW.encode(ONLY_NEW.sample(np.random.default_rng(s)))) for s in range(6)):
        assert set(arch_op_specs(arch)) <= set(loaded.latency_table)
        assert loaded.predict_latency(arch) == profile.predict_latency(arch) > 0


# ---------------------------------------------------------------- targets


@pytest.mark.parametrize("length", [1, 16])
def test_gpu_model_runs_the_recurrence_step_by_step(length):
    key = OpSpec(op="lstm", in_channels=16, out_channels=32, seq_len=length, batch=2)
    kernels = gpu_kernels(key)
    # a copy in, one input GEMM over all steps, a recurrent GEMM and a gate kernel per step, a copy out
    assert len(kernels) == 2 * length + 3
    assert sum(k.flops for k in kernels if k.gemm is not None) == key.flops
    gated = OpSpec(op="gated_tcn", in_channels=16, out_channels=32, seq_len=length, batch=2)
    assert sum(k.flops for k in gpu_kernels(gated) if k.gemm is not None) == gated.flops
    longer = OpSpec(op="lstm", in_channels=16, out_channels=32, seq_len=4 * length, batch=2)
    assert gpu_op_latency_us(longer) > 2 * gpu_op_latency_us(key)


@pytest.mark.parametrize("op", [op.value for op in NEW_OPS])
def test_fpga_refuses_the_new_ops_naming_the_op_and_the_target(op):
    spec = LayerSpec(op, 16, 16, kernel_size=3 if op == "gated_tcn" else 1)
    key = OpSpec.from_layer(spec, 32)
    reason = fpga_unsupported(key)
    assert reason is not None and f"op '{op}'" in reason and "FPGA" in reason
    assert "nonlinearities" in reason  # the reference's operation-support rule
    with pytest.raises(ValueError, match=f"op '{op}' is not supported on the FPGA"):
        fpga_engines(key)
    arch = Architecture([LayerSpec("fc", 4, 16), spec], 4, 32)
    assert any(f"op '{op}'" in r for r in fpga_profile().check(arch))


def test_architecture_drawing_names_and_colours_every_op():
    from matplotlib.colors import to_hex

    from hwnas import plots

    arch = Architecture([LayerSpec("fc", 4, 8), LayerSpec("gru", 8, 8), LayerSpec("lstm", 8, 8),
                         LayerSpec("gated_tcn", 8, 8, kernel_size=3)], 4, 16)
    ax = plots.architecture_blocks({"cpu": arch})
    colours = [to_hex(p.get_facecolor()[:3]) for p in ax.patches]
    assert len(set(colours)) == 4  # no op falls back to the shared grey
    texts = {t.get_text().split("\n")[0] for t in ax.texts}
    assert {"gru", "lstm", "gtcn3"} <= texts and "gtcn = gated_tcn" in ax.get_title()


@pytest.mark.parametrize("op", [op.value for op in NEW_OPS])
def test_proxy_task_trains_the_new_ops_reproducibly(op, task):
    from hwnas.proxy.training import evaluate

    layer = LayerSpec(op, 8, 8, kernel_size=3 if op == "gated_tcn" else 1, activation="none", use_skip=True)
    arch = Architecture([LayerSpec("fc", task.num_features, 8), layer], task.num_features, 16, head="last")
    a = evaluate(arch, task, seed=3, keep_predictions=True)
    b = evaluate(arch, task, seed=3, keep_predictions=True)
    assert np.isfinite(a.score) and a.score == b.score
    np.testing.assert_array_equal(a.predictions, b.predictions)


@pytest.mark.slow
def test_gated_tcn_lowers_to_one_xnnpack_partition():
    """Why the mobile space offers gated_tcn: ExecuTorch's XNNPACK backend takes the whole unit
    (two convolutions, tanh, sigmoid and the product) as one delegated partition."""
    pytest.importorskip("executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    spec = LayerSpec("gated_tcn", 8, 8, kernel_size=3, dilation=2, activation="none")
    layer = build_model(Architecture([spec], 8, 16), seed=0).layers[0].eval()
    program = torch.export.export(layer, (torch.randn(1, 8, 16),))
    graph = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).exported_program().graph
    calls = [str(node.target) for node in graph.nodes if node.op == "call_function"]
    assert calls.count("executorch_call_delegate") == 1
    assert all(c in ("executorch_call_delegate", "<built-in function getitem>") for c in calls), calls


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("features, lookback", [(10, 64), (3, 8)])
def test_a_recurrent_baseline_as_an_architecture_costs_what_the_baseline_costs(kind, features, lookback):
    from hwnas.proxy import baseline_architecture, baseline_model

    arch = baseline_architecture(kind, features, lookback)
    model = baseline_model(kind, features, lookback)
    assert count_params(arch) == sum(p.numel() for p in model.parameters())
    assert count_flops(arch) == measure_flops(model, torch.randn(1, features, lookback))
    with pytest.raises(ValueError, match="recurrent baseline"):
        baseline_architecture("tcn", features, lookback)
