"""The wiring SATUNet and SATVNet share (nnU-Net's seam): encoder stages, one gate per skip, decoder stages, a head.

A subclass builds, in ``__init__``:

* ``encoder``: ``L`` stages, shallow to deep, each ``(N, C_in, *S) -> (N, C_l, *S_l)``;
* ``skip_gates``: ``L - 1`` gates, one per skip (all but the deepest stage), shallow to deep;
* ``decoder``: ``L - 1`` stages, deepest first, each ``stage(x, gated_skip)``;
* ``head``: the 1x1 convolution to the logits;

and sets ``spatial_dims``, ``size_divisor`` (every spatial size must be a multiple of it) and ``network_name`` (with
:meth:`~GatedEncoderDecoder._set_layout`). Each
skip goes through its gate as soon as the encoder produces it, so only the gate's output (one channel for
``sat``/``at``) waits for the decoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from satgate_monai.networks.blocks.utils import check_spatial_shape
from satgate_monai.networks.factories import GateSpec, gate_name

__all__ = ["GatedEncoderDecoder"]


class GatedEncoderDecoder(nn.Module):
    """Base class: ``forward`` (which checks the input size) and ``gates`` of a gated encoder/decoder network."""

    __jit_unused_properties__ = ["gates"]

    def __init__(self, network_name: str) -> None:
        super().__init__()
        self.network_name = network_name

    def _set_layout(self, spatial_dims: int, in_channels: int, out_channels: int, strides: Sequence[int],
                    skip_gate: GateSpec) -> None:
        """Record what every network reports: ``skip_gate_name``, ``spatial_dims``, ``in_channels``,
        ``out_channels``, ``strides`` (one per down-sampling) and ``size_divisor`` (their product)."""
        self.skip_gate_name = gate_name(skip_gate)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.strides = tuple(strides)
        self.size_divisor = math.prod(self.strides)

    @property
    def gates(self) -> list[nn.Module]:
        """The skip gates, from the shallowest skip to the deepest."""
        return list(self.skip_gates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_spatial_shape(list(x.shape[2:]), self.spatial_dims, self.size_divisor, self.network_name)
        skips: list[torch.Tensor] = []  # gated skips, shallow to deep
        for stage, gate in zip(self.encoder, self.skip_gates):
            x = stage(x)
            skips.append(gate(x))
        x = self.encoder[-1](x)
        depth = len(skips)
        i = 0
        for stage in self.decoder:
            x = stage(x, skips[depth - 1 - i])
            i += 1
        return self.head(x)
