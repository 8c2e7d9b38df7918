"""FC-DenseNet building blocks (Jégou et al., "The One Hundred Layers Tiramisu", CVPRW 2017), with optional skip
gates inside the dense blocks (Taghanaki et al., MLMI 2019, arXiv:1804.05181, Fig. 4).

Dense layer: ``norm - act - conv(kernel_size) - dropout`` producing ``growth_rate`` channels. In a plain dense block,
layer ``l`` reads the concatenation ``[x_0, x_1, ..., x_{l-1}]`` of the block input and every earlier layer's output.

Gates inside dense blocks (``dense_gate``). The SAT paper puts its gate on the dense connections too but does not
spell out the wiring; this is our reading, chosen so that ``dense_gate="org"`` is exactly the plain block. Layer ``l``
reads its immediate predecessor ``x_{l-1}`` directly and every older feature map through that map's own gate:
``[g_0(x_0), ..., g_{l-2}(x_{l-2}), x_{l-1}]``. Each feature map ``x_j`` (``j < L - 1``) owns one gate, computed once
and reused by all later layers. The block's output (what the transition down, the long skip, the transition up and
the classifier see) keeps the ungated feature maps, so the option changes only what flows inside a block.
"""

from __future__ import annotations

import torch
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_act_layer, get_dropout_layer, get_norm_layer
from torch import nn

from satgate_monai.networks.blocks.conv_config import ConvConfig
from satgate_monai.networks.blocks.utils import channel_act, transposed_padding
from satgate_monai.networks.factories import GateSpec, build_skip_gate

__all__ = ["DenseLayer", "DenseBlock", "TransitionDown", "TransitionUp"]


def _pre_activation(cfg: ConvConfig, channels: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    if cfg.norm is not None:
        layers.append(get_norm_layer(cfg.norm, cfg.spatial_dims, channels))
    if cfg.act is not None:
        layers.append(get_act_layer(channel_act(cfg.act, channels)))
    return layers


def _dropout(cfg: ConvConfig) -> list[nn.Module]:
    """Element-wise dropout, as in FC-DenseNet (not channel dropout, which would switch whole maps off)."""
    return [get_dropout_layer(cfg.dropout, 1)] if cfg.dropout else []


class DenseLayer(nn.Module):
    """``norm - act - conv - dropout`` producing ``growth_rate`` channels, plus the gate its input's newest map gets.

    ``gate`` gates the layer's newest input feature map ``x_{l-1}`` for the layers after it (see the module doc);
    ``passes_on`` is False for a block's last layer, whose input maps nobody reads again.

    Shapes:
        ``(N, in_channels, *S) -> (N, growth_rate, *S)``.
    """

    def __init__(self, cfg: ConvConfig, in_channels: int, growth_rate: int, gate: nn.Module | None = None) -> None:
        super().__init__()
        k = cfg.kernel_size
        conv = Conv[Conv.CONV, cfg.spatial_dims](in_channels, growth_rate, k, padding=k // 2, bias=cfg.bias)
        self.conv = nn.Sequential(*_pre_activation(cfg, in_channels), conv, *_dropout(cfg))
        self.passes_on = gate is not None
        self.gate: nn.Module = gate if gate is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DenseBlock(nn.Module):
    """``num_layers`` dense layers of ``growth_rate`` channels each.

    Args:
        cfg: dense-layer kernel (3 in FC-DenseNet), activation, normalisation, dropout after each convolution, bias.
        in_channels: channels of the block input ``x_0``.
        growth_rate: channels each layer adds.
        num_layers: number of layers ``L``, at least 1.
        dense_gate: None for the plain block, or a gate spec for the dense connections (module doc).
        keep_input: output ``[x_0, x_1, ..., x_L]`` (encoder blocks and the last decoder block) instead of only the
            new maps ``[x_1, ..., x_L]`` (bottleneck and other decoder blocks, as in FC-DenseNet's up path).

    Shapes:
        ``(N, in_channels, *S) -> (N, out_channels, *S)`` with ``out_channels = L * growth_rate`` (+ ``in_channels``
        when ``keep_input``).
    """

    def __init__(self, cfg: ConvConfig, in_channels: int, growth_rate: int, num_layers: int,
                 dense_gate: GateSpec | None = None, keep_input: bool = True) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"a dense block needs at least one layer, got {num_layers!r}.")
        self.keep_input = keep_input
        self.layers = nn.ModuleList()
        gated_channels = 0  # channels of g_0(x_0), ..., g_{l-2}(x_{l-2}) seen by layer l
        newest = in_channels  # channels of x_{l-1}
        for index in range(num_layers):
            passes_on = dense_gate is not None and index < num_layers - 1
            gate = build_skip_gate(dense_gate, cfg.spatial_dims, newest) if passes_on else None
            self.layers.append(DenseLayer(cfg, gated_channels + newest, growth_rate, gate))
            gated_channels += gate.out_channels if gate is not None else newest
            newest = growth_rate
        self.out_channels = num_layers * growth_rate + (in_channels if keep_input else 0)
        self.dense_gated = dense_gate is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new: list[torch.Tensor] = []
        if self.dense_gated:
            seen: list[torch.Tensor] = []  # gated older maps
            newest = x
            for layer in self.layers:
                y = layer(torch.cat(seen + [newest], dim=1) if len(seen) > 0 else newest)
                if layer.passes_on:
                    seen.append(layer.gate(newest))
                new.append(y)
                newest = y
        else:
            stack = x
            for layer in self.layers:
                y = layer(stack)
                new.append(y)
                stack = torch.cat([stack, y], dim=1)
        if self.keep_input:
            return torch.cat([x] + new, dim=1)
        return torch.cat(new, dim=1)


class TransitionDown(nn.Sequential):
    """FC-DenseNet's transition down: ``norm - act - 1x1 conv (same width) - dropout - max-pool(stride)``.

    Shapes:
        ``(N, C, *S) -> (N, C, *S / stride)``.
    """

    def __init__(self, cfg: ConvConfig, channels: int, stride: int) -> None:
        super().__init__(
            *_pre_activation(cfg, channels),
            Conv[Conv.CONV, cfg.spatial_dims](channels, channels, 1, bias=cfg.bias),
            *_dropout(cfg),
            Pool[Pool.MAX, cfg.spatial_dims](kernel_size=stride, stride=stride),
        )


class TransitionUp(nn.Module):
    """FC-DenseNet's transition up: a transposed convolution (3x3, stride 2 in the paper), no norm or activation.

    It up-samples only the new feature maps of the block below, then the gated skip is concatenated.

    Shapes:
        ``x (N, in_channels, *S / stride)``, ``gated_skip (N, gated_channels, *S)`` ->
        ``(N, in_channels + gated_channels, *S)``.
    """

    def __init__(self, cfg: ConvConfig, in_channels: int, gated_channels: int, stride: int,
                 up_kernel_size: int) -> None:
        super().__init__()
        padding, output_padding = transposed_padding(up_kernel_size, stride)
        self.up = Conv[Conv.CONVTRANS, cfg.spatial_dims](in_channels, in_channels, up_kernel_size, stride=stride,
                                                         padding=padding, output_padding=output_padding, bias=cfg.bias)
        self.out_channels = in_channels + gated_channels

    def forward(self, x: torch.Tensor, gated_skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.up(x), gated_skip], dim=1)
