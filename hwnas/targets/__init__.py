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

Layout: :mod:`~hwnas.targets.gpu` (the roofline), :mod:`~hwnas.targets.fpga`
(the cycle model and resources), :mod:`~hwnas.targets.profiles` (both as
profiles, JSON round trip) and :mod:`~hwnas.targets.cuda` (timing a real CUDA
device, which the course machines do not have: never run here).
"""

from . import fpga, gpu, profiles  # noqa: E402  (the submodules, for their __all__)
from .fpga import (
    FPGA_ASSUMPTIONS,
    FPGA_MODEL_ID,
    FPGA_SPECS,
    ZU3EG,
    ZU9EG,
    FpgaEngine,
    FpgaResources,
    FpgaSpec,
    fpga_cycle_model,
    fpga_engines,
    fpga_op_cycles,
    fpga_resource_check,
    fpga_resources,
    fpga_unsupported,
)
from .gpu import (
    A100_40GB,
    GPU_ASSUMPTIONS,
    GPU_MODEL_ID,
    GPU_SPECS,
    T4,
    TENSOR_CORE_ALIGNMENT,
    GpuKernel,
    GpuSpec,
    gpu_kernel_time_us,
    gpu_kernels,
    gpu_op_latency_us,
    gpu_roofline_model,
)
from .profiles import AnalyticalProfile, fpga_profile, gpu_profile

__all__ = [*gpu.__all__, *fpga.__all__, *profiles.__all__]
