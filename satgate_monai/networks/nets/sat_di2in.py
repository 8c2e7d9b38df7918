"""SATDI2IN: the deep image-to-image network (DI2IN) of Yang et al. (MICCAI 2017, "Automatic Liver Segmentation
Using an Adversarial Image-to-Image Network") with a Select-Attend-Transfer gate on every skip.

DI2IN as that paper describes it: a symmetric convolutional encoder-decoder of 3x3x3 convolutions, each followed by
batch normalisation and a leaky ReLU; the encoder lowers the resolution with stride-2 convolutions (no pooling); the
decoder enlarges with parameter-free (bi/tri)linear upscaling by 2; feature concatenation joins each encoder level to
the decoder level of the same resolution (here through the skip gate); deep supervision: side branches off the
decoder are upscaled to the input size (factors 16, 4, 1 for its five levels) and each gets its own loss against the
same ground truth.

The published description gives no widths. Taghanaki et al. (MLMI 2019, arXiv:1804.05181) count 2,353,089 parameters
for DI2IN and 2,063,053 with SAT; the difference is exactly sum over skips C = 16, 32, 64, 128 of
``(C - 1) * (C / 2) * 27 - (2C + 1)`` = 290,036, so the skips carry 16, 32, 64 and 128 channels and each feeds one
3x3x3 convolution with ``C / 2`` outputs. The defaults here complete that: two convolutions per encoder level
(widths 16, 32, 64, 128), a 1/16-resolution bottom level of two 128-wide convolutions, one convolution per decoder
level (``C / 2`` wide) and a 1x1 output convolution. With one output channel and without the deep-supervision
branches this counts exactly 2,353,089 parameters (ORG) and 2,063,053 (SAT), the paper's figures.

Deep supervision: with ``deep_supervision=True`` the network in training mode returns a list, the full-resolution
output first, then one output per side branch (shallow to deep: 1/4 and 1/16 resolution for five levels), each
upscaled to the input size; that list is what MONAI's :class:`~monai.losses.DeepSupervisionLoss` takes. In eval mode
the branches are skipped and the network returns the full-resolution output alone. The branches' 1x1 convolutions
are the only parameters outside the paper's count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from monai.networks.blocks import Convolution
from torch import nn
from torch.nn import functional as F

from satgate_monai.networks.blocks.utils import (
    ActSpec,
    check_channels,
    check_dropout,
    check_kernel_size,
    check_network_args,
    check_positive_int,
    check_spatial_shape,
)
from satgate_monai.networks.factories import GateSpec, build_skip_gate
from satgate_monai.networks.init import init_weights
from satgate_monai.networks.nets.gated_encoder_decoder import GatedEncoderDecoder

__all__ = ["SATDI2IN", "DI2IN_CHANNELS"]

DI2IN_CHANNELS = (16, 32, 64, 128, 128)
"""Encoder widths, shallow to deep; the last is the 1/16-resolution bottom level (see the module doc)."""

_MODES = {2: "bilinear", 3: "trilinear"}


def _conv(spatial_dims, in_channels, out_channels, stride, kernel_size, act, norm, dropout, bias) -> Convolution:
    """``conv (kernel_size, stride) - norm - dropout - act``, size ``S -> S / stride``."""
    return Convolution(spatial_dims, in_channels, out_channels, strides=stride, kernel_size=kernel_size, act=act,
                       norm=norm, dropout=dropout, bias=bias)


class _EncoderLevel(nn.Sequential):
    """``convs`` convolutions; the first has stride 2 except at the first level. ``(N, in, *S) -> (N, out, *S/s)``."""

    def __init__(self, spatial_dims, in_channels, out_channels, stride, convs, kernel_size, act, norm, dropout,
                 bias) -> None:
        layers = [_conv(spatial_dims, in_channels, out_channels, stride, kernel_size, act, norm, dropout, bias)]
        layers += [_conv(spatial_dims, out_channels, out_channels, 1, kernel_size, act, norm, dropout, bias)
                   for _ in range(convs - 1)]
        super().__init__(*layers)


class _DecoderLevel(nn.Module):
    """Upscale by 2 (no parameters), concatenate the gated skip, ``convs`` convolutions.

    Shapes: ``x (N, in, *S/2)`` and ``gated_skip (N, gated, *S)`` -> ``(N, out, *S)``.
    """

    def __init__(self, spatial_dims, in_channels, gated_channels, out_channels, convs, kernel_size, act, norm,
                 dropout, bias) -> None:
        super().__init__()
        self.mode = _MODES[spatial_dims]
        layers = [_conv(spatial_dims, in_channels + gated_channels, out_channels, 1, kernel_size, act, norm, dropout,
                        bias)]
        layers += [_conv(spatial_dims, out_channels, out_channels, 1, kernel_size, act, norm, dropout, bias)
                   for _ in range(convs - 1)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, gated_skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, size=gated_skip.shape[2:], mode=self.mode, align_corners=False)
        return self.conv(torch.cat([up, gated_skip], dim=1))


class _Branch(nn.Module):
    """A deep-supervision side branch: a 1x1 convolution on one feature map, upscaled to the input size.

    ``index`` picks the map from the forward's feature list (bottom first, then the decoder levels deep to shallow).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, index: int) -> None:
        super().__init__()
        self.index = index
        self.mode = _MODES[spatial_dims]
        self.conv = Convolution(spatial_dims, in_channels, out_channels, kernel_size=1, conv_only=True, bias=True)

    def forward(self, features: list[torch.Tensor], size: list[int]) -> torch.Tensor:
        return F.interpolate(self.conv(features[self.index]), size=size, mode=self.mode, align_corners=False)


class SATDI2IN(GatedEncoderDecoder):
    """DI2IN (Yang et al., MICCAI 2017) whose feature concatenations pass through a Select-Attend-Transfer gate.

    Args:
        spatial_dims: 3 (the paper's) or 2.
        in_channels: input channels.
        out_channels: output channels (logits). The paper's liver network has one (a sigmoid probability).
        channels: encoder widths per level, shallow to deep, even ints; the last level is the bottom (no skip).
            Defaults to :data:`DI2IN_CHANNELS` ``(16, 32, 64, 128, 128)``. Decoder level ``i`` is
            ``channels[i] // 2`` wide.
        encoder_convs: convolutions per encoder level (the first strided from the second level on). Defaults to 2.
        decoder_convs: convolutions per decoder level (the first reads the concatenation). Defaults to 1.
        kernel_size: convolution kernel (odd). Defaults to 3.
        act: activation. Defaults to leaky ReLU (slope 0.01).
        norm: normalisation after every convolution. Defaults to ``"batch"``.
        dropout: dropout probability after every convolution. Defaults to 0.
        bias: convolution bias. Defaults to True.
        deep_supervision: add the side branches and return their outputs in training mode (see the module doc).
            Defaults to True.
        skip_gate: ``"sat" | "st" | "at" | "org"`` or ``(name, kwargs)``. Defaults to ``"sat"``.
        init: ``"glorot"`` (the SAT paper), ``"kaiming"`` or ``"default"``. Defaults to ``"glorot"``.

    Input size rule: every spatial size must be a positive multiple of ``2 ** (len(channels) - 1)`` (16 by default);
    other sizes raise ``ValueError``, also from a TorchScript-compiled network.

    Shapes:
        eval mode, or ``deep_supervision=False``: ``(N, in_channels, *S) -> (N, out_channels, *S)``; training mode
        with deep supervision: a list of ``1 + len(deep_supervision_levels)`` such tensors, the main output first.

    Example::

        >>> net = SATDI2IN(spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32)).eval()
        >>> net(torch.rand(1, 1, 32, 32, 32)).shape
        torch.Size([1, 2, 32, 32, 32])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = DI2IN_CHANNELS,
        encoder_convs: int = 2,
        decoder_convs: int = 1,
        kernel_size: int = 3,
        act: ActSpec = ("leakyrelu", {"negative_slope": 0.01}),
        norm: ActSpec = "batch",
        dropout: float = 0.0,
        bias: bool = True,
        deep_supervision: bool = True,
        skip_gate: GateSpec = "sat",
        init: str = "glorot",
    ) -> None:
        super().__init__("SATDI2IN")
        check_network_args(spatial_dims, in_channels, out_channels)
        channels = check_channels(channels, minimum=2)
        if any(c % 2 for c in channels[:-1]):
            raise ValueError(f"the skip widths channels[:-1] must be even (the decoder is half as wide), got "
                             f"{channels!r}.")
        check_positive_int("encoder_convs", encoder_convs)
        check_positive_int("decoder_convs", decoder_convs)
        check_kernel_size(kernel_size)
        check_dropout(dropout)
        self._set_layout(spatial_dims, in_channels, out_channels, (2,) * (len(channels) - 1), skip_gate)
        self.channels = channels
        self.deep_supervision = bool(deep_supervision)
        self.mode = _MODES[spatial_dims]

        self.encoder = nn.ModuleList()
        previous = in_channels
        for level, width in enumerate(channels):
            self.encoder.append(_EncoderLevel(spatial_dims, previous, width, 1 if level == 0 else 2, encoder_convs,
                                              kernel_size, act, norm, dropout, bias))
            previous = width
        self.skip_gates = nn.ModuleList(build_skip_gate(skip_gate, spatial_dims, width) for width in channels[:-1])
        # decoder levels from the deepest skip up; level i is channels[i] // 2 wide
        self.decoder = nn.ModuleList()
        below = channels[-1]
        for level in reversed(range(len(channels) - 1)):
            width = channels[level] // 2
            self.decoder.append(_DecoderLevel(spatial_dims, below, self.skip_gates[level].out_channels, width,
                                              decoder_convs, kernel_size, act, norm, dropout, bias))
            below = width
        self.head = Convolution(spatial_dims, channels[0] // 2, out_channels, kernel_size=1, conv_only=True, bias=True)
        # side branches every second level from the bottom (Yang et al.: upscaling factors 16 and 4, then the main
        # output at 1): level L-1 is the bottom, the others are decoder levels
        levels = list(range(len(channels) - 1, 0, -2))
        self.deep_supervision_levels = tuple(levels) if self.deep_supervision else ()
        self.branches = nn.ModuleList(
            _Branch(spatial_dims, channels[-1] if level == len(channels) - 1 else channels[level] // 2, out_channels,
                    len(channels) - 1 - level)
            for level in self.deep_supervision_levels
        )
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, list[torch.Tensor]]:
        check_spatial_shape(list(x.shape[2:]), self.spatial_dims, self.size_divisor, self.network_name)
        size = list(x.shape[2:])
        skips: list[torch.Tensor] = []  # gated skips, shallow to deep
        for stage, gate in zip(self.encoder, self.skip_gates):
            x = stage(x)
            skips.append(gate(x))
        x = self.encoder[-1](x)
        features: list[torch.Tensor] = [x]  # bottom, then every decoder level, deep to shallow
        depth = len(skips)
        i = 0
        for stage in self.decoder:
            x = stage(x, skips[depth - 1 - i])
            features.append(x)
            i += 1
        out = self.head(x)
        if not (self.training and self.deep_supervision):
            return out
        outputs = [out]
        for branch in self.branches:  # deep to shallow
            outputs.append(branch(features, size))
        # shallow to deep after the main output, as DeepSupervisionLoss weighs them (first the heaviest)
        return [outputs[0]] + outputs[1:][::-1]
