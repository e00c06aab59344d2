"""The capstone pipeline: ``hwnas run`` end to end on tiny settings, its outputs, its errors.

Runs on the synthetic fallback (no ../shared needed): HWNAS_BYBIT_DIR is empty,
HWNAS_OFFLINE=1 and the kline cache points into tmp_path.
"""

import json
import math

import numpy as np
import pytest

from hwnas import Architecture
from hwnas.__main__ import main
from hwnas.latency import TimingSpec
from hwnas.pipeline import PLANS, run_pipeline, target_space, walk_forward
from hwnas.pipeline.run import CHOICE_RULES
from hwnas.search import SearchResult

TINY = ["--quick", "--evals", "3", "--retrain-epochs", "1", "--retrain-windows", "128",
        "--sla-repeats", "50", "--quiet"]


def _go_offline(mp: pytest.MonkeyPatch, folder) -> None:
    """No recorded folder, no network, a kline cache inside ``folder``, figures off-screen."""
    mp.setenv("HWNAS_BYBIT_DIR", "")
    mp.setenv("HWNAS_OFFLINE", "1")
    mp.setenv("HWNAS_CACHE_DIR", str(folder / "cache"))
    mp.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    _go_offline(monkeypatch, tmp_path)
    return tmp_path


FIXED_POINT_CALLS: list[tuple[str, int]] = []
"""(mode, width) of every candidate the tiny FPGA run scored through the fixed-point path."""


@pytest.fixture(scope="module")
def fpga_run(tmp_path_factory):
    """One tiny FPGA run through the command line (shared by the output tests); the fixed-point
    scoring of its candidates is recorded in :data:`FIXED_POINT_CALLS`."""
    import hwnas.proxy.fixed_point as fixed_point

    folder = tmp_path_factory.mktemp("run")
    original = fixed_point.evaluate_fixed_point

    def recording(arch, task, seed=0, *, mode, width=8, **kwargs):
        FIXED_POINT_CALLS.append((str(mode), width))
        return original(arch, task, seed, mode=mode, width=width, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        _go_offline(mp, folder)
        mp.setattr(fixed_point, "evaluate_fixed_point", recording)
        with pytest.warns(UserWarning, match="SYNTHETIC"):
            code = main(["run", "--target", "fpga", "--out-dir", str(folder / "out"), *TINY])
    return code, folder / "out"


def test_run_writes_outputs_that_parse(fpga_run):
    code, out = fpga_run
    summary = json.loads((out / "fpga_summary.json").read_text())
    assert code == (0 if summary["verdict"]["passed"] else 1)
    assert summary["data_source"].startswith("synthetic")
    assert "analytical model" in summary["profile_kind"]
    assert summary["plan"]["latency_budget_us"] == 20.0 and summary["evaluations"] == 3
    # the FPGA's fixed pipeline has no tail: the search holds the cycle model to the budget itself
    assert summary["tail"]["factor"] == 1.0 and "deterministic" in summary["tail"]["basis"]
    assert summary["problem"]["latency_budget_us"] == 20.0 and summary["choice"]["within_budget"]
    assert set(summary["baselines"]) == {"persistence", "mlp", "lstm"}
    assert all(math.isfinite(summary["scores"][s]) for s in ("val", "test"))
    assert set(summary["stage_seconds"]) - {"select"} == {"data", "profile", "search", "retrain", "baselines", "export",
                                             "quantise", "sla", "write"}
    assert (out / "fpga_front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    arch = Architecture.load(out / "fpga_arch.json")
    assert arch.to_dict() == summary["arch"]
    assert summary["export"]["max_abs_error"] <= 1e-5 + 1e-5 * 10
    assert (out / "fpga_model.onnx").stat().st_size == summary["export"]["size_bytes"]
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_the_fpga_search_scores_candidates_at_the_deployed_fixed_point(fpga_run):
    _, out = fpga_run
    summary = json.loads((out / "fpga_summary.json").read_text())
    from hwnas.targets.fpga import ZU9EG

    bits = ZU9EG.bits  # the part's FpgaSpec.bits (8)
    assert PLANS["fpga"].fixed_point == "qat" and summary["plan"]["fixed_point"] == "qat"
    assert summary["scoring"] == {"fixed_point": "qat", "width": bits,
                                  "description": PLANS["fpga"].scoring(bits)}
    # every trained candidate went through quantisation-aware training at the part's width
    assert len(FIXED_POINT_CALLS) == summary["evaluations"] == 3
    assert set(FIXED_POINT_CALLS) == {("qat", bits)}
    assert "8-bit fixed point, quantisation-aware training" in PLANS["fpga"].scoring(8)
    assert PLANS["cpu"].scoring().startswith("float")


def test_scoring_width_reads_the_fpga_part():
    from dataclasses import replace

    from hwnas.pipeline.plan import scoring_width
    from hwnas.targets.fpga import ZU9EG
    from hwnas.targets.profiles import fpga_profile

    assert scoring_width(fpga_profile()) == ZU9EG.bits == 8
    assert scoring_width(fpga_profile(replace(ZU9EG, bits=12))) == 12
    assert scoring_width(object(), default=6) == 6


def test_run_chooses_the_best_validation_score_within_budget(fpga_run):
    _, out = fpga_run
    summary = json.loads((out / "fpga_summary.json").read_text())
    result = SearchResult.from_json((out / "fpga_search.json").read_text())
    budget = summary["plan"]["latency_budget_us"]
    memory = summary["sla"]["memory_budget_bytes"]
    within = [s for s in result.history if s.metrics.feasible and math.isfinite(s.metrics.score)
              and s.metrics.latency_us <= budget and s.metrics.memory_bytes <= memory]
    best = max(within, key=lambda s: (s.metrics.score, -s.metrics.latency_us))
    assert best.arch.to_dict() == summary["arch"]
    assert summary["search_score"] == pytest.approx(best.metrics.score)
    assert summary["latency"]["predicted_us"] == pytest.approx(best.metrics.latency_us)
    # the FPGA deploys the INT8 fixed-point simulation, scored beside FP32
    assert summary["precision"] == "int8 fixed point (sim)"
    assert [p["precision"] for p in summary["precisions"]] == ["fp32 onnx", "int8 fixed point (sim)"]


def test_nothing_within_the_budget_is_a_fail_verdict_not_a_crash(tmp_path):
    # a tail factor of 10,000 leaves a table budget of 0.002 µs: no model fits, on any machine
    with pytest.MonkeyPatch.context() as mp:
        _go_offline(mp, tmp_path)
        with pytest.warns(UserWarning, match="SYNTHETIC"):
            code = main(["run", "--target", "fpga", "--out-dir", str(tmp_path / "out"), *TINY,
                         "--tail-factor", "10000"])
    assert code == 1  # a miss, like ``report``; 2 stays for bad arguments
    out = tmp_path / "out"
    for name in ("summary.json", "front.png", "search.json", "arch.json", "model.onnx"):
        assert (out / f"fpga_{name}").stat().st_size > 0, name
    summary = json.loads((out / "fpga_summary.json").read_text())
    assert summary["verdict"]["passed"] is False
    reason = summary["verdict"]["reasons"][0]
    assert "nothing met the budget" in reason and "20 µs" in reason and "10000" in reason.replace(".00", "")
    assert "measured p99" in reason
    assert summary["choice"] == {"rule": CHOICE_RULES[False], "within_budget": False}
    assert summary["problem"]["latency_budget_us"] == pytest.approx(20.0 / 10_000)
    result = SearchResult.load(out / "fpga_search.json")
    fastest = min(s.metrics.latency_us for s in result.history if s.metrics.feasible
                  and math.isfinite(s.metrics.score))
    assert summary["latency"]["predicted_us"] == pytest.approx(fastest)  # the rule it said it used


@pytest.mark.parametrize("argv, named", [
    (["--target", "tpu"], "--target"),
    (["--target", "cpu", "--evals", "0"], "--evals"),
    (["--target", "gpu", "--budget-us", "-5"], "--budget-us"),
    (["--target", "fpga", "--retrain-epochs", "0"], "--retrain-epochs"),
    (["--target", "fpga", "--strategy", "nope"], "--strategy"),
    (["--target", "fpga", "--profile", "missing.json"], "--profile"),
    (["--target", "cpu", "--tail-factor", "0.5"], "--tail-factor"),
])
def test_bad_arguments_exit_2_with_one_line(offline, capsys, argv, named):
    assert main(["run", *argv, "--out-dir", str(offline / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and err[0].startswith("hwnas run: error:")
    assert not (offline / "out").exists()


def test_out_dir_in_a_missing_folder_fails_before_any_work(offline, capsys):
    assert main(["run", "--target", "fpga", "--out-dir", str(offline / "no" / "such")]) == 2
    assert "--out-dir" in capsys.readouterr().err


def test_run_pipeline_checks_its_arguments(offline):
    with pytest.raises(ValueError, match="target"):
        run_pipeline("tpu", out_dir=offline)
    with pytest.raises(ValueError, match="evals"):
        run_pipeline("fpga", evals=0, out_dir=offline)
    with pytest.raises(ValueError, match="strategy"):
        run_pipeline("fpga", strategy="nope", out_dir=offline)
    with pytest.raises(ValueError, match="tail_factor"):
        run_pipeline("fpga", tail_factor=0.9, out_dir=offline)


CPU_TINY = dict(quick=True, evals=3, retrain_epochs=1, retrain_windows=128, sla_repeats=50,
                timing=TimingSpec.COMPARE.replace(target_ms=1.0), progress=False,
                lut_options={"timing": TimingSpec(passes=1, target_ms=0.5, min_reps=4), "calibration": 4})


@pytest.fixture(scope="module")
def cpu_space():
    return target_space("cpu", quick=True, widths=(8,), kernel_sizes=(3,), depths=(2,))


def test_cpu_search_leaves_room_for_the_measured_tail(offline, cpu_space):
    pytest.importorskip("onnxruntime")
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        result = run_pipeline("cpu", space=cpu_space, latency_budget_us=2000.0, out_dir=offline / "out", **CPU_TINY)
    tail = result.tail
    assert tail["basis"] == "measured on this CPU" and tail["factor"] >= 1.0
    assert len(tail["calibration"]["labels"]) == 3 and "tail" in result.stage_seconds
    table = result.search.problem.latency_budget_us
    assert table == pytest.approx(2000.0 / tail["factor"])
    assert result.latency["predicted_us"] <= table
    assert 1.0 <= tail["factor"] <= tail["measured_factor"] and tail["spread"][0] <= tail["spread"][1]
    assert result.sla["budget_us"] == 2000.0  # the SLA judges the p99 against the budget itself
    summary = json.loads((offline / "out" / "cpu_summary.json").read_text())
    assert summary["tail"]["factor"] == tail["factor"] and summary["problem"]["latency_budget_us"] == table


def test_a_given_tail_factor_is_used_as_is(offline, cpu_space):
    pytest.importorskip("onnxruntime")
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        result = run_pipeline("cpu", space=cpu_space, latency_budget_us=2000.0, tail_factor=4.0,
                              out_dir=offline / "out",
                              **CPU_TINY)
    assert result.tail == {"factor": 4.0, "basis": "given by the caller", "summary": "given: 4x"}
    assert result.search.problem.latency_budget_us == 500.0 and "tail" not in result.stage_seconds


def test_plans_follow_the_reference_chapter():
    assert PLANS["fpga"].latency_budget_us == 20.0  # the model's 20 µs of a 50 µs market-making decision
    assert PLANS["cpu"].memory_budget == 10 * 1024 * 1024 and PLANS["cpu"].batch == 1
    assert PLANS["gpu"].batch > 1
    assert target_space("fpga").name == "fpga" and target_space("cpu").name == "mobile"
    assert max(target_space("gpu", quick=True).lookbacks) == 32


def test_walk_forward_scores_later_periods_the_same_way_twice():
    from hwnas.data import synthetic_klines
    from hwnas.space import SearchSpace

    frame = synthetic_klines(900, seed=3)
    arch = SearchSpace.fpga(lookbacks=(16,), depths=(2,)).sample(np.random.default_rng(0))
    kwargs = dict(folds=2, fraction=0.8, seed=0, baselines=("persistence",), epochs=1, max_train_windows=64)
    rows = walk_forward({"fpga": arch}, frame, **kwargs)
    assert [(r["fold"], r["model"]) for r in rows] == [(0, "fpga"), (0, "persistence"),
                                                        (1, "fpga"), (1, "persistence")]
    assert rows[2]["test_start"] > rows[0]["test_start"] and rows[2]["test_end"] > rows[0]["test_end"]
    assert all(math.isfinite(r["test"]) for r in rows)
    assert walk_forward({"fpga": arch}, frame, **kwargs) == rows
    with pytest.raises(ValueError, match="fraction"):
        walk_forward({"fpga": arch}, frame, fraction=1.0)


def test_a_measured_tail_that_leaves_nothing_feasible_is_a_fail_verdict(offline, cpu_space, monkeypatch):
    """Issue 20: the MEASURED tail (here a machine at load ~300: p99 1,000x the fastest call)
    leaves no model within the budget; the run still writes its files, says FAIL with the
    reason, and ``hwnas run`` exits 1 (2 stays for bad arguments)."""
    pytest.importorskip("onnxruntime")
    import hwnas.deploy.tail as tail_module
    import hwnas.pipeline.run as run_module
    from hwnas.deploy.tail import TailCalibration
    from hwnas.pipeline.run import TAIL_FACTOR_MAX

    calls = []

    def loaded_machine_tail(archs, **options):
        calls.append((list(archs), options))
        return TailCalibration(percentile=99.0, labels=("a", "b", "c"), fastest_us=(5.0, 6.0, 7.0),
                               tail_us=(5_000.0, 4_800.0, 6_300.0),
                               conditions={"runtime": "onnxruntime", "threads": 1, "load_avg_1min": 300.0})

    monkeypatch.setattr(tail_module, "measure_tail", loaded_machine_tail)
    out = offline / "api"
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        result = run_pipeline("cpu", space=cpu_space, latency_budget_us=10.0, out_dir=out, **CPU_TINY)
    assert len(calls) == 1 and len(calls[0][0]) == 3  # the pipeline's tail stage asked for the calibration
    tail = result.tail
    assert tail["basis"] == "measured on this CPU" and tail["too_noisy"] is True
    assert tail["measured_factor"] == pytest.approx(1_000.0) and tail["factor"] == TAIL_FACTOR_MAX
    assert result.search.problem.latency_budget_us == pytest.approx(10.0 / TAIL_FACTOR_MAX)
    assert result.choice == {"rule": CHOICE_RULES[False], "within_budget": False}
    summary = json.loads((out / "cpu_summary.json").read_text())
    assert summary["verdict"]["passed"] is False
    reason = summary["verdict"]["reasons"][0]
    assert "nothing met the budget" in reason and "10 µs" in reason and "too noisy" in reason
    assert f"tail factor {TAIL_FACTOR_MAX:.2f}x" in reason and "measured p99" in reason
    for name in ("summary.json", "front.png", "search.json", "arch.json", "model.onnx", "profile.json"):
        assert (out / f"cpu_{name}").stat().st_size > 0, name

    # The command line, on the same space and the table just measured: a miss exits 1.
    monkeypatch.setattr(run_module, "target_space", lambda target, quick=False, **kw: cpu_space)
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        code = main(["run", "--target", "cpu", "--out-dir", str(offline / "cli"), *TINY, "--budget-us", "10",
                     "--profile", str(out / "cpu_profile.json")])
    assert code == 1 and len(calls) == 2
    cli_summary = json.loads((offline / "cli" / "cpu_summary.json").read_text())
    assert cli_summary["verdict"]["passed"] is False and "too noisy" in cli_summary["verdict"]["reasons"][0]


def test_a_finished_run_leaves_no_incomplete_marker(fpga_run):
    _, out = fpga_run
    assert (out / "fpga_summary.json").is_file()
    assert not list(out.glob("*INCOMPLETE*"))


def test_an_interrupted_run_is_marked_incomplete_and_export_refuses_it(offline, monkeypatch, capsys):
    import hwnas.pipeline.run as run_module

    def interrupted(*args, **kwargs):
        target_space("fpga", True).sample(np.random.default_rng(0)).save(offline / "out" / "fpga_arch.json")
        raise KeyboardInterrupt  # what a Ctrl-C (or a kill, minus the clean-up) leaves behind

    monkeypatch.setattr(run_module, "_run_stages", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline("fpga", out_dir=offline / "out", quick=True, progress=False)
    marker = offline / "out" / "fpga_INCOMPLETE"
    assert marker.is_file() and "run the same command again" in marker.read_text().lower()
    capsys.readouterr()
    code = main(["export", str(offline / "out"), "--out", str(offline / "m.onnx"), "--untrained"])
    err = capsys.readouterr().err
    assert code == 2 and "fpga_INCOMPLETE" in err and "did not finish" in err
    assert not (offline / "m.onnx").exists()


def test_verbose_is_accepted_after_the_command_too(offline, capsys):
    code = main(["run", "--target", "tpu", "-v", "--out-dir", str(offline / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "target" in err and "Traceback" in err
    assert not (offline / "o").exists()
