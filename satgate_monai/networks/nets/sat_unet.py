"""SATUNet: the classic U-Net (Ronneberger et al., 2015) with a Select-Attend-Transfer gate on every skip.

Encoder stage: two ``conv - norm - act`` layers (``kernel_size``), preceded by max-pooling (``strides``) from the
second stage on; each skip goes through its gate as soon as it is produced (only the gate's output is kept for the
decoder, which is where SAT saves memory). Decoder stage: transposed convolution up, the first convolution over
``[up, gated skip]`` (a :class:`~satgate_monai.networks.blocks.join.JoinConvolution`: for a one-channel gate the
concatenation is never built), a second conv layer. The decoder sizes its input from
``gate.out_channels``, so ``skip_gate="org"`` gives the plain U-Net exactly and ``"sat"``/``"at"`` join a single
channel (Taghanaki et al., MLMI 2019, arXiv:1804.05181, Fig. 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Pool
from torch import nn

from satgate_monai.networks.blocks.conv_config import ConvConfig
from satgate_monai.networks.blocks.join import JoinConvolution
from satgate_monai.networks.blocks.utils import (
    check_channels,
    check_kernel_size,
    check_network_args,
    check_strides,
    transposed_padding,
)
from satgate_monai.networks.factories import GateSpec, build_skip_gate
from satgate_monai.networks.init import init_weights
from satgate_monai.networks.nets.gated_encoder_decoder import GatedEncoderDecoder

__all__ = ["SATUNet"]


def _double_conv(cfg: ConvConfig, in_channels: int, out_channels: int) -> nn.Sequential:
    """Two ``conv - norm - dropout - act`` layers, shape ``(N, in, *S) -> (N, out, *S)``."""
    return nn.Sequential(cfg.conv(in_channels, out_channels), cfg.conv(out_channels, out_channels))


class _EncoderStage(nn.Module):
    """Optional max-pool down (``stride > 1``), then a double convolution."""

    def __init__(self, cfg: ConvConfig, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        pool = Pool[Pool.MAX, cfg.spatial_dims]
        self.down = pool(kernel_size=stride, stride=stride) if stride > 1 else nn.Identity()
        self.conv = _double_conv(cfg, in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.down(x))


class _DecoderStage(nn.Module):
    """Upsample, join the gated skip (:class:`~satgate_monai.networks.blocks.join.JoinConvolution`: the first
    convolution of ``[up, gated_skip]``, without building the concatenation for a one-channel gate), second conv.

    Shapes: ``x (N, in, *S/stride)`` and ``gated_skip (N, gated, *S)`` -> ``(N, out, *S)``; ``gated`` is the gate's
    ``out_channels``.
    """

    def __init__(self, cfg: ConvConfig, in_channels: int, gated_channels: int, out_channels: int, stride: int,
                 up_kernel_size: int) -> None:
        super().__init__()
        padding, output_padding = transposed_padding(up_kernel_size, stride)
        self.up = cfg.conv(in_channels, out_channels, strides=stride, kernel_size=up_kernel_size, is_transposed=True,
                           padding=padding, output_padding=output_padding)
        self.conv = nn.ModuleList([JoinConvolution(cfg, out_channels, gated_channels, out_channels),
                                   cfg.conv(out_channels, out_channels)])

    def forward(self, x: torch.Tensor, gated_skip: torch.Tensor) -> torch.Tensor:
        x = self.conv[0](self.up(x), gated_skip)
        return self.conv[1](x)


class SATUNet(GatedEncoderDecoder):
    """U-Net whose skip connections pass through a Select-Attend-Transfer gate.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (classes, logits).
        channels: feature widths per level, e.g. ``(32, 64, 128, 256)``; at least two levels.
        strides: down-sampling factor between consecutive levels, ``len(channels) - 1`` positive ints.
            Defaults to 2 everywhere.
        kernel_size: convolution kernel size. Defaults to 3.
        up_kernel_size: transposed-convolution kernel size; at least the stride. Defaults to 2.
        act: activation name or ``(name, kwargs)``. Defaults to ``"relu"``.
        norm: normalisation name or ``(name, kwargs)``; the paper puts batch norm after every convolution.
            Defaults to ``"batch"``.
        dropout: dropout probability. Defaults to 0.
        bias: whether convolutions have a bias. Defaults to True.
        skip_gate: ``"sat" | "st" | "at" | "org"`` or ``(name, kwargs)``. Defaults to ``"sat"``.
        init: ``"glorot"`` (the paper), ``"kaiming"`` or ``"default"``. Defaults to ``"glorot"``.

    Input size rule: every spatial size must be a positive multiple of ``prod(strides)``; other sizes raise
    ``ValueError``, also from a TorchScript-compiled network.

    Shapes:
        ``(N, in_channels, *S) -> (N, out_channels, *S)``.

    Example::

        >>> net = SATUNet(spatial_dims=2, in_channels=3, out_channels=2, channels=(16, 32, 64))
        >>> net(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 2, 64, 64])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (32, 64, 128, 256, 512),
        strides: Sequence[int] | None = None,
        kernel_size: int = 3,
        up_kernel_size: int = 2,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
        dropout: float = 0.0,
        bias: bool = True,
        skip_gate: GateSpec = "sat",
        init: str = "glorot",
    ) -> None:
        super().__init__("SATUNet")
        check_network_args(spatial_dims, in_channels, out_channels)
        channels = check_channels(channels)
        strides = check_strides(strides, len(channels) - 1)
        if up_kernel_size < max(strides):
            raise ValueError(f"up_kernel_size must be >= the largest stride {max(strides)}, got {up_kernel_size!r}.")
        check_kernel_size(kernel_size)
        self._set_layout(spatial_dims, in_channels, out_channels, strides, skip_gate)
        self.channels = channels

        cfg = ConvConfig(spatial_dims, kernel_size=kernel_size, act=act, norm=norm, dropout=dropout, bias=bias)
        self.encoder = nn.ModuleList()
        previous = in_channels
        for level, width in enumerate(channels):
            self.encoder.append(_EncoderStage(cfg, previous, width, 1 if level == 0 else strides[level - 1]))
            previous = width
        # one gate per skip, shallow to deep; applied as soon as the encoder produces the skip, so only the gate's
        # output (one channel for sat/at) waits for the decoder
        self.skip_gates = nn.ModuleList(
            build_skip_gate(skip_gate, spatial_dims, width) for width in channels[:-1]
        )
        # decoder stages from the deepest skip up to the first
        self.decoder = nn.ModuleList(
            _DecoderStage(cfg, channels[level + 1], self.skip_gates[level].out_channels, channels[level],
                          strides[level], up_kernel_size)
            for level in reversed(range(len(channels) - 1))
        )
        self.head = cfg.conv(channels[0], out_channels, kernel_size=1, conv_only=True, bias=True)
        init_weights(self, init)
        # the gates keep their own Glorot init of K (init_weights re-draws it with the same scheme when "glorot")
