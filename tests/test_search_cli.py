"""``python -m hwnas search``: a tiny real run, and bad arguments ending with one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import hwnas_cli

import hwnas

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture(scope="module")
def inputs(cli_inputs: dict[str, Path]) -> dict[str, Path]:
    return cli_inputs


def test_search_writes_the_result_and_prints_the_front(inputs: dict[str, Path]) -> None:
    out = inputs["folder"] / "result.json"
    done = hwnas_cli("search", "--strategy", "random", "--budget-us", "50", "--evals", "4", "--batch-size", "4",
                     "--profile", str(inputs["profile"]), "--data", str(inputs["csv"]), "--space", "fpga",
                     "--store", str(inputs["folder"] / "evals.sqlite"), "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "front:" in done.stdout and "score" in done.stdout
    result = hwnas.search.SearchResult.from_json(out.read_text())
    assert len(result.history) == 4 and result.run.strategy == "random"
    assert json.loads(out.read_text())["format"] == "hwnas-search-result"


def test_an_analytical_profile_and_a_front_over_budget(inputs: dict[str, Path]) -> None:
    # the FPGA cycle model saved untabulated: the command rebuilds the model, not a bare (empty) table
    bare = hwnas.fpga_profile(hwnas.ZU9EG).save(inputs["folder"] / "fpga_model.json")
    out = inputs["folder"] / "over.json"
    done = hwnas_cli("search", "--strategy", "random", "--budget-us", "0.01", "--evals", "3", "--batch-size", "3",
                     "--profile", str(bare), "--data", str(inputs["csv"]), "--space", "fpga", "--out", str(out),
                     "--quiet")
    assert done.returncode == 0, done.stderr
    assert "NOTHING MET THE BUDGET" in done.stdout and " OVER " in done.stdout  # soft: shown, and marked
    front = json.loads(out.read_text())["front"]
    assert front and not any(member["within_budget"] for member in front)


@pytest.mark.parametrize("change, option", [
    ({"--budget-us": "0"}, "--budget-us"),
    ({"--evals": "0"}, "--evals"),
    ({"--strategy": "nope"}, "strategy"),
    ({"--out": "/nonexistent-folder/r.json"}, "--out"),
    ({"--constraint": "firm"}, "--constraint"),
])
def test_bad_arguments_exit_2_with_one_line(inputs: dict[str, Path], change: dict[str, str], option: str) -> None:
    args = {"--budget-us": "50", "--evals": "2", "--profile": str(inputs["profile"]),
            "--data": str(inputs["csv"]), "--out": str(inputs["folder"] / "bad.json"), "--strategy": "random"}
    args.update(change)
    done = hwnas_cli("search", *[x for pair in args.items() for x in pair], "--quiet")
    assert done.returncode == 2
    lines = [line for line in done.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and option in lines[0]
    assert not (inputs["folder"] / "bad.json").exists()
