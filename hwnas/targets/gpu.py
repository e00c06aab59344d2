"""The GPU roofline model: each op as the kernels eager PyTorch launches, each kernel
bounded by compute or memory (see :mod:`hwnas.targets`).

Taught in: notebooks/05_hardware_targets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..architecture import Activation
from ..checks import FRACTION, NON_NEGATIVE, POSITIVE, check_fields, integer, require_enum
from ..cost import Precision, bytes_per_value, recurrent_gates
from ..opspec import OpKind, OpSpec

GPU_MODEL_ID = "hwnas-gpu-roofline-v1"

_A100_SOURCE = (
    "NVIDIA A100 Tensor Core GPU datasheet (nvidia2020a100): FP32 19.5 TFLOP/s, FP16 Tensor "
    "Core 312 TFLOP/s and INT8 Tensor Core 624 TOP/s (dense), 40 GB HBM2 at 1,555 GB/s; "
    "108 SMs from the Ampere architecture whitepaper"
)
_T4_SOURCE = (
    "NVIDIA T4 datasheet (nvidia2019t4): FP32 8.1 TFLOP/s, mixed-precision FP16 65 TFLOP/s, "
    "INT8 130 TOP/s, 16 GB GDDR6 at 320 GB/s; 40 SMs (Turing TU104 as configured for T4)"
)
GPU_ASSUMPTIONS = {
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
    "recurrent": "a GRU/LSTM layer over L steps is one GEMM for the input projections of all steps, then "
                 "L sequential small GEMMs (batch x gates*H x H) each followed by one fused element-wise "
                 "gate kernel: the step dependence forbids batching the recurrent products across time "
                 "(Appleyard, Kocisky and Blunsom 2016, 'Optimizing performance of recurrent neural networks "
                 "on GPUs', arXiv:1604.01946; the layout of cuDNN's RNN API). Every step pays a launch; a "
                 "persistent RNN kernel (Diamos et al. 2016) that keeps the weights on chip is not modelled",
}

@dataclass(frozen=True)
class GpuSpec:
    """Published figures of a GPU and the assumptions of the roofline model.

    Rates are dense (no structured sparsity), in FLOP/s (INT8: operations/s),
    bandwidth in bytes/s, memory in bytes.

    Taught in: notebooks/05_hardware_targets.
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
        check_fields(self, {
            ("peak_flops_fp32", "peak_flops_fp16_tensor", "peak_ops_int8_tensor", "mem_bandwidth_bytes_s"): POSITIVE,
            ("memory_bytes", "sm_count", "tile"): integer(1),
            ("launch_overhead_us", "sync_overhead_us"): NON_NEGATIVE,
            ("compute_efficiency", "memory_efficiency"): FRACTION,
        }, "GpuSpec.")

    def peak(self, precision: Precision | str, tensor_cores: bool) -> float:
        """FLOP/s available to a kernel at ``precision`` (tensor cores or CUDA cores).

        Off the tensor cores every precision gets the FP32 CUDA-core rate (a
        simplification: some GPUs run packed FP16 or INT8 dot products at two or
        four times that rate on CUDA cores).
        """
        bytes_per_value(precision)
        if tensor_cores and precision == Precision.FP16:
            return self.peak_flops_fp16_tensor
        if tensor_cores and precision == Precision.INT8:
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
TENSOR_CORE_ALIGNMENT: dict[str, int | None] = {Precision.FP32: None, Precision.FP16: 8, Precision.INT8: 16}


@dataclass(frozen=True)
class GpuKernel:
    """One kernel launch: its work, its traffic and how it maps onto the GPU.

    ``gemm`` is ``(M, N, K)`` for a matrix product (``batch_count`` of them in a
    batched GEMM) and ``None`` for element-wise, reduction and depthwise kernels,
    which run on CUDA cores and are spread over ``elements`` outputs.
    ``aligned_dims`` are the channel dimensions that must be multiples of the
    tensor-core alignment.

    Taught in: notebooks/05_hardware_targets.
    """

    name: str
    flops: float
    bytes: float
    gemm: tuple[int, int, int] | None = None
    batch_count: int = 1
    elements: int = 1
    aligned_dims: tuple[int, ...] = ()

    def uses_tensor_cores(self, precision: Precision | str) -> bool:
        """Whether this kernel runs on tensor cores at ``precision``."""
        align = TENSOR_CORE_ALIGNMENT[require_enum(Precision, precision, "precision")]
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


def _recurrent_kernels(op: OpSpec, b: int) -> list[GpuKernel]:
    """A GRU/LSTM layer: input GEMM over all steps, then per step a recurrent GEMM and a gate kernel.

    See ``GPU_ASSUMPTIONS["recurrent"]`` (Appleyard et al. 2016). Per unit and step
    the gate kernel reads the ``G`` input and ``G`` recurrent pre-activations and the
    ``S`` carried states, writes the ``S`` new ones, and does about 10 FLOPs per
    gate (sigmoid or tanh and the products that mix them).
    """
    bt, cin, hidden, steps = op.batch, op.in_channels, op.out_channels, op.seq_len
    gates, states = recurrent_gates(op.op)
    gh = gates * hidden
    kernels = [
        _elementwise("time-major copy", bt * cin * steps, b, flops_per_value=0.0),
        _gemm("input projections (all steps, GEMM)", bt * steps, gh, cin, b,
              bt * steps * cin + bt * steps * gh + cin * gh + 2 * gh, aligned=(cin, gh)),
    ]
    for step in range(steps):
        kernels.append(_gemm(f"step {step}: recurrent GEMM", bt, gh, hidden, b,
                             bt * hidden + bt * gh + hidden * gh, aligned=(hidden, gh)))
        kernels.append(GpuKernel(f"step {step}: gates", 10.0 * bt * gh,
                                 float(b * bt * (2 * gh + 2 * states * hidden)), None, 1, bt * hidden))
    kernels.append(_elementwise("channels-first copy", bt * hidden * steps, b, flops_per_value=0.0))
    return kernels


def gpu_kernels(op: OpSpec, precision: Precision | str = Precision.FP16) -> list[GpuKernel]:
    """The kernels eager PyTorch launches for ``op`` (no residual: the profile adds branches).

    Memory traffic counts each input, output and weight tensor once (a
    convolution reads its input once, not once per tap).

    Taught in: notebooks/05_hardware_targets.
    """
    b = bytes_per_value(precision)
    bt, cin, cout, L, lo = op.batch, op.in_channels, op.out_channels, op.seq_len, op.out_len
    k = op.kernel_size
    kernels: list[GpuKernel] = []
    if op.op in (OpKind.CONV, OpKind.DILATED_CONV):
        kernels.append(_gemm("conv (implicit GEMM)", bt * lo, cout, k * cin, b,
                             bt * cin * L + bt * cout * lo + k * cin * cout + cout, aligned=(cin, cout)))
    elif op.op == OpKind.FC:
        kernels.append(_gemm("fc (GEMM)", bt * L, cout, cin, b,
                             bt * cin * L + bt * cout * L + cin * cout + cout, aligned=(cin, cout)))
    elif op.op == OpKind.DWSEP_CONV:
        dw_values = bt * cin * lo
        kernels.append(GpuKernel("depthwise conv", 2.0 * dw_values * k,
                                 float(b * (bt * cin * L + dw_values + cin * (k + 1))), None, 1, dw_values))
        kernels.append(_gemm("pointwise (GEMM)", bt * lo, cout, cin, b,
                             dw_values + bt * cout * lo + cin * cout + cout, aligned=(cin, cout)))
    elif op.op == OpKind.ATTENTION:
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
    elif op.op == OpKind.GATED_TCN:
        conv_values = bt * cin * L + bt * cout * lo + k * cin * cout + cout
        kernels += [
            _gemm("filter conv (implicit GEMM)", bt * lo, cout, k * cin, b, conv_values, aligned=(cin, cout)),
            _elementwise("tanh", bt * cout * lo, b, flops_per_value=8.0),
            _gemm("gate conv (implicit GEMM)", bt * lo, cout, k * cin, b, conv_values, aligned=(cin, cout)),
            _elementwise("sigmoid", bt * cout * lo, b, flops_per_value=8.0),
            _elementwise("gated product", bt * cout * lo, b, reads=2),
        ]
    elif op.op in (OpKind.GRU, OpKind.LSTM):
        kernels += _recurrent_kernels(op, b)
    elif op.op in (OpKind.MAX_POOL, OpKind.AVG_POOL):
        kernels.append(GpuKernel(op.op, float(bt * cin * lo * k), float(b * bt * cin * (L + lo)),
                                 None, 1, bt * cin * lo))
    elif op.op == OpKind.SHORTCUT:
        if op.is_projection:
            kernels.append(_gemm("shortcut projection (1x1 GEMM)", bt * lo, cout, cin, b,
                                 bt * cin * lo + bt * cout * lo + cin * cout + cout, aligned=(cin, cout)))
    elif op.op == OpKind.ADD:
        kernels.append(_elementwise("residual add", bt * cout * op.seq_len, b, reads=2))
    elif op.is_head:
        features = cin * L if op.op == OpKind.HEAD_FLATTEN else cin
        if op.op == OpKind.HEAD_GAP:
            kernels.append(GpuKernel("mean over time", float(bt * cin * L), float(b * bt * cin * (L + 1)),
                                     None, 1, bt * cin))
        kernels.append(_gemm("head linear", bt, cout, features, b,
                             bt * features + bt * cout + features * cout + cout, aligned=(features, cout)))
    elif op.op == OpKind.OVERHEAD:
        raise ValueError("the overhead key has no kernels; see gpu_op_latency_us")
    # identity: no kernel (a view); its activation, if any, is launched below
    if op.is_layer and op.activation != Activation.NONE:
        kernels.append(_elementwise(op.activation, bt * cout * lo, b,
                                    flops_per_value=1.0 if op.activation == Activation.RELU else 8.0))
    return kernels


def gpu_kernel_time_us(kernel: GpuKernel, spec: GpuSpec, precision: Precision | str = Precision.FP16) -> float:
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


def gpu_op_latency_us(op: OpSpec, spec: GpuSpec = A100_40GB, precision: Precision | str = Precision.FP16) -> float:
    """Modelled latency of one key in µs (the sum over its kernels; 0 for none).

    The ``overhead`` key costs ``spec.sync_overhead_us`` per inference.

    Taught in: notebooks/05_hardware_targets.
    """
    if op.op == OpKind.OVERHEAD:
        return spec.sync_overhead_us
    return sum(gpu_kernel_time_us(k, spec, precision) for k in gpu_kernels(op, precision))


def gpu_roofline_model(spec: GpuSpec = A100_40GB,
                       precision: Precision | str = Precision.FP16) -> Callable[[OpSpec], float]:
    """A ``latency_model`` (OpSpec -> µs) for :class:`~hwnas.hardware.HardwareProfile`.

    Taught in: notebooks/05_hardware_targets.
    """
    bytes_per_value(precision)

    def model(op: OpSpec) -> float:
        return gpu_op_latency_us(op, spec, precision)

    return model


__all__ = [
    "GpuSpec",
    "GpuKernel",
    "A100_40GB",
    "T4",
    "GPU_SPECS",
    "TENSOR_CORE_ALIGNMENT",
    "GPU_MODEL_ID",
    "GPU_ASSUMPTIONS",
    "gpu_kernels",
    "gpu_kernel_time_us",
    "gpu_op_latency_us",
    "gpu_roofline_model",
]
