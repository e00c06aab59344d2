"""FPGA fixed point through hls4ml: convert, choose precisions, compile the C++ emulation, export the project.

Taught in: notebooks/11_deployment.

hls4ml (duarte2018hls4ml; ``hls4ml.converters.convert_from_pytorch_model``) turns a PyTorch model
into HLS C++ for Vitis HLS, every value an ``ap_fixed<W,I>`` (``W`` bits in all, ``I`` of them integer
bits including the sign). Its ``compile()`` builds the same C++ with g++ into a library whose
``predict`` is bit-accurate to the synthesised design, so the trading score of the *fixed-point* model
is measured, not modelled.

* :func:`hls_ready_model`: the :class:`~hwnas.model.TradingNet` rewritten in the layers hls4ml's
  PyTorch front end parses (``torch.fx`` tracing: no shape checks in ``forward``, no ``nn.Identity``,
  and the ``last`` head -- a slice hls4ml has no layer for -- as a ``Conv1d`` spanning the whole
  final map whose only non-zero tap is the last step, plus a flatten). It computes the same function.
* :func:`hls_unsupported`: why an architecture cannot go through this path (op and target named).
* :func:`choose_precisions`: the per-layer precision rule (:func:`fixed_point_type`) applied to the
  peaks that calibration windows (training data) reach.
* :func:`compile_hls`: convert and compile, cached on disk by content (a compile takes 15-40 s).
* :class:`HlsModule`: the compiled emulation as a torch module, so :mod:`hwnas.proxy` scores it.
* :func:`export_hls`: the project a user synthesises, written atomically (temporary folder, rename).
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..architecture import Activation, Architecture, HeadType, OpType
from ..checks import require_int
from ..model import TradingNet

__all__ = [
    "HLS_TARGET",
    "HLS_BACKEND",
    "HLS_IO_TYPE",
    "HLS_DEFAULT_WIDTH",
    "HLS_PROJECT_FILES",
    "LayerPrecision",
    "HlsBuild",
    "HlsModule",
    "hls_available",
    "hls_unsupported",
    "hls_ready_model",
    "fixed_point_type",
    "layer_peaks",
    "choose_precisions",
    "uniform_precisions",
    "compile_hls",
    "export_hls",
]

HLS_TARGET = "FPGA (hls4ml, Vitis backend)"
"""How messages name the target of this path."""
HLS_BACKEND = "Vitis"
HLS_IO_TYPE = "io_parallel"
HLS_DEFAULT_WIDTH = 16
"""Total bits of every value under the default rule (weights, biases, layer outputs)."""
HLS_PROJECT_FILES = ("build_prj.tcl", "firmware/myproject.cpp", "firmware/myproject.h", "firmware/parameters.h",
                     "firmware/defines.h", "hls4ml_config.yml", "hwnas_hls.json")
"""Files every exported project holds (``hwnas_hls.json``: architecture, precisions and rule)."""
_ROUNDING = "AP_RND_CONV"
_SATURATION = "AP_SAT"
_TESTBENCH = 16
_SUPPORTED_OPS = (OpType.CONV, OpType.DWSEP_CONV, OpType.FC, OpType.IDENTITY, OpType.MAX_POOL)


def hls_available() -> bool:
    """Whether hls4ml imports and a C++ compiler (g++) is on the path.

    Taught in: notebooks/11_deployment.
    """
    try:
        import hls4ml  # noqa: F401
    except ImportError:
        return False
    return shutil.which("g++") is not None


def hls_unsupported(arch: Architecture) -> list[str]:
    """Why ``arch`` cannot be converted by hls4ml for the FPGA target (empty when it can).

    The ops the path converts are those of ``SearchSpace.fpga()``: conv, dwsep_conv, fc,
    identity and max_pool, ReLU or no activation, identity or projection skips, the ``last``
    head. Ops the FPGA cannot run at all are refused with :func:`hwnas.targets.fpga.fpga_unsupported`'s
    reason.

    Taught in: notebooks/11_deployment.
    """
    from ..opspec import arch_op_specs
    from ..targets.fpga import fpga_unsupported

    if not isinstance(arch, Architecture):
        raise TypeError(f"arch must be an Architecture, got {type(arch).__name__}")
    reasons: list[str] = []
    for op in arch_op_specs(arch):
        reason = fpga_unsupported(op)
        if reason and reason not in reasons:
            reasons.append(reason)
    for i, layer in enumerate(arch.layers):
        if layer.op not in _SUPPORTED_OPS and _not_named(reasons, layer.op):
            reasons.append(f"op {layer.op.value!r} (layer {i}) is not converted by hwnas's hls4ml path for the "
                           f"{HLS_TARGET} target; it converts {', '.join(o.value for o in _SUPPORTED_OPS)}")
        if layer.op in (OpType.CONV, OpType.DWSEP_CONV) and layer.dilation != 1:
            reasons.append(f"op {layer.op.value!r} with dilation {layer.dilation} (layer {i}) is not converted "
                           f"for the {HLS_TARGET} target; use dilation 1")
        if layer.activation not in (Activation.RELU, Activation.NONE):
            reasons.append(f"activation {layer.activation.value!r} (layer {i}) is not converted for the "
                           f"{HLS_TARGET} target: hls4ml's PyTorch front end has no layer for it; use relu")
    if arch.head != HeadType.LAST:
        reasons.append(f"head {arch.head.value!r} is not converted for the {HLS_TARGET} target; use the "
                       f"'last' head")
    return reasons


def _not_named(reasons: Sequence[str], op: OpType) -> bool:
    """Whether no reason yet names ``op`` (so each op is refused once)."""
    return not any(f"'{op.value}'" in r for r in reasons)


class _HlsLayer(nn.Module):
    """One layer as hls4ml parses it: ``act(op(x)) (+ shortcut)``, absent parts left out."""

    def __init__(self, op: nn.Module | None, relu: bool, skip: bool, projection: nn.Module | None) -> None:
        super().__init__()
        self.op = op
        self.act = nn.ReLU() if relu else None
        self.skip = skip
        self.proj = projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.op is None else self.op(x)
        if self.act is not None:
            y = self.act(y)
        if self.skip:
            y = y + (x if self.proj is None else self.proj(x))
        return y


class _HlsNet(nn.Module):
    """The layers, then the ``last`` head as a full-width convolution and a flatten."""

    def __init__(self, layers: list[_HlsLayer], head: nn.Conv1d) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.head = head
        self.flat = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flat(self.head(self.layers(x)))


def _dense_depthwise(conv: nn.Conv1d) -> nn.Conv1d:
    """A depthwise ``Conv1d`` (``groups == channels``) as an ordinary one with block-diagonal weights.

    hls4ml's PyTorch ``Conv1d`` handler reads no ``groups``; the zero weights add exact zeros (and
    HLS removes multiplications by a constant zero), so the function and the multiplier count
    are those of the depthwise layer.
    """
    ch = conv.in_channels
    dense = nn.Conv1d(ch, ch, conv.kernel_size[0], stride=conv.stride[0], padding=conv.padding[0],
                      dilation=conv.dilation[0], bias=conv.bias is not None)
    with torch.no_grad():
        dense.weight.zero_()
        for c in range(ch):
            dense.weight[c, c] = conv.weight[c, 0]
        if conv.bias is not None and dense.bias is not None:
            dense.bias.copy_(conv.bias)
    return dense


def hls_ready_model(model: nn.Module) -> nn.Module:
    """``model`` rewritten in the layers hls4ml parses (see the module docstring); same outputs.

    Raises ValueError naming the op and the target when :func:`hls_unsupported` objects.

    Taught in: notebooks/11_deployment.
    """
    import copy

    if not isinstance(model, TradingNet):
        raise TypeError(f"model must be a TradingNet (hwnas.build_model), got {type(model).__name__}")
    reasons = hls_unsupported(model.arch)
    if reasons:
        raise ValueError("; ".join(reasons))
    source = copy.deepcopy(model).eval()
    layers: list[_HlsLayer] = []
    for spec, layer in zip(model.arch.layers, source.layers, strict=True):
        main: nn.Module = layer.op  # type: ignore[assignment]
        op: nn.Module | None = None if isinstance(main, nn.Identity) else main
        if spec.op == OpType.DWSEP_CONV and isinstance(main, nn.Sequential):
            depthwise = main[0]
            assert isinstance(depthwise, nn.Conv1d)
            op = nn.Sequential(_dense_depthwise(depthwise), main[1])
        projection = layer.shortcut if isinstance(layer.shortcut, nn.Conv1d) else None
        layers.append(_HlsLayer(op, isinstance(layer.act, nn.ReLU), layer.shortcut is not None, projection))
    arch = model.arch
    length = _final_length(arch)
    linear = source.head.linear
    head = nn.Conv1d(linear.in_features, linear.out_features, length)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[:, :, -1] = linear.weight
        if head.bias is not None:
            head.bias.copy_(linear.bias)
    return _HlsNet(layers, head).eval()


def _arch_of(model: nn.Module) -> Architecture:
    """The architecture of a :class:`~hwnas.model.TradingNet` (TypeError for another module)."""
    if not isinstance(model, TradingNet):
        raise TypeError(f"model must be a TradingNet (hwnas.build_model), got {type(model).__name__}")
    return model.arch


def _final_length(arch: Architecture) -> int:
    """Time steps of the map the head reads."""
    length = arch.lookback
    for layer in arch.layers:
        length = layer.output_length(length)
    return length


def fixed_point_type(peak: float, width: int = HLS_DEFAULT_WIDTH, margin: int = 1) -> str:
    """The ``ap_fixed<W,I>`` that holds values up to ``peak`` in magnitude, ``margin`` spare integer bits.

    The rule: ``I = 1 (sign) + max(0, floor(log2 peak) + 1) + margin``, clamped to ``[1, W]``;
    the other ``W - I`` bits are fractional. Rounding to nearest (convergent) and saturation,
    so a value beyond the calibrated range clips instead of wrapping around.
    Example: peak 3.0, ``W = 16``, margin 1: 2 magnitude bits, ``ap_fixed<16,4>``, range
    [-8, 8) in steps of 2^-12.

    Taught in: notebooks/11_deployment.
    """
    from ..proxy.fixed_point import integer_bits

    integer = integer_bits(peak, width, margin)
    return f"ap_fixed<{int(width)},{integer},{_ROUNDING},{_SATURATION}>"


@dataclass(frozen=True)
class LayerPrecision:
    """The fixed-point types of one hls4ml layer (``None``: the layer has no such value).

    ``peak`` is the largest magnitude its output reached on the calibration windows.

    Taught in: notebooks/11_deployment.
    """

    layer: str
    result: str
    weight: str | None = None
    bias: str | None = None
    peak: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def _traced(net: nn.Module) -> Any:
    """The ``torch.fx`` graph hls4ml itself traces (its node names are hls4ml's layer names)."""
    import torch.fx

    return torch.fx.symbolic_trace(net)


def layer_peaks(net: nn.Module, calibration: np.ndarray | torch.Tensor) -> dict[str, float]:
    """The largest ``|output|`` of every node of ``net``'s fx graph over ``calibration`` windows.

    Taught in: notebooks/11_deployment.
    """
    import torch.fx

    graph = _traced(net)
    peaks: dict[str, float] = {}

    class _Recorder(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and n.op != "output":
                peaks[n.name] = max(peaks.get(n.name, 0.0), float(out.detach().abs().max()))
            return out

    data = torch.as_tensor(np.asarray(calibration), dtype=torch.float32)
    if data.dim() != 3 or len(data) == 0:
        raise ValueError(f"calibration must be windows (n >= 1, features, lookback), got shape {tuple(data.shape)}")
    with torch.no_grad():
        for chunk in data.split(256):
            _Recorder(graph).run(chunk)
    return peaks


def choose_precisions(net: nn.Module, calibration: np.ndarray | torch.Tensor, *, width: int = HLS_DEFAULT_WIDTH,
                      margin: int = 1) -> dict[str, LayerPrecision]:
    """Per-layer precisions of ``net`` (from :func:`hls_ready_model`) by the rule of :func:`fixed_point_type`.

    Layer outputs (and the input) get ``margin`` spare integer bits over the peak they reach on the
    ``calibration`` windows (training data only); weights and biases, known exactly, get none.
    Accumulators are left to hls4ml (``auto``: wide enough for the exact sum of products).

    Taught in: notebooks/11_deployment.
    """
    graph = _traced(net)
    peaks = layer_peaks(net, calibration)
    modules = dict(graph.named_modules())
    chosen: dict[str, LayerPrecision] = {}
    for node in graph.graph.nodes:
        if node.op == "output" or node.name not in peaks:
            continue
        weight = bias = None
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        if isinstance(module, nn.Flatten):
            continue
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            weight = fixed_point_type(float(module.weight.detach().abs().max()), width, 0)
            if module.bias is not None:
                bias = fixed_point_type(float(module.bias.detach().abs().max()), width, 0)
        chosen[node.name] = LayerPrecision(node.name, fixed_point_type(peaks[node.name], width, margin),
                                           weight, bias, peaks[node.name])
    return chosen


def uniform_precisions(net: nn.Module, precision: str) -> dict[str, LayerPrecision]:
    """One type (e.g. ``"ap_fixed<16,6>"``, hls4ml's default) for every value of every layer of ``net``.

    Taught in: notebooks/11_deployment.
    """
    if not isinstance(precision, str) or not precision.startswith(("ap_fixed<", "ap_int<")):
        raise ValueError(f"precision must be an ap_fixed<W,I> type string, got {precision!r}")
    graph = _traced(net)
    modules = dict(graph.named_modules())
    chosen = {}
    for node in graph.graph.nodes:
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        if node.op == "output" or isinstance(module, nn.Flatten):
            continue
        has_w = isinstance(module, (nn.Conv1d, nn.Linear))
        chosen[node.name] = LayerPrecision(node.name, precision, precision if has_w else None,
                                           precision if has_w else None)
    return chosen


def _hls_config(net: nn.Module, arch: Architecture, precisions: Mapping[str, LayerPrecision],
                reuse_factor: int) -> dict[str, Any]:
    """hls4ml's per-layer configuration with ``precisions`` written in."""
    import hls4ml

    config = hls4ml.utils.config_from_pytorch_model(
        net, input_shape=(arch.input_features, arch.lookback), granularity="name", backend=HLS_BACKEND,
        default_precision="ap_fixed<16,6>", default_reuse_factor=reuse_factor)
    layers = config["LayerName"]
    for name, prec in precisions.items():
        if name not in layers:
            continue
        entry = layers[name].setdefault("Precision", {})
        if not isinstance(entry, dict):
            entry = layers[name]["Precision"] = {}
        entry["result"] = prec.result
        if prec.weight is not None:
            entry["weight"] = prec.weight
        if prec.bias is not None:
            entry["bias"] = prec.bias
    return dict(config)


@dataclass
class HlsBuild:
    """A converted (and, if asked, compiled) hls4ml model with what made it.

    ``compile_s`` is the g++ time of this call (0.0 when loaded from the cache, ``None`` when
    not compiled); ``folder`` the project folder.

    Taught in: notebooks/11_deployment.
    """

    hls_model: Any
    arch: Architecture
    precisions: dict[str, LayerPrecision]
    folder: Path
    compile_s: float | None = None
    cached: bool = False
    reuse_factor: int = 1
    config: dict[str, Any] = field(default_factory=dict)

    def predict(self, windows: np.ndarray | torch.Tensor) -> np.ndarray:
        """Outputs ``(n, num_outputs)`` of the compiled emulation for windows ``(n, features, lookback)``."""
        data = np.ascontiguousarray(np.asarray(windows, dtype=np.float32))
        if data.ndim != 3 or data.shape[1:] != (self.arch.input_features, self.arch.lookback):
            raise ValueError(f"windows must have shape (n, {self.arch.input_features}, {self.arch.lookback}), "
                             f"got {data.shape}")
        out = np.asarray(self.hls_model.predict(data), dtype=np.float32)
        return out.reshape(len(data), self.arch.num_outputs)

    def layer_table(self) -> list[dict[str, Any]]:
        """One row per layer: name, result / weight / bias types and the calibrated peak."""
        return [p.to_dict() for p in self.precisions.values()]


class HlsModule(nn.Module):
    """A compiled hls4ml emulation as a torch module (float in, float out, fixed point inside).

    Taught in: notebooks/11_deployment.
    """

    def __init__(self, build: HlsBuild) -> None:
        super().__init__()
        self.build = build

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.build.predict(x.detach().cpu().numpy()))


def _cache_root() -> Path:
    """Where compiled emulations are kept: ``$HWNAS_HLS_CACHE`` or ``~/.cache/hwnas/hls``."""
    return Path(os.environ.get("HWNAS_HLS_CACHE", Path.home() / ".cache" / "hwnas" / "hls"))


_DONE = ".hwnas-compiled"


def _stale(folder: Path, seconds: float = 1800.0) -> bool:
    """Whether an unfinished cache folder was left by a build that died (older than ``seconds``)."""
    return time.time() - folder.stat().st_mtime > seconds


def _content_key(net: nn.Module, arch: Architecture, config: Mapping[str, Any]) -> str:
    """A hash of everything the compiled library depends on."""
    import hls4ml

    digest = hashlib.sha256()
    digest.update(hls4ml.__version__.encode())
    digest.update(arch.to_json().encode())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    buffer = io.BytesIO()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        buffer.seek(0)
        buffer.truncate()
        np.save(buffer, tensor.detach().cpu().numpy())
        digest.update(buffer.getvalue())
    return digest.hexdigest()[:24]


def _convert(net: nn.Module, arch: Architecture, config: dict[str, Any], folder: Path,
             testbench: tuple[str, str] | None = None) -> Any:
    """hls4ml's conversion (quietly: it prints its topology); ``testbench``: ``.npy`` files of inputs
    and expected outputs that hls4ml copies into ``tb_data/`` for the C simulation."""
    import contextlib

    import hls4ml

    inputs, outputs = testbench if testbench is not None else (None, None)
    with contextlib.redirect_stdout(io.StringIO()):
        return hls4ml.converters.convert_from_pytorch_model(
            net, hls_config=config, output_dir=str(folder), backend=HLS_BACKEND, io_type=HLS_IO_TYPE,
            input_data_tb=inputs, output_data_tb=outputs)


def _prepare(model: nn.Module, calibration: np.ndarray | torch.Tensor | None, precision: str | None,
             width: int, margin: int, reuse_factor: int) -> tuple[nn.Module, dict[str, LayerPrecision],
                                                               dict[str, Any]]:
    """Rewrite, choose precisions, build the configuration (all checks before any long work)."""
    net = hls_ready_model(model)
    reuse_factor = require_int(reuse_factor, "reuse_factor", 1)
    if precision is not None:
        chosen = uniform_precisions(net, precision)
    else:
        if calibration is None:
            raise ValueError("calibration windows are needed to choose precisions (or give precision=...)")
        chosen = choose_precisions(net, calibration, width=width, margin=margin)
    return net, chosen, _hls_config(net, _arch_of(model), chosen, reuse_factor)


def compile_hls(model: nn.Module, calibration: np.ndarray | torch.Tensor | None = None, *,
                precision: str | None = None, width: int = HLS_DEFAULT_WIDTH, margin: int = 1,
                reuse_factor: int = 1, cache: bool = True,
                cache_dir: str | os.PathLike[str] | None = None) -> HlsBuild:
    """Convert ``model`` with hls4ml and compile its C++ emulation (g++), cached by content.

    Precisions: ``precision`` (one ``ap_fixed`` type everywhere) or, by default, the rule of
    :func:`choose_precisions` on ``calibration`` windows with ``width`` and ``margin``.
    ``reuse_factor`` is hls4ml's (multipliers per layer = multiplications / reuse factor).
    With ``cache`` the compiled project is kept under ``cache_dir`` (default ``$HWNAS_HLS_CACHE``,
    else ``~/.cache/hwnas/hls``) and a later call with the same weights and configuration loads it.

    Taught in: notebooks/11_deployment.
    """
    if not hls_available():
        raise RuntimeError("hls4ml and g++ are needed to compile the FPGA fixed-point emulation")
    net, chosen, config = _prepare(model, calibration, precision, width, margin, reuse_factor)
    arch = _arch_of(model)
    work: Path | None = None
    if cache:
        root = Path(cache_dir) if cache_dir is not None else _cache_root()
        root.mkdir(parents=True, exist_ok=True)
        folder = root / _content_key(net, arch, config)
        libs = sorted((folder / "firmware").glob("myproject-*.so")) if (folder / _DONE).is_file() else []
        if libs:
            hls_model = _convert(net, arch, config, folder)
            # a cache hit: load the library compiled earlier instead of hls_model.compile()
            hls_model._top_function_lib = ctypes.cdll.LoadLibrary(str(libs[0]))
            return HlsBuild(hls_model, arch, chosen, folder, 0.0, True, reuse_factor, config)
        # the compiled library reads its weights from the folder it was built in, so it is built in
        # place; creating the folder is the lock (another process building it: build privately)
        try:
            folder.mkdir()
            work = folder
        except FileExistsError:
            if not any(folder.iterdir()) or _stale(folder):
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(exist_ok=True)
                work = folder
    if work is None:
        work = Path(tempfile.mkdtemp(prefix="hwnas-hls-"))
    try:
        hls_model = _convert(net, arch, config, work)
        start = time.perf_counter()
        import contextlib

        with contextlib.redirect_stdout(io.StringIO()):
            hls_model.compile()
        seconds = time.perf_counter() - start
        (work / _DONE).write_text(f"{seconds:.3f}\n")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return HlsBuild(hls_model, arch, chosen, work, seconds, False, reuse_factor, config)


def export_hls(model: TradingNet, arch: Architecture, out_dir: str | os.PathLike[str],
               calibration: np.ndarray | torch.Tensor | None = None, *, precision: str | None = None,
               width: int = HLS_DEFAULT_WIDTH, margin: int = 1, reuse_factor: int = 1) -> Path:
    """Write the Vitis HLS project of ``model`` to the new folder ``out_dir``, atomically.

    The project (``build_prj.tcl``, ``firmware/``, the testbench with 16 calibration windows and the
    float model's outputs in ``tb_data/``, ``hls4ml_config.yml``) is
    what ``vitis_hls -f build_prj.tcl`` synthesises; ``hwnas_hls.json`` beside it records the
    architecture, the per-layer precisions and the rule. Written into a temporary sibling folder
    and renamed, so a failed conversion leaves nothing at ``out_dir``. ``out_dir`` must not exist.

    Taught in: notebooks/11_deployment.
    """
    if not isinstance(model, TradingNet) or model.arch != arch:
        raise ValueError("model must be the TradingNet of arch (hwnas.build_model(arch) with its weights)")
    out = Path(out_dir)
    if out.exists():
        raise ValueError(f"out_dir {str(out)!r} already exists; give a new folder")
    if not out.parent.is_dir():
        raise ValueError(f"out_dir {str(out)!r}: its parent folder does not exist")
    import contextlib

    import hls4ml

    net, chosen, config = _prepare(model, calibration, precision, width, margin, reuse_factor)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        testbench = None
        if calibration is not None:  # the C simulation's testbench: a few training windows and float outputs
            bench = torch.as_tensor(np.asarray(calibration)[:_TESTBENCH], dtype=torch.float32)
            with torch.no_grad():
                expected = model(bench).numpy()
            np.save(work / "tb_inputs.npy", bench.numpy().reshape(len(bench), -1))
            np.save(work / "tb_outputs.npy", expected)
            testbench = (str(work / "tb_inputs.npy"), str(work / "tb_outputs.npy"))
        hls_model = _convert(net, arch, config, work, testbench)
        with contextlib.redirect_stdout(io.StringIO()):
            hls_model.write()
        rule = ("one type everywhere: " + precision) if precision else (
            f"ap_fixed<{width},I>: I = 1 + max(0, floor(log2 peak) + 1) + margin; layer outputs margin {margin} "
            f"over the peak on calibration windows, weights and biases margin 0; accumulators hls4ml's auto")
        meta = {"architecture": arch.to_dict(), "hls4ml": hls4ml.__version__, "backend": HLS_BACKEND,
                "io_type": HLS_IO_TYPE, "reuse_factor": reuse_factor, "rule": rule,
                "precisions": [p.to_dict() for p in chosen.values()]}
        for name in ("tb_inputs.npy", "tb_outputs.npy"):
            (work / name).unlink(missing_ok=True)
        (work / "hwnas_hls.json").write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out
