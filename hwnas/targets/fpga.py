"""The FPGA cycle model of a layer-per-engine INT8 dataflow design (see :mod:`hwnas.targets`).

Taught in: notebooks/05_hardware_targets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..architecture import Activation, Architecture
from ..checks import POSITIVE, check_fields, integer
from ..cost import count_params
from ..opspec import OpKind, OpSpec, arch_op_specs

FPGA_MODEL_ID = "hwnas-fpga-cycle-v1"

_ZU9EG_SOURCE = (
    "Zynq UltraScale+ MPSoC product selection guide (xilinx2019zynqusp): XCZU9EG has 2,520 "
    "DSP48E2 slices and 912 36-Kb block RAMs (32.1 Mb), no UltraRAM"
)
_ZU3EG_SOURCE = (
    "Zynq UltraScale+ MPSoC product selection guide (xilinx2019zynqusp): XCZU3EG has 360 "
    "DSP48E2 slices and 216 36-Kb block RAMs (7.6 Mb), no UltraRAM"
)
FPGA_ASSUMPTIONS = {
    "bram_bytes": "each 36-Kb block RAM holds 4,096 INT8 values (4K x 9 mode, parity bit unused)",
    "clock_hz": "assumption: 300 MHz, a common target clock for HLS designs on UltraScale+ "
                "(timing closure decides the real one)",
    "macs_per_dsp_per_cycle": "Xilinx WP486 (fu2016wp486): a DSP48E2 computes two INT8 "
                              "multiply-adds sharing one operand per cycle",
    "dsp_per_engine": "design choice: DSP slices given to one layer engine (a reuse factor as in "
                      "hls4ml, duarte2018hls4ml); a layer that needs fewer uses fewer",
    "bits": "value width of the datapath; up to 8 bits two multiply-adds share a DSP48E2 (WP486), "
            "up to 18 bits one (its 27x18 multiplier), wider values take ceil(bits / 18) slices each",
    "reuse_factor": "hls4ml's reuse factor when > 0: a layer gets ceil(multiplications per output step / "
                    "reuse_factor) multipliers, each used reuse_factor times per step (it replaces "
                    "dsp_per_engine); 0: the dsp_per_engine cap",
    "pipeline_depth_cycles": "assumption: fill latency of one engine (operand fetch, multiplier, "
                             "adder tree, requantisation)",
    "io_latency_cycles": "assumption: moving the input window in and the prediction out of the "
                         "fabric (AXI stream), once per inference",
    "lut_activation_cycles": "assumption: one registered block-RAM read for a table activation",
    "lut_table_bytes": "a 256-entry INT8 -> INT8 table per output channel",
    "adder_cycles": "assumption: the residual adder and pooling comparators, one register stage",
}

@dataclass(frozen=True)
class FpgaSpec:
    """Published resources of an FPGA part and the assumptions of the cycle model.

    Taught in: notebooks/05_hardware_targets.
    """

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
    bits: int = 8
    reuse_factor: int = 0

    def __post_init__(self) -> None:
        check_fields(self, {
            ("dsp_slices", "bram_bytes", "macs_per_dsp_per_cycle", "dsp_per_engine"): integer(1),
            ("pipeline_depth_cycles", "io_latency_cycles", "lut_activation_cycles", "lut_table_bytes",
             "adder_cycles", "reuse_factor"): integer(0),
            "bits": integer(2),
            "clock_hz": POSITIVE,
        }, "FpgaSpec.")

    @property
    def macs_per_dsp(self) -> float:
        """Multiply-adds one DSP slice does per cycle at :attr:`bits`: ``macs_per_dsp_per_cycle`` up to
        8 bits, 1 up to 18, ``1 / ceil(bits / 18)`` wider."""
        if self.bits <= 8:
            return float(self.macs_per_dsp_per_cycle)
        return 1.0 / math.ceil(self.bits / 18)

    @property
    def max_parallel_macs(self) -> int:
        """Multiply-adds one engine can do per cycle (the ``dsp_per_engine`` cap)."""
        return max(1, int(self.dsp_per_engine * self.macs_per_dsp))

    def engine_multipliers(self, dot: int) -> int:
        """Multipliers of an engine whose output step takes ``dot`` multiply-adds: ``ceil(dot /
        reuse_factor)`` as hls4ml configures them when ``reuse_factor > 0``, else capped at
        :attr:`max_parallel_macs`."""
        if self.reuse_factor > 0:
            return max(1, math.ceil(dot / self.reuse_factor))
        return min(dot, self.max_parallel_macs)

    @property
    def peak_flops(self) -> float:
        """FLOP/s with every DSP busy (2 FLOPs per multiply-add)."""
        return 2.0 * self.dsp_slices * self.macs_per_dsp * self.clock_hz


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
    """One hardware engine of the dataflow design (a layer has one or two).

    Taught in: notebooks/05_hardware_targets.
    """

    name: str
    macs: int  # multiply-adds for the whole batch
    dot_length: int  # multiply-adds per output step (0: no DSPs)
    parallel_macs: int  # multipliers given to the engine (0: no DSPs)
    dsps: int
    cycles: int


def _dsp_engine(name: str, steps: int, dot: int, spec: FpgaSpec) -> FpgaEngine:
    """An engine computing ``steps`` output steps of ``dot`` multiply-adds each."""
    parallel = spec.engine_multipliers(dot)
    macs = steps * dot
    cycles = math.ceil(macs / parallel) + spec.pipeline_depth_cycles
    return FpgaEngine(name, macs, dot, parallel, math.ceil(parallel / spec.macs_per_dsp), cycles)


def _fabric_engine(name: str, cycles: int) -> FpgaEngine:
    """An engine built from LUTs and registers only (no DSPs)."""
    return FpgaEngine(name, 0, 0, 0, 0, cycles)


def fpga_unsupported(op: OpSpec) -> str | None:
    """Why ``op`` cannot be built efficiently on the FPGA, or ``None`` when it can.

    Taught in: notebooks/05_hardware_targets.
    """
    if op.op == OpKind.ATTENTION:
        return (
            "op 'attention' is not supported on the FPGA: its softmax over the sequence and its "
            f"{op.seq_len}x{op.seq_len} score matrix are computed at run time (dynamic, data-"
            "dependent weights, exponentials and a division), which has no efficient fixed "
            "dataflow; use conv, dwsep_conv or fc"
        )
    if op.op in (OpKind.GRU, OpKind.LSTM):
        return (
            f"op {str(op.op)!r} is not supported on the FPGA: each of its {op.seq_len} steps needs the "
            "previous step's hidden state (a loop-carried dependence the layer pipeline cannot overlap, "
            "so the steps run one after another), and its sigmoid and tanh gates are the complex "
            "nonlinearities the operation-support rule says to avoid; use conv, dwsep_conv or fc"
        )
    if op.op == OpKind.GATED_TCN:
        return (
            "op 'gated_tcn' is not supported on the FPGA: its tanh and sigmoid are the complex "
            "nonlinearities the operation-support rule says to avoid (lookup tables on every value), and "
            "its product of two data-dependent maps needs a multiplier per output beside the "
            "convolutions' DSP slices; use conv, dwsep_conv or fc"
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
    if op.op in (OpKind.CONV, OpKind.DILATED_CONV):
        engines = [_dsp_engine(op.op, bt * lo, k * cin * cout, spec)]
    elif op.op == OpKind.FC:
        engines = [_dsp_engine("fc", bt * L, cin * cout, spec)]
    elif op.op == OpKind.DWSEP_CONV:
        engines = [_dsp_engine("depthwise", bt * lo, k * cin, spec),
                   _dsp_engine("pointwise", bt * lo, cin * cout, spec)]
    elif op.op in (OpKind.MAX_POOL, OpKind.AVG_POOL):
        engines = [_fabric_engine(op.op, bt * lo + spec.adder_cycles)]
    elif op.op == OpKind.IDENTITY:
        engines = []
    elif op.op == OpKind.SHORTCUT:
        engines = [_dsp_engine("shortcut projection", bt * lo, cin * cout, spec)] if op.is_projection else []
    elif op.op == OpKind.ADD:
        engines = [_fabric_engine("residual adder", spec.adder_cycles)]
    elif op.op == OpKind.HEAD_GAP:
        engines = [_fabric_engine("time average", bt * L), _dsp_engine("head linear", bt, cin * cout, spec)]
    elif op.op == OpKind.HEAD_LAST:
        engines = [_dsp_engine("head linear", bt, cin * cout, spec)]
    elif op.op == OpKind.HEAD_FLATTEN:
        engines = [_dsp_engine("head linear", bt, cin * L * cout, spec)]
    else:  # overhead
        raise ValueError("the overhead key has no engines; see fpga_op_cycles")
    if op.activation == Activation.GELU and engines:
        engines.append(_fabric_engine("gelu table", spec.lut_activation_cycles))
    return engines


def fpga_op_cycles(op: OpSpec, spec: FpgaSpec = ZU9EG) -> float:
    """Clock cycles of one key: the sum over its engines (``inf`` when unsupported).

    ``overhead`` is the host I/O, ``spec.io_latency_cycles``.

    Taught in: notebooks/05_hardware_targets.
    """
    if op.op == OpKind.OVERHEAD:
        return float(spec.io_latency_cycles)
    if fpga_unsupported(op):
        return math.inf
    return float(sum(e.cycles for e in fpga_engines(op, spec)))


def fpga_cycle_model(spec: FpgaSpec = ZU9EG) -> Callable[[OpSpec], float]:
    """A ``latency_model`` (OpSpec -> µs) for :class:`~hwnas.hardware.HardwareProfile`.

    Taught in: notebooks/05_hardware_targets.
    """

    def model(op: OpSpec) -> float:
        return fpga_op_cycles(op, spec) / spec.clock_hz * 1e6

    return model


@dataclass(frozen=True)
class FpgaResources:
    """DSP slices and block RAM a dataflow design of an architecture needs.

    Taught in: notebooks/05_hardware_targets.
    """

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
    """The DSPs and block RAM of ``arch`` as one engine per layer (``ceil(spec.bits / 8)`` bytes a value,
    1 at the default INT8).

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
        if key.activation == Activation.GELU:
            tables += spec.lut_table_bytes * key.out_channels
        per_layer.append(dsps)
    value_bytes = math.ceil(spec.bits / 8)
    return FpgaResources(
        dsps=sum(per_layer),
        weight_bytes=count_params(arch) * value_bytes,
        buffer_bytes=buffers * value_bytes,
        fifo_bytes=fifos * value_bytes,
        table_bytes=tables,
        per_layer_dsps=tuple(per_layer),
    )


def fpga_resource_check(spec: FpgaSpec) -> Callable[[Architecture, int], list[str]]:
    """An architecture-level check: DSP slices and block RAM against the part's.

    Taught in: notebooks/05_hardware_targets.
    """

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


__all__ = [
    "FpgaSpec",
    "FpgaEngine",
    "FpgaResources",
    "ZU9EG",
    "ZU3EG",
    "FPGA_SPECS",
    "FPGA_MODEL_ID",
    "FPGA_ASSUMPTIONS",
    "fpga_engines",
    "fpga_op_cycles",
    "fpga_unsupported",
    "fpga_resources",
    "fpga_resource_check",
    "fpga_cycle_model",
]
