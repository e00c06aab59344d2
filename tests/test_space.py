"""Architectures, layers and search spaces: validation, JSON, sampling."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas import Architecture, HeadType, LayerSpec, OpType, SearchSpace
from hwnas.space import Genome

SPACES = ["default", "fpga", "mobile", "gpu"]


def conv(cin, cout, k=3, **kw):
    return LayerSpec(OpType.CONV, cin, cout, kernel_size=k, **kw)


def test_layerspec_coerces_strings_and_is_frozen():
    layer = LayerSpec("dwsep_conv", 8, 16, kernel_size=5, activation="gelu")
    assert layer.op is OpType.DWSEP_CONV and layer.activation.value == "gelu"
    with pytest.raises(AttributeError):
        layer.in_channels = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, named",  # what the message must name: the field, the bad value, what is allowed
    [
        (dict(op="conv", in_channels=0, out_channels=4), ("in_channels", "1", "0")),
        (dict(op="conv", in_channels=4, out_channels=-2), ("out_channels", "1", "-2")),
        (dict(op="transformer", in_channels=4, out_channels=4), ("op", "'transformer'", "'conv'", "'lstm'")),
        (dict(op="attention", in_channels=10, out_channels=10, heads=4), ("heads", "4", "10")),
        (dict(op="fc", in_channels=4, out_channels=4, kernel_size=3), ("kernel_size", "1", "'fc'", "3")),
        (dict(op="dilated_conv", in_channels=4, out_channels=4, kernel_size=3), ("dilation", "2", "'dilated_conv'")),
        (dict(op="max_pool", in_channels=4, out_channels=8, kernel_size=2), ("out_channels", "in_channels", "4", "8")),
        (dict(op="identity", in_channels=4, out_channels=4, use_skip=True), ("use_skip", "'identity'")),
        (dict(op="conv", in_channels=4, out_channels=4, activation="swish"), ("activation", "'swish'", "'relu'")),
        (dict(op="conv", in_channels=4.5, out_channels=4), ("in_channels", "4.5")),
    ],
)
def test_layerspec_rejects_bad_fields(kwargs, named, mentions):
    with pytest.raises(ValueError, match=mentions(*named)):
        LayerSpec(**kwargs)


@pytest.mark.parametrize(
    "layers, lookback, named",  # the layer, the field and its value, what is allowed
    [
        ([conv(4, 8), conv(16, 8)], 32, ("layer 1", "in_channels", "16", "8")),
        ([conv(3, 8)], 32, ("layer 0", "in_channels", "3", "4")),
        ([conv(4, 8, k=9)], 8, ("layer 0", "kernel_size=9", "8")),
        ([LayerSpec("max_pool", 4, 4, kernel_size=2, stride=2)] * 4, 8, ("layer 3", "kernel_size=2", "1")),
        ([conv(4, 8, k=1, stride=50)], 8, ("layer 0", "stride=50", "8")),
        ([conv(4, 8, k=4, use_skip=True)], 16, ("layer 0", "use_skip", "15", "16")),
    ],
)
def test_architecture_rejects_inconsistent_chains(layers, lookback, named, mentions):
    with pytest.raises(ValueError, match=mentions(*named)):
        Architecture(layers=layers, input_features=4, lookback=lookback)


def test_architecture_shapes_follow_strides_and_pools():
    arch = Architecture(
        layers=[conv(4, 8, k=5), LayerSpec("max_pool", 8, 8, kernel_size=2, stride=2),
                conv(8, 8, k=3, stride=2, use_skip=True), LayerSpec("attention", 8, 8, heads=2)],
        input_features=4, lookback=33, head="flatten",
    )
    assert arch.shapes() == [(4, 33), (8, 33), (8, 16), (8, 8), (8, 8)]
    assert arch.head_in_features == 64 and arch.layers[2].needs_projection


def test_from_dict_names_the_layer_and_field(mentions):
    data = Architecture(layers=[conv(4, 8)], input_features=4, lookback=16).to_dict()
    data["layers"][0]["kernel_size"] = 0
    with pytest.raises(ValueError, match=mentions("layer 0", "kernel_size", "1", "0")):
        Architecture.from_dict(data)
    data["layers"][0]["kernel_size"] = 3
    data["layers"][0]["colour"] = "red"
    with pytest.raises(ValueError, match=mentions("layer 0", "'colour'")):
        Architecture.from_dict(data)
    with pytest.raises(ValueError, match="malformed"):
        Architecture.from_json("{not json")
    with pytest.raises(ValueError, match="missing field"):
        Architecture.from_dict({"layers": []})


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=200)
@given(seed=st.integers(0, 2**32 - 1))
def test_json_round_trip_is_exact(name, seed):
    arch = SearchSpace.named(name).sample(np.random.default_rng(seed))
    text = arch.to_json()
    again = Architecture.from_json(text)
    assert again == arch
    assert json.loads(again.to_json()) == json.loads(text)


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=50)
@given(seed=st.integers(0, 2**32 - 1))
def test_encode_inverts_decode_and_mutate_stays_in_space(name, seed):
    space = SearchSpace.named(name)
    rng = np.random.default_rng(seed)
    arch = space.sample(rng)
    assert space.decode(space.encode(arch)) == arch
    child = space.mutate(arch, rng)
    assert space.decode(space.encode(child)) == child
    assert child.lookback in space.lookbacks and child.depth - 1 in space.depths


def test_mutations_stay_where_the_sampler_can_reach():
    """A shorter lookback or another pooling layer upstream must not leave a later layer pooling
    below min_length (an architecture the sampler never draws and a table built for it lacks)."""
    space = SearchSpace.default()
    rng = np.random.default_rng(11)
    samples = [space.sample_genome(rng) for _ in range(300)]
    assert all(space.genome_fits(g) for g in samples)
    # four poolings take lookback 128 to 8, but lookback 32 to 2, below min_length 4
    pool = next(i for i, c in enumerate(space.candidates()) if c.op == OpType.MAX_POOL)
    deep = Genome(32, (pool,) * 4, (False,) * 4, HeadType.LAST)
    assert not space.genome_fits(deep)
    assert space.genome_fits(Genome(128, (pool,) * 4, (False,) * 4, HeadType.LAST))
    for parent in samples:
        arch = space.decode(parent)
        for _ in range(5):
            child = space.mutate(arch, rng)
            assert space.genome_fits(space.encode(child))
            assert min(length for _, length in child.shapes()) >= space.min_length


def test_sampling_is_reproducible_and_varied():
    space = SearchSpace.default()
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    many = {space.sample(np.random.default_rng(s)).to_json() for s in range(50)}
    assert len(many) == 50


def test_mutate_changes_exactly_one_decision():
    space = SearchSpace.default()
    rng = np.random.default_rng(3)
    for _ in range(50):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        g, h = space.encode(parent), space.encode(child)
        changed = (g.lookback != h.lookback) + (g.head != h.head) + (len(g.blocks) != len(h.blocks))
        if len(g.blocks) == len(h.blocks):
            changed += sum(a != b for a, b in zip(g.blocks, h.blocks))
            # identity and pooling carry no skip, so a block change may also drop one
            plain = {"identity", "max_pool", "avg_pool"}
            ops = [c.op.value for c in space.candidates()]
            changed += sum(
                a != b
                for a, b, i, j in zip(g.skips, h.skips, g.blocks, h.blocks)
                if ops[i] not in plain and ops[j] not in plain
            )
        assert changed == 1


def test_space_size_counts_genomes():
    space = SearchSpace(lookbacks=(16,), depths=(1, 2), ops=("conv",), kernel_sizes=(3,), widths=(8,),
                        activations=("relu",), skip_choices=(False,), head_types=("gap",))
    assert len(space.candidates()) == 1 and space.size() == 2
    default = SearchSpace.default()
    per_layer = len(default.candidates()) * 2
    assert default.size() == len((8, 16, 32, 64, 128)) * 2 * sum(per_layer**d for d in (2, 3, 4, 5, 6))


def test_fpga_subset_is_hardware_friendly():
    space = SearchSpace.fpga()
    ops = {c.op for c in space.candidates()}
    assert OpType.ATTENTION not in ops and OpType.DILATED_CONV not in ops
    assert {c.kernel_size for c in space.candidates() if c.op != OpType.MAX_POOL} <= {1, 3}
    assert {c.activation.value for c in space.candidates()} <= {"relu", "none"}
    arch = space.sample(np.random.default_rng(0))
    assert all(layer.use_skip for layer in arch.layers[1:] if layer.op.value in {"conv", "dwsep_conv", "fc"})


def test_space_rejects_bad_settings(mentions):
    with pytest.raises(ValueError, match=mentions("'tpu'", "default", "fpga", "gpu", "mobile")):
        SearchSpace.named("tpu")
    with pytest.raises(ValueError, match=mentions("SearchSpace.widths")):
        SearchSpace(widths=())
    with pytest.raises(ValueError, match=mentions("ops", "'rnn'", "conv", "attention")):
        SearchSpace(ops=("rnn",))


def test_head_types_round_trip():
    arch = Architecture(layers=[conv(4, 8)], input_features=4, lookback=16, head=HeadType.LAST, num_outputs=3)
    assert Architecture.from_dict(arch.to_dict()).head is HeadType.LAST


def test_fpga_mutation_keeps_the_fixed_skip_topology():
    space = SearchSpace.fpga()
    rng = np.random.default_rng(0)
    for _ in range(100):
        arch = space.sample(rng)
        for _ in range(5):
            arch = space.mutate(arch, rng)
        assert all(layer.use_skip for layer in arch.layers[1:] if layer.op.value in {"conv", "dwsep_conv", "fc"})


def test_decode_rejects_skips_the_space_forbids(mentions):
    space = SearchSpace.fpga()
    genome = space.sample_genome(np.random.default_rng(1))
    bad = type(genome)(genome.lookback, genome.blocks, (False,) * len(genome.blocks), genome.head)
    with pytest.raises(ValueError, match=mentions("genome.skips[0]", "False", "True")):
        space.decode(bad)


def test_receptive_fields():
    from hwnas.architecture import receptive_fields

    convs = [LayerSpec("conv", 4, 4, kernel_size=3)] * 3
    assert receptive_fields(convs, 64) == [3, 5, 7]
    pooled = [LayerSpec("max_pool", 4, 4, kernel_size=2, stride=2), LayerSpec("conv", 4, 4, kernel_size=3)]
    assert receptive_fields(pooled, 64) == [2, 6]
    assert receptive_fields([LayerSpec("attention", 4, 4, heads=2)], 64) == [64]


def test_genome_draws_match_the_stated_priors():
    """10,000 draws, fixed seed: op shares (every layer, where every op fits) and depth shares
    against :meth:`SearchSpace.prior` by a chi-square test; a flat draw over the candidates fails it."""
    from scipy.stats import chisquare

    # lookback 128 and depth <= 4: every op has a candidate that fits at every position
    space = SearchSpace.default(lookbacks=(128,), depths=(2, 3, 4))
    prior = space.prior()
    rng = np.random.default_rng(2026)
    genomes = [space.sample_genome(rng) for _ in range(10_000)]
    ops = [space.candidates()[b].op for g in genomes for b in g.blocks]
    observed = [sum(op == o for op in ops) for o in space.ops]
    expected = [prior["op"][o] * len(ops) for o in space.ops]
    assert chisquare(observed, expected).pvalue > 0.01
    depths = [len(g.blocks) for g in genomes]
    observed = [depths.count(d) for d in space.depths]
    assert chisquare(observed, [prior["depth"][d] * len(genomes) for d in space.depths]).pvalue > 0.01
    # the old flat draw over candidates gives ops their share of the candidate list instead
    flat = [space.candidates()[int(i)].op for i in rng.integers(len(space.candidates()), size=len(ops))]
    assert chisquare([flat.count(o) for o in space.ops], expected).pvalue < 1e-6


def test_mutation_changes_one_gene_and_keeps_the_op_when_it_changes_a_parameter():
    space = SearchSpace.default()
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(300):
        parent = space.sample_genome(rng)
        child = space._mutate_genome(parent, rng)
        if child.blocks != parent.blocks and len(child.blocks) == len(parent.blocks):
            (i,) = [k for k, (a, b) in enumerate(zip(parent.blocks, child.blocks)) if a != b]
            a, b = space.candidates()[parent.blocks[i]], space.candidates()[child.blocks[i]]
            diff = sum(getattr(a, f) != getattr(b, f) for f in space.PARAMETERS)
            seen.add("op" if a.op != b.op else "param")
            assert a.op != b.op or diff == 1
    assert seen == {"op", "param"}


def test_mutation_never_leaves_a_pooling_below_min_length():
    """A lookback (or earlier-layer) mutation must not shrink a later pooling's output below min_length."""
    from hwnas.architecture import POOL_OPS

    space = SearchSpace.default(lookbacks=(32, 128), depths=(4, 5, 6))
    rng = np.random.default_rng(3)
    pooled = 0
    for _ in range(60):
        arch = space.sample(rng)
        for _ in range(10):
            arch = space.mutate(arch, rng)
            length = arch.lookback
            for layer in arch.layers:
                length = layer.output_length(length)
                if layer.op in POOL_OPS:
                    pooled += 1
                    assert length >= space.min_length, arch.label()
    assert pooled > 50  # the property was exercised
