"""The latency SLA report (hwnas.deploy.sla)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from hwnas.cost import memory_footprint
from hwnas.deploy.coverage import coverage_architecture
from hwnas.deploy.export import export
from hwnas.deploy.sla import SPREAD_WARN, SLAReport, sla_report
from hwnas.hardware import DeviceType, HardwareProfile
from hwnas.opspec import OpSpec, arch_op_specs
from hwnas.space import SearchSpace

PC = time.perf_counter_ns


def busy_100us() -> None:
    """A callable of known latency: spins for 100 µs of wall time."""
    start = PC()
    while PC() - start < 100_000:
        pass


def _report(samples, budget=200.0, **kw) -> SLAReport:
    return SLAReport(label="t", budget_us=budget, samples_us=tuple(samples), bursts=kw.pop("bursts", 1), **kw)


def test_percentiles_and_verdict_from_known_samples():
    samples = [100.0] * 995 + [1000.0] * 5  # 0.5% slow calls
    report = _report(samples)
    assert report.n == 1000 and report.p50_us == 100.0 and report.p99_us == 100.0
    assert report.max_us == 1000.0 and report.min_us == 100.0
    assert report.p999_us == pytest.approx(np.percentile(samples, 99.9))
    assert report.passed and report.reasons == []
    strict = _report(samples, percentile=99.9)
    assert not strict.passed and strict.reasons[0].startswith("p99.9 ")
    assert not _report(samples, budget=99.0).passed


def test_memory_is_judged_when_both_sides_are_known():
    fits = _report([10.0] * 1000, memory_bytes=1000, memory_budget_bytes=1000, memory_basis="x")
    too_big = _report([10.0] * 1000, memory_bytes=1001, memory_budget_bytes=1000, memory_basis="x")
    unknown = _report([10.0] * 1000, memory_bytes=None, memory_budget_bytes=1000)
    assert fits.passed and unknown.passed
    assert not too_big.passed and too_big.reasons == ["memory 1,001 B > budget 1,000 B"]
    assert any("not checked" in note for note in unknown.notes)


@given(st.lists(st.floats(1.0, 1e4), min_size=4, max_size=200), st.floats(1.0, 1e4))
def test_pass_is_exactly_the_percentile_within_budget(samples, budget):
    report = _report(samples, budget=budget)
    assert report.passed == (np.percentile(samples, 99) <= budget)
    assert report.min_us <= report.p50_us <= report.p99_us <= report.p999_us <= report.max_us


def test_wide_spread_and_few_samples_warn():
    rng = np.random.default_rng(0)
    quiet = _report(100 + rng.normal(0, 1, 2000))
    noisy = _report(rng.uniform(50, 150, 2000))
    assert not quiet.warnings
    assert noisy.spread > SPREAD_WARN and any("IQR" in w for w in noisy.warnings)
    assert any("p99.9" in w for w in _report([1.0] * 100).warnings)
    tails = _report([10.0] * 1000 + [10.0] * 980 + [50.0] * 20, bursts=2)
    assert any("did not repeat" in w for w in tails.warnings)


def test_summary_repr_and_dict():
    report = _report([100.0] * 1000, conditions={"runtime": "onnxruntime", "threads": 1})
    assert "PASS" in report.summary() and "p99.9" in report.summary()
    assert repr(report) == "SLAReport('t', pass, p99 100.0 µs vs 200 µs, n=1000)"
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] is True and len(data["samples_us"]) == 1000


def test_constructor_rejects_bad_fields():
    with pytest.raises(ValueError, match="samples_us"):
        _report([])
    with pytest.raises(ValueError, match="percentile"):
        _report([1.0], percentile=101)


def test_busy_wait_of_100us_against_50_and_200us():
    miss = sla_report(busy_100us, 50, repeats=1000, bursts=2)
    assert not miss.passed and miss.p50_us >= 99.0  # every call spins at least 100 µs
    assert miss.conditions["runtime"] == "callable" and len(miss.samples_us) == 1000
    fit = sla_report(busy_100us, 200, repeats=1000, bursts=2)
    assert fit.p50_us < 200
    # p99 includes other processes' interference on a shared machine: when it misses,
    # the report must say so (the load warning or the wide tail), never silently
    assert fit.passed == (fit.p99_us <= 200)
    if not fit.passed:
        assert fit.warnings
    median_fit = sla_report(busy_100us, 200, percentile=50, repeats=500)
    assert median_fit.passed


def test_architecture_module_and_onnx_file_with_a_profile(tmp_path):
    arch = coverage_architecture(SearchSpace.mobile(), lookback=32)
    table = {key: 1.0 for key in arch_op_specs(arch, 1)}
    table[OpSpec.overhead(1)] = 2.0
    profile = HardwareProfile(name="flat", device_type=DeviceType.CPU, latency_table=table,
                              memory_budget_bytes=10_000, peak_flops=1e9,
                              conditions={"runtime": "onnxruntime"})
    report = sla_report(arch, 1e6, profile=profile, repeats=200, bursts=1)
    assert report.predicted_us == pytest.approx(len(arch_op_specs(arch, 1)) + 2.0)
    assert report.memory_bytes == memory_footprint(arch, "fp32", 1).total_bytes
    assert report.memory_budget_bytes == 10_000 and not report.passed  # memory over the budget
    assert report.conditions["runtime_version"].startswith("onnxruntime")
    eager = sla_report(nn.Linear(4, 2), 1e6, runtime="eager", example=torch.randn(1, 4), repeats=100)
    assert eager.passed and eager.memory_bytes == (4 * 2 + 2) * 4
    path = tmp_path / "m.onnx"
    export(arch, path)
    from_file = sla_report(path, 1e6, repeats=100, bursts=1)
    assert from_file.memory_bytes == path.stat().st_size and from_file.passed


def test_bad_arguments_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="budget_us"):
        sla_report(busy_100us, 0)
    with pytest.raises(ValueError, match="bursts"):
        sla_report(busy_100us, 10, repeats=3, bursts=4)
    with pytest.raises(ValueError, match="deployable"):
        sla_report(tmp_path / "missing.onnx", 10)
    with pytest.raises(ValueError, match="deployable"):
        sla_report(42, 10)
    with pytest.raises(ValueError, match="example"):
        sla_report(nn.Linear(2, 2), 10)
    with pytest.raises(ValueError, match="runtime"):
        sla_report(coverage_architecture(SearchSpace.mobile()), 10, runtime="tensorrt")
