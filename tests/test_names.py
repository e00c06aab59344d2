"""One name per idea: each name set is one str enum that the code accepts exactly, each name is
imported from the module that defines it, and every module says what it exports (``__all__``)."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import hwnas
from hwnas.architecture import Activation, Architecture, HeadType, LayerSpec, OpType
from hwnas.cost import BYTES_PER_VALUE, Precision, bytes_per_value, memory_footprint
from hwnas.hardware import DeviceType, HardwareProfile
from hwnas.opspec import ALL_OPS, BRANCH_OPS, HEAD_OPS, LAYER_OPS, OVERHEAD_OP, OpKind, OpSpec, arch_op_specs
from hwnas.plots.style import TARGET_COLORS, is_space_name
from hwnas.space import SearchSpace, SpaceName
from hwnas.targets.gpu import TENSOR_CORE_ALIGNMENT

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hwnas"



# ---------------------------------------------------------------- each name set is one enum


def test_space_names_are_exactly_the_spaces_search_space_named_builds():
    for name in SpaceName:
        assert SearchSpace.named(name).name == name.value
        assert SearchSpace.named(name.value) == SearchSpace.named(name)  # the plain string works too
        assert getattr(SearchSpace, name.value)().name == name  # one named constructor per member
        assert is_space_name(name.value)
    with pytest.raises(ValueError, match="search space name") as err:
        SearchSpace.named("tpu")
    assert all(repr(name.value) in str(err.value) for name in SpaceName)
    assert not is_space_name("cpu") and not is_space_name("tpu")


def test_precisions_are_exactly_what_memory_footprint_and_the_gpu_model_accept():
    arch = SearchSpace.default().sample(np.random.default_rng(0))
    params = {p: memory_footprint(arch, p).params_bytes for p in Precision}
    assert params[Precision.FP32] == 2 * params[Precision.FP16] == 4 * params[Precision.INT8]
    assert memory_footprint(arch, "fp16") == memory_footprint(arch, Precision.FP16)
    assert memory_footprint(arch, "int8").precision is Precision.INT8
    assert set(BYTES_PER_VALUE) == set(Precision) == set(TENSOR_CORE_ALIGNMENT)
    for bad in ("fp8", "FP32", ""):
        with pytest.raises(ValueError, match="precision"):
            bytes_per_value(bad)
    with pytest.raises(ValueError, match="HardwareProfile.precision"):
        HardwareProfile("p", DeviceType.CPU, {}, 1, 1.0, precision="bf16")


def test_op_kinds_are_the_layer_ops_heads_branches_and_overhead_once_each():
    groups = [set(LAYER_OPS), set(HEAD_OPS), set(BRANCH_OPS), {OVERHEAD_OP}]
    assert sum(map(len, groups)) == len(OpKind) and set().union(*groups) == set(OpKind) == set(ALL_OPS)
    assert all(isinstance(op, OpKind) for op in (*ALL_OPS, OVERHEAD_OP))
    assert {op.value for op in LAYER_OPS} == {op.value for op in OpType}
    assert {op.value for op in HEAD_OPS} == {f"head_{head.value}" for head in HeadType}
    assert "head_gap" in HEAD_OPS and "shortcut" in BRANCH_OPS  # str enum members: plain strings still match


def test_opspec_activation_is_an_activation_from_layers_and_from_strings():
    layer = LayerSpec(OpType.CONV, 4, 8, kernel_size=3, activation=Activation.GELU)
    key = OpSpec.from_layer(layer, 16)
    assert key.activation is Activation.GELU and key.layer_spec() == layer
    assert OpSpec("conv", 4, 8, 16, kernel_size=3, activation="gelu") == key
    assert hash(OpSpec("conv", 4, 8, 16, kernel_size=3, activation="gelu")) == hash(key)
    assert key.to_dict()["activation"] == "gelu" and type(key.to_dict()["activation"]) is str
    with pytest.raises(ValueError, match="OpSpec.activation: 'tanh' is not allowed"):
        OpSpec("conv", 4, 8, 16, activation="tanh")


def test_targets_are_device_types_with_one_colour_each():
    assert set(TARGET_COLORS) == set(DeviceType)
    assert TARGET_COLORS["gpu"] == TARGET_COLORS[DeviceType.GPU]
    for device in DeviceType:
        assert f"{device}" == device.value  # str enums format as their values in labels


# ---------------------------------------------------------------- old JSON still loads


def _old_profile_json() -> dict:
    """A profile as saved before the enums: every enum field a plain string."""
    return {
        "format": "hwnas-hardware-profile", "version": 1, "name": "old", "device_type": "mobile",
        "memory_budget_bytes": 1 << 20, "peak_flops": 1e9, "parallel_branches": False, "precision": "fp16",
        "is_model": False, "conditions": {},
        "latency_table": [
            {"op": "conv", "in_channels": 4, "out_channels": 8, "seq_len": 16, "kernel_size": 3, "stride": 1,
             "dilation": 1, "heads": 1, "activation": "relu", "use_skip": False, "batch": 1, "latency_us": 2.5},
            {"op": "head_gap", "in_channels": 8, "out_channels": 1, "seq_len": 16, "kernel_size": 1,
             "stride": 1, "dilation": 1, "heads": 1, "activation": "none", "use_skip": False, "batch": 1,
             "latency_us": 0.5},
        ],
    }


def test_a_profile_saved_with_plain_strings_loads_into_enums_and_saves_the_same_strings(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_old_profile_json()))
    profile = HardwareProfile.load(path)
    assert profile.device_type is DeviceType.MOBILE and profile.precision is Precision.FP16
    keys = sorted(profile.latency_table, key=OpSpec.sort_key)
    assert [k.op for k in keys] == [OpKind.CONV, OpKind.HEAD_GAP]
    assert keys[0].activation is Activation.RELU
    arch = Architecture(lookback=16, input_features=4, layers=(LayerSpec(OpType.CONV, 4, 8, kernel_size=3),),
                        head=HeadType.GAP)
    assert set(arch_op_specs(arch)) == set(profile.latency_table)
    assert profile.predict_latency(arch) == pytest.approx(3.0)
    assert json.loads(json.dumps(profile.to_dict())) == _old_profile_json()


@pytest.mark.filterwarnings("ignore:hardware profile .* was measured with CPU model")
def test_committed_benchmark_profiles_still_load():
    paths = sorted((ROOT / "benchmarks" / "results").glob("*profile*.json"))
    profiles = [p for p in paths if json.loads(p.read_text()).get("format") == "hwnas-hardware-profile"]
    assert profiles, "no committed profile to load"
    for path in profiles:
        profile = HardwareProfile.load(path)
        assert profile.latency_table and isinstance(profile.device_type, DeviceType), path.name
        assert all(isinstance(key.activation, Activation) for key in profile.latency_table), path.name


def test_an_architecture_saved_with_plain_strings_loads():
    arch = SearchSpace.named("mobile").sample(np.random.default_rng(3))
    text = arch.to_json()
    assert '"conv' in text or '"fc"' in text  # ops are stored as plain strings
    again = Architecture.from_json(text)
    assert again == arch and all(isinstance(layer.op, OpType) for layer in again.layers)


# ---------------------------------------------------------------- imports from the defining module


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.exists():
            return path
    return None


def _defined_names(path: Path) -> set[str]:
    """Names a module binds itself at top level (def, class, assignment), not by importing."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, ast.Assign):
                names.update(t.id for target in sub.targets for t in ast.walk(target) if isinstance(t, ast.Name))
            elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name):
                names.add(sub.target.id)
    return names


def _absolute(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")[: len(importer.split(".")) - (node.level - (1 if is_package else 0))]
    return ".".join(base + ([node.module] if node.module else []))


def _imports_through_reexports(path: Path) -> list[str]:
    importer, is_package = _module_name(path), path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        source = _absolute(importer, is_package, node)
        source_path = _source(source) if source.startswith("hwnas") else None
        if source_path is None:
            continue
        if is_package and source.startswith(importer + "."):
            continue  # a package __init__ gathering its own modules' names
        defined = _defined_names(source_path)
        for alias in node.names:
            if alias.name not in defined and _source(f"{source}.{alias.name}") is None:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name} from {source}")
    return found


def test_no_module_imports_a_name_through_a_module_that_only_reexports_it():
    offenders = [line for path in sorted(PACKAGE.rglob("*.py"))
                 if path.relative_to(ROOT).as_posix() != "hwnas/__init__.py"
                 for line in _imports_through_reexports(path)]
    assert not offenders, "import these from their defining module:\n" + "\n".join(offenders)


def _modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(hwnas.__path__, "hwnas.")
                  if info.name != "hwnas.__main__")


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as err:  # an optional dependency (onnx, optuna, dask) is absent
        pytest.skip(f"{name} needs {err.name}")


@pytest.mark.parametrize("name", _modules())
def test_a_module_exports_only_what_it_defines(name):
    module = _import(name)
    if hasattr(module, "__path__"):
        return  # package __init__ files gather their modules' names on purpose
    defined = _defined_names(Path(module.__file__))
    for exported in getattr(module, "__all__", ()):
        obj = getattr(module, exported)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == name, f"{name}.__all__ lists {exported}, defined in {obj.__module__}"
        else:
            assert exported in defined, f"{name}.__all__ lists {exported}, which {name} imports"


@pytest.mark.parametrize("name", ["hwnas", *_modules()])
def test_every_module_has_all(name):
    module = _import(name)
    assert isinstance(getattr(module, "__all__", None), (list, tuple)), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"


def test_the_top_level_map_points_each_name_at_its_defining_module():
    wrong = []
    for name, module_name in hwnas._LAZY.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            ok = obj.__module__ == module_name
        else:
            ok = name in _defined_names(Path(module.__file__))
        if not ok:
            wrong.append(f"{name}: {module_name}")
    assert not wrong, f"hwnas._GROUPS maps these names to a module that does not define them: {wrong}"
