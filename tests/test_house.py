"""The house rules: a lazy package, one source of truth per default, a forgiving command line,
typed results, the runtime hook of the latency harness, and "Taught in" everywhere."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import pkgutil
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import hwnas
from hwnas.__main__ import _PLUGIN_MODULES, PRECISIONS, main
from hwnas.architecture import DEFAULT_INPUT_FEATURES, Architecture
from hwnas.latency import TimingSpec
from hwnas.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]


def _fresh(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args, "-c", code] if code else [sys.executable, *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


# ---------------------------------------------------------------- lazy package


def test_import_hwnas_and_the_default_space_load_no_heavy_package():
    # build_parser() imports every plug-in module: they too must keep heavy imports in their handlers
    out = _fresh("import sys, hwnas; hwnas.SearchSpace.default(); import hwnas.__main__ as m; m.build_parser();"
                 "print(sorted(m for m in ('torch', 'scipy', 'pandas', 'requests', 'optuna', 'dask', 'onnx')"
                 " if m in sys.modules))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves_to_its_module():
    # no allowance for modules "in progress": a deleted module or a name it no longer defines fails here
    for name in hwnas.__all__:
        module = hwnas._LAZY.get(name)
        if module is None:
            continue  # "search" (the package) and "__version__"
        mod = importlib.import_module(module)
        assert hasattr(mod, name), f"{module} does not define {name}"
        assert getattr(hwnas, name) is getattr(mod, name), name
    assert hwnas.search is importlib.import_module("hwnas.search")  # the callable package
    assert set(dir(hwnas)) >= set(hwnas.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hwnas.nope  # noqa: B018


def test_input_features_have_one_source_of_truth():
    from hwnas.data import make_features, synthetic_klines
    from hwnas.data.features import MINUTES_PER_YEAR, periods_per_year

    assert make_features(synthetic_klines(400, seed=0)).shape[1] == DEFAULT_INPUT_FEATURES
    assert SearchSpace.default().input_features == DEFAULT_INPUT_FEATURES
    assert main.__module__ == "hwnas.__main__"
    from hwnas.cost import BYTES_PER_VALUE

    assert set(PRECISIONS) == set(BYTES_PER_VALUE)
    assert periods_per_year("15") == MINUTES_PER_YEAR / 15 == 365 * 24 * 4


# ---------------------------------------------------------------- command line


def test_help_and_version_are_fast_paths(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"hwnas {hwnas.__version__}"
    with pytest.raises(SystemExit):
        main(["cost", "--help"])
    text = capsys.readouterr().out
    assert "fp32" in text and "int8" in text and "(default: 1)" in text and "(default: fp32)" in text


def test_sample_json_pipes_into_cost(tmp_path, capsys):
    assert main(["sample", "--json", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    arch = Architecture.from_json(text)
    assert arch.input_features == DEFAULT_INPUT_FEATURES
    path = tmp_path / "a.json"
    path.write_text(text)
    assert main(["cost", str(path)]) == 0
    assert f"parameters: {hwnas.count_params(arch):,}" in capsys.readouterr().out


def test_errors_name_the_option_and_exit_2(tmp_path, capsys, mentions):
    with pytest.raises(SystemExit) as exc:
        main(["cost", "x.json", "--batch", "0"])
    assert exc.value.code == 2 and re.search(mentions("--batch", "1", "0"), capsys.readouterr().err)
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"name": "caf\u00e9"}'.encode("latin-1"))
    assert main(["cost", str(bad)]) == 2
    err = capsys.readouterr()
    assert err.out == "" and "not UTF-8" in err.err and err.err.count("\n") == 1


def test_profile_cpu_checks_out_before_measuring(tmp_path, capsys, monkeypatch):
    import hwnas.latency as latency

    def never(*args, **kwargs):
        raise AssertionError("measured before checking --out")

    monkeypatch.setattr(latency, "profile_cpu", never)
    monkeypatch.setattr(latency, "profile_cpu_edge", never)
    assert main(["profile-cpu", "--out", str(tmp_path / "missing" / "p.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwnas profile-cpu: error: --out") and "does not exist" in err
    assert main(["profile-cpu", "--budget", "edge", "--threads", "2", "--out", str(tmp_path / "p.json")]) == 2
    assert "--budget edge" in capsys.readouterr().err


def test_fetch_honours_offline(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HWNAS_OFFLINE", "1")
    assert main(["fetch", "BTCUSDT", "--cache-dir", str(tmp_path), "--base-url", "http://127.0.0.1:9"]) == 2
    assert "HWNAS_OFFLINE=1" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_interrupt_and_broken_pipe_end_in_one_line(monkeypatch, capsys, mentions):
    import hwnas.__main__ as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_space", interrupted)
    assert main(["space"]) == 130
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(mentions("hwnas space", "interrupted"), err)
    out = subprocess.run(f"{sys.executable} -m hwnas space | head -n 1", shell=True, capture_output=True,
                         text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.stdout.startswith("space 'default'") and "Traceback" not in out.stderr


def test_plugins_register_and_a_missing_one_is_an_error(monkeypatch, capsys):
    import types

    import hwnas.__main__ as cli

    plugin = types.ModuleType("hwnas_test_plugin")

    def register(sub):
        parser = sub.add_parser("hello", help="say hello")
        parser.add_argument("--name", default="world")
        parser.set_defaults(handler=lambda args: print(f"hello {args.name}") or 7)

    plugin.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hwnas_test_plugin", plugin)
    monkeypatch.setattr(cli, "_PLUGIN_MODULES", ("hwnas_test_plugin",))
    assert main(["hello", "--name", "you"]) == 7
    assert capsys.readouterr().out == "hello you\n"
    # a plug-in module that is not there fails loudly (CI must notice a deleted module)
    monkeypatch.setattr(cli, "_PLUGIN_MODULES", ("hwnas_test_plugin", "hwnas.no_such_plugin.cli"))
    with pytest.raises(ModuleNotFoundError) as err:
        cli.build_parser()
    assert err.value.name == "hwnas.no_such_plugin"


def test_every_plugin_subcommand_is_registered():
    from hwnas.__main__ import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"search", "export", "report", "run"} <= set(sub.choices)
    assert all(importlib.import_module(name).register for name in _PLUGIN_MODULES)


def test_predict_says_what_the_profile_covers(tmp_path, capsys):
    from hwnas.opspec import OpSpec, arch_op_specs
    from hwnas.targets import fpga_profile

    arch = SearchSpace.fpga(input_features=8).sample(np.random.default_rng(1))
    profile = fpga_profile().tabulate(SearchSpace.fpga(input_features=8, lookbacks=(arch.lookback,)))
    profile = replace(profile, latency_model=None, is_model=False)
    wider = replace(arch, input_features=12, layers=(replace(arch.layers[0], in_channels=12), *arch.layers[1:]))
    assert profile.missing(arch) == []
    assert profile.missing(wider) == [OpSpec.from_layer(wider.layers[0], wider.lookback)]
    with pytest.raises(KeyError) as err:
        profile.predict_latency(wider)
    text = str(err.value)
    assert "1 of the" in text and "input features [8]" in text and "extend_profile" in text
    assert len(arch_op_specs(wider)) == len(arch.layers) + 1
    path = tmp_path / "p.json"
    profile.save(path)
    wider.save(tmp_path / "a.json")
    assert main(["predict", str(tmp_path / "a.json"), "--profile", str(path)]) == 2
    assert "input features [8]" in capsys.readouterr().err


# ---------------------------------------------------------------- files and reprs


def test_architecture_save_load_round_trip_atomically(tmp_path, mentions):
    arch = SearchSpace.default().sample(np.random.default_rng(5))
    path = arch.save(tmp_path / "sub" / "a.json")
    assert Architecture.load(path) == arch and not list(path.parent.glob("*.tmp"))
    path.write_text("{not json")
    with pytest.raises(ValueError, match=mentions("a.json", "JSON")):
        Architecture.load(path)


def test_reprs_are_short():
    from hwnas.targets import gpu_profile

    profile = gpu_profile(measure=False)
    assert len(repr(profile)) < 200 and repr(profile).startswith("AnalyticalProfile(")
    assert SearchSpace.default().sample(np.random.default_rng(0)).summary() == \
        SearchSpace.default().sample(np.random.default_rng(0)).describe()


# ---------------------------------------------------------------- one home per helper


def test_spearman_drops_non_finite_pairs_and_is_nan_without_a_ranking():
    from hwnas.numerics import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, np.nan, 4, 5], [5, 4, 100, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2], [1, 2]))  # fewer than 3 pairs
    assert math.isnan(spearman([1, 1, 1, 1], [1, 2, 3, 4]))  # constant
    with pytest.raises(ValueError, match="one shape"):
        spearman([1, 2, 3], [1, 2])


def test_torch_threads_restores_the_count_also_on_errors(mentions):
    import torch

    from hwnas.numerics import torch_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match=mentions("threads", "1", "0")):
        with torch_threads(0):
            pass


def test_opspec_op_is_a_str_enum_and_profiles_keep_plain_strings(tmp_path):
    from hwnas.opspec import OpKind, OpSpec

    key = OpSpec("conv", 8, 16, 32, kernel_size=3)
    assert key.op is OpKind.CONV and key.op == "conv" and key.label().startswith("conv k3")
    assert json.loads(json.dumps(key.to_dict()))["op"] == "conv"
    assert {o.value for o in OpKind} >= {o.value for o in hwnas.OpType}


def test_every_public_function_says_where_it_is_taught():
    missing = []
    for info in pkgutil.walk_packages(hwnas.__path__, "hwnas."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue  # an optional dependency (onnx, optuna, dask) is absent
        names = getattr(module, "__all__", None)
        for name, obj in vars(module).items():
            if name.startswith("_") or (names is not None and name not in names):
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or obj.__module__ != info.name:
                continue
            if "Taught in: notebooks/" not in (inspect.getdoc(obj) or ""):
                missing.append(f"{info.name}.{name}")
    assert not missing, f"{len(missing)} public functions/classes lack 'Taught in:': {missing}"


# ---------------------------------------------------------------- the runtime hook


class _CountingRuntime:
    """A Runtime that runs eager PyTorch and counts what it prepared."""

    name = "counting"

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self.prepared = 0

    def version(self) -> str:
        return "counting 1.0"

    def prepare(self, module, inputs):
        self.prepared += 1
        args = tuple(inputs)
        module.eval()
        return lambda: module(*args)


def test_every_timed_closure_comes_from_the_runtime_and_is_recorded():
    from hwnas.latency import build_lut_detailed, measure_models, profile_cpu_edge
    from hwnas.opspec import arch_op_specs

    space = SearchSpace.default(input_features=4, widths=(8,), lookbacks=(16,), depths=(1,),
                                stem_width=8)
    arch = space.sample(np.random.default_rng(0))
    keys = arch_op_specs(arch)
    runtime = _CountingRuntime()
    build = build_lut_detailed(space, progress=False, specs=keys,
                               timing=TimingSpec(passes=1, target_ms=0.5, min_reps=3),
                               calibration=2, validation=[arch], runtime=runtime)
    assert runtime.prepared == len(build.timings) + 2 + 1
    assert build.conditions["runtime"] == "counting" and build.conditions["runtime_version"] == "counting 1.0"
    measure_models([arch, arch], timing=TimingSpec(passes=1, target_ms=0.5), runtime=runtime)
    assert runtime.prepared == len(build.timings) + 3 + 2
    profile = profile_cpu_edge(space, progress=False, specs=keys,
                               timing=TimingSpec(passes=1, target_ms=0.5, min_reps=3),
                               calibration=0, runtime=_CountingRuntime())
    assert profile.name == "cpu-1thread-edge-counting"
    assert profile.memory_budget_bytes == 10 * 2**20 and "10 MiB" in profile.summary()
    eager = profile_cpu_edge(space, progress=False, specs=keys, timing=TimingSpec(passes=1, target_ms=0.5, min_reps=3),
                             calibration=0)
    assert eager.name == "cpu-1thread-edge" and eager.conditions["runtime"] == "eager"


def test_extend_profile_times_only_what_is_missing():
    from hwnas.latency import extend_profile, missing_keys, profile_cpu

    space = SearchSpace.default(input_features=4, widths=(8,), lookbacks=(16,), depths=(1,), stem_width=8)
    arch = space.sample(np.random.default_rng(0))
    profile = profile_cpu(space, progress=False, specs=hwnas.arch_op_specs(arch),
                          timing=TimingSpec(passes=1, target_ms=0.5, min_reps=3), calibration=0)
    other = SearchSpace.default(input_features=6, widths=(8,), lookbacks=(16,), depths=(1,), stem_width=8)
    new = other.sample(np.random.default_rng(0))
    missing = missing_keys(profile, [new])
    assert missing and all(k.in_channels == 6 for k in missing[:1])
    extended = extend_profile(profile, [new], timing=TimingSpec(passes=1, target_ms=0.5, min_reps=3))
    assert missing_keys(extended, [new]) == [] and extended.predict_latency(new) > 0
    assert set(extended.latency_table) - set(profile.latency_table) == set(missing)
    assert extended.conditions["extended"]["keys"] == len(missing)
    assert extend_profile(extended, [new]) is extended


# ---------------------------------------------------------------- training helpers


def test_train_model_and_predict_split_reproduce_evaluate_bit_for_bit():
    from hwnas.data import synthetic_klines
    from hwnas.proxy import evaluate_splits, make_proxy_task, predict_split, score_predictions, train_model

    features = dict(vol_windows=(4, 8), momentum_horizons=(2, 8), zscore_window=8, volume_window=8)
    frame = synthetic_klines(900, seed=3)
    for target in ("volatility", "direction"):
        task = make_proxy_task(frame, target=target, lookback=16, feature_kwargs=features, epochs=1,
                               batch_size=64, max_train_windows=128)
        space = SearchSpace.default(input_features=task.num_features, lookbacks=(16,), depths=(2,))
        arch = space.sample(np.random.default_rng(2))
        scores = evaluate_splits(arch, task, seed=1, keep_predictions=True)
        model = train_model(arch, task, seed=1)
        assert not model.training
        for split in ("val", "test"):
            pred = predict_split(model, task, split, arch.lookback)
            np.testing.assert_array_equal(pred, scores[split].predictions)
            assert score_predictions(pred, task, split) == scores[split].metrics


def test_make_proxy_task_says_what_it_needs(mentions):
    import pandas as pd

    from hwnas.data import synthetic_klines
    from hwnas.proxy import make_proxy_task

    frame = synthetic_klines(300, seed=0)
    with pytest.raises(ValueError, match=mentions("UTC", "DatetimeIndex", "RangeIndex")):
        make_proxy_task(frame.reset_index(drop=True))
    with pytest.raises(ValueError, match=mentions("UTC", "Asia/Tokyo")):
        make_proxy_task(frame.tz_convert("Asia/Tokyo"))
    with pytest.raises(ValueError, match=mentions("'epoch'", "'epochs'")):
        make_proxy_task(frame, epoch=2)
    assert isinstance(frame.index, pd.DatetimeIndex)


def test_progress_bars_stay_quiet_off_a_terminal(capfd):
    from hwnas.latency import progress_bar, time_round_robin

    bar = progress_bar(10, "timing 10 layer settings, 1 pass", "timings")
    bar.update(10)
    bar.close()
    timings = time_round_robin({"a": lambda: None, "b": lambda: None},
                               timing=TimingSpec.COMPARE.replace(passes=1, target_ms=0.2, min_reps=3))
    assert set(timings) == {"a", "b"}
    assert capfd.readouterr().err == ""  # stderr is a pipe here, not a terminal


# ---------------------------------------------------------------- the environment and make


def _pins(path: Path) -> dict[str, str]:
    """``name -> version`` of each ``name==version`` line (names normalised as pip does)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version.strip()
    return pins


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ;]", line, maxsplit=1)[0]).lower())
    return names


def test_constraints_pin_every_requirement_and_the_notebook_stack():
    pins = _pins(ROOT / "constraints.txt")
    required = _requirement_names(ROOT / "requirements.txt")
    assert required - set(pins) == set(), "a requirement constraints.txt does not pin"
    for name, version in _pins(ROOT / "requirements.txt").items():
        assert pins[name] == version, f"requirements.txt pins {name}=={version}, constraints.txt {pins[name]}"
    assert {"ipython", "ipykernel", "nbclient", "myst-nb", "matplotlib", "pandas", "numpy"} <= set(pins)
    assert "hwnas" not in pins and pins["torch"] == "2.13.0"  # no local label: +cpu matches it too


def test_make_test_lints_first_installs_pinned_and_runs_no_apt_get():
    def dry_run(target: str) -> str:
        done = subprocess.run(["make", "-n", "--no-print-directory", target, "VENV=/nonexistent/venv"],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    test = dry_run("test")
    assert "apt-get" not in test and "--keep-going lint test-unit" in test
    assert "-c " + str(ROOT / "constraints.txt") in test and "ruff check" in test
    assert "apt-get" in dry_run("browser")
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make --no-print-directory browser") < ci.index("make --no-print-directory test")
