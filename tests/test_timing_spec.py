"""TimingSpec: one frozen record of how the harness times, checked, named, saved and honoured.

Timing-based assertions count calls and bursts (what the spec decides), never durations.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import spin

from hwnas.__main__ import main
from hwnas.deploy.sla import timed_calls
from hwnas.hardware import HardwareProfile
from hwnas.latency import (
    Estimator,
    Timing,
    TimingSpec,
    build_lut_detailed,
    extend_profile,
    time_callable,
    time_round_robin,
    timing_from_options,
)
from hwnas.opspec import OpSpec
from hwnas.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]
OLD_PROFILE = ROOT / "benchmarks" / "results" / "search_profile_cpu_1thread.json"
PRESETS = {"CALL": TimingSpec.CALL, "COMPARE": TimingSpec.COMPARE, "TABLE": TimingSpec.TABLE,
           "MODELS": TimingSpec.MODELS, "QUICK": TimingSpec.QUICK, "SLA": TimingSpec.SLA}



# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("field, value, allowed", [
    ("passes", 0, "in [1, 1000]"),
    ("passes", 1001, "in [1, 1000]"),
    ("passes", 2.5, "integer"),
    ("passes", True, "integer"),
    ("target_ms", 0.0, "> 0"),
    ("target_ms", -3.0, "> 0"),
    ("target_ms", float("inf"), "finite"),
    ("target_ms", "12", "number"),
    ("min_reps", 0, ">= 1"),
    ("max_reps", 23, ">= 24"),  # below TABLE's min_reps
    ("warmup", -1, ">= 0"),
    ("warmup_ms", -0.5, ">= 0"),
    ("warmup_ms", float("nan"), "finite"),
    ("estimator", "mean", "'median', 'best_median', 'min'"),
    ("group", 0, ">= 1"),
    ("seed", -1, ">= 0"),
    ("seed", 1.0, "integer"),
])
def test_every_field_is_checked_and_the_error_names_it_and_the_allowed_range(field, value, allowed):
    with pytest.raises(ValueError) as err:
        TimingSpec(**{field: value})
    assert str(err.value).startswith(field) and allowed in str(err.value)
    with pytest.raises(ValueError, match=field):  # a change is checked like a new spec
        TimingSpec.TABLE.replace(**{field: value})


def test_a_spec_is_frozen_and_canonical():
    spec = TimingSpec(passes=np.int64(3), target_ms=5, estimator="median")
    assert spec.passes == 3 and type(spec.passes) is int and type(spec.target_ms) is float
    assert spec.estimator is Estimator.MEDIAN
    assert spec == TimingSpec(passes=3, target_ms=5.0, estimator=Estimator.MEDIAN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.passes = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.replace(repeats=3)
    assert hash(spec) == hash(TimingSpec(passes=3, target_ms=5.0, estimator="median"))


# ---------------------------------------------------------------- presets


def test_presets_differ_where_their_uses_differ():
    assert TimingSpec.TABLE == TimingSpec()
    assert len(set(PRESETS.values())) == len(PRESETS)
    assert TimingSpec.CALL.passes == 1 and TimingSpec.SLA.passes == 1  # one callable, one burst
    assert TimingSpec.MODELS.target_ms == 4 * TimingSpec.TABLE.target_ms
    assert TimingSpec.QUICK.passes < TimingSpec.TABLE.passes and TimingSpec.QUICK.target_ms < TimingSpec.TABLE.target_ms
    assert TimingSpec.SLA.warmup > TimingSpec.CALL.warmup and TimingSpec.SLA.warmup_ms > TimingSpec.CALL.warmup_ms
    assert all(spec.estimator is Estimator.MIN for spec in PRESETS.values())


def test_describe_and_repr_are_short_and_the_repr_rebuilds_the_spec():
    text = TimingSpec.QUICK.describe()
    assert text.startswith("2 passes x 3 ms") and "10-1000 reps" in text and "estimator min" in text
    assert "\n" not in text and TimingSpec.CALL.describe().startswith("1 pass x")
    for spec in PRESETS.values():
        assert eval(repr(spec), {"TimingSpec": TimingSpec}) == spec


# ---------------------------------------------------------------- JSON


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    spec = PRESETS[name].replace(seed=7, estimator="best_median")
    data = json.loads(json.dumps(spec.to_dict()))
    assert data["estimator"] == "best_median"
    assert TimingSpec.from_dict(data) == spec
    assert TimingSpec.from_conditions(json.loads(json.dumps(spec.record()))) == spec


def test_from_dict_fills_defaults_and_rejects_unknown_fields():
    assert TimingSpec.from_dict({"passes": 2}) == TimingSpec(passes=2)
    with pytest.raises(ValueError, match="unknown field.*repeats"):
        TimingSpec.from_dict({"passes": 2, "repeats": 5})
    with pytest.raises(ValueError, match="JSON object"):
        TimingSpec.from_dict([2, 3])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_reps"):
        TimingSpec.from_dict({"min_reps": 0})


def test_a_profile_saved_before_the_spec_existed_still_loads_with_its_timing():
    legacy = {"passes": 4, "target_ms_per_entry": 6.0, "reps_range": [12, 500], "round_robin_group": 5,
              "estimator": "median", "threads": 1}
    assert TimingSpec.from_conditions(legacy) == TimingSpec(passes=4, target_ms=6.0, min_reps=12, max_reps=500,
                                                            group=5, estimator="median")
    assert TimingSpec.from_conditions({}) == TimingSpec.TABLE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # measured on another CPU or torch: a warning, not an error
        profile = HardwareProfile.load(OLD_PROFILE)
    assert "timing" not in profile.conditions
    spec = TimingSpec.from_conditions(profile.conditions)
    assert (spec.passes, spec.target_ms, spec.min_reps, spec.max_reps, spec.estimator) == (8, 12.0, 24, 1000, "min")


# ---------------------------------------------------------------- the harness honours it


@pytest.mark.parametrize("passes", [1, 3])
def test_time_callable_spends_its_reps_within_the_limits_in_the_given_passes(passes):
    slow = time_callable(spin(200.0), timing=TimingSpec(passes=passes, target_ms=0.5, min_reps=9, max_reps=40,
                                                       warmup=1, warmup_ms=0.0))
    assert slow.reps == 9  # 0.5 ms buys 2-3 calls of 200 µs: the floor applies
    assert len(slow.burst_medians_us) == passes
    fast = time_callable(lambda: None, timing=TimingSpec(passes=passes, target_ms=50.0, min_reps=9, max_reps=40,
                                                         warmup=1, warmup_ms=0.0))
    assert fast.reps == 40  # 50 ms buys far more empty calls: the ceiling applies
    assert len(fast.burst_medians_us) == passes


def test_time_callable_warms_up_as_told():
    calls = []
    spec = TimingSpec(passes=1, target_ms=1.0, min_reps=5, max_reps=5, warmup=17, warmup_ms=0.0)
    time_callable(lambda: calls.append(1), timing=spec)
    assert len(calls) == 17 + 5


def test_round_robin_times_each_callable_in_every_pass_within_the_limits():
    spec = TimingSpec(passes=3, target_ms=100.0, min_reps=30, max_reps=60, warmup=1, warmup_ms=0.0)
    timings = time_round_robin({"a": lambda: None, "b": spin(5.0)}, timing=spec)
    for t in timings.values():
        assert isinstance(t, Timing) and len(t.burst_medians_us) == 3
        assert 30 <= t.reps <= 60


def test_the_sla_run_keeps_its_own_count_and_takes_the_warm_up_from_the_spec():
    calls = []
    samples = timed_calls(lambda: calls.append(1), 30, 3, timing=TimingSpec.SLA.replace(warmup=4, warmup_ms=0.0))
    assert len(samples) == 30 and len(calls) == 30 + 3 * 4  # 3 bursts, each warmed 4 times


def test_a_build_records_its_spec_and_an_extension_keeps_the_profile_s_estimator(tmp_path):
    space = SearchSpace.default(input_features=4, widths=(8,), lookbacks=(16,), depths=(1,), stem_width=8)
    key = OpSpec("fc", 8, 8, 16, activation="relu")
    spec = TimingSpec(passes=1, target_ms=0.5, min_reps=3, max_reps=20, estimator="median", seed=3)
    build = build_lut_detailed(space, progress=False, specs=[key], calibration=0, timing=spec)
    assert build.timing == spec and build.conditions["timing"] == spec.to_dict()
    profile = build.profile("tiny", peak_flops=1e9)
    loaded = HardwareProfile.load(profile.save(tmp_path / "p.json"))
    assert TimingSpec.from_conditions(loaded.conditions) == spec
    assert TimingSpec.from_conditions(build.profile(estimator="min", peak_flops=1e9).conditions).estimator == "min"
    arch = space.sample(np.random.default_rng(0))
    extended = extend_profile(loaded, [arch], timing=TimingSpec.QUICK.replace(passes=1, target_ms=0.5, min_reps=3))
    record = extended.conditions["extended"]["timing"]
    assert record["estimator"] == "median" and record["passes"] == 1  # the profile's statistic, the given timing
    assert extended.predict_latency(arch) > 0


# ---------------------------------------------------------------- at the command line


def test_options_become_one_spec_and_a_bad_option_is_named_as_typed():
    spec = timing_from_options(TimingSpec.TABLE, {"passes": 2, "target_ms": None, "min_reps": 5})
    assert spec == TimingSpec.TABLE.replace(passes=2, min_reps=5)
    with pytest.raises(ValueError, match=r"^--min-reps must be an integer >= 1"):
        timing_from_options(TimingSpec.TABLE, {"min_reps": 0})
    with pytest.raises(ValueError, match=r"^--max-reps must be an integer >= 24"):
        timing_from_options(TimingSpec.TABLE, {"max_reps": 3})


def test_profile_cpu_checks_its_timing_options_before_measuring(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["profile-cpu", "--out", str(out), "--passes", "0"]) == 2
    assert "--passes must be an integer in [1, 1000]" in capsys.readouterr().err
    assert main(["profile-cpu", "--out", str(out), "--estimator", "mode"]) == 2
    assert "--estimator" in capsys.readouterr().err and not out.exists()
