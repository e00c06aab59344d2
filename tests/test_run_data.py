"""``hwnas run`` on the user's task and data: --task, --data (a CSV or a folder), --symbol/--interval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import hwnas_cli

import hwnas
from hwnas.__main__ import main
from hwnas.proxy.task import min_task_rows

TINY = ["--quick", "--evals", "2", "--retrain-epochs", "1", "--retrain-windows", "64", "--sla-repeats", "20",
        "--quiet"]


def _csv(path: Path, rows: int, interval: str = "60", seed: int = 5) -> Path:
    frame = hwnas.synthetic_klines(rows, interval, seed=seed)
    frame.rename_axis("timestamp").reset_index().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("run_data")
    (folder / "empty").mkdir()
    (folder / "looks.csv").mkdir()
    (folder / "notes.txt").write_text("not klines\n")
    recorded = folder / "recorded"
    recorded.mkdir()
    _csv(recorded / "ETHUSDT_1h_2024.csv", 700)
    return {"folder": folder, "csv": _csv(folder / "SOLUSDT_1h.csv", 700), "recorded": recorded,
            "short": _csv(folder / "short.csv", 200)}


def test_direction_task_on_a_csv_end_to_end(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = hwnas_cli("run", "--target", "fpga", "--task", "direction", "--data", str(inputs["csv"]),
                     "--out-dir", str(out), *TINY, env={"HWNAS_BYBIT_DIR": ""})
    assert done.returncode in (0, 1), done.stderr
    summary = json.loads((out / "fpga_summary.json").read_text())
    assert "SOLUSDT_1h.csv" in summary["data_source"]
    search = json.loads((out / "fpga_search.json").read_text())
    assert search["run"]["target"] == "direction" and search["run"]["primary_metric"] == "ic"
    assert {"persistence", "lstm"} <= set(summary["baselines"])


def test_multi_fidelity_flag_is_the_default_ladder() -> None:
    from hwnas.pipeline._cli import _rungs
    from hwnas.search.fidelity import DEFAULT_RUNGS

    assert _rungs(True) == DEFAULT_RUNGS and _rungs(False) is None


def test_a_folder_with_symbol_and_interval(inputs: dict[str, Path]) -> None:
    from hwnas.data.loader import load_kline_path

    data = load_kline_path(inputs["recorded"], "ETHUSDT", "1h", option="--data")
    assert data.symbol == "ETHUSDT" and data.interval == "60" and len(data.frame) == 700
    assert load_kline_path(inputs["csv"], option="--data").interval == "60"  # read from the timestamps


BAD = [
    (["--task", "price"], "--task", "direction"),
    (["--data", "{folder}/looks.csv"], "--data", "is a folder"),
    (["--data", "{csv}/"], "--data", "is a file"),
    (["--data", "{folder}/empty"], "--data", "BTCUSDT_15m*.csv"),
    (["--data", "{recorded}", "--symbol", "BTCUSDT", "--interval", "15"], "--data", "BTCUSDT_15m*.csv"),
    (["--data", "{folder}/missing.csv"], "--data", "does not exist"),
    (["--data", "{folder}/notes.txt"], "--data", "not a .csv"),
    (["--data", "{short}"], "--data", "short.csv' has 200 rows"),
    (["--symbol", "bad sym!"], "--symbol", "symbol"),
    (["--interval", "7"], "--interval", "interval"),
    (["--space", "server"], "--space", "'default', 'mobile', 'gpu', 'fpga'"),
    (["--lookbacks", "8,sixteen"], "--lookbacks", "got '8,sixteen'"),
    (["--lookbacks", "16,0"], "--lookbacks", ">= 1"),
]


@pytest.mark.parametrize("argv, option, says", BAD)
def test_bad_task_and_data_exit_2_naming_the_option(inputs: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                    argv: list[str], option: str, says: str) -> None:
    monkeypatch.setenv("HWNAS_OFFLINE", "1")
    monkeypatch.setenv("HWNAS_BYBIT_DIR", "")
    args = [a.format(**{k: str(v) for k, v in inputs.items()}) for a in argv]
    out = tmp_path / "out"
    assert main(["run", "--target", "fpga", "--quick", "--out-dir", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwnas run: error:") and option in err[0], err
    assert says in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_too_few_rows_says_how_many_are_needed(inputs: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    assert main(["run", "--target", "fpga", "--quick", "--data", str(inputs["short"]),
                 "--out-dir", str(tmp_path / "o")]) == 2
    line = capsys.readouterr().err
    assert f"needs at least {min_task_rows(32):,}" in line and "lookback 32" in line


def test_space_and_lookbacks_choose_what_the_pipeline_searches(inputs: dict[str, Path],
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    import argparse

    from hwnas.architecture import OpType
    from hwnas.pipeline import QUICK_SPACE
    from hwnas.pipeline._cli import _space

    args = argparse.Namespace(target="cpu", quick=True, space="default", lookbacks="8,16")
    space = _space(args)
    assert space.name == "default" and space.lookbacks == (8, 16) and OpType.LSTM in space.ops
    assert space.depths == QUICK_SPACE["depths"]
    plan = _space(argparse.Namespace(target="cpu", quick=False, space=None, lookbacks=None))
    assert plan.name == "mobile" and OpType.LSTM not in plan.ops
    # the task is built for the chosen lookbacks: the short file is judged against lookback 8, not 32
    assert main(["run", "--target", "fpga", "--quick", "--lookbacks", "8", "--data", str(inputs["short"]),
                 "--out-dir", str(tmp_path / "o")]) == 2
    assert "lookback 8 needs at least" in capsys.readouterr().err


# --------------------------------------------------------------------------- walk-forward selection


def test_fold_tasks_walk_forward_inside_train_and_validation(task) -> None:
    from hwnas.proxy import fold_tasks

    folds = fold_tasks(task, 3)
    inside = task.train.index.append(task.val.index)
    for i, fold in enumerate(folds):
        assert fold.val.index.isin(inside).all() and fold.train.index.isin(inside).all()
        assert fold.val.index[0] > task.train.index[0] and fold.test.index.equals(fold.val.index)
        assert not fold.val.index.isin(task.test.index).any()  # the test period is never read
        start = inside.get_loc(fold.val.index[0])
        assert inside.get_loc(fold.train.index[-1]) == start - task.split.gap - 1  # a gap before the block
        if i:
            assert fold.val.index[0] > folds[i - 1].val.index[-1]  # later folds validate later
    with pytest.raises(ValueError, match="too few"):
        fold_tasks(task, 10_000)


def test_walk_forward_select_picks_the_best_mean_fold_score(task, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import numpy as np

    from hwnas.proxy.walk_forward import walk_forward_select

    walk_forward = importlib.import_module("hwnas.proxy.walk_forward")  # the module, not the function

    space = hwnas.SearchSpace.default(input_features=task.num_features, widths=(8,), lookbacks=(16,), depths=(1, 2))
    rng = np.random.default_rng(0)
    archs = {f"m{i}": space.sample(rng) for i in range(3)}
    fold_score = {0: {"m0": 0.3, "m1": 0.1, "m2": 0.2}, 1: {"m0": -0.2, "m1": 0.2, "m2": 0.15},
                  2: {"m0": 0.1, "m1": 0.0, "m2": 0.1}}  # means: m0 0.067, m1 0.1, m2 0.15
    calls: list[int] = []
    monkeypatch.setattr(walk_forward, "train_model", lambda arch, part, seed: calls.append(1) or arch)
    monkeypatch.setattr(walk_forward, "split_score", lambda *a: _score(fold_score, len(calls)))
    name, rows = walk_forward_select(archs, task, folds=3)
    assert name == "m2" and len(rows) == 9 and len(calls) == 9
    assert [r["model"] for r in rows[:3]] == ["m0", "m1", "m2"] and rows[4]["score"] == 0.2


def _score(table: dict[int, dict[str, float]], n_calls: int) -> float:
    fold, model = divmod(n_calls - 1, 3)
    return table[fold][f"m{model}"]
