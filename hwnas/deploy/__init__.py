"""Deployment: export (ONNX, ``torch.export``, ExecuTorch ``.pte``), ONNX Runtime and ExecuTorch, quantisation,
latency SLA reports.

Taught in: notebooks/11_deployment.

The submodules load lazily (PEP 562): ``import hwnas.deploy`` costs nothing,
and onnx / onnxruntime are imported only when a name that needs them is used.

* :mod:`hwnas.deploy.onnx_graph`: :func:`onnx_bytes`, the ONNX graph of a module in memory (opset :data:`OPSET`)
* :mod:`hwnas.deploy.export`: :func:`export`, :func:`load_exported`
* :mod:`hwnas.deploy.runtimes`: :class:`OnnxRuntime` (registered as ``"onnxruntime"``)
* :mod:`hwnas.deploy.executorch`: :class:`ExecuTorchRuntime` (``"executorch"``, XNNPACK), ``.pte`` programs,
  :func:`delegation_table`
* :mod:`hwnas.deploy.quantize`: INT8 (static, QDQ) and FP16 ONNX models, FPGA fixed point (hls4ml, or a
  torch simulation where hls4ml cannot run the model)
* :mod:`hwnas.deploy.hls`: hls4ml conversion, per-layer fixed-point precisions, the compiled emulation,
  the Vitis HLS project (:func:`export_hls`)
* :mod:`hwnas.deploy.sla`: :func:`sla_report` and :class:`SLAReport`
* :mod:`hwnas.deploy.tail`: :func:`measure_tail`, the p99 / fastest-call factor of a machine
* :mod:`hwnas.deploy._cli`: the ``export`` and ``report`` commands
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES: dict[str, str] = {
    "OPSET": "onnx_graph", "FORMATS": "export", "EXPORTERS": "export", "SUFFIXES": "export",
    "format_for_path": "export", "ExportResult": "export", "export": "export",
    "onnx_bytes": "onnx_graph", "torch_export_bytes": "export", "load_exported": "export",
    "coverage_architecture": "coverage",
    "OnnxRuntime": "runtimes", "OrtModule": "runtimes", "make_session": "runtimes",
    "session_inputs": "runtimes", "session_callable": "runtimes",
    "ExecuTorchRuntime": "executorch", "PteModule": "executorch", "pte_bytes": "executorch",
    "int8_pte_bytes": "executorch", "delegation_table": "executorch", "space_delegation": "executorch",
    "DelegationRow": "executorch",
    "SLAReport": "sla", "sla_report": "sla", "deployable_callable": "sla", "timed_calls": "sla",
    "burst_quantiles": "sla",
    "TailCalibration": "tail", "measure_tail": "tail", "near_budget_models": "tail",
    "quantize_int8": "quantize", "convert_fp16": "quantize", "fixed_point_model": "quantize",
    "calibration_windows": "quantize", "weight_bytes": "quantize", "compare_precisions": "quantize",
    "PrecisionResult": "quantize", "PRECISIONS": "quantize", "score_precisions": "quantize",
    "precision_graphs": "quantize",
    "STORAGE_PRECISION": "quantize", "PRECISION_TIMING": "quantize",
    "HLS_FIXED_POINT": "quantize", "SIM_FIXED_POINT": "quantize", "fixed_point_precision": "quantize",
    "default_precisions": "quantize",
    "compile_hls": "hls", "export_hls": "hls", "hls_unsupported": "hls", "hls_ready_model": "hls",
    "choose_precisions": "hls", "fixed_point_type": "hls", "HlsBuild": "hls", "HlsModule": "hls",
    "LayerPrecision": "hls",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
