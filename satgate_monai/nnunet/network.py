"""SATPlainConvUNet: nnU-Net v2's ``PlainConvUNet`` with a Select-Attend-Transfer gate on every skip connection.

nnU-Net builds the network its plans name (``architecture.network_class_name``, resolved by import, with
``arch_kwargs``), so a plans file naming ``satgate_monai.nnunet.network.SATPlainConvUNet`` trains and predicts with
nnU-Net's own commands. The class takes ``PlainConvUNet``'s arguments plus ``skip_gate`` and ``selection_init``; its
encoder, decoder, deep-supervision heads and state-dict keys are ``PlainConvUNet``'s. Each skip goes through its gate
as soon as the encoder produces it; a decoder stage's first convolution is sized from the gate's ``out_channels``, so a
one-channel gate (``sat``/``at``) joins ``C + 1`` channels instead of ``2C``. ``skip_gate="org"`` is ``PlainConvUNet``
exactly: the gates are identities without parameters and no stage is rebuilt, so state dicts load both ways.
"""

from __future__ import annotations

from typing import Any, Union

from dynamic_network_architectures.architectures.unet import PlainConvUNet
from dynamic_network_architectures.building_blocks.simple_conv_blocks import StackedConvBlocks
from dynamic_network_architectures.initialization.weight_init import InitWeights_He
from torch import nn

from satgate_monai.networks.blocks.skip_gates import OrgGate, SelectionInit, SkipGateModule
from satgate_monai.networks.factories import GateSpec, build_skip_gate, gate_class, gate_name

IntOrSeq = Union[int, list, tuple]

__all__ = ["SATPlainConvUNet", "gate_spec"]


def gate_spec(skip_gate: GateSpec, selection_init: SelectionInit) -> GateSpec:
    """The gate spec built from nnU-Net's two plain arch_kwargs: ``selection_init`` goes to gates that select
    (``sat``/``st``); kwargs given in a ``(name, kwargs)`` spec take precedence."""
    name = gate_name(skip_gate)
    kwargs: dict[str, Any] = dict(skip_gate[1]) if isinstance(skip_gate, (list, tuple)) else {}
    if gate_class(name).has_selection:
        kwargs.setdefault("selection_init", selection_init)
    return (name, kwargs)


class SATPlainConvUNet(PlainConvUNet):
    """``PlainConvUNet`` (dynamic-network-architectures, nnU-Net v2's default network) with SAT skip gates.

    Args:
        input_channels ... nonlin_first: ``PlainConvUNet``'s arguments, unchanged (nnU-Net passes them from the
            plans' ``arch_kwargs``; ``deep_supervision`` is set by nnU-Net's trainer).
        skip_gate: ``"sat" | "st" | "at" | "org"`` or ``(name, kwargs)``. Defaults to ``"sat"``.
        selection_init: the selection weights' init for ``sat``/``st`` (``"glorot"``, the paper's and the default;
            ``"uniform"``; or a constant in ``(0, 1]``), see :class:`~satgate_monai.networks.SelectionWeights`.

    Shapes:
        ``(N, input_channels, *S) -> (N, num_classes, *S)``; with deep supervision nnU-Net's list, full resolution
        first, one entry per decoder stage.

    ``net.skip_gates`` lists the gates shallow to deep. nnU-Net initialises the network with
    ``net.apply(net.initialize)``: He initialisation as ``PlainConvUNet``, except the gates' attention kernels,
    which keep the paper's Glorot-uniform draw; selection weights keep their draw.
    """

    def __init__(
        self,
        input_channels: int,
        n_stages: int,
        features_per_stage: IntOrSeq,
        conv_op: type,
        kernel_sizes: IntOrSeq,
        strides: IntOrSeq,
        n_conv_per_stage: IntOrSeq,
        num_classes: int,
        n_conv_per_stage_decoder: IntOrSeq,
        conv_bias: bool = False,
        norm_op: type | None = None,
        norm_op_kwargs: dict | None = None,
        dropout_op: type | None = None,
        dropout_op_kwargs: dict | None = None,
        nonlin: type | None = None,
        nonlin_kwargs: dict | None = None,
        deep_supervision: bool = False,
        nonlin_first: bool = False,
        skip_gate: GateSpec = "sat",
        selection_init: SelectionInit = "glorot",
    ) -> None:
        super().__init__(input_channels, n_stages, features_per_stage, conv_op, kernel_sizes, strides,
                         n_conv_per_stage, num_classes, n_conv_per_stage_decoder, conv_bias, norm_op, norm_op_kwargs,
                         dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs, deep_supervision, nonlin_first)
        self.skip_gate = skip_gate
        self.selection_init = selection_init
        encoder, decoder = self.encoder, self.decoder
        dims = len(encoder.strides[0])
        spec = gate_spec(skip_gate, selection_init)
        widths = list(encoder.output_channels)
        self.skip_gates = nn.ModuleList(build_skip_gate(spec, dims, width) for width in widths[:-1])
        # decoder stage s (deepest first) joins skip -(s + 2); rebuild only the stages a narrower gate output shrinks
        for s, stage in enumerate(decoder.stages):
            level = len(widths) - 2 - s
            gated = self.skip_gates[level].out_channels
            width = widths[level]
            if gated == width:
                continue
            decoder.stages[s] = StackedConvBlocks(
                len(stage.convs), encoder.conv_op, width + gated, width, encoder.kernel_sizes[level], 1,
                encoder.conv_bias, encoder.norm_op, encoder.norm_op_kwargs, encoder.dropout_op,
                encoder.dropout_op_kwargs, encoder.nonlin, encoder.nonlin_kwargs, nonlin_first)

    def forward(self, x):
        """``(N, C_in, *S)`` -> logits (a list with deep supervision); each skip is gated as soon as it exists."""
        skips = []
        last = len(self.encoder.stages) - 1
        for level, stage in enumerate(self.encoder.stages):
            x = stage(x)
            skips.append(x if level == last else self.skip_gates[level](x))
        return self.decoder(skips)

    def compute_conv_feature_map_size(self, input_size):
        """``PlainConvUNet``'s activation count (nnU-Net's planner estimate) plus the gates' outputs."""
        total = super().compute_conv_feature_map_size(input_size)
        size = list(input_size)
        for level, gate in enumerate(self.skip_gates):
            size = [i // j for i, j in zip(size, self.encoder.strides[level])]
            if not isinstance(gate, OrgGate):  # every other gate writes a new tensor
                n = gate.out_channels
                for i in size:
                    n *= i
                total += n
        return total

    @staticmethod
    def initialize(module: nn.Module) -> None:
        """nnU-Net's He initialisation; a gate's attention kernel keeps Glorot-uniform (``module.apply`` visits
        children first, so the gate re-draws its kernel after He touched it)."""
        InitWeights_He(1e-2)(module)
        attention = getattr(module, "attention", None) if isinstance(module, SkipGateModule) else None
        if isinstance(attention, (nn.Conv2d, nn.Conv3d)):
            nn.init.xavier_uniform_(attention.weight)
            if attention.bias is not None:
                nn.init.zeros_(attention.bias)
