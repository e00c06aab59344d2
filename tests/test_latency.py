"""The timing harness, LUT building, expected latency and a small fidelity run.

Timing-based assertions are kept loose: the suite runs on shared, loaded machines.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from helpers import spin

from hwnas.architecture import OpType
from hwnas.hardware import DeviceType, HardwareProfile
from hwnas.latency import (
    Timing,
    TimingSpec,
    build_lut,
    build_lut_detailed,
    candidate_latencies,
    expected_latency,
    expected_latency_from_weights,
    flops_baseline,
    masked_softmax,
    op_module,
    time_callable,
    validate,
)
from hwnas.model import build_model
from hwnas.opspec import OpSpec, arch_op_specs, space_op_specs
from hwnas.space import SearchSpace

# Small enough to time in seconds; dwsep convs and pooling make FLOPs a poor guide.
TINY = SearchSpace(
    name="tiny", lookbacks=(32, 64), depths=(2, 3),
    ops=(OpType.CONV, OpType.DWSEP_CONV, OpType.FC, OpType.IDENTITY, OpType.MAX_POOL),
    kernel_sizes=(3,), widths=(16, 32), activations=("relu",), head_types=("gap",), stem_width=16,
)



# ---------------------------------------------------------------- harness


def test_harness_measures_a_known_workload():
    t = time_callable(spin(300.0), timing=TimingSpec.CALL.replace(target_ms=15, warmup=2), keep_samples=True)
    assert 295.0 <= t.median_us <= 400.0  # preemption on a loaded machine only adds time
    assert t.min_us <= t.median_us <= t.p90_us <= t.p99_us
    assert t.min_us >= 295.0 and t.mean_us >= t.min_us
    assert 20 <= t.reps <= 2000 and len(t.samples_us) == t.reps
    assert (t.threads, t.batch) == (1, 1)


def test_repetitions_adapt_to_the_speed_of_the_op():
    spec = TimingSpec.CALL.replace(target_ms=10, min_reps=5, max_reps=10_000)
    fast = time_callable(spin(20.0), timing=spec)
    slow = time_callable(spin(1000.0), timing=spec)
    assert fast.reps > 5 * slow.reps
    assert slow.reps >= 5


def test_harness_restores_threads_and_gc_even_when_the_workload_fails():
    before = torch.get_num_threads()
    assert gc.isenabled()
    calls = []

    def flaky() -> None:
        calls.append(1)
        assert not gc.isenabled() or len(calls) <= 3  # warm-up may run with gc on
        if len(calls) == 6:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        time_callable(flaky, threads=before + 1, timing=TimingSpec.CALL.replace(min_reps=10))
    assert gc.isenabled()
    assert torch.get_num_threads() == before
    seen = []
    time_callable(lambda: seen.append(torch.get_num_threads()), threads=before + 1,
                  timing=TimingSpec.CALL.replace(min_reps=3, max_reps=3))
    assert set(seen) == {before + 1} and torch.get_num_threads() == before


def test_harness_rejects_bad_thread_counts():
    with pytest.raises(ValueError, match="threads"):
        time_callable(lambda: None, threads=0)


def test_timing_statistics_from_bursts():
    t = Timing.from_bursts([[10, 11, 12], [20, 21, 22, 23]], threads=1, batch=1)
    assert t.median_us == 20.0 and t.min_us == 10.0 and t.reps == 7
    assert t.burst_medians_us == (11.0, 21.5) and t.best_median_us == 11.0
    assert t.estimate("median") == 20.0 and t.estimate("min") == 10.0 and t.estimate("best_median") == 11.0
    with pytest.raises(ValueError, match="estimator"):
        t.estimate("mode")


# ---------------------------------------------------------------- modules timed


@pytest.mark.parametrize("key", [
    OpSpec("conv", 16, 32, 40, kernel_size=3, stride=1, activation="relu", use_skip=True, batch=2),
    OpSpec("max_pool", 16, 16, 40, kernel_size=2, stride=2, batch=2),
    OpSpec("attention", 16, 16, 40, heads=2, activation="gelu", batch=2),
    OpSpec("head_flatten", 16, 3, 40, batch=2),
    OpSpec("head_last", 16, 3, 40, batch=2),
    OpSpec("shortcut", 16, 32, 40, stride=2, batch=2),
    OpSpec("add", 32, 32, 20, batch=2),
])
def test_op_module_runs_with_the_shapes_of_the_key(key):
    module, inputs = op_module(key)
    assert all(x.is_contiguous() and x.dtype == torch.float32 for x in inputs)
    with torch.inference_mode():
        y = module(*inputs)
    if key.is_head:
        assert tuple(y.shape) == (2, key.out_channels)
    else:
        assert tuple(y.shape) == (2, key.out_channels, key.out_len)


# ---------------------------------------------------------------- LUT and fidelity


@pytest.fixture(scope="module")
def tiny_build():
    rng = np.random.default_rng(2024)
    archs = [TINY.sample(rng) for _ in range(12)]
    build = build_lut_detailed(TINY, threads=1, progress=False, calibration=6, validation=archs,
                               timing=TimingSpec(passes=2, target_ms=4.0, min_reps=6, seed=1))
    return build, archs


def test_lut_covers_the_space_stem_head_and_overhead(tiny_build):
    build, archs = tiny_build
    keys = set(space_op_specs(TINY))
    assert keys <= set(build.timings)
    assert any(k.is_head for k in keys) and any(k.in_channels == TINY.input_features for k in keys)
    p = build.profile("tiny-cpu", peak_flops=1e10, device_type=DeviceType.MOBILE)
    assert OpSpec.overhead(1) in p.latency_table and p.latency_table[OpSpec.overhead(1)] >= 0
    assert not p.is_model and "measured" in p.label and p.conditions["threads"] == 1
    for key in ("torch_version", "cpu_model", "threads", "batch", "date", "distinct_opspecs", "build_seconds"):
        assert key in p.conditions
    rng = np.random.default_rng(5)
    for _ in range(20):
        arch = TINY.sample(rng)
        assert p.predict_latency(arch) > 0
    lut = build.lut()
    assert all(t.reps >= 3 and t.median_us >= 0 for t in lut.values())


def test_small_fidelity_run_ranks_better_than_flops(tiny_build):
    build, archs = tiny_build
    p = build.profile(peak_flops=1e10)
    report = validate(p, archs, timings=build.validation_timings)
    assert report.n == 12 and report.predicted_us.shape == report.measured_us.shape == (12,)
    assert np.all(report.measured_us > 0)
    assert report.spearman > report.baseline_spearman
    assert report.spearman > 0.5
    text = report.summary()
    assert "acc10" in text and "Spearman" in text and "FLOPs" in text
    assert set(report.to_dict()["figures"]) >= {"lut_acc10", "flops_acc10", "lut_spearman", "lut_mape"}


def test_build_lut_returns_timings_with_the_overhead_entry():
    keys = [OpSpec("fc", 8, 16, 32, activation="relu")]
    lut = build_lut(TINY, progress=False, specs=keys, calibration=2,
                    timing=TimingSpec(passes=1, target_ms=1.0, min_reps=3))
    assert keys[0] in lut and OpSpec.overhead(1) in lut
    assert all(isinstance(t, Timing) for t in lut.values())
    with pytest.raises(ValueError, match="estimator"):
        build_lut(TINY, progress=False, specs=keys, timing=TimingSpec(estimator="mean"))


def test_validate_times_models_itself_when_not_given_timings(tiny_build):
    build, archs = tiny_build
    p = build.profile(peak_flops=1e10)
    report = validate(p, archs[:4], timing=TimingSpec.MODELS.replace(passes=1, target_ms=2.0))
    assert report.n == 4 and np.all(report.measured_us > 0)
    with pytest.raises(ValueError, match="timings"):
        validate(p, archs[:4], timings=build.validation_timings)


def test_flops_baseline_is_cross_fitted_and_exact_on_affine_data():
    flops = np.arange(1.0, 21.0) * 1e6
    measured = 50.0 + 2e-5 * flops
    pred, fits = flops_baseline(flops, measured)
    assert np.allclose(pred, measured) and len(fits) == 2
    noisy = measured.copy()
    noisy[0] += 1000.0  # an outlier in one half must not leak into its own prediction
    pred, _ = flops_baseline(flops, noisy)
    assert abs(pred[0] - measured[0]) < 1e-6


# ---------------------------------------------------------------- expected latency


def test_expected_latency_is_the_softmax_weighted_lut_and_passes_gradcheck():
    torch.manual_seed(0)
    lat = torch.rand(4, 5, dtype=torch.float64) * 100
    alpha = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    value = expected_latency(alpha, lat)
    manual = sum((torch.softmax(alpha[i], 0) * lat[i]).sum() for i in range(4))
    assert torch.allclose(value, manual)
    assert torch.autograd.gradcheck(lambda a: expected_latency(a, lat), (alpha,))
    # one-hot limit: a very confident alpha gives the chosen ops' LUT sum
    hard = torch.full((4, 5), -50.0, dtype=torch.float64)
    hard[torch.arange(4), torch.tensor([0, 1, 2, 3])] = 50.0
    assert float(expected_latency(hard, lat)) == pytest.approx(float(lat[torch.arange(4), torch.arange(4)].sum()))


def test_expected_latency_masks_infeasible_candidates():
    lat = torch.tensor([[10.0, float("inf"), 30.0], [5.0, 5.0, float("inf")]], dtype=torch.float64)
    alpha = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    value = expected_latency(alpha, lat)
    assert float(value.detach()) == pytest.approx(20.0 + 5.0)
    value.backward()
    assert torch.isfinite(alpha.grad).all() and alpha.grad[0, 1] == 0 and alpha.grad[1, 2] == 0
    assert torch.autograd.gradcheck(lambda a: expected_latency(a, lat), (alpha.detach().requires_grad_(),))
    weights = masked_softmax(alpha.detach(), lat)
    assert float(expected_latency_from_weights(weights, lat)) == pytest.approx(25.0)
    with pytest.raises(ValueError, match="shape"):
        expected_latency(torch.zeros(2, 2), lat)
    with pytest.raises(ValueError, match="finite"):
        expected_latency(torch.zeros(1, 2), torch.full((1, 2), float("inf")))


def test_candidate_latency_matrix_for_a_fixed_width_supernet():
    table = {}

    def model(key: OpSpec) -> float:
        return {"conv": 10.0, "dwsep_conv": 20.0, "fc": 3.0, "identity": 0.5, "max_pool": 1.0}.get(key.op, 1.0) \
            * key.out_channels / 16

    p = HardwareProfile("m", DeviceType.CPU, table, 10**9, 1e10, is_model=True, latency_model=model,
                        unsupported=lambda k: "no pooling" if k.op == "max_pool" else None)
    lat = candidate_latencies(p, TINY, depth=3, lookback=32)
    cands = TINY.candidates()
    assert lat.shape == (3, len(cands)) and lat.dtype == torch.float64
    for j, c in enumerate(cands):
        if c.op == OpType.MAX_POOL:
            assert torch.isinf(lat[:, j]).all()
        else:
            width = c.width or TINY.stem_width
            assert torch.allclose(lat[:, j], torch.tensor(model(OpSpec(c.op, 16, width, 32)), dtype=torch.float64))
    assert torch.isfinite(expected_latency(torch.zeros(3, len(cands), dtype=torch.float64), lat))


def test_model_timing_matches_the_model_the_lut_describes(tiny_build):
    build, archs = tiny_build
    arch = archs[0]
    model = build_model(arch, seed=1)
    assert len(arch_op_specs(arch)) == len(model.layers) + 1


class _VirtualClock:
    """A clock that moves only when a timed call says it worked: timing without real time.

    The harness reads ``time.perf_counter_ns``/``perf_counter`` from ``hwnas.latency.timing``;
    swapped for this clock, every timed call costs exactly what the fake runtime charges,
    so the correction logic is checked exactly, whatever else runs on the machine.
    """

    def __init__(self) -> None:
        self.now_ns = 0

    def perf_counter_ns(self) -> int:
        return self.now_ns

    def perf_counter(self) -> float:
        return self.now_ns / 1e9

    def advance_us(self, us: float) -> None:
        self.now_ns += round(us * 1e3)


class _FixedCostRuntime:
    """A runtime charging a fixed 2 ms per call plus 1 µs per 100 parameters of the module, on a virtual clock.

    The shape of ONNX Runtime's per-call cost (a fixed price per session call) with
    a deterministic, additive cost for the work itself.
    """

    name = "fixedcost"
    threads = 1
    cost_us = 2000.0  # far above any tiny layer's own cost

    def __init__(self, clock: _VirtualClock) -> None:
        self.clock = clock

    def version(self) -> str:
        return "fixedcost 1.0"

    def _paying(self, work_us: float):
        def call():
            self.clock.advance_us(self.cost_us + work_us)
        return call

    def prepare(self, module, inputs):
        return self._paying(sum(p.numel() for p in module.parameters()) / 100.0)

    def null_callable(self):
        return self._paying(0.0)


def test_a_runtime_per_call_cost_comes_off_every_entry_and_into_the_overhead(monkeypatch):
    import types

    from hwnas.latency import build_lut_detailed
    from hwnas.latency import lut as lut_module
    from hwnas.latency import timing as timing_module

    clock = _VirtualClock()
    monkeypatch.setattr(timing_module, "time", types.SimpleNamespace(
        perf_counter_ns=clock.perf_counter_ns, perf_counter=clock.perf_counter))
    monkeypatch.setattr(timing_module, "_NULL_NS", 0.0)
    monkeypatch.setattr(lut_module, "peak_flops_measured", lambda threads=1: 1e10)  # a matmul has no fake cost
    space = SearchSpace.default(input_features=4, widths=(8,), lookbacks=(16,), depths=(1, 2), stem_width=8)
    arch = space.sample(np.random.default_rng(0))
    build = build_lut_detailed(space, progress=False, specs=arch_op_specs(arch), calibration=6,
                               runtime=_FixedCostRuntime(clock),
                               timing=TimingSpec(passes=2, target_ms=4.0, min_reps=5))
    assert build.per_call_us == pytest.approx(2000.0)
    assert build.conditions["per_call_us_subtracted"] == pytest.approx(2000.0)
    # Every entry is its own work alone: the per-call cost is off it (uncorrected, each would be above 2 ms).
    for key, entry in build.timings.items():
        assert entry.min_us < 100.0, key
    # Each model pays the per-call cost once: the fitted overhead holds it (not per layer), so
    # the layer sum plus the overhead predicts every calibration model (uncorrected, a model of
    # n layers would be predicted at about n times the per-call cost).
    measured = np.array([t.min_us for t in build.calibration_timings])
    predicted = np.array([build.profile(estimator="min").predict_latency(a) for a in build.calibration])
    assert np.all(measured > 2000.0)
    assert np.max(np.abs(predicted / measured - 1)) < 0.02


def test_eager_builds_subtract_nothing(tiny_build):
    build, _ = tiny_build
    assert build.per_call_us == 0.0 and build.conditions["per_call_us_subtracted"] == 0.0


# ---------------------------------------------------------------- import structure


def _internal_imports(path, package: str) -> set[str]:
    """Modules of ``package`` that ``path`` imports anywhere (functions included; not under TYPE_CHECKING)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
              and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    here = f"hwnas.{package}" + ("" if path.stem == "__init__" else f".{path.stem}")
    parent = here.rsplit(".", 1)[0] if path.stem != "__init__" else here
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and id(node) not in hidden and node.level:
            base = parent.rsplit(".", node.level - 1)[0] if node.level > 1 else parent
            target = f"{base}.{node.module}" if node.module else base
            names = [target] + [f"{target}.{a.name}" for a in node.names]
            found.update(n for n in names if n.startswith(f"hwnas.{package}"))
    return found - {here}


@pytest.mark.parametrize("package", ["latency", "deploy", "search", "pipeline", "data", "proxy", "targets", "plots"])
def test_no_import_cycle_within_the_subpackage(package):
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "hwnas" / package
    modules = {f"hwnas.{package}" + ("" if p.stem == "__init__" else f".{p.stem}"): p for p in folder.glob("*.py")}
    graph = {name: _internal_imports(path, package) & set(modules) for name, path in modules.items()}
    graph[f"hwnas.{package}"] = set()  # the package re-exports its modules; they must not import it back
    for name, path in modules.items():
        if name != f"hwnas.{package}":
            assert f"hwnas.{package}" not in _internal_imports(path, package), f"{name} imports its package"

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert not cycles, f"modules on an import cycle: {cycles}"
