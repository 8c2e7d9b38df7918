"""SATVNet through the shared network checks, plus V-Net specifics."""

from __future__ import annotations

import math

import torch
from torch import nn

from satgate_monai.networks.blocks.vnet_blocks import ResidualStage
from satgate_monai.networks.nets import SATVNet
from tests.networks.base import NetworkChecks


class TestSATVNet(NetworkChecks):
    net_cls = SATVNet

    def kwargs(self, dims):
        # 2D: 4 % 2 == 0, the input stage tiles its input; 3D: 3 input channels need the 1x1 projection shortcut
        return {"in_channels": 2 if dims == 2 else 3, "out_channels": 2, "channels": (4, 8, 16)}

    def input_size(self, dims):
        return (16, 16) if dims == 2 else (8, 8, 8)

    def bad_sizes(self, dims):
        return [(10, 16), (16, 6)] if dims == 2 else [(8, 8, 6), (8, 10, 8)]

    def skip_costs(self, kwargs, dims):
        # the first convolution of decoder stage i is 2 * channels[i] wide, k^d kernel; the zero-padding shortcut
        # and the per-channel PReLU depend on the stage width only
        k = kwargs.get("kernel_size", 5)
        return [(c, 2 * c * k**dims) for c in kwargs["channels"][:-1]]

    def gate_strides(self, kwargs, dims):
        strides = kwargs.get("strides") or (2,) * (len(kwargs["channels"]) - 1)
        return [math.prod(strides[:i]) for i in range(len(kwargs["channels"]) - 1)]

    def bad_kwargs(self):
        return [{"channels": (8,)}, {"strides": (2, 2, 2)}, {"kernel_size": 4}, {"up_kernel_size": 1},
                {"encoder_convs": (1, 0, 2)}, {"decoder_convs": (1, 2, 3)}, {"dropout": 1.5},
                {"skip_gate": ("sat", {"selection_init": 2.0})}, {"skip_gate": "nope"}, {"spatial_dims": 4}]

    def full_size_configs(self):
        vnet = {"in_channels": 1, "out_channels": 2, "channels": (16, 32, 64, 128, 256)}  # Milletari et al., k = 5
        return [(3, vnet), (2, {**vnet, "in_channels": 3})]


def test_vnet_default_stage_depths_and_prelu():
    net = SATVNet(3, 1, 2)
    stages = [m for m in net.modules() if isinstance(m, ResidualStage)]
    encoder = [len(s.convs) for s in stages[:5]]
    decoder = [len(s.convs) for s in stages[5:]]
    assert encoder == [1, 2, 3, 3, 3]  # Milletari et al., Fig. 1
    assert decoder == [3, 3, 2, 1]  # deep to shallow
    prelus = [m for m in net.modules() if isinstance(m, nn.PReLU)]
    assert prelus and all(m.num_parameters > 1 for m in prelus)  # per-channel, as V-Net's PReLU
    assert [s.out_channels for s in net.decoder] == [256, 128, 64, 32]


def test_vnet_sat_stage_uses_parameter_free_padding_shortcut():
    net = SATVNet(2, 1, 2, channels=(4, 8), skip_gate="sat").eval()
    stage = net.decoder[0].stage
    assert stage.pad == 4 - 1 + 4 - 4 == 3 and not stage.use_projection  # 4 up + 1 gate channel, padded to 8
    with torch.no_grad():
        assert net(torch.rand(1, 1, 8, 8)).shape == (1, 2, 8, 8)
