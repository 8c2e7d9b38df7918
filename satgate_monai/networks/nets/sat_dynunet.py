"""SATDynUNet: MONAI's DynUNet (the nnU-Net-style network of many model-zoo bundles and Auto3DSeg) with a
Select-Attend-Transfer gate on every skip connection.

It takes exactly :class:`monai.networks.nets.DynUNet`'s arguments plus ``skip_gate``. Each skip (the output of the
input block and of every down-sampling block) goes through its gate before the up-sampling block joins it; the
up-sampling block's convolution is sized from the gate's ``out_channels``, so a one-channel gate (``sat``/``at``)
narrows it from ``2C`` to ``C + 1`` input channels, which is the point of SAT. With ``skip_gate="org"`` the gates are
identities without parameters and nothing is rebuilt: the network is DynUNet exactly (same modules, same state-dict
keys, same initial weights for the same seed, same outputs), so a DynUNet bundle switches gates with one config key.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks.dynunet_block import UnetBasicBlock
from monai.networks.nets.dynunet import DynUNet, DynUNetSkipLayer
from torch import nn

from satgate_monai.networks.factories import GateSpec, build_skip_gate

__all__ = ["SATDynUNet"]


class _GatedSkipLayer(DynUNetSkipLayer):
    """DynUNet's skip layer with the skip passed through ``gate`` before the up-sampling block joins it.

    Shapes: ``x (N, C_in, *S)`` -> ``(N, C, *S / stride)``; the up-sampling block receives the gate's output
    ``(N, gate.out_channels, *S / stride)`` as its skip.
    """

    def __init__(self, layer: DynUNetSkipLayer, next_layer: nn.Module, gate: nn.Module) -> None:
        super().__init__(layer.index, downsample=layer.downsample, upsample=layer.upsample, next_layer=next_layer,
                         heads=layer.heads, super_head=layer.super_head)
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        downout = self.downsample(x)
        gated = self.gate(downout)  # the gate reads the skip alone: computed as soon as the skip exists
        nextout = self.next_layer(downout)
        upout = self.upsample(nextout, gated)
        heads = self.heads  # a local, so that TorchScript refines the Optional
        if self.super_head is not None and heads is not None and self.index > 0:
            heads[self.index - 1] = self.super_head(upout)
        return upout


class SATDynUNet(DynUNet):
    """DynUNet whose skip connections pass through a Select-Attend-Transfer gate.

    Args:
        spatial_dims, in_channels, out_channels, kernel_size, strides, upsample_kernel_size, filters, dropout,
        norm_name, act_name, deep_supervision, deep_supr_num, res_block, trans_bias: as
            :class:`monai.networks.nets.DynUNet` (same defaults, same input-size rule, same deep-supervision output).
        skip_gate: ``"sat" | "st" | "at" | "org"`` or ``(name, kwargs)``, e.g.
            ``["sat", {"selection_init": "uniform"}]``. Defaults to ``"sat"``. ``"org"`` is DynUNet exactly.

    The gates are listed shallow to deep in ``net.skip_gates`` (one per skip: the input block's and every
    down-sampling block's output); they keep their own initialisation (Glorot attention kernel, the selection draw),
    everything else DynUNet's Kaiming initialisation.

    Shapes:
        ``(N, in_channels, *S) -> (N, out_channels, *S)``; in training mode with ``deep_supervision`` the stacked
        ``(N, 1 + deep_supr_num, out_channels, *S)`` of DynUNet.

    Example::

        >>> net = SATDynUNet(3, 1, 2, kernel_size=[3, 3, 3], strides=[1, 2, 2], upsample_kernel_size=[2, 2])
        >>> net(torch.rand(1, 1, 32, 32, 32)).shape
        torch.Size([1, 2, 32, 32, 32])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[Sequence[int] | int],
        strides: Sequence[Sequence[int] | int],
        upsample_kernel_size: Sequence[Sequence[int] | int],
        filters: Sequence[int] | None = None,
        dropout: tuple | str | float | None = None,
        norm_name: tuple | str = ("INSTANCE", {"affine": True}),
        act_name: tuple | str = ("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision: bool = False,
        deep_supr_num: int = 1,
        res_block: bool = False,
        trans_bias: bool = False,
        skip_gate: GateSpec = "sat",
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, kernel_size, strides, upsample_kernel_size,
                         filters=filters, dropout=dropout, norm_name=norm_name, act_name=act_name,
                         deep_supervision=deep_supervision, deep_supr_num=deep_supr_num, res_block=res_block,
                         trans_bias=trans_bias)
        self.skip_gate = skip_gate
        # skip i carries filters[i] channels (input block, then each down-sampling block); up-sampling block i
        # (self.upsamples counts from the deepest) joins it
        self.skip_gates = nn.ModuleList(build_skip_gate(skip_gate, spatial_dims, width)
                                        for width in self.filters[:-1])
        for level, gate in enumerate(self.skip_gates):
            up = self.upsamples[len(self.upsamples) - 1 - level]
            width = self.filters[level]
            if gate.out_channels != width:
                up.conv_block = UnetBasicBlock(spatial_dims, width + gate.out_channels, width,
                                               kernel_size=self.kernel_size[level + 1], stride=1, dropout=dropout,
                                               norm_name=norm_name, act_name=act_name)
                up.conv_block.apply(self.initialize_weights)
        self.skip_layers = self._gate_chain(self.skip_layers)

    def _gate_chain(self, layer: nn.Module) -> nn.Module:
        """DynUNet's recursive chain of skip layers rebuilt with the gates (the bottleneck ends it)."""
        if not isinstance(layer, DynUNetSkipLayer):
            return layer
        return _GatedSkipLayer(layer, self._gate_chain(layer.next_layer), self.skip_gates[layer.index])
