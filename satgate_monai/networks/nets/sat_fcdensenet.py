"""SATFCDenseNet: FC-DenseNet / "The One Hundred Layers Tiramisu" (Jégou et al., CVPRW 2017) with Select-Attend-Transfer
gates on the long skips and, optionally, inside the dense blocks (Taghanaki et al., MLMI 2019, arXiv:1804.05181).

Architecture (Jégou et al., Table 2), with ``n = (len(layers_per_block) - 1) / 2`` down-samplings:

* a ``kernel_size`` convolution to ``first_channels`` (48);
* down path: dense block (its input kept in its output) -> long skip, gated at once -> transition down (``norm - act -
  1x1 conv - dropout - max-pool``);
* bottleneck dense block, output only its new feature maps;
* up path: transition up (``up_kernel_size`` transposed convolution, stride 2, over the new maps of the block below)
  -> concatenation with the gated skip -> dense block (new maps only, except the last block, which keeps its input);
* a 1x1 convolution to ``out_channels`` (logits).

On the shared :class:`~satgate_monai.networks.nets.gated_encoder_decoder.GatedEncoderDecoder`: encoder stage ``l`` is
``transition down -> dense block l`` (stage 0: ``first conv -> dense block 0``; the last stage ends in the
bottleneck), so each stage's output is a long skip; decoder stage ``i`` is ``transition up -> dense block``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from satgate_monai.networks.blocks.conv_config import ConvConfig
from satgate_monai.networks.blocks.dense_blocks import DenseBlock, TransitionDown, TransitionUp
from satgate_monai.networks.blocks.utils import (
    ActSpec,
    check_dropout,
    check_kernel_size,
    check_network_args,
    check_positive_int,
    check_positive_ints,
    check_strides,
)
from satgate_monai.networks.factories import GateSpec, build_skip_gate, gate_name
from satgate_monai.networks.init import init_weights
from satgate_monai.networks.nets.gated_encoder_decoder import GatedEncoderDecoder

__all__ = ["SATFCDenseNet", "FCDENSENET_PRESETS"]

FCDENSENET_PRESETS: dict[str, dict] = {
    "fcdensenet56": {"growth_rate": 12, "layers_per_block": (4,) * 11, "first_channels": 48},
    "fcdensenet67": {"growth_rate": 16, "layers_per_block": (5,) * 11, "first_channels": 48},
    "fcdensenet103": {"growth_rate": 16, "layers_per_block": (4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4),
                      "first_channels": 48},
}
"""Jégou et al.'s configurations: 56 (1.5 M parameters), 67 (3.5 M) and 103 (9.4 M) layers, 5 down-samplings."""


def _preset(preset: str | int | None) -> dict:
    if preset is None:
        return {}
    key = str(preset).lower().replace("-", "").replace("_", "")
    key = key if key.startswith("fcdensenet") else "fcdensenet" + key
    if key not in FCDENSENET_PRESETS:
        raise ValueError(f"preset must be one of {sorted(FCDENSENET_PRESETS)} (or None), got {preset!r}.")
    return FCDENSENET_PRESETS[key]


class SATFCDenseNet(GatedEncoderDecoder):
    """FC-DenseNet whose long skips (and optionally dense connections) pass through Select-Attend-Transfer gates.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (classes, logits).
        preset: ``"fcdensenet56" | "fcdensenet67" | "fcdensenet103"`` (or ``"56"``, ``"67"``, ``"103"``), or None
            to give ``growth_rate``, ``layers_per_block`` and ``first_channels`` explicitly. Explicit values override
            the preset's. Defaults to ``"fcdensenet103"``.
        growth_rate: channels each dense layer adds (``k`` in the paper).
        layers_per_block: layers of each dense block, down path, bottleneck and up path: ``2 n + 1`` ints,
            ``n >= 1`` down-samplings.
        first_channels: width of the first convolution (48 in the paper).
        strides: max-pool factor of each transition down (``n`` ints); the transition up mirrors it.
            Defaults to 2 everywhere.
        kernel_size: kernel of the first convolution and the dense layers (odd). Defaults to 3.
        up_kernel_size: kernel of the transposed convolutions, at least the stride. Defaults to 3 (the paper).
        act: activation. Defaults to ``"relu"``.
        norm: normalisation in every dense layer and transition down. Defaults to ``"batch"``.
        dropout: dropout after every dense-layer and transition-down convolution. Defaults to 0.2 (the paper).
        bias: convolution bias. Defaults to True.
        skip_gate: gate on the long skips, ``"sat" | "st" | "at" | "org"`` or ``(name, kwargs)``. Defaults to
            ``"sat"``.
        dense_gate: gate on the dense connections inside every dense block (same vocabulary), or None (default) for
            plain dense blocks. See :mod:`satgate_monai.networks.blocks.dense_blocks` for the wiring.
        init: ``"glorot"`` (the paper), ``"kaiming"`` or ``"default"``. Defaults to ``"glorot"``.

    Input size rule: every spatial size must be a positive multiple of ``prod(strides)`` (32 for the presets); other
    sizes raise ``ValueError``, also from a TorchScript-compiled network.

    Raises:
        ValueError: for bad hyperparameters (the message names the value).

    Shapes:
        ``(N, in_channels, *S) -> (N, out_channels, *S)``.

    Example::

        >>> net = SATFCDenseNet(2, 3, 2, preset=None, growth_rate=4, layers_per_block=(2, 2, 2), first_channels=8)
        >>> net(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 2, 16, 16])
    """

    __jit_unused_properties__ = ["gates", "down_blocks", "bottleneck"]

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        preset: str | None = "fcdensenet103",
        growth_rate: int | None = None,
        layers_per_block: Sequence[int] | None = None,
        first_channels: int | None = None,
        strides: Sequence[int] | None = None,
        kernel_size: int = 3,
        up_kernel_size: int = 3,
        act: ActSpec = "relu",
        norm: ActSpec = "batch",
        dropout: float = 0.2,
        bias: bool = True,
        skip_gate: GateSpec = "sat",
        dense_gate: GateSpec | None = None,
        init: str = "glorot",
    ) -> None:
        super().__init__("SATFCDenseNet")
        check_network_args(spatial_dims, in_channels, out_channels)
        config = dict(_preset(preset))
        for key, value in (("growth_rate", growth_rate), ("layers_per_block", layers_per_block),
                           ("first_channels", first_channels)):
            if value is not None:
                config[key] = value
            elif key not in config:
                raise ValueError(f"{key} is required when preset is None, got None.")
        growth_rate, first_channels = config["growth_rate"], config["first_channels"]
        check_positive_int("growth_rate", growth_rate)
        check_positive_int("first_channels", first_channels)
        layers_per_block = check_positive_ints("layers_per_block", config["layers_per_block"])
        if len(layers_per_block) < 3 or len(layers_per_block) % 2 == 0:
            raise ValueError(
                f"layers_per_block must hold 2 n + 1 ints (n >= 1 down-samplings), got {layers_per_block!r}."
            )
        n_pool = (len(layers_per_block) - 1) // 2
        strides = check_strides(strides, n_pool)
        check_kernel_size(kernel_size)
        check_dropout(dropout)
        self._set_layout(spatial_dims, in_channels, out_channels, strides, skip_gate)
        self.dense_gate_name = gate_name(dense_gate) if dense_gate is not None else None
        self.growth_rate = growth_rate
        self.layers_per_block = layers_per_block
        self.first_channels = first_channels

        cfg = ConvConfig(spatial_dims, kernel_size=kernel_size, act=act, norm=norm, dropout=dropout, bias=bias,
                         channel_prelu=True)
        first_conv = Conv[Conv.CONV, spatial_dims](in_channels, first_channels, kernel_size, padding=kernel_size // 2,
                                                   bias=bias)
        # encoder stage l: (transition down from level l - 1 | the first convolution) -> dense block l; its output is
        # the long skip of level l, and the last stage ends in the bottleneck block
        down_blocks: list[DenseBlock] = []
        transitions_down: list[TransitionDown] = []
        skip_channels: list[int] = []
        width = first_channels
        for level in range(n_pool):
            block = DenseBlock(cfg, width, growth_rate, layers_per_block[level], dense_gate, keep_input=True)
            width = block.out_channels
            skip_channels.append(width)
            down_blocks.append(block)
            transitions_down.append(TransitionDown(cfg, width, strides[level]))
        # one gate per long skip, shallow to deep, applied as soon as the skip is produced
        self.skip_gates = nn.ModuleList(build_skip_gate(skip_gate, spatial_dims, c) for c in skip_channels)
        bottleneck = DenseBlock(cfg, width, growth_rate, layers_per_block[n_pool], dense_gate, keep_input=False)
        self.encoder = nn.ModuleList([nn.Sequential(first_conv, down_blocks[0])])
        for level in range(1, n_pool + 1):
            self.encoder.append(nn.Sequential(transitions_down[level - 1],
                                              down_blocks[level] if level < n_pool else bottleneck))
        width = bottleneck.out_channels
        # up path, from the deepest skip to the shallowest
        self.decoder = nn.ModuleList()
        for i, level in enumerate(reversed(range(n_pool))):
            up = TransitionUp(cfg, width, self.skip_gates[level].out_channels, strides[level], up_kernel_size)
            block = DenseBlock(cfg, up.out_channels, growth_rate, layers_per_block[n_pool + 1 + i], dense_gate,
                               keep_input=level == 0)
            width = block.out_channels
            self.decoder.append(_UpStage(up, block))
        self.head = Conv[Conv.CONV, spatial_dims](width, out_channels, 1, bias=True)
        # initialised in the order the modules were created before they were grouped into stages (same draws)
        init_weights(nn.ModuleList([first_conv, *down_blocks, *transitions_down, *self.skip_gates, bottleneck,
                                    *(s.up for s in self.decoder), *(s.block for s in self.decoder), self.head]), init)

    @property
    def down_blocks(self) -> list[DenseBlock]:
        """The dense blocks of the down path, shallow to deep."""
        return [stage[1] for stage in self.encoder[:-1]]

    @property
    def bottleneck(self) -> DenseBlock:
        """The bottleneck dense block."""
        return self.encoder[-1][1]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Checkpoints of the layout before the stages (``first_conv``, ``down_blocks``...) load too."""
        n_pool = len(self.skip_gates)
        moves = {"first_conv.": "encoder.0.0.", "bottleneck.": f"encoder.{n_pool}.1."}
        for level in range(n_pool):
            moves[f"down_blocks.{level}."] = f"encoder.{level}.1."
            moves[f"transitions_down.{level}."] = f"encoder.{level + 1}.0."
            moves[f"transitions_up.{level}."] = f"decoder.{level}.up."
            moves[f"up_blocks.{level}."] = f"decoder.{level}.block."
        for key in [k for k in state_dict if k.startswith(prefix)]:
            rest = key[len(prefix):]
            for old, new in moves.items():
                if rest.startswith(old):
                    state_dict[prefix + new + rest[len(old):]] = state_dict.pop(key)
                    break
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class _UpStage(nn.Module):
    """Transition up, concatenation with the gated skip, dense block: ``(x, gated_skip) -> block(up(x, skip))``."""

    def __init__(self, up: TransitionUp, block: DenseBlock) -> None:
        super().__init__()
        self.up = up
        self.block = block

    def forward(self, x: torch.Tensor, gated_skip: torch.Tensor) -> torch.Tensor:
        return self.block(self.up(x, gated_skip))
