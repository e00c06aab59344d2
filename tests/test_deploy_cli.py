"""The ``hwnas export`` and ``hwnas report`` commands (hwnas.deploy._cli)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hwnas.__main__ import main
from hwnas.deploy.coverage import coverage_architecture
from hwnas.model import build_model
from hwnas.space import SearchSpace


@pytest.fixture()
def arch_file(tmp_path):
    arch = coverage_architecture(SearchSpace.mobile(), lookback=32)
    path = tmp_path / "arch.json"
    path.write_text(arch.to_json(indent=2))
    return arch, path


def test_export_with_weights_then_report_pass_and_miss(arch_file, tmp_path, capsys):
    arch, path = arch_file
    trained = build_model(arch, seed=7)
    weights = tmp_path / "w.pt"
    torch.save(trained.state_dict(), weights)
    out = tmp_path / "model.onnx"
    assert main(["export", str(path), "--weights", str(weights), "--out", str(out)]) == 0
    assert "max |error|" in capsys.readouterr().out
    # the file carries the given weights, not fresh ones
    from hwnas.deploy.runtimes import OrtModule

    x = torch.randn(3, arch.input_features, arch.lookback)
    with torch.inference_mode():
        torch.testing.assert_close(OrtModule(out)(x), trained(x), rtol=1e-5, atol=1e-5)
    report = tmp_path / "r.json"
    assert main(["report", str(out), "--budget-us", "1e7", "--repeats", "200", "--warmup", "3",
                 "--json-out", str(report)]) == 0
    assert "PASS" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["passed"] and len(data["samples_us"]) == 200
    assert data["conditions"]["runtime"] == "onnxruntime"
    assert data["conditions"]["timing"]["warmup"] == 3 and data["conditions"]["timing"]["warmup_ms"] == 5.0
    assert main(["report", str(path), "--budget-us", "0.001", "--repeats", "100", "--runtime", "eager"]) == 1
    assert "MISS" in capsys.readouterr().out


def test_export_torch_export_format(arch_file, tmp_path):
    _, path = arch_file
    assert main(["export", str(path), "--untrained", "--out", str(tmp_path / "m.pt2")]) == 0
    assert (tmp_path / "m.pt2").stat().st_size > 0


@pytest.mark.parametrize("argv, needle", [
    (["report", "{arch}", "--budget-us", "-5"], "--budget-us"),
    (["report", "{arch}", "--budget-us", "10", "--threads", "0"], "--threads"),
    (["report", "{arch}", "--budget-us", "10", "--runtime", "tvm"], "--runtime"),
    (["report", "{arch}", "--budget-us", "10", "--repeats", "2", "--bursts", "3"], "--bursts"),
    (["report", "{arch}", "--budget-us", "10", "--warmup", "-1"], "--warmup must be an integer >= 0"),
    (["report", "{arch}", "--budget-us", "10", "--warmup-ms", "-1"], "--warmup-ms must be >= 0"),
    (["report", "{tmp}/missing.onnx", "--budget-us", "10"], "missing.onnx"),
    (["report", "{arch}", "--budget-us", "10", "--weights", "{tmp}/none.pt"], "--weights"),
    (["export", "{arch}", "--out", "{tmp}/m.tflite"], "--out"),
    (["export", "{arch}", "--out", "{tmp}/m.onnx"], "--untrained"),
    (["export", "{arch}", "--out", "{tmp}/no/such/dir/m.onnx"], "--out"),
    (["export", "{tmp}/absent.json", "--out", "{tmp}/m.onnx"], "absent.json"),
])
def test_bad_arguments_exit_2_with_one_line(argv, needle, arch_file, tmp_path, capsys):
    _, path = arch_file
    argv = [a.format(arch=path, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err
    assert not (tmp_path / "m.tflite").exists()


def test_command_line_end_to_end(arch_file, tmp_path):
    _, path = arch_file
    out = tmp_path / "m.onnx"
    run = [sys.executable, "-m", "hwnas"]
    done = subprocess.run([*run, "export", str(path), "--untrained", "--out", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    miss = subprocess.run([*run, "report", str(out), "--budget-us", "0.01", "--repeats", "100"],
                          capture_output=True, text=True, timeout=120)
    assert miss.returncode == 1 and "MISS" in miss.stdout


def test_argparse_rejects_a_non_number(arch_file, capsys):
    _, path = arch_file
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(path), "--budget-us", "abc"])
    assert exit_.value.code == 2 and "--budget-us" in capsys.readouterr().err
