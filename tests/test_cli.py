"""The command line: sample, cost, and clear errors on bad input."""

import json

from hwnas import Architecture, count_flops
from hwnas.__main__ import main


def test_sample_then_cost(tmp_path, capsys):
    out = tmp_path / "arch.json"
    assert main(["sample", "--space", "fpga", "--seed", "4", "--out", str(out)]) == 0
    arch = Architecture.from_json(out.read_text())
    assert not list(tmp_path.glob("*.tmp"))
    assert main(["cost", str(out), "--precision", "int8"]) == 0
    printed = capsys.readouterr().out
    assert f"total FLOPs (batch 1): {count_flops(arch):,}" in printed


def test_cost_reports_bad_files(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"input_features": 4, "lookback": 8, "layers": [{"op": "conv", "in_channels": 4, "out_channels": 0}]}))
    assert main(["cost", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.json: layer 0: out_channels must be an integer >= 1" in err
    assert main(["cost", str(tmp_path / "missing.json")]) == 2
    assert "cannot read architecture file" in capsys.readouterr().err


def test_space_lists_candidates(capsys):
    assert main(["space", "--name", "fpga"]) == 0
    assert "space 'fpga'" in capsys.readouterr().out
