"""Turn an :class:`~hwnas.space.Architecture` into a runnable PyTorch module.

Taught in: notebooks/01_search_space.

The model maps a float tensor ``(batch, input_features, lookback)`` to
``(batch, num_outputs)``. Each layer is built by :func:`build_layer`, so the
latency tables can time exactly the modules a whole model runs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .architecture import Activation, Architecture, HeadType, LayerSpec, OpType


class SelfAttention(nn.Module):
    """Multi-head self-attention over the time axis of a ``(batch, d, n)`` map.

    Written out with explicit matrix products (fused Q/K/V projection, scores,
    softmax, weighted sum, output projection) so that its FLOPs are exactly
    ``4 n^2 d + 8 n d^2``: the chapter's ``4 n^2 d`` for scores and weighted sum,
    plus four ``d x d`` projections of ``2 n d^2`` each.

    Taught in: notebooks/01_search_space.
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = channels // heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        self.scale = 1.0 / math.sqrt(self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, steps = x.shape
        tokens = x.transpose(1, 2)  # (batch, n, d)
        qkv = self.qkv(tokens).reshape(batch, steps, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, n, head_dim)
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        context = (weights @ v).transpose(1, 2).reshape(batch, steps, channels)
        # contiguous, so the next layer reads a plain (batch, d, n) map and the copy
        # is paid (and timed in the latency table) here, not hidden in the next layer
        return self.out(context).transpose(1, 2).contiguous()


class Recurrent(nn.Module):
    """A single-layer unidirectional GRU or LSTM over the time axis of a ``(batch, C_in, L)`` map.

    Returns every step's hidden state as a ``(batch, hidden, L)`` map (zero initial
    state), copied to a contiguous channels-first tensor so the next layer reads
    a plain map (the copy is paid, and timed, here, as in :class:`SelfAttention`).
    The last state alone is the last column, what a ``last`` head reads.

    Taught in: notebooks/01_search_space.
    """

    def __init__(self, kind: OpType, in_channels: int, hidden: int) -> None:
        super().__init__()
        if kind not in (OpType.GRU, OpType.LSTM):
            raise ValueError(f"kind must be 'gru' or 'lstm', got {kind!r}")
        cls = nn.GRU if kind == OpType.GRU else nn.LSTM
        self.rnn = cls(in_channels, hidden, num_layers=1, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(x.transpose(1, 2))  # (batch, L, C_in) in, (batch, L, hidden) out
        return states.transpose(1, 2).contiguous()


class GatedConv(nn.Module):
    """The WaveNet/TCN gated unit ``tanh(conv_f(x)) * sigmoid(conv_g(x))`` (van den Oord et al. 2016).

    Two dilated 1-D convolutions with the padding convention of every
    convolution here ("same" padding, :func:`~hwnas.architecture.output_length`),
    kept as two modules so that ExecuTorch's XNNPACK partitioner delegates the whole
    unit as one partition (a fused ``2 C_out`` convolution followed by a split does not).

    Taught in: notebooks/01_search_space.
    """

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        cin, cout, k = spec.in_channels, spec.out_channels, spec.kernel_size
        self.filter = nn.Conv1d(cin, cout, k, stride=spec.stride, padding=spec.padding, dilation=spec.dilation)
        self.gate = nn.Conv1d(cin, cout, k, stride=spec.stride, padding=spec.padding, dilation=spec.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.filter(x)) * torch.sigmoid(self.gate(x))


def _activation(kind: Activation) -> nn.Module:
    """The torch module of an :class:`Activation`."""
    return {Activation.RELU: nn.ReLU(), Activation.GELU: nn.GELU(), Activation.NONE: nn.Identity()}[kind]


def _operation(spec: LayerSpec) -> nn.Module:
    """The main branch of a layer, without activation or skip."""
    op, cin, cout, k = spec.op, spec.in_channels, spec.out_channels, spec.kernel_size
    if op in (OpType.CONV, OpType.DILATED_CONV):
        return nn.Conv1d(cin, cout, k, stride=spec.stride, padding=spec.padding, dilation=spec.dilation)
    if op == OpType.DWSEP_CONV:
        return nn.Sequential(
            nn.Conv1d(cin, cin, k, stride=spec.stride, padding=spec.padding,
                      dilation=spec.dilation, groups=cin),
            nn.Conv1d(cin, cout, 1),
        )
    if op == OpType.FC:
        return nn.Conv1d(cin, cout, 1)  # a linear map applied at every time step
    if op == OpType.ATTENTION:
        return SelfAttention(cin, spec.heads)
    if op == OpType.MAX_POOL:
        return nn.MaxPool1d(k, stride=spec.stride)
    if op == OpType.AVG_POOL:
        return nn.AvgPool1d(k, stride=spec.stride)
    if op in (OpType.GRU, OpType.LSTM):
        return Recurrent(op, cin, cout)
    if op == OpType.GATED_TCN:
        return GatedConv(spec)
    return nn.Identity()


class Layer(nn.Module):
    """``act(op(x))``, plus ``shortcut(x)`` when the spec asks for a skip.

    Taught in: notebooks/01_search_space.
    """

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.op = _operation(spec)
        self.act = _activation(spec.activation)
        self.shortcut: nn.Module | None = None
        if spec.use_skip:
            self.shortcut = (
                nn.Conv1d(spec.in_channels, spec.out_channels, 1, stride=spec.stride)
                if spec.needs_projection
                else nn.Identity()
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.op(x))
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return y


class Head(nn.Module):
    """Reduce a ``(batch, channels, length)`` map to ``(batch, outputs)``.

    Taught in: notebooks/01_search_space.
    """

    def __init__(self, kind: HeadType, in_features: int, outputs: int) -> None:
        super().__init__()
        self.kind = kind
        self.linear = nn.Linear(in_features, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == HeadType.GAP:
            x = x.mean(dim=-1)
        elif self.kind == HeadType.LAST:
            x = x[..., -1]
        else:
            x = x.flatten(1)
        return self.linear(x)


class TradingNet(nn.Module):
    """The network an :class:`Architecture` describes.

    Taught in: notebooks/01_search_space.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.layers = nn.ModuleList(Layer(spec) for spec in arch.layers)
        self.head = build_head(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.arch.input_features, self.arch.lookback)
        if x.dim() != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"input must have shape (batch, {expected[0]}, {expected[1]}), got {tuple(x.shape)}"
            )
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def build_layer(spec: LayerSpec) -> Layer:
    """The torch module of one layer (used whole by models and alone by latency tables).

    Taught in: notebooks/01_search_space.
    """
    return Layer(spec)


def build_head(arch: Architecture) -> Head:
    """The prediction head of ``arch``.

    Taught in: notebooks/01_search_space.
    """
    return Head(arch.head, arch.head_in_features, arch.num_outputs)


def build_model(arch: Architecture, seed: int | None = None) -> TradingNet:
    """A freshly initialised model for ``arch``, in eval mode.

    ``seed`` makes the initial weights reproducible without touching the global
    random state of the caller.

    Taught in: notebooks/01_search_space.
    """
    if not isinstance(arch, Architecture):
        raise ValueError(f"arch must be an Architecture, got {type(arch).__name__}")
    if seed is None:
        model = TradingNet(arch)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = TradingNet(arch)
    return model.eval()


def example_input(module: nn.Module, batch: int = 1, seed: int | None = None) -> torch.Tensor:
    """A ``(batch, features, lookback)`` input for a model :func:`build_model` made (it carries
    ``.arch``): zeros, or standard normal values drawn with ``seed``.

    Taught in: notebooks/11_deployment.
    """
    arch = getattr(module, "arch", None)
    if not isinstance(arch, Architecture):
        raise ValueError("example is required for a module without an .arch (its input shape is unknown)")
    if seed is None:
        return torch.zeros(batch, arch.input_features, arch.lookback)
    return torch.randn(batch, arch.input_features, arch.lookback, generator=torch.Generator().manual_seed(seed))


__all__ = ["SelfAttention", "Recurrent", "GatedConv", "Layer", "Head", "TradingNet", "build_layer", "build_head",
           "build_model", "example_input"]
