"""SATVNet: V-Net (Milletari et al., 3DV 2016) with a Select-Attend-Transfer gate on every skip.

Encoder: an input stage (``encoder_convs[0]`` convolutions of ``kernel_size``, residual shortcut tiling the input
channels), then per level a strided convolution down (kernel = stride, i.e. V-Net's 2x2x2 stride 2) and a residual
stage; each skip goes through its gate as soon as it is produced, so only the gate's output waits for the decoder.
Decoder, from the deepest skip up: transposed convolution up to the skip's width, join with the gated skip, residual
stage ``2 * skip`` wide (for a one-channel gate a
:class:`~satgate_monai.networks.blocks.vnet_blocks.JoinResidualStage`: the concatenation is never built). A 1x1
convolution gives the logits. Taghanaki et al. (MLMI 2019, arXiv:1804.05181) ran V-Net with reduced widths to fit
memory: ``channels`` sets them.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from satgate_monai.networks.blocks.conv_config import ConvConfig
from satgate_monai.networks.blocks.utils import (
    ActSpec,
    check_channels,
    check_dropout,
    check_kernel_size,
    check_network_args,
    check_positive_ints,
    check_strides,
)
from satgate_monai.networks.blocks.vnet_blocks import ResidualStage, VNetDownStage, VNetUpStage
from satgate_monai.networks.factories import GateSpec, build_skip_gate
from satgate_monai.networks.init import init_weights
from satgate_monai.networks.nets.gated_encoder_decoder import GatedEncoderDecoder

__all__ = ["SATVNet"]


class SATVNet(GatedEncoderDecoder):
    """V-Net whose skip connections pass through a Select-Attend-Transfer gate.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (classes, logits).
        channels: widths of the encoder levels, shallow to deep; V-Net's are ``(16, 32, 64, 128, 256)`` (default).
            Decoder stage ``i`` is ``2 * channels[i]`` wide, as in V-Net.
        strides: down-sampling factor between consecutive levels (``len(channels) - 1`` ints); the down
            convolution's kernel equals its stride. Defaults to 2 everywhere.
        kernel_size: kernel of the stage convolutions (odd). Defaults to 5, as in V-Net.
        up_kernel_size: transposed-convolution kernel, at least the stride. Defaults to 2.
        act: activation; ``"prelu"`` (default) gets one parameter per channel, as in V-Net.
        norm: normalisation after every convolution. Defaults to ``"batch"`` (the SAT paper's choice).
        dropout: dropout probability after every convolution. Defaults to 0.
        bias: convolution bias. Defaults to True.
        skip_gate: ``"sat" | "st" | "at" | "org"`` or ``(name, kwargs)``. Defaults to ``"sat"``.
        init: ``"glorot"`` (the paper), ``"kaiming"`` or ``"default"``. Defaults to ``"glorot"``.
        encoder_convs: convolutions per encoder stage (``len(channels)`` ints, the last is the bottom stage).
            Defaults to V-Net's ``(1, 2, 3, 3, 3)`` (shorter/longer ``channels`` use the same pattern, capped at 3).
        decoder_convs: convolutions per decoder stage, shallow to deep (``len(channels) - 1`` ints). Defaults to
            V-Net's ``(1, 2, 3, 3)``.

    Input size rule: every spatial size must be a positive multiple of ``prod(strides)`` (16 by default); other sizes
    raise ``ValueError``, also from a TorchScript-compiled network.

    Raises:
        ValueError: for bad hyperparameters (the message names the value).

    Shapes:
        ``(N, in_channels, *S) -> (N, out_channels, *S)``.

    Example::

        >>> net = SATVNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32))
        >>> net(torch.rand(1, 1, 16, 16, 16)).shape
        torch.Size([1, 2, 16, 16, 16])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        strides: Sequence[int] | None = None,
        kernel_size: int = 5,
        up_kernel_size: int = 2,
        act: ActSpec = "prelu",
        norm: ActSpec = "batch",
        dropout: float = 0.0,
        bias: bool = True,
        skip_gate: GateSpec = "sat",
        init: str = "glorot",
        encoder_convs: Sequence[int] | None = None,
        decoder_convs: Sequence[int] | None = None,
    ) -> None:
        super().__init__("SATVNet")
        check_network_args(spatial_dims, in_channels, out_channels)
        channels = check_channels(channels)
        levels = len(channels)
        strides = check_strides(strides, levels - 1)
        if encoder_convs is None:
            encoder_convs = tuple(min(i + 1, 3) for i in range(levels))
        if decoder_convs is None:
            decoder_convs = tuple(min(i + 1, 3) for i in range(levels - 1))
        encoder_convs = check_positive_ints("encoder_convs", encoder_convs, levels)
        decoder_convs = check_positive_ints("decoder_convs", decoder_convs, levels - 1)
        check_kernel_size(kernel_size)
        check_dropout(dropout)
        self._set_layout(spatial_dims, in_channels, out_channels, strides, skip_gate)
        self.channels = channels

        cfg = ConvConfig(spatial_dims, kernel_size=kernel_size, act=act, norm=norm, dropout=dropout, bias=bias,
                         channel_prelu=True)
        first = ResidualStage(cfg, in_channels, channels[0], encoder_convs[0], shortcut="repeat")
        self.encoder = nn.ModuleList([first])
        for level in range(1, levels):
            self.encoder.append(VNetDownStage(cfg, channels[level - 1], channels[level], strides[level - 1],
                                              encoder_convs[level]))
        # one gate per skip, shallow to deep, applied as soon as the encoder produces the skip
        self.skip_gates = nn.ModuleList(build_skip_gate(skip_gate, spatial_dims, c) for c in channels[:-1])
        # decoder stages from the deepest skip up to the first; stage i is 2 * channels[i] wide
        self.decoder = nn.ModuleList()
        previous = channels[-1]
        for level in reversed(range(levels - 1)):
            stage = VNetUpStage(cfg, previous, channels[level], self.skip_gates[level].out_channels, strides[level],
                                decoder_convs[level], up_kernel_size)
            self.decoder.append(stage)
            previous = stage.out_channels
        self.head = cfg.conv(previous, out_channels, kernel_size=1, conv_only=True, bias=True)
        init_weights(self, init)
