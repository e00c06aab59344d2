"""The command line: sample, cost, and clear errors on bad input."""

import json
import re

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


def test_cost_reports_bad_files(tmp_path, capsys, mentions):
    bad = tmp_path / "bad.json"
    layer = {"op": "conv", "in_channels": 4, "out_channels": 0}
    bad.write_text(json.dumps({"input_features": 4, "lookback": 8, "layers": [layer]}))
    assert main(["cost", str(bad)]) == 2
    err = capsys.readouterr().err
    assert re.search(mentions("bad.json", "layer 0", "out_channels", "1", "0"), err)
    assert main(["cost", str(tmp_path / "missing.json")]) == 2
    assert re.search(mentions("missing.json"), capsys.readouterr().err)


def test_space_lists_candidates(capsys):
    assert main(["space", "--name", "fpga"]) == 0
    assert "space 'fpga'" in capsys.readouterr().out


def test_fetch_fills_the_cache_over_http(tmp_path, capsys, monkeypatch):
    from fake_bybit import FakeBybit

    monkeypatch.delenv("HWNAS_OFFLINE", raising=False)  # CI sets it; the fake server is local

    with FakeBybit(n=300) as fake:
        code = main(["fetch", "BTCUSDT", "--interval", "15", "--limit", "250",
                     "--cache-dir", str(tmp_path), "--base-url", fake.base_url])
    assert code == 0
    assert "250 candles of linear BTCUSDT 15" in capsys.readouterr().out
    assert len(list(tmp_path.glob("*.csv"))) == 1


def test_fetch_rejects_bad_interval_before_any_request(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HWNAS_OFFLINE", "1")  # the interval is named first, offline or not
    assert main(["fetch", "BTCUSDT", "--interval", "7", "--cache-dir", str(tmp_path),
                 "--base-url", "http://127.0.0.1:9"]) == 2
    assert "interval" in capsys.readouterr().err


def test_predict_on_a_saved_profile(tmp_path, capsys):
    from hwnas import SearchSpace
    from hwnas.targets import fpga_profile

    arch_path = tmp_path / "arch.json"
    assert main(["sample", "--space", "fpga", "--seed", "1", "--out", str(arch_path)]) == 0
    arch = Architecture.from_json(arch_path.read_text())
    profile = fpga_profile().tabulate(SearchSpace.fpga(lookbacks=(arch.lookback,)))
    profile.save(tmp_path / "fpga.json")
    capsys.readouterr()
    assert main(["predict", str(arch_path), "--profile", str(tmp_path / "fpga.json")]) == 0
    out = capsys.readouterr().out
    assert f"predicted {profile.predict_latency(arch):.1f} µs" in out and "feasible" in out
