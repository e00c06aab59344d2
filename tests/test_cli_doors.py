"""Issue 21: from a search to a deployed, trained model on the command line, and every bad input
stopped at the door (exit 2, one line naming the option or file, no traceback, nothing written)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import hwnas_cli

import hwnas
from hwnas.__main__ import main
from hwnas.deploy.coverage import coverage_architecture
from hwnas.model import build_model
from hwnas.search import SearchResult

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture(scope="module")
def inputs(cli_inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("doors")
    arch = coverage_architecture(hwnas.SearchSpace.mobile(), lookback=32)
    bad = {
        "csv": cli_inputs["csv"], "profile": cli_inputs["profile"], "folder": folder,
        "arch": arch.save(folder / "arch.json"),
        "truncated_onnx": folder / "truncated.onnx", "weights": folder / "weights.pt",
        "malformed_profile": folder / "malformed.json", "empty_csv": folder / "empty.csv",
        "other_space": folder / "other_space.json",
    }
    from hwnas.deploy.export import export

    whole = export(build_model(arch, seed=0).eval(), folder / "whole.onnx", check=False)
    data = Path(whole.path).read_bytes()
    bad["truncated_onnx"].write_bytes(data[: len(data) // 2])
    bad["weights"].write_text("not a pickle at all")
    bad["malformed_profile"].write_text('{"name": "cpu", "latency_table": [')
    bad["empty_csv"].write_text("")
    # a measured-table profile that prices nothing of the default space
    other = hwnas.HardwareProfile("other", hwnas.DeviceType.CPU, {}, 10 * 2**20, 1e9)
    other.save(bad["other_space"])
    return bad


def test_search_export_report_end_to_end_with_trained_weights(inputs: dict[str, Path], capsys) -> None:
    folder = inputs["folder"] / "e2e"
    folder.mkdir()
    out = folder / "result.json"
    assert main(["search", "--strategy", "random", "--budget-us", "50", "--evals", "4", "--batch-size", "4",
                 "--profile", str(inputs["profile"]), "--data", str(inputs["csv"]), "--space", "fpga",
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "trained weights" in printed and (folder / "result.sqlite").is_file()  # the default store
    result = SearchResult.load(out)
    weights = sorted((folder / "result.weights").glob("*.pt"))
    assert len(weights) == len(result) >= 1
    onnx_path = folder / "model.onnx"
    assert main(["export", str(out), "--rank", "1", "--out", str(onnx_path)]) == 0
    assert "UNTRAINED" not in capsys.readouterr().out
    # the exported file computes what the model the search trained computes
    from hwnas.deploy.runtimes import OrtModule
    from hwnas.proxy.training import train_model
    from hwnas.search._cli import _task

    arch = result[0].arch
    task, _ = _task(str(inputs["csv"]), "fpga", False)
    trained = train_model(arch, task, result.run.eval_seed)
    fresh = build_model(arch, seed=0).eval()
    x = torch.randn(5, arch.input_features, arch.lookback, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        got, want, untrained = OrtModule(onnx_path)(x), trained(x), fresh(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(want, untrained, atol=1e-4)  # the weights are really the trained ones
    # report: a measured-in-eager profile and another runtime are refused, the profile's runtime is the default
    assert main(["report", str(onnx_path), "--budget-us", "1e7", "--repeats", "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True


def test_export_refuses_untrained_weights(inputs: dict[str, Path], capsys) -> None:
    out = inputs["folder"] / "untrained.onnx"
    assert main(["export", str(inputs["arch"]), "--out", str(out)]) == 2
    assert "--untrained" in capsys.readouterr().err and not out.exists()


def test_report_refuses_a_profile_of_another_runtime(inputs: dict[str, Path], capsys) -> None:
    profile = hwnas.HardwareProfile("cpu-eager", hwnas.DeviceType.CPU, {}, 2**20, 1e9,
                                    conditions={"runtime": "eager"})
    path = profile.save(inputs["folder"] / "eager.json")
    assert main(["report", str(inputs["arch"]), "--budget-us", "10", "--profile", str(path),
                 "--runtime", "onnxruntime"]) == 2
    err = capsys.readouterr().err
    assert "--profile" in err and "eager" in err


CASES = [
    (["sample", "--out", "/proc/x.json"], "--out"),
    (["sample", "--out", "/sys/x.json"], "--out"),
    (["profile-cpu", "--out", "/proc/x.json"], "--out"),
    (["profile-cpu", "--out", "{tmp}/p.json", "--threads", "100000"], "--threads"),
    (["search", "--budget-us", "50", "--evals", "2", "--profile", "{profile}", "--out", "/proc/r.json"], "--out"),
    (["search", "--budget-us", "50", "--evals", "2", "--profile", "{profile}", "--out", "{tmp}/r.json",
      "--plot", "/proc/x.png"], "--plot"),
    (["search", "--budget-us", "50", "--evals", "2", "--profile", "{other_space}", "--out", "{tmp}/r.json"],
     "--profile"),
    (["search", "--budget-us", "50", "--evals", "2", "--profile", "{malformed_profile}", "--out",
      "{tmp}/r.json"], "malformed.json"),
    (["search", "--budget-us", "50", "--evals", "2", "--profile", "{profile}", "--space", "fpga",
      "--data", "{empty_csv}", "--out", "{tmp}/r.json"], "empty.csv"),
    (["search", "--budget-us", "50", "--evals", "2", "--profile", "{profile}", "--seed", "-1",
      "--out", "{tmp}/r.json"], "--seed"),
    (["run", "--target", "cpu", "--quick", "--out-dir", "/proc/x"], "--out-dir"),
    (["run", "--target", "cpu", "--quick", "--profile", "{other_space}", "--out-dir", "{tmp}/run"], "--profile"),
    (["run", "--target", "cpu", "--quick", "--profile", "{malformed_profile}", "--out-dir", "{tmp}/run"],
     "malformed.json"),
    (["report", "{truncated_onnx}", "--budget-us", "10"], "truncated.onnx"),
    (["report", "{arch}", "--budget-us", "10", "--repeats", "100000000"], "--repeats"),
    (["report", "{arch}", "--budget-us", "10", "--threads", "100000"], "--threads"),
    (["export", "{arch}", "--weights", "{weights}", "--out", "{tmp}/m.onnx"], "--weights"),
    (["export", "{arch}", "--untrained", "--seed", "-1", "--out", "{tmp}/m.onnx"], "--seed"),
    (["export", "{arch}", "--untrained", "--out", "/proc/m.onnx"], "--out"),
    (["sample", "--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("argv, named", CASES, ids=[" ".join(a[:1] + [n]) for a, n in CASES])
def test_bad_input_is_stopped_at_the_door(argv, named, inputs, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HWNAS_OFFLINE", "1")
    values = {k: str(v) for k, v in inputs.items()} | {"tmp": str(tmp_path)}
    argv = [a.format(**values) for a in argv]
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and named in err
    assert time.perf_counter() - start < 30
    assert list(tmp_path.iterdir()) == []  # nothing written, no folder, no temporary file


@pytest.mark.parametrize("value", ["maybe", "2", "yes please"])
def test_offline_env_is_parsed_strictly(value, monkeypatch) -> None:
    from hwnas.data.loader import offline_from_env

    monkeypatch.setenv("HWNAS_OFFLINE", value)
    with pytest.raises(ValueError, match="HWNAS_OFFLINE"):
        offline_from_env()


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("false", False),
                                             ("", False), ("TRUE", True)])
def test_offline_env_values(value, expected, monkeypatch) -> None:
    from hwnas.data.loader import offline_from_env

    monkeypatch.setenv("HWNAS_OFFLINE", value)
    assert offline_from_env() is expected


def test_bybit_dir_pointing_at_a_file_is_an_error(inputs, monkeypatch) -> None:
    from hwnas.data.loader import load_klines

    monkeypatch.setenv("HWNAS_BYBIT_DIR", str(inputs["csv"]))
    monkeypatch.setenv("HWNAS_OFFLINE", "1")
    with pytest.raises(ValueError, match="HWNAS_BYBIT_DIR.*klines.csv"):
        load_klines("BTCUSDT", "15")


@pytest.mark.parametrize("call, named", [
    (lambda: hwnas.make_proxy_task(hwnas.synthetic_klines(300, seed=0), lookback=-1), "lookback"),
    (lambda: hwnas.SearchSpace.default().sample(0), "rng"),
    (lambda: hwnas.count_flops("x"), "arch"),
    (lambda: hwnas.search(hwnas.SearchSpace.default(), hwnas.SearchSpace.default().sample(
        __import__("numpy").random.default_rng(0)), 100.0, 1), "hardware"),
    (lambda: hwnas.fpga_profile("x"), "fpga"),
])
def test_api_errors_name_the_argument(call, named) -> None:
    with pytest.raises((ValueError, TypeError), match=named):
        call()


def test_a_killed_search_leaves_no_temp_files_after_the_next_run(inputs, tmp_path) -> None:
    out = tmp_path / "r.json"
    argv = ["search", "--strategy", "random", "--budget-us", "50", "--evals", "6", "--batch-size", "2",
            "--profile", str(inputs["profile"]), "--data", str(inputs["csv"]), "--space", "fpga",
            "--out", str(out), "--quiet"]
    # a temporary file as a killed writer leaves it (its process id no longer runs)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".r.json.{dead.pid}.abc.tmp").write_text("half")
    env = dict(os.environ, HWNAS_OFFLINE="1", MPLBACKEND="Agg")
    proc = subprocess.Popen([sys.executable, "-m", "hwnas", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "r.sqlite").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = hwnas_cli(*argv)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.rglob(".*.tmp"))
    assert len(SearchResult.load(out).history) == 6


def test_a_claim_is_held_by_a_live_process_and_taken_from_a_dead_one(tmp_path) -> None:
    from hwnas.search.store import EvaluationStore

    arch = hwnas.SearchSpace.default().sample(__import__("numpy").random.default_rng(0))
    first = EvaluationStore(tmp_path / "s.sqlite", "t", "p")
    assert first.claim(arch)
    # another live process holds it: pretend the claim is by our parent (alive, not us)
    first._db.execute("UPDATE claims SET pid=?", (os.getppid(),))
    assert not first.claim(arch)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    first._db.execute("UPDATE claims SET pid=?", (dead.pid,))
    assert first.claim(arch)  # its owner died: taken over


def test_two_identical_searches_on_one_store_share_the_training(inputs, tmp_path) -> None:
    import re

    store = tmp_path / "shared.sqlite"
    argv = ["search", "--strategy", "random", "--budget-us", "50", "--evals", "6", "--batch-size", "6",
            "--profile", str(inputs["profile"]), "--data", str(inputs["csv"]), "--space", "fpga",
            "--store", str(store), "--quiet", "--save-weights", "none"]
    env = dict(os.environ, HWNAS_OFFLINE="1", MPLBACKEND="Agg")
    procs = [subprocess.Popen([sys.executable, "-m", "hwnas", *argv, "--out", str(tmp_path / f"r{i}.json")],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    trained = [int(re.search(r"(\d+) trained now", out).group(1)) for out, _ in outputs]
    result = SearchResult.load(tmp_path / "r0.json")
    distinct = {hwnas.search.store.architecture_key(s.arch) for s in result.history if s.metrics.feasible}
    assert sum(trained) == len(distinct)  # every candidate trained once, by one of the two


def test_a_three_objective_front_is_drawn_as_points_not_a_step_line(inputs, tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from hwnas.plots.capstone import search_front
    from hwnas.search._cli import _task

    task, _ = _task(str(inputs["csv"]), "fpga", False)
    space = hwnas.SearchSpace.named("fpga", input_features=task.num_features)
    profile = hwnas.HardwareProfile.load(inputs["profile"])
    result = hwnas.search(space, hwnas.fpga_profile(), 50.0, 4, strategy="random", task=task,
                          memory_budget=profile.memory_budget_bytes, progress=False, batch_size=4)
    ax = search_front(result, title="a very long title " * 12)
    assert "front" not in [line.get_label() for line in ax.get_lines()]  # no step line
    assert any("2-D projection" in c.get_label() for c in ax.collections)
    assert "\n" in ax.get_title()  # wrapped to fit


def test_labels_tell_widths_and_skips_apart() -> None:
    import numpy as np

    space = hwnas.SearchSpace.default()
    widening = {"conv", "dwsep_conv", "dilated_conv", "fc"}  # ops whose width is their own choice
    arch = next(a for a in (space.sample(np.random.default_rng(s)) for s in range(100))
                if a.layers[1].op.value in widening and a.layers[2].op.value in widening)
    wider = arch.to_dict()
    layer = wider["layers"][1]
    layer["out_channels"] *= 2
    if len(wider["layers"]) > 2:
        wider["layers"][2]["in_channels"] = layer["out_channels"]
    other = hwnas.Architecture.from_dict(wider)  # a draw whose first layer can be widened in place
    assert other.label() != arch.label()


def test_sample_json_into_a_closed_pipe_exits_0() -> None:
    done = subprocess.run(f"{sys.executable} -m hwnas sample --json | head -1", shell=True, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, HWNAS_OFFLINE="1"),
                          executable="/bin/bash")
    assert done.stdout.strip() == "{" and "Traceback" not in done.stderr
    status = subprocess.run(f"set -o pipefail; {sys.executable} -m hwnas sample --json | head -1 >/dev/null",
                            shell=True, cwd=ROOT, timeout=120, env=dict(os.environ, HWNAS_OFFLINE="1"),
                            executable="/bin/bash")
    assert status.returncode == 0


@pytest.mark.parametrize("command", [["space", "--json"], ["cost", "{arch}", "--json"],
                                     ["predict", "{arch}", "--profile", "{profile}", "--json"]])
def test_read_only_commands_print_json(command, inputs, capsys) -> None:
    arch = hwnas.SearchSpace.named("fpga", input_features=10).sample(__import__("numpy").random.default_rng(0))
    path = arch.save(inputs["folder"] / "fpga_arch.json")
    argv = [a.format(arch=path, profile=inputs["profile"]) for a in command]
    assert main(argv) == 0
    assert isinstance(json.loads(capsys.readouterr().out), dict)


def test_search_data_folder_without_the_file_fails_without_a_fallback_warning(inputs, tmp_path, capsys) -> None:
    code = main(["search", "--budget-us", "50", "--evals", "2", "--profile", str(inputs["profile"]), "--space",
                 "fpga", "--data", str(tmp_path), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and "--data" in err and "synthetic" not in err.lower()
    assert list(tmp_path.iterdir()) == []


def test_help_shows_defaults_but_not_on_required_options(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: evolution)" in text and "(default: 8)" in text and "(default: 0)" in text
    assert "default: None" not in text


def test_run_folder_exports_its_trained_model(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HWNAS_BYBIT_DIR", "")
    monkeypatch.setenv("HWNAS_OFFLINE", "1")
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    code = main(["run", "--target", "fpga", "--out-dir", str(out), "--quick", "--evals", "3", "--retrain-epochs",
                 "1", "--retrain-windows", "128", "--sla-repeats", "50", "--quiet"])
    assert code in (0, 1)
    summary = capsys.readouterr().out
    assert "latency predicted" in summary and "basis:" in summary and "modelled" in summary
    assert (out / "fpga_weights.pt").is_file()
    assert main(["export", str(out), "--out", str(tmp_path / "m.onnx")]) == 0
    from hwnas.deploy.runtimes import OrtModule
    from hwnas.search.weights import load_state_dict

    arch = hwnas.Architecture.load(out / "fpga_arch.json")
    model = build_model(arch)
    model.load_state_dict(load_state_dict(out / "fpga_weights.pt"))
    x = torch.randn(4, arch.input_features, arch.lookback)
    with torch.inference_mode():
        torch.testing.assert_close(OrtModule(tmp_path / "m.onnx")(x), model.eval()(x), rtol=1e-4, atol=1e-5)


def test_architecture_save_and_the_command_line_refuse_an_unwritable_path(tmp_path) -> None:
    import numpy as np

    arch = hwnas.SearchSpace.default().sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="/proc/x.json"):
        arch.save("/proc/x.json")
    assert main(["sample", "--out", "/proc/x.json"]) == 2
    # the library creates a missing folder (as every save does); the command line refuses it (a typo)
    assert arch.save(tmp_path / "made" / "x.json").is_file()
    assert main(["sample", "--out", str(tmp_path / "nodir" / "x.json")]) == 2
    assert not (tmp_path / "nodir").exists()


def test_verbosity_flags(tmp_path, capsys) -> None:
    assert main(["-v", "sample", "--out", str(tmp_path / "no" / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("hwnas sample: error:")
    assert main(["-q", "sample", "--out", str(tmp_path / "x.json")]) == 0
    with pytest.raises(SystemExit):
        main(["-v", "-q", "space"])


def test_export_refuses_a_model_too_large_for_memory_before_building_it(tmp_path, capsys) -> None:
    huge = {"format_version": 1, "input_features": 10, "lookback": 16, "head": "last", "num_outputs": 1,
            "layers": [{"op": "fc", "in_channels": 10, "out_channels": 10**7, "kernel_size": 1, "stride": 1,
                        "dilation": 1, "heads": 1, "use_skip": False, "activation": "relu"},
                       {"op": "fc", "in_channels": 10**7, "out_channels": 10**7, "kernel_size": 1, "stride": 1,
                        "dilation": 1, "heads": 1, "use_skip": False, "activation": "relu"}]}
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(huge))
    start = time.perf_counter()
    assert main(["export", str(path), "--untrained", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "GiB" in capsys.readouterr().err and time.perf_counter() - start < 10
    assert not (tmp_path / "m.onnx").exists()


def test_run_reuses_the_profile_in_its_folder_unless_told_to_remeasure(tmp_path, monkeypatch, capsys) -> None:
    from hwnas.pipeline import target_space

    monkeypatch.setenv("HWNAS_BYBIT_DIR", "")
    monkeypatch.setenv("HWNAS_OFFLINE", "1")
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    out.mkdir()
    # a table for the quick CPU space (priced by the FPGA model: measuring one would take a minute)
    table = hwnas.fpga_profile().tabulate(target_space("cpu", quick=True))
    table.save(out / "cpu_profile.json")
    code = main(["run", "--target", "cpu", "--out-dir", str(out), "--quick", "--evals", "2", "--retrain-epochs",
                 "1", "--retrain-windows", "128", "--sla-repeats", "20", "--tail-factor", "1", "--quiet"])
    assert code in (0, 1)
    assert f"reused from {out / 'cpu_profile.json'}" in capsys.readouterr().out


def test_a_run_failing_midway_leaves_no_partial_folder(tmp_path, monkeypatch) -> None:
    import hwnas.search.loop as loop
    from hwnas.pipeline import run_pipeline

    monkeypatch.setenv("HWNAS_BYBIT_DIR", "")
    monkeypatch.setenv("HWNAS_OFFLINE", "1")
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the search broke")

    monkeypatch.setattr(loop, "minimize", broken)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="broke"):
        run_pipeline("fpga", out_dir=out, quick=True, evals=2, progress=False)
    assert not out.exists()


def test_a_resumed_search_counts_what_it_restored(inputs, tmp_path, capsys) -> None:
    argv = ["search", "--strategy", "random", "--budget-us", "50", "--evals", "4", "--batch-size", "4",
            "--profile", str(inputs["profile"]), "--data", str(inputs["csv"]), "--space", "fpga",
            "--out", str(tmp_path / "r.json"), "--quiet", "--save-weights", "none"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "restored" not in first and "0 trained now" not in first
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert "(0 trained now, 0 from the store, 4 restored from a saved run of this search)" in second


def test_report_takes_the_profiles_runtime_by_default(inputs, tmp_path, capsys) -> None:
    arch = hwnas.Architecture.load(inputs["arch"])
    table = hwnas.gpu_profile().tabulate(hwnas.SearchSpace.mobile())  # a finite price for every op
    eager = hwnas.HardwareProfile("cpu-eager", hwnas.DeviceType.CPU, dict(table.latency_table), 2**30, 1e9,
                                  conditions={"runtime": "eager"})
    assert not eager.missing(arch)  # the mobile table prices the coverage architecture
    path = eager.save(tmp_path / "eager.json")
    code = main(["report", str(inputs["arch"]), "--budget-us", "1e7", "--repeats", "30", "--profile", str(path),
                 "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["conditions"]["runtime"] == "eager" and data["predicted_us"] is not None
