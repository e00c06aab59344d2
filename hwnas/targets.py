"""Analytical GPU and FPGA hardware profiles: models, not measurements.

Taught in: notebooks/05_hardware_targets.

The chapter names three deployment targets: FPGAs for high-frequency trading,
GPUs for batch inference, CPUs and phones for retail apps. The CPU profile of
:mod:`hwnas.latency` is *measured* on the machine you run on. Most readers have
no A100 and no FPGA board, so this module gives the other two targets as
*analytical models*: a :class:`~hwnas.hardware.HardwareProfile` whose
``latency_model`` computes each operation's time from a few published device
figures and stated assumptions. They are labelled as such everywhere
(``is_model=True``, "model" in the name, every parameter and its source in
``conditions``). Both plug into the searches exactly like a measured profile:
``predict_latency(arch)`` for any architecture (no table needed), ``check(arch)``
for feasibility, ``tabulate(space)`` then ``save``/``load``.

GPU: a roofline per kernel
--------------------------
Every operation is split into the kernels eager PyTorch launches for it
(:func:`gpu_kernels`: a convolution is one implicit GEMM, a depthwise-separable
block two kernels, self-attention eight, an activation or a residual add one
element-wise kernel each). Each kernel costs

    t = t_launch + max(waves x W_tile / (P x eff / n_SM), bytes / (BW x eff_mem))

(the roofline model of Williams et al.): ``P`` is the tensor-core peak when the
precision is FP16/INT8 *and* the channel dimensions are multiples of 8 (FP16)
or 16 (INT8), the CUDA-core FP32 peak otherwise (NVIDIA's alignment rule). The
compute term is tile and wave quantisation: the output is cut into
``tile x tile`` tiles, each of the ``n_SM`` streaming multiprocessors computes
one tile (``W_tile`` FLOPs, a partial tile costing a full one) per wave, and
``waves = ceil(tiles / n_SM)``; on a full GPU this tends to
``FLOPs / (P x eff)``. At batch 1 the tiny GEMMs of a trading model fill one
tile on one multiprocessor, so the launch overhead dominates and latency is
about ``t_launch x kernels``; at batch 256 the same kernels fill the GPU, which is
where its batch efficiency comes from. A fixed ``sync_overhead_us`` per
inference (one synchronisation and copy of the prediction to the host) is the
profile's ``overhead`` entry. The residual branch runs on its own stream
(``parallel_branches=True``).

What the GPU model ignores: caches (L2 holds every weight of these models, so
real memory traffic is lower), kernel fusion and CUDA graphs (which remove most
launch overhead: use ``launch_overhead_us`` near 1 µs to imagine them), cuDNN
and cuBLAS algorithm choice (smaller tiles and split-K spread a small GEMM over
more multiprocessors than one fixed tile size does, so small FP32 GEMMs are
modelled pessimistically), TF32, clock boost and thermal throttling, the CPU-side
serialisation of launches from two streams, and the copy of the input to the
device. A measurement (``gpu_profile(measure=True)`` on a CUDA machine) replaces
all of it; the model's job is the *shape* of the trade-offs: launch-bound at
batch 1, bandwidth- or compute-bound at large batches, misaligned widths off the
tensor cores.

FPGA: a cycle model of a layer-per-engine dataflow design
---------------------------------------------------------
Each layer gets its own INT8 engine in the fabric (as in a streaming HLS design
such as hls4ml, Duarte et al.). An engine computing a dot product of length
``D`` per output step (``K C_in C_out`` for a convolution) is given
``P = min(D, dsp_per_engine x macs_per_dsp)`` multipliers (a DSP48E2 packs two
INT8 multiply-adds sharing an operand, Xilinx WP486), so

    cycles = ceil(batch x L_out x D / P) + pipeline_depth_cycles

and ``ceil(P / macs_per_dsp)`` DSP slices. A depthwise-separable layer is two
engines in a row. ReLU is a comparator in the requantisation stage (free);
GELU is allowed but penalised: at INT8 any point-wise function is a 256-entry
table in block RAM (the chapter's "lookup-table-based activation functions"),
which costs ``lut_activation_cycles`` and a table per output channel. Pooling
and global-average pooling use no DSPs (one output step per cycle). The
shortcut of a residual layer is a FIFO (identity) or a parallel 1x1 engine
(projection) joined by a one-cycle adder (``parallel_branches=True``). Attention
is rejected (``unsupported``): a softmax over the sequence and an ``n x n``
score matrix computed at run time have no efficient fixed dataflow; its latency
is ``inf`` so any budget rejects it. Resource checks (:meth:`AnalyticalProfile.check`):
the DSP slices of all engines, and block RAM for the weights (1 byte per
parameter), one input buffer per engine, the shortcut FIFOs and activation
tables. The host I/O (``io_latency_cycles``) is the ``overhead`` entry.

What the FPGA model ignores: layers overlapping in a real dataflow pipeline
(the sum of per-layer cycles is the chapter's sequential LUT sum, an upper
bound for a pipelined design), routing and timing closure (the clock is an
assumption, not a guarantee), LUT and flip-flop budgets, BRAM granularity and
the partitioning an HLS tool does to feed ``P`` multipliers per cycle (which can
multiply BRAM use), INT32 biases and requantisation arithmetic, and the quality
of an INT8 model. A real flow (Vitis HLS or hls4ml, then place and route)
reports cycles and resources exactly; use it before committing to a design.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

import torch

from .cost import bytes_per_value, count_params
from .hardware import (
    OVERHEAD_OP,
    DeviceType,
    HardwareProfile,
    OpSpec,
    arch_op_specs,
)
from .space import Architecture

GPU_MODEL_ID = "hwnas-gpu-roofline-v1"
FPGA_MODEL_ID = "hwnas-fpga-cycle-v1"

# --------------------------------------------------------------------------- sources

_A100_SOURCE = (
    "NVIDIA A100 Tensor Core GPU datasheet (nvidia2020a100): FP32 19.5 TFLOP/s, FP16 Tensor "
    "Core 312 TFLOP/s and INT8 Tensor Core 624 TOP/s (dense), 40 GB HBM2 at 1,555 GB/s; "
    "108 SMs from the Ampere architecture whitepaper"
)
_T4_SOURCE = (
    "NVIDIA T4 datasheet (nvidia2019t4): FP32 8.1 TFLOP/s, mixed-precision FP16 65 TFLOP/s, "
    "INT8 130 TOP/s, 16 GB GDDR6 at 320 GB/s; 40 SMs (Turing TU104 as configured for T4)"
)
_GPU_ASSUMPTIONS = {
    "launch_overhead_us": "assumption: a few µs per kernel launched from eager PyTorch "
                          "(CUDA launch latency plus framework dispatch); CUDA graphs cut it to ~1 µs",
    "sync_overhead_us": "assumption: one stream synchronisation and a small device-to-host copy "
                        "of the prediction per inference, order of 10 µs over PCIe",
    "compute_efficiency": "assumption: fraction of peak a tuned GEMM reaches on a full GPU",
    "memory_efficiency": "assumption: fraction of the datasheet bandwidth a streaming kernel reaches",
    "tile": "assumption: one thread block computes a tile x tile output tile, one block per SM per "
            "wave (tile and wave quantisation, NVIDIA Matrix Multiplication Background guide)",
    "alignment": "NVIDIA guide (nvidia2023matmul): tensor cores need channel dimensions that are "
                 "multiples of 8 (FP16) or 16 (INT8); otherwise the CUDA-core FP32 rate is used",
}
_ZU9EG_SOURCE = (
    "Zynq UltraScale+ MPSoC product selection guide (xilinx2019zynqusp): XCZU9EG has 2,520 "
    "DSP48E2 slices and 912 36-Kb block RAMs (32.1 Mb), no UltraRAM"
)
_ZU3EG_SOURCE = (
    "Zynq UltraScale+ MPSoC product selection guide (xilinx2019zynqusp): XCZU3EG has 360 "
    "DSP48E2 slices and 216 36-Kb block RAMs (7.6 Mb), no UltraRAM"
)
_FPGA_ASSUMPTIONS = {
    "bram_bytes": "each 36-Kb block RAM holds 4,096 INT8 values (4K x 9 mode, parity bit unused)",
    "clock_hz": "assumption: 300 MHz, a common target clock for HLS designs on UltraScale+ "
                "(timing closure decides the real one)",
    "macs_per_dsp_per_cycle": "Xilinx WP486 (fu2016wp486): a DSP48E2 computes two INT8 "
                              "multiply-adds sharing one operand per cycle",
    "dsp_per_engine": "design choice: DSP slices given to one layer engine (a reuse factor as in "
                      "hls4ml, duarte2018hls4ml); a layer that needs fewer uses fewer",
    "pipeline_depth_cycles": "assumption: fill latency of one engine (operand fetch, multiplier, "
                             "adder tree, requantisation)",
    "io_latency_cycles": "assumption: moving the input window in and the prediction out of the "
                         "fabric (AXI stream), once per inference",
    "lut_activation_cycles": "assumption: one registered block-RAM read for a table activation",
    "lut_table_bytes": "a 256-entry INT8 -> INT8 table per output channel",
    "adder_cycles": "assumption: the residual adder and pooling comparators, one register stage",
}


# --------------------------------------------------------------------------- GPU model


@dataclass(frozen=True)
class GpuSpec:
    """Published figures of a GPU and the assumptions of the roofline model.

    Rates are dense (no structured sparsity), in FLOP/s (INT8: operations/s),
    bandwidth in bytes/s, memory in bytes.
    """

    name: str
    peak_flops_fp32: float
    peak_flops_fp16_tensor: float
    peak_ops_int8_tensor: float
    mem_bandwidth_bytes_s: float
    memory_bytes: int
    sm_count: int
    launch_overhead_us: float = 4.0
    sync_overhead_us: float = 10.0
    compute_efficiency: float = 0.7
    memory_efficiency: float = 0.8
    tile: int = 64
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("peak_flops_fp32", "peak_flops_fp16_tensor", "peak_ops_int8_tensor",
                     "mem_bandwidth_bytes_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"GpuSpec.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("memory_bytes", "sm_count", "tile"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GpuSpec.{name} must be an integer >= 1, got {value!r}")
        for name in ("launch_overhead_us", "sync_overhead_us"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"GpuSpec.{name} must be >= 0 µs, got {getattr(self, name)!r}")
        for name in ("compute_efficiency", "memory_efficiency"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"GpuSpec.{name} must be in (0, 1], got {getattr(self, name)!r}")

    def peak(self, precision: str, tensor_cores: bool) -> float:
        """FLOP/s available to a kernel at ``precision`` (tensor cores or CUDA cores).

        Off the tensor cores every precision gets the FP32 CUDA-core rate (a
        simplification: some GPUs run packed FP16 or INT8 dot products at two or
        four times that rate on CUDA cores).
        """
        bytes_per_value(precision)
        if tensor_cores and precision == "fp16":
            return self.peak_flops_fp16_tensor
        if tensor_cores and precision == "int8":
            return self.peak_ops_int8_tensor
        return self.peak_flops_fp32


A100_40GB = GpuSpec(
    name="NVIDIA A100 40GB",
    peak_flops_fp32=19.5e12,
    peak_flops_fp16_tensor=312e12,
    peak_ops_int8_tensor=624e12,
    mem_bandwidth_bytes_s=1555e9,
    memory_bytes=40 * 2**30,
    sm_count=108,
    source=_A100_SOURCE,
)

T4 = GpuSpec(
    name="NVIDIA T4",
    peak_flops_fp32=8.1e12,
    peak_flops_fp16_tensor=65e12,
    peak_ops_int8_tensor=130e12,
    mem_bandwidth_bytes_s=320e9,
    memory_bytes=16 * 2**30,
    sm_count=40,
    source=_T4_SOURCE,
)

GPU_SPECS: dict[str, GpuSpec] = {"a100": A100_40GB, "t4": T4}

#: channel multiple the tensor cores need, per precision (None: never used)
TENSOR_CORE_ALIGNMENT: dict[str, int | None] = {"fp32": None, "fp16": 8, "int8": 16}


@dataclass(frozen=True)
class GpuKernel:
    """One kernel launch: its work, its traffic and how it maps onto the GPU.

    ``gemm`` is ``(M, N, K)`` for a matrix product (``batch_count`` of them in a
    batched GEMM) and ``None`` for element-wise, reduction and depthwise kernels,
    which run on CUDA cores and are spread over ``elements`` outputs.
    ``aligned_dims`` are the channel dimensions that must be multiples of the
    tensor-core alignment.
    """

    name: str
    flops: float
    bytes: float
    gemm: tuple[int, int, int] | None = None
    batch_count: int = 1
    elements: int = 1
    aligned_dims: tuple[int, ...] = ()

    def uses_tensor_cores(self, precision: str) -> bool:
        """Whether this kernel runs on tensor cores at ``precision``."""
        align = TENSOR_CORE_ALIGNMENT[precision]
        return (
            self.gemm is not None
            and align is not None
            and all(d % align == 0 for d in self.aligned_dims)
        )

    def tiles(self, tile: int) -> int:
        """Thread blocks the kernel launches (output tiles, or blocks of 256 outputs)."""
        if self.gemm is not None:
            m, n, _ = self.gemm
            return self.batch_count * math.ceil(m / tile) * math.ceil(n / tile)
        return math.ceil(self.elements / 256)

    def tile_flops(self, tile: int) -> float:
        """FLOPs one block does, a partial block counted full (tile quantisation)."""
        if self.gemm is not None:
            return 2.0 * tile * tile * self.gemm[2]
        return 256.0 * self.flops / max(self.elements, 1)


def _gemm(name: str, m: int, n: int, k: int, b: int, values_moved: int, *,
          batch_count: int = 1, aligned: tuple[int, ...] = ()) -> GpuKernel:
    """A (batched) GEMM ``(m x k) @ (k x n)`` moving ``values_moved`` values to or from memory."""
    return GpuKernel(name, 2.0 * batch_count * m * n * k, float(b * values_moved), (m, n, k),
                     batch_count, m * n * batch_count, aligned)


def _elementwise(name: str, values: int, b: int, reads: int = 1, flops_per_value: float = 1.0) -> GpuKernel:
    """An element-wise kernel over ``values`` outputs reading ``reads`` inputs each."""
    return GpuKernel(name, flops_per_value * values, float(b * values * (reads + 1)), None, 1, values)


def gpu_kernels(op: OpSpec, precision: str = "fp16") -> list[GpuKernel]:
    """The kernels eager PyTorch launches for ``op`` (no residual: the profile adds branches).

    Memory traffic counts each input, output and weight tensor once (a
    convolution reads its input once, not once per tap).

    Taught in: notebooks/05_hardware_targets.
    """
    b = bytes_per_value(precision)
    bt, cin, cout, L, lo = op.batch, op.in_channels, op.out_channels, op.seq_len, op.out_len
    k = op.kernel_size
    kernels: list[GpuKernel] = []
    if op.op in ("conv", "dilated_conv"):
        kernels.append(_gemm("conv (implicit GEMM)", bt * lo, cout, k * cin, b,
                             bt * cin * L + bt * cout * lo + k * cin * cout + cout, aligned=(cin, cout)))
    elif op.op == "fc":
        kernels.append(_gemm("fc (GEMM)", bt * L, cout, cin, b,
                             bt * cin * L + bt * cout * L + cin * cout + cout, aligned=(cin, cout)))
    elif op.op == "dwsep_conv":
        dw_values = bt * cin * lo
        kernels.append(GpuKernel("depthwise conv", 2.0 * dw_values * k,
                                 float(b * (bt * cin * L + dw_values + cin * (k + 1))), None, 1, dw_values))
        kernels.append(_gemm("pointwise (GEMM)", bt * lo, cout, cin, b,
                             dw_values + bt * cout * lo + cin * cout + cout, aligned=(cin, cout)))
    elif op.op == "attention":
        n, d, h = L, cin, op.heads
        hd = d // h
        scores = bt * h * n * n
        kernels += [
            _gemm("qkv projection", bt * n, 3 * d, d, b, 4 * bt * n * d + 3 * d * d + 3 * d, aligned=(d,)),
            _gemm("scores q@k^T", n, n, hd, b, 2 * bt * n * d + scores, batch_count=bt * h, aligned=(hd,)),
            _elementwise("scale", scores, b),
            _elementwise("softmax", scores, b, flops_per_value=5.0),
            _gemm("weights@v", n, hd, n, b, scores + 2 * bt * n * d, batch_count=bt * h, aligned=(hd,)),
            _elementwise("transpose copy", bt * n * d, b, flops_per_value=0.0),
            _gemm("output projection", bt * n, d, d, b, 2 * bt * n * d + d * d + d, aligned=(d,)),
            _elementwise("channels-first copy", bt * n * d, b, flops_per_value=0.0),
        ]
    elif op.op in ("max_pool", "avg_pool"):
        kernels.append(GpuKernel(op.op, float(bt * cin * lo * k), float(b * bt * cin * (L + lo)),
                                 None, 1, bt * cin * lo))
    elif op.op == "shortcut":
        if op.is_projection:
            kernels.append(_gemm("shortcut projection (1x1 GEMM)", bt * lo, cout, cin, b,
                                 bt * cin * lo + bt * cout * lo + cin * cout + cout, aligned=(cin, cout)))
    elif op.op == "add":
        kernels.append(_elementwise("residual add", bt * cout * op.seq_len, b, reads=2))
    elif op.is_head:
        features = cin * L if op.op == "head_flatten" else cin
        if op.op == "head_gap":
            kernels.append(GpuKernel("mean over time", float(bt * cin * L), float(b * bt * cin * (L + 1)),
                                     None, 1, bt * cin))
        kernels.append(_gemm("head linear", bt, cout, features, b,
                             bt * features + bt * cout + features * cout + cout, aligned=(features, cout)))
    elif op.op == OVERHEAD_OP:
        raise ValueError("the overhead key has no kernels; see gpu_op_latency_us")
    # identity: no kernel (a view); its activation, if any, is launched below
    if op.is_layer and op.activation != "none":
        kernels.append(_elementwise(op.activation, bt * cout * lo, b,
                                    flops_per_value=1.0 if op.activation == "relu" else 8.0))
    return kernels


def gpu_kernel_time_us(kernel: GpuKernel, spec: GpuSpec, precision: str = "fp16") -> float:
    """Roofline time of one kernel in µs, launch overhead included.

    ``launch + max(waves x tile_flops / (peak x efficiency / sm_count), bytes / (bandwidth x efficiency))``:
    each streaming multiprocessor computes one block (a full tile's work even
    when the tile is partly empty) per wave, and ``waves = ceil(blocks / sm_count)``
    (tile and wave quantisation). On a full GPU this tends to
    ``FLOPs / (peak x efficiency)``; a kernel of one block uses one SM.

    Taught in: notebooks/05_hardware_targets.
    """
    waves = math.ceil(kernel.tiles(spec.tile) / spec.sm_count)
    peak = spec.peak(precision, kernel.uses_tensor_cores(precision))
    compute_s = waves * kernel.tile_flops(spec.tile) * spec.sm_count / (peak * spec.compute_efficiency)
    memory_s = kernel.bytes / (spec.mem_bandwidth_bytes_s * spec.memory_efficiency)
    return spec.launch_overhead_us + 1e6 * max(compute_s, memory_s)


def gpu_op_latency_us(op: OpSpec, spec: GpuSpec = A100_40GB, precision: str = "fp16") -> float:
    """Modelled latency of one key in µs (the sum over its kernels; 0 for none).

    The ``overhead`` key costs ``spec.sync_overhead_us`` per inference.

    Taught in: notebooks/05_hardware_targets.
    """
    if op.op == OVERHEAD_OP:
        return spec.sync_overhead_us
    return sum(gpu_kernel_time_us(k, spec, precision) for k in gpu_kernels(op, precision))


def gpu_roofline_model(spec: GpuSpec = A100_40GB, precision: str = "fp16") -> Callable[[OpSpec], float]:
    """A ``latency_model`` (OpSpec -> µs) for :class:`~hwnas.hardware.HardwareProfile`."""
    bytes_per_value(precision)

    def model(op: OpSpec) -> float:
        return gpu_op_latency_us(op, spec, precision)

    return model


# --------------------------------------------------------------------------- FPGA model


@dataclass(frozen=True)
class FpgaSpec:
    """Published resources of an FPGA part and the assumptions of the cycle model."""

    name: str
    dsp_slices: int
    bram_bytes: int
    clock_hz: float = 300e6
    macs_per_dsp_per_cycle: int = 2
    dsp_per_engine: int = 128
    pipeline_depth_cycles: int = 10
    io_latency_cycles: int = 100
    lut_activation_cycles: int = 2
    lut_table_bytes: int = 256
    adder_cycles: int = 1
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("dsp_slices", "bram_bytes", "macs_per_dsp_per_cycle", "dsp_per_engine"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FpgaSpec.{name} must be an integer >= 1, got {value!r}")
        for name in ("pipeline_depth_cycles", "io_latency_cycles", "lut_activation_cycles",
                     "lut_table_bytes", "adder_cycles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"FpgaSpec.{name} must be an integer >= 0, got {value!r}")
        if not self.clock_hz > 0:
            raise ValueError(f"FpgaSpec.clock_hz must be > 0, got {self.clock_hz!r}")

    @property
    def max_parallel_macs(self) -> int:
        """Multiply-adds one engine can do per cycle."""
        return self.dsp_per_engine * self.macs_per_dsp_per_cycle

    @property
    def peak_flops(self) -> float:
        """FLOP/s with every DSP busy (2 FLOPs per multiply-add)."""
        return 2.0 * self.dsp_slices * self.macs_per_dsp_per_cycle * self.clock_hz


ZU9EG = FpgaSpec(
    name="AMD/Xilinx Zynq UltraScale+ ZU9EG",
    dsp_slices=2520,
    bram_bytes=912 * 4096,
    source=_ZU9EG_SOURCE,
)

ZU3EG = FpgaSpec(
    name="AMD/Xilinx Zynq UltraScale+ ZU3EG",
    dsp_slices=360,
    bram_bytes=216 * 4096,
    source=_ZU3EG_SOURCE,
)

FPGA_SPECS: dict[str, FpgaSpec] = {"zu9eg": ZU9EG, "zu3eg": ZU3EG}


@dataclass(frozen=True)
class FpgaEngine:
    """One hardware engine of the dataflow design (a layer has one or two)."""

    name: str
    macs: int  # multiply-adds for the whole batch
    dot_length: int  # multiply-adds per output step (0: no DSPs)
    parallel_macs: int  # multipliers given to the engine (0: no DSPs)
    dsps: int
    cycles: int


def _dsp_engine(name: str, steps: int, dot: int, spec: FpgaSpec) -> FpgaEngine:
    """An engine computing ``steps`` output steps of ``dot`` multiply-adds each."""
    parallel = min(dot, spec.max_parallel_macs)
    macs = steps * dot
    cycles = math.ceil(macs / parallel) + spec.pipeline_depth_cycles
    return FpgaEngine(name, macs, dot, parallel, math.ceil(parallel / spec.macs_per_dsp_per_cycle), cycles)


def _fabric_engine(name: str, cycles: int) -> FpgaEngine:
    """An engine built from LUTs and registers only (no DSPs)."""
    return FpgaEngine(name, 0, 0, 0, 0, cycles)


def fpga_unsupported(op: OpSpec) -> str | None:
    """Why ``op`` cannot be built efficiently on the FPGA, or ``None`` when it can.

    Taught in: notebooks/05_hardware_targets.
    """
    if op.op == "attention":
        return (
            "op 'attention' is not supported on the FPGA: its softmax over the sequence and its "
            f"{op.seq_len}x{op.seq_len} score matrix are computed at run time (dynamic, data-"
            "dependent weights, exponentials and a division), which has no efficient fixed "
            "dataflow; use conv, dwsep_conv or fc"
        )
    return None


def fpga_engines(op: OpSpec, spec: FpgaSpec = ZU9EG) -> list[FpgaEngine]:
    """The engines the dataflow design builds for ``op`` (ValueError if unsupported).

    Taught in: notebooks/05_hardware_targets.
    """
    reason = fpga_unsupported(op)
    if reason:
        raise ValueError(reason)
    bt, cin, cout, L, lo, k = op.batch, op.in_channels, op.out_channels, op.seq_len, op.out_len, op.kernel_size
    if op.op in ("conv", "dilated_conv"):
        engines = [_dsp_engine(op.op, bt * lo, k * cin * cout, spec)]
    elif op.op == "fc":
        engines = [_dsp_engine("fc", bt * L, cin * cout, spec)]
    elif op.op == "dwsep_conv":
        engines = [_dsp_engine("depthwise", bt * lo, k * cin, spec),
                   _dsp_engine("pointwise", bt * lo, cin * cout, spec)]
    elif op.op in ("max_pool", "avg_pool"):
        engines = [_fabric_engine(op.op, bt * lo + spec.adder_cycles)]
    elif op.op == "identity":
        engines = []
    elif op.op == "shortcut":
        engines = [_dsp_engine("shortcut projection", bt * lo, cin * cout, spec)] if op.is_projection else []
    elif op.op == "add":
        engines = [_fabric_engine("residual adder", spec.adder_cycles)]
    elif op.op == "head_gap":
        engines = [_fabric_engine("time average", bt * L), _dsp_engine("head linear", bt, cin * cout, spec)]
    elif op.op == "head_last":
        engines = [_dsp_engine("head linear", bt, cin * cout, spec)]
    elif op.op == "head_flatten":
        engines = [_dsp_engine("head linear", bt, cin * L * cout, spec)]
    else:  # overhead
        raise ValueError("the overhead key has no engines; see fpga_op_cycles")
    if op.activation == "gelu" and engines:
        engines.append(_fabric_engine("gelu table", spec.lut_activation_cycles))
    return engines


def fpga_op_cycles(op: OpSpec, spec: FpgaSpec = ZU9EG) -> float:
    """Clock cycles of one key: the sum over its engines (``inf`` when unsupported).

    ``overhead`` is the host I/O, ``spec.io_latency_cycles``.

    Taught in: notebooks/05_hardware_targets.
    """
    if op.op == OVERHEAD_OP:
        return float(spec.io_latency_cycles)
    if fpga_unsupported(op):
        return math.inf
    return float(sum(e.cycles for e in fpga_engines(op, spec)))


def fpga_cycle_model(spec: FpgaSpec = ZU9EG) -> Callable[[OpSpec], float]:
    """A ``latency_model`` (OpSpec -> µs) for :class:`~hwnas.hardware.HardwareProfile`."""

    def model(op: OpSpec) -> float:
        return fpga_op_cycles(op, spec) / spec.clock_hz * 1e6

    return model


@dataclass(frozen=True)
class FpgaResources:
    """DSP slices and block RAM a dataflow design of an architecture needs."""

    dsps: int
    weight_bytes: int
    buffer_bytes: int
    fifo_bytes: int
    table_bytes: int
    per_layer_dsps: tuple[int, ...]

    @property
    def bram_bytes(self) -> int:
        """Block RAM in bytes: weights, engine input buffers, shortcut FIFOs, tables."""
        return self.weight_bytes + self.buffer_bytes + self.fifo_bytes + self.table_bytes


def fpga_resources(arch: Architecture, spec: FpgaSpec = ZU9EG, batch: int = 1) -> FpgaResources:
    """The DSPs and block RAM of ``arch`` as one engine per layer (INT8, 1 byte a value).

    Weights: one byte per parameter. Buffers: each engine keeps its input map for
    one sample. FIFOs: an identity shortcut holds the layer input, a projection
    its output, until the main branch catches up. Tables: 256 bytes per output
    channel of a GELU layer. Unsupported layers (attention) count no DSPs.

    Taught in: notebooks/05_hardware_targets.
    """
    per_layer: list[int] = []
    buffers = fifos = tables = 0
    for key in arch_op_specs(arch, batch):
        parts = [key.main_branch()]
        if key.use_skip:
            parts.append(key.shortcut_branch())
            short = key.shortcut_branch()
            fifos += (short.out_channels * short.out_len) if short.is_projection else key.in_channels * key.seq_len
        dsps = 0
        for part in parts:
            if fpga_unsupported(part):
                continue
            engines = fpga_engines(part, spec)
            dsps += sum(e.dsps for e in engines)
            buffers += part.in_channels * part.seq_len if engines else 0
        if key.activation == "gelu":
            tables += spec.lut_table_bytes * key.out_channels
        per_layer.append(dsps)
    return FpgaResources(
        dsps=sum(per_layer),
        weight_bytes=count_params(arch),
        buffer_bytes=buffers,
        fifo_bytes=fifos,
        table_bytes=tables,
        per_layer_dsps=tuple(per_layer),
    )


def fpga_resource_check(spec: FpgaSpec) -> Callable[[Architecture, int], list[str]]:
    """An architecture-level check: DSP slices and block RAM against the part's."""

    def check(arch: Architecture, batch: int = 1) -> list[str]:
        res = fpga_resources(arch, spec, batch)
        reasons = []
        if res.dsps > spec.dsp_slices:
            reasons.append(
                f"DSP: the engines need {res.dsps:,} DSP slices but {spec.name} has "
                f"{spec.dsp_slices:,} (per layer: {list(res.per_layer_dsps)})"
            )
        if res.bram_bytes > spec.bram_bytes:
            reasons.append(
                f"BRAM: {res.bram_bytes:,} bytes needed (weights {res.weight_bytes:,}, buffers "
                f"{res.buffer_bytes:,}, FIFOs {res.fifo_bytes:,}, tables {res.table_bytes:,}) but "
                f"{spec.name} has {spec.bram_bytes:,} bytes of block RAM"
            )
        return reasons

    return check


# --------------------------------------------------------------------------- profiles


@dataclass
class AnalyticalProfile(HardwareProfile):
    """A :class:`~hwnas.hardware.HardwareProfile` of an analytical model.

    Adds ``resource_check`` (architecture-level reasons such as the DSP slices of
    an FPGA design) to :meth:`check`, and rebuilds its model from ``conditions``
    when loaded with ``AnalyticalProfile.load`` (``HardwareProfile.load`` gives
    the table only).
    """

    resource_check: Callable[[Architecture, int], list[str]] | None = field(default=None, repr=False)

    def check(self, arch: Architecture, batch: int = 1) -> list[str]:
        """Reasons ``arch`` is infeasible: memory, unsupported ops, then resources."""
        reasons = super().check(arch, batch)
        if self.resource_check is not None:
            reasons += self.resource_check(arch, batch)
        return reasons

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AnalyticalProfile":
        """Rebuild from JSON; the model callables too when ``conditions`` name a known model."""
        base = HardwareProfile.from_dict(data)
        model_id = base.conditions.get("model")
        params = base.conditions.get("parameters")
        if model_id == GPU_MODEL_ID and isinstance(params, dict):
            fresh = gpu_profile(_spec_from(GpuSpec, params), precision=base.precision, measure=False)
        elif model_id == FPGA_MODEL_ID and isinstance(params, dict):
            fresh = fpga_profile(_spec_from(FpgaSpec, params))
        else:
            return cls(**{f.name: getattr(base, f.name) for f in fields(HardwareProfile)})
        fresh.latency_table = base.latency_table
        fresh.name, fresh.conditions = base.name, base.conditions
        return fresh


def _spec_from(kind: type, params: dict[str, Any]) -> Any:
    """A GpuSpec/FpgaSpec from saved parameters (ValueError naming unknown fields)."""
    known = {f.name for f in fields(kind)}
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"{kind.__name__}: unknown parameter(s) {sorted(unknown)}")
    return kind(**params)


def gpu_profile(
    spec: GpuSpec = A100_40GB,
    precision: str = "fp16",
    *,
    measure: bool | None = None,
    repeats: int = 50,
) -> HardwareProfile:
    """A GPU target: measured on this machine's CUDA device, or the roofline model.

    ``measure=None`` measures when ``torch.cuda.is_available()``, else models
    ``spec``; ``measure=False`` always models (what the chapter does, so its
    numbers are the same everywhere); ``measure=True`` requires CUDA.

    The model profile is named ``"<card> roofline model"``, has ``is_model=True``,
    ``parallel_branches=True`` (CUDA streams), the card's memory as its budget,
    and every parameter with its source in ``conditions``.

    Taught in: notebooks/05_hardware_targets.
    """
    bytes_per_value(precision)
    if measure is None:
        measure = torch.cuda.is_available()
    if measure:
        return _measured_gpu_profile(spec, precision, repeats)
    alignment = TENSOR_CORE_ALIGNMENT[precision]
    conditions = {
        "model": GPU_MODEL_ID,
        "kind": "analytical roofline model, not a measurement",
        "device": spec.name,
        "precision": precision,
        "tensor_core_alignment": alignment if alignment else "tensor cores not used at fp32",
        "parameters": asdict(spec),
        "sources": {"datasheet": spec.source, **_GPU_ASSUMPTIONS},
    }
    return AnalyticalProfile(
        name=f"{spec.name} {precision} roofline model",
        device_type=DeviceType.GPU,
        latency_table={},
        memory_budget_bytes=spec.memory_bytes,
        peak_flops=spec.peak(precision, tensor_cores=precision != "fp32"),
        parallel_branches=True,
        precision=precision,
        conditions=conditions,
        is_model=True,
        latency_model=gpu_roofline_model(spec, precision),
    )


def fpga_profile(spec: FpgaSpec = ZU9EG) -> HardwareProfile:
    """An FPGA target: the INT8 dataflow cycle model of ``spec``.

    Named ``"<part> cycle model"``, ``is_model=True``, ``precision="int8"``,
    ``parallel_branches=True`` (the shortcut is a FIFO or a parallel engine),
    block RAM as the memory budget; ``unsupported`` rejects attention and
    :meth:`AnalyticalProfile.check` adds the DSP and BRAM checks.

    Taught in: notebooks/05_hardware_targets.
    """
    conditions = {
        "model": FPGA_MODEL_ID,
        "kind": "analytical cycle model, not a measurement",
        "device": spec.name,
        "precision": "int8",
        "clock_mhz": spec.clock_hz / 1e6,
        "parameters": asdict(spec),
        "sources": {"product table": spec.source, **_FPGA_ASSUMPTIONS},
    }
    return AnalyticalProfile(
        name=f"{spec.name} int8 cycle model",
        device_type=DeviceType.FPGA,
        latency_table={},
        memory_budget_bytes=spec.bram_bytes,
        peak_flops=spec.peak_flops,
        parallel_branches=True,
        precision="int8",
        conditions=conditions,
        is_model=True,
        latency_model=fpga_cycle_model(spec),
        unsupported=fpga_unsupported,
        resource_check=fpga_resource_check(spec),
    )


# --------------------------------------------------------------------------- CUDA measurement
# UNTESTED HERE: the course machines have no GPU. hwnas.latency's harness times
# on the CPU only, so this path times each key on the current CUDA device with
# CUDA events (same modules as the CPU tables: hwnas.latency.op_module), lazily
# the first time a key is asked for and memoised, so predict_latency works for
# any architecture and tabulate(space) fills a table to save.


def _cuda_time_us(op: OpSpec, precision: str, repeats: int) -> float:
    """Median µs of ``repeats`` CUDA-event-timed runs of ``op`` (after warm-up)."""
    if op.op == OVERHEAD_OP:
        raise NotImplementedError("no per-inference overhead entry for a measured GPU")
    dtype = {"fp32": torch.float32, "fp16": torch.float16}.get(precision)
    if dtype is None:
        raise ValueError(f"measured GPU profiles support precision fp32 or fp16, got {precision!r}")
    from .latency import op_module  # the same modules the CPU tables time

    device = torch.device("cuda")
    module, inputs = op_module(op)
    module = module.to(device=device, dtype=dtype).eval()
    args = tuple(t.to(device=device, dtype=dtype) for t in inputs)
    times = []
    with torch.inference_mode():
        for _ in range(10):
            module(*args)
        torch.cuda.synchronize()
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            module(*args)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) * 1e3)  # ms -> µs
    times.sort()
    return times[len(times) // 2]


def _measured_gpu_profile(spec: GpuSpec, precision: str, repeats: int) -> HardwareProfile:
    """A measured profile of the current CUDA device (untested on the course machines).

    torch cannot query a card's peak FLOP/s, so ``spec``'s figure stands in for it.
    """
    if not torch.cuda.is_available():
        raise ValueError("gpu_profile(measure=True) needs a CUDA device, and torch sees none; "
                         "use measure=False for the analytical roofline model")
    cache: dict[OpSpec, float] = {}

    def measured(op: OpSpec) -> float:
        if op not in cache:
            cache[op] = _cuda_time_us(op, precision, repeats)
        return cache[op]

    props = torch.cuda.get_device_properties(0)
    return HardwareProfile(
        name=f"{props.name} {precision} (CUDA events)",
        device_type=DeviceType.GPU,
        latency_table={},
        memory_budget_bytes=int(props.total_memory),
        peak_flops=spec.peak(precision, tensor_cores=precision != "fp32"),
        parallel_branches=True,
        precision=precision,
        conditions={"device": props.name, "torch_version": torch.__version__,
                    "cuda": torch.version.cuda, "repeats": repeats,
                    "peak_flops_from": f"{spec.name} datasheet (not measured)",
                    "method": "median of CUDA-event timings per key, after 10 warm-up runs"},
        is_model=False,
        latency_model=measured,
    )


__all__ = [
    "GpuSpec",
    "GpuKernel",
    "A100_40GB",
    "T4",
    "GPU_SPECS",
    "TENSOR_CORE_ALIGNMENT",
    "gpu_kernels",
    "gpu_kernel_time_us",
    "gpu_op_latency_us",
    "gpu_roofline_model",
    "gpu_profile",
    "FpgaSpec",
    "FpgaEngine",
    "FpgaResources",
    "ZU9EG",
    "ZU3EG",
    "FPGA_SPECS",
    "fpga_engines",
    "fpga_op_cycles",
    "fpga_unsupported",
    "fpga_resources",
    "fpga_resource_check",
    "fpga_cycle_model",
    "fpga_profile",
    "AnalyticalProfile",
]
