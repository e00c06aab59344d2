"""Hardware-independent cost: FLOPs, parameters and memory of an architecture.

Taught in: notebooks/02_flops (FLOPs) and notebooks/03_memory (parameters, memory).

Conventions: one multiply-add is 2 FLOPs, as in ``torch.utils.flop_counter``;
only matrix products and convolutions are counted (the counter ignores bias
adds, activations, softmax, pooling and residual adds, and so does this module,
so that the two agree exactly). Formulas, for a layer whose output has
``L_out`` steps:

* convolution (also dilated): ``2 L_out K C_in C_out``
* depthwise separable: ``2 L_out K C_in`` (depthwise) + ``2 L_out C_in C_out`` (pointwise)
* fully connected per step: ``2 L C_in C_out``; the head: ``2 C_in C_out``
* self-attention over ``n`` steps of width ``d``: ``4 n^2 d`` (scores and weighted
  sum) + ``8 n d^2`` (fused Q/K/V and output projections)
* pooling, identity: 0 (the counter counts no comparisons or adds)
* a skip with a projection adds ``2 L_out C_in C_out``.
* gated temporal convolution ``tanh(conv_f(x)) * sigmoid(conv_g(x))``: two
  convolutions, ``2 x 2 L_out K C_in C_out``
* a recurrent layer (GRU: ``G = 3`` gates, LSTM: ``G = 4``) of hidden size ``H``
  over ``L`` steps: ``2 L G H C_in`` (input projections) + ``2 L G H^2``
  (recurrent projections), i.e. ``2 L G H (C_in + H)``: the matrix products
  only, as torch's counter sees them. The gate arithmetic (per unit and step:
  GRU 2 sigmoids, 1 tanh, 3 multiplies, 4 adds; LSTM 3 sigmoids, 2 tanh,
  3 multiplies, 1 add, plus the bias adds) is not counted, exactly as
  activations are not counted elsewhere. Torch's CPU LSTM runs as one oneDNN
  kernel the counter cannot see into, so :func:`hwnas.cost_measure.measure_flops`
  counts with oneDNN off, where torch runs the same layer as the matrix
  products above.

The torch-based measurements that check these formulas (``measure_flops``,
``measure_activation_peak``, ``OperatorLog``) live in :mod:`hwnas.cost_measure`;
this module itself imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .architecture import RECURRENT_OPS, Activation, Architecture, LayerSpec, OpType
from .checks import require_enum, require_int

__all__ = [
    "BYTES_PER_VALUE",
    "LayerCost",
    "MemoryFootprint",
    "Precision",
    "bytes_per_value",
    "cost_breakdown",
    "count_flops",
    "count_params",
    "layer_flops",
    "layer_params",
    "max_batch_size",
    "memory_footprint",
    "recurrent_gates",
]


def recurrent_gates(op: OpType | str) -> tuple[int, int]:
    """``(G, S)`` of a recurrent op: gate blocks of ``H`` per step (GRU 3, LSTM 4) and
    state vectors of ``H`` carried between steps (GRU: h, 1; LSTM: h and c, 2).

    Taught in: notebooks/02_flops.
    """
    op = require_enum(OpType, op, "op")
    if op == OpType.GRU:
        return 3, 1
    if op == OpType.LSTM:
        return 4, 2
    raise ValueError(f"op must be one of {sorted(o.value for o in RECURRENT_OPS)}, got {op.value!r}")


class Precision(StrEnum):
    """The number formats a model's values are stored in: the one name set for precisions.

    A ``str`` enum: ``Precision.FP16 == "fp16"``, and saved profiles holding the
    plain strings load unchanged.

    Taught in: notebooks/03_memory.
    """

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


BYTES_PER_VALUE: dict[Precision, int] = {Precision.FP32: 4, Precision.FP16: 2, Precision.INT8: 1}


def bytes_per_value(precision: Precision | str) -> int:
    """Bytes per stored number for a precision (fp32, fp16, int8); ValueError naming them otherwise.

    Taught in: notebooks/03_memory.
    """
    return BYTES_PER_VALUE[require_enum(Precision, precision, "precision")]


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer (or the head) for a batch of one.

    Taught in: notebooks/02_flops.
    """

    name: str
    flops: int
    params: int
    in_shape: tuple[int, int]
    out_shape: tuple[int, int]


def _op_flops(spec: LayerSpec, length: int) -> int:
    """FLOPs of the main branch of ``spec`` on ``length`` input steps (batch 1)."""
    out_len = spec.output_length(length)
    cin, cout, k = spec.in_channels, spec.out_channels, spec.kernel_size
    if spec.op in (OpType.CONV, OpType.DILATED_CONV):
        return 2 * out_len * k * cin * cout
    if spec.op == OpType.GATED_TCN:
        return 2 * (2 * out_len * k * cin * cout)
    if spec.op in RECURRENT_OPS:
        gates, _ = recurrent_gates(spec.op)
        return 2 * length * gates * cout * (cin + cout)
    if spec.op == OpType.DWSEP_CONV:
        return 2 * out_len * k * cin + 2 * out_len * cin * cout
    if spec.op == OpType.FC:
        return 2 * length * cin * cout
    if spec.op == OpType.ATTENTION:
        n, d = length, cin
        return 4 * n * n * d + 8 * n * d * d
    return 0


def _op_params(spec: LayerSpec) -> int:
    """Weights and biases of the main branch of ``spec``."""
    cin, cout, k = spec.in_channels, spec.out_channels, spec.kernel_size
    if spec.op in (OpType.CONV, OpType.DILATED_CONV):
        return cin * cout * k + cout
    if spec.op == OpType.GATED_TCN:
        return 2 * (cin * cout * k + cout)
    if spec.op in RECURRENT_OPS:  # W_ih (G H x C_in), W_hh (G H x H) and two biases of G H, as torch keeps them
        gates, _ = recurrent_gates(spec.op)
        return gates * cout * (cin + cout) + 2 * gates * cout
    if spec.op == OpType.DWSEP_CONV:
        return cin * k + cin + cin * cout + cout
    if spec.op == OpType.FC:
        return cin * cout + cout
    if spec.op == OpType.ATTENTION:
        return 4 * cin * cin + 4 * cin
    return 0


def layer_flops(spec: LayerSpec, length: int) -> int:
    """FLOPs of a whole layer (main branch and skip projection), batch 1.

    Taught in: notebooks/02_flops.
    """
    total = _op_flops(spec, length)
    if spec.needs_projection:
        total += 2 * spec.output_length(length) * spec.in_channels * spec.out_channels
    return total


def layer_params(spec: LayerSpec) -> int:
    """Parameters of a whole layer (main branch and skip projection).

    Taught in: notebooks/03_memory.
    """
    total = _op_params(spec)
    if spec.needs_projection:
        total += spec.in_channels * spec.out_channels + spec.out_channels
    return total


def cost_breakdown(arch: Architecture) -> list[LayerCost]:
    """FLOPs and parameters per layer, then the head, for a batch of one.

    Taught in: notebooks/02_flops.
    """
    from .checks import require_type

    require_type(arch, "arch", Architecture, " (e.g. Architecture.load(path))")
    shapes = arch.shapes()
    rows = [
        LayerCost(f"{i}:{spec.op.value}", layer_flops(spec, shapes[i][1]), layer_params(spec),
                  shapes[i], shapes[i + 1])
        for i, spec in enumerate(arch.layers)
    ]
    head_in = arch.head_in_features
    rows.append(
        LayerCost(f"head:{arch.head.value}", 2 * head_in * arch.num_outputs,
                  head_in * arch.num_outputs + arch.num_outputs, shapes[-1], (arch.num_outputs, 1))
    )
    return rows


def count_flops(arch: Architecture, batch_size: int = 1) -> int:
    """Total FLOPs of one forward pass (2 per multiply-add).

    Taught in: notebooks/02_flops.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return batch_size * sum(row.flops for row in cost_breakdown(arch))


def count_params(arch: Architecture) -> int:
    """Number of trainable parameters (equals ``sum(p.numel())`` of the built model).

    Taught in: notebooks/03_memory.
    """
    return sum(row.params for row in cost_breakdown(arch))


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryFootprint:
    """Inference memory of an architecture at one precision and batch size.

    ``activation_bytes`` follows the chapter's schedule model: the peak over
    layers of input plus output, plus the tensors a skip branch keeps alive
    (the op's output and the projected shortcut beside the sum).
    ``eager_activation_bytes`` also counts what eager PyTorch holds inside a
    layer (attention's score matrices, a depthwise intermediate, the copy an
    activation function makes, the model input the caller still holds);
    :func:`measure_activation_peak` measures that figure.

    Taught in: notebooks/03_memory.
    """

    precision: Precision
    batch_size: int
    params: int
    params_bytes: int
    activation_bytes: int
    eager_activation_bytes: int
    per_layer_activation_bytes: tuple[int, ...]
    peak_layer: int

    @property
    def total_bytes(self) -> int:
        """Parameters plus peak activations (the chapter's MEM(a))."""
        return self.params_bytes + self.activation_bytes

    @property
    def eager_total_bytes(self) -> int:
        """Parameters plus the eager-PyTorch activation peak."""
        return self.params_bytes + self.eager_activation_bytes

    def fits(self, budget_bytes: int) -> bool:
        """Whether :attr:`total_bytes` is within ``budget_bytes``."""
        return self.total_bytes <= budget_bytes


def _schedule_live_values(spec: LayerSpec, length: int) -> int:
    """Values live while a layer runs, in the chapter's schedule model (batch 1).

    Input plus output, plus what the operation itself must hold: a recurrent
    layer, run one step at a time, the ``G H`` gate pre-activations of the
    current step and, for the LSTM, the cell state (``H``; the hidden state is
    the output column being written); a gated convolution, the second of its
    two branch maps (the product overwrites the first). Those buffers are gone
    before a skip branch joins, so the layer holds the larger of the two extras.
    """
    x_in = spec.in_channels * length
    x_out = spec.out_channels * spec.output_length(length)
    inner = 0
    if spec.op in RECURRENT_OPS:
        gates, states = recurrent_gates(spec.op)
        inner = gates * spec.out_channels + (states - 1) * spec.out_channels
    elif spec.op == OpType.GATED_TCN:
        inner = x_out
    skip_extra = (x_out + (x_out if spec.needs_projection else 0)) if spec.use_skip else 0
    return x_in + x_out + max(inner, skip_extra)


def _eager_live_values(spec: LayerSpec, length: int) -> int:
    """Peak values live inside a layer as eager PyTorch runs it (batch 1).

    The maximum over three phases: the operation (with its internal
    temporaries), the activation (a new tensor beside the op output), and the
    residual add (activation output, projected shortcut and sum).
    """
    x_in = spec.in_channels * length
    out_len = spec.output_length(length)
    x_out = spec.out_channels * out_len
    if spec.op == OpType.DWSEP_CONV:
        op_phase = spec.in_channels * out_len + x_out
    elif spec.op == OpType.ATTENTION:
        n, d = length, spec.in_channels
        scores = spec.heads * n * n
        # fused qkv held throughout; then either scaled scores + softmax, or the
        # softmax weights + context, the output projection and its contiguous copy
        op_phase = 3 * n * d + max(2 * scores, scores + 3 * n * d)
    elif spec.op in RECURRENT_OPS:
        # torch's sequence of states, the final state(s) it also returns (h; h and c),
        # and the contiguous channels-first copy of the sequence (exact from 2 steps and
        # 2 hidden units; torch special-cases a single step or a single unit)
        _, states = recurrent_gates(spec.op)
        op_phase = 2 * x_out + states * spec.out_channels
    elif spec.op == OpType.GATED_TCN:
        # tanh(filter) and sigmoid(gate) beside each other and then their product
        # (each convolution's raw output is freed once its nonlinearity is taken)
        op_phase = 3 * x_out
    elif spec.op == OpType.IDENTITY:
        op_phase = 0
    else:
        op_phase = x_out
    has_act = spec.activation != Activation.NONE
    act_phase = (0 if spec.op == OpType.IDENTITY else x_out) + (x_out if has_act else 0)
    skip_phase = 0
    if spec.use_skip:
        skip_phase = 2 * x_out + (x_out if spec.needs_projection else 0)
    return x_in + max(op_phase, act_phase, skip_phase)


def memory_footprint(arch: Architecture, precision: Precision | str = Precision.FP32,
                     batch_size: int = 1) -> MemoryFootprint:
    """Parameter and peak activation memory of ``arch``.

    ``MEM = params x b + max_i(size(x_i) + size(x_{i+1})) x b``, with ``b`` the
    bytes per value of ``precision`` and activations scaled by ``batch_size``.

    Taught in: notebooks/03_memory.
    """
    precision = require_enum(Precision, precision, "precision")
    b = BYTES_PER_VALUE[precision]
    require_int(batch_size, "batch_size", 1)
    shapes = arch.shapes()
    scale = b * batch_size
    schedule = [_schedule_live_values(spec, shapes[i][1]) * scale for i, spec in enumerate(arch.layers)]
    held_input = arch.input_features * arch.lookback
    eager = [
        (_eager_live_values(spec, shapes[i][1]) + (held_input if i else 0)) * scale
        for i, spec in enumerate(arch.layers)
    ]
    peak = max(range(len(schedule)), key=schedule.__getitem__)
    params = count_params(arch)
    return MemoryFootprint(
        precision=precision,
        batch_size=batch_size,
        params=params,
        params_bytes=params * b,
        activation_bytes=schedule[peak],
        eager_activation_bytes=max(eager),
        per_layer_activation_bytes=tuple(schedule),
        peak_layer=peak,
    )


def max_batch_size(arch: Architecture, precision: Precision | str, budget_bytes: int, eager: bool = True) -> int:
    """Largest batch whose parameters plus activations fit ``budget_bytes`` (0 if none).

    ``eager=True`` uses what eager PyTorch holds (``eager_activation_bytes``),
    ``False`` the chapter's schedule model. Activations grow linearly with batch.

    Taught in: notebooks/03_memory.
    """
    one = memory_footprint(arch, precision)
    per_sample = one.eager_activation_bytes if eager else one.activation_bytes
    return max(0, (budget_bytes - one.params_bytes) // per_sample)

