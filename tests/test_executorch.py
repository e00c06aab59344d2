"""ExecuTorch with XNNPACK as the phone's runtime (hwnas.deploy.executorch): the .pte export, the
runtime in a lookup table, the delegation report, the SLA report on a .pte and ``export --format``."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("executorch", reason="ExecuTorch is not installed (pip install hwnas[mobile])")

from hwnas.__main__ import main  # noqa: E402
from hwnas.architecture import Architecture, LayerSpec, OpType  # noqa: E402
from hwnas.deploy.coverage import coverage_architecture
from hwnas.deploy.executorch import (  # noqa: E402
    ExecuTorchRuntime,
    PteModule,
    delegation_table,
    set_threads,
)
from hwnas.deploy.export import export, load_exported  # noqa: E402
from hwnas.hardware import HardwareProfile  # noqa: E402
from hwnas.latency.lut import build_lut_detailed  # noqa: E402
from hwnas.latency.spec import TimingSpec  # noqa: E402
from hwnas.model import build_model  # noqa: E402
from hwnas.runtime import available_runtimes, get_runtime  # noqa: E402
from hwnas.space import SearchSpace  # noqa: E402

ATOL = RTOL = 1e-5
"""A .pte runs the same FP32 arithmetic as eager PyTorch, in XNNPACK's kernels: outputs agree to
float32 rounding (about 1e-7 here), so the tolerance is export's default, 1e-5 absolute + 1e-5 relative."""


@pytest.fixture(scope="module")
def small_arch() -> Architecture:
    """A conv, a projection-skip conv, pooling and the global-average head: every kind of node once."""
    layers = (LayerSpec(OpType.FC, 5, 8), LayerSpec(OpType.CONV, 8, 16, kernel_size=3, use_skip=True),
              LayerSpec(OpType.AVG_POOL, 16, 16, kernel_size=2))
    return Architecture(layers, 5, 16, "gap", 1)


def test_pte_export_reproduces_eager(tmp_path):
    arch = coverage_architecture(SearchSpace.mobile(), lookback=32)
    model = build_model(arch, seed=3)
    windows = torch.randn(6, arch.input_features, arch.lookback, generator=torch.Generator().manual_seed(1))
    result = export(model, tmp_path / "m.pte", format="pte", check_inputs=windows, atol=ATOL, rtol=RTOL)
    assert result.format == "pte" and result.checked_windows == 6 and result.size_bytes > 0
    assert "XnnpackPartitioner" in result.exporter and result.max_abs_error <= ATOL
    with torch.inference_mode():
        want = model(windows)
        for batch in (windows[:1], windows):  # the batch dimension is dynamic
            torch.testing.assert_close(load_exported(tmp_path / "m.pte")(batch), model(batch), atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(PteModule((tmp_path / "m.pte").read_bytes())(windows), want, atol=ATOL, rtol=RTOL)


def test_registered_runtime_and_threads(small_arch):
    assert "executorch" in available_runtimes()
    runtime = get_runtime("executorch", threads=1)
    assert isinstance(runtime, ExecuTorchRuntime) and runtime.threads == 1
    assert runtime.version().startswith("executorch 1.")
    from executorch.extension.pybindings import portable_lib

    runtime.prepare(build_model(small_arch), (torch.zeros(1, 5, 16),))
    assert portable_lib._threadpool_get_thread_count() == 1
    # the pool is one per process: once programs run on it, another size is refused, not applied
    with pytest.raises(ValueError, match="threads 2: ExecuTorch's thread pool"):
        get_runtime("executorch", threads=2)
    set_threads(1)  # the size it has: nothing to do
    with pytest.raises(ValueError, match="threads"):
        get_runtime("executorch", threads=0)


def test_prepared_callable_runs_the_module(small_arch):
    model = build_model(small_arch, seed=0)
    x = torch.randn(1, 5, 16)
    run = ExecuTorchRuntime().prepare(model, (x,))
    with torch.inference_mode():
        torch.testing.assert_close(run()[0], model(x), atol=ATOL, rtol=RTOL)


def test_delegation_table_lists_ops(small_arch):
    rows = {row.op: row for row in delegation_table(small_arch)}
    convs = sum(isinstance(m, torch.nn.Conv1d) for m in build_model(small_arch).modules())
    conv = rows["aten_convolution_default"]
    assert conv.delegated == convs and conv.portable == 0 and conv.runs_in == "XNNPACK"  # every Conv1d
    assert rows["aten_linear_default"].runs_in == "XNNPACK"
    assert rows["aten_add_tensor"].delegated == 1  # the skip's sum
    # the head's mean over time is left to the portable kernels in ExecuTorch 1.5 (stated in the chapter)
    assert rows["aten_mean_dim"].runs_in == "portable"
    assert not {"getitem", "alloc", "Total"} & set(rows)
    assert all(r.to_dict()["runs_in"] in ("XNNPACK", "portable", "both") for r in rows.values())


def test_table_in_executorch_round_trips_json_with_its_version(tmp_path):
    space = SearchSpace.named("mobile", ops=(OpType.CONV,), widths=(8,), depths=(2,), lookbacks=(16,),
                              skip_choices=(False,), head_types=("gap",), input_features=5)
    build = build_lut_detailed(space, runtime="executorch", timing=TimingSpec.QUICK.replace(target_ms=1.0),
                               calibration=3, progress=False)
    assert build.per_call_us > 0  # the one-element delegated call, taken off every entry
    profile = build.profile("et-test")
    loaded = HardwareProfile.load(profile.save(tmp_path / "p.json"))
    assert loaded.conditions["runtime"] == "executorch"
    assert loaded.conditions["runtime_version"] == ExecuTorchRuntime().version()
    assert loaded.conditions["per_call_us_subtracted"] == round(build.per_call_us, 3)
    assert loaded.latency_table == pytest.approx(profile.latency_table)
    arch = build.calibration[0]
    assert loaded.predict_latency(arch) == pytest.approx(profile.predict_latency(arch))


def test_sla_report_on_a_pte(small_arch, tmp_path, capsys):
    path = tmp_path / "m.pte"
    assert main(["export", str(_arch_file(small_arch, tmp_path)), "--untrained", "--out", str(path)]) == 0
    assert "pte" in capsys.readouterr().out
    assert main(["report", str(path), "--budget-us", "1e7", "--repeats", "200", "--bursts", "2", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"runtime": "executorch"' in out and "PASS" not in out  # JSON, not the summary


def _arch_file(arch: Architecture, folder):
    path = folder / "arch.json"
    path.write_text(arch.to_json())
    return path


@pytest.mark.parametrize("argv, needle", [
    (["export", "{arch}", "--untrained", "--out", "{tmp}/m.pte", "--format", "tflite"], "--format"),
    (["export", "{arch}", "--untrained", "--out", "{tmp}/m.pte", "--format", ""], "--format"),
    (["export", "{arch}", "--untrained", "--out", "{tmp}/m.onnx", "--format", "pte"], "--format pte"),
    (["export", "{arch}", "--untrained", "--out", "{tmp}/m.bin"], "--out"),
    (["report", "{tmp}/absent.pte", "--budget-us", "10"], "absent.pte"),
    (["report", "{tmp}/bad.pte", "--budget-us", "10"], "not an ExecuTorch program"),
    (["report", "{tmp}/bad.pte", "--budget-us", "10", "--runtime", "onnxruntime"], "--runtime onnxruntime"),
])
def test_bad_format_exits_2_naming_the_option(argv, needle, small_arch, tmp_path, capsys):
    (tmp_path / "bad.pte").write_bytes(b"not a flatbuffer")
    argv = [a.format(arch=_arch_file(small_arch, tmp_path), tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "m.pte").exists() and not (tmp_path / "m.onnx").exists()


def test_the_phone_plan_uses_executorch_except_in_quick_runs():
    from hwnas.pipeline.deploy import cpu_runtime

    assert cpu_runtime(quick=False)[0] == "executorch"
    name, why = cpu_runtime(quick=True)  # lowering every layer of the table takes minutes
    assert name == "onnxruntime" and "quick" in why


def test_cpu_verdict_names_the_runtime_its_sla_was_measured_in():
    from types import SimpleNamespace

    from hwnas.pipeline.run import _verdict

    sla = SimpleNamespace(passed=True, percentile=99.0, reasons=[], conditions={"runtime": "executorch"})
    assert _verdict("cpu", sla, 10.0, [], 40.0)["basis"] == "measured p99 in ExecuTorch (XNNPACK) on this CPU"


@pytest.mark.slow
def test_a_full_cpu_run_deploys_and_reports_the_pte(tmp_path, monkeypatch):
    """The full (non-quick) capstone path of the phone target, end to end on a tiny space: the table,
    the tail and the SLA in ExecuTorch, the FP32 .pte written, checked and read by the SLA report."""
    import json

    from hwnas.pipeline import run_pipeline, target_space

    monkeypatch.setenv("HWNAS_BYBIT_DIR", "")
    monkeypatch.setenv("HWNAS_OFFLINE", "1")
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    space = target_space("cpu", widths=(8,), kernel_sizes=(3,), depths=(2,), lookbacks=(16,),
                         ops=(OpType.CONV, OpType.FC), activations=("relu",), skip_choices=(False,),
                         head_types=("last",))
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        result = run_pipeline("cpu", space=space, quick=False, evals=3, retrain_epochs=1, retrain_windows=128,
                              sla_repeats=50, latency_budget_us=1e6, select_top=1, out_dir=out, progress=False,
                              timing=TimingSpec.COMPARE.replace(target_ms=1.0),
                              lut_options={"timing": TimingSpec(passes=1, target_ms=0.5, min_reps=4),
                                           "calibration": 3})
    summary = json.loads((out / "cpu_summary.json").read_text())
    assert summary["evaluations"] == 3
    # the table, the tail and the SLA were all measured in ExecuTorch, the runtime the app ships
    assert "ExecuTorch" in result.profile_kind and result.search.problem.profile.conditions["runtime"] == "executorch"
    assert result.tail["calibration"]["conditions"]["runtime"] == "executorch"
    pte = out / "cpu_model.pte"
    assert pte.is_file() and pte.read_bytes()[4:8] == b"ET12"  # ExecuTorch's flatbuffer identifier
    assert summary["outputs"]["pte"] == str(pte) and summary["precision"] == "fp32 pte"
    assert summary["sla"]["file"] == str(pte) and summary["sla"]["conditions"]["runtime"] == "executorch"
    assert summary["sla"]["n"] == 50 and 0 < summary["sla"]["p50_us"] <= summary["sla"]["p99_us"]
    assert summary["verdict"]["passed"] == (summary["sla"]["p99_us"] <= 1e6)
    assert summary["scoring"]["fixed_point"] == "float"  # the phone scores in float
    # the .pte is the retrained model: it reproduces the saved weights' outputs
    from hwnas.search.weights import load_state_dict

    model = build_model(result.arch, seed=0)
    model.load_state_dict(load_state_dict(out / "cpu_weights.pt"))
    x = torch.randn(4, result.arch.input_features, result.arch.lookback, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(PteModule(pte)(x), model.eval()(x), atol=ATOL, rtol=RTOL)


def test_lowering_with_the_operator_memo_gives_the_same_program():
    """The memo of torch.export's operator list (hwnas.deploy.executorch._cia_ops_memo) changes the
    lowering's speed, not its result, and puts torch's function back afterwards."""
    import torch.export.exported_program as exported_program

    from hwnas.deploy import executorch as et

    original = exported_program._collect_all_valid_cia_ops
    module, x = torch.nn.Conv1d(3, 4, 3), torch.randn(1, 3, 16)
    with_memo = et.pte_bytes(module, (x,))
    assert exported_program._collect_all_valid_cia_ops is original  # restored on leaving the memo
    assert et._CIA_OPS and all(len(ops) > 0 for ops in et._CIA_OPS.values())
    from executorch.exir import to_edge_transform_and_lower

    plain = to_edge_transform_and_lower(torch.export.export(module.eval(), (x,)),
                                        partitioner=et._partitioners()).to_executorch().buffer
    assert with_memo == bytes(plain)
