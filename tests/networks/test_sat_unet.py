"""SATUNet through the shared network checks."""

from __future__ import annotations

import math

from satgate_monai.networks.nets import SATUNet
from tests.networks.base import NetworkChecks


class TestSATUNet(NetworkChecks):
    net_cls = SATUNet

    def kwargs(self, dims):
        return {"in_channels": 2, "out_channels": 3, "channels": (4, 8, 16)}

    def input_size(self, dims):
        return (16, 16) if dims == 2 else (8, 8, 8)

    def bad_sizes(self, dims):
        return [(10, 16), (16, 18)] if dims == 2 else [(8, 8, 6), (2, 8, 8)]

    def skip_costs(self, kwargs, dims):
        # the first decoder convolution (k^d kernel, C_out = channels[i]) reads the skip's channels
        k = kwargs.get("kernel_size", 3)
        return [(c, c * k**dims) for c in kwargs["channels"][:-1]]

    def gate_strides(self, kwargs, dims):
        strides = kwargs.get("strides") or (2,) * (len(kwargs["channels"]) - 1)
        return [math.prod(strides[:i]) for i in range(len(kwargs["channels"]) - 1)]

    def bad_kwargs(self):
        return [{"spatial_dims": 1}, {"channels": (8,)}, {"strides": (2,)}, {"kernel_size": 4},
                {"up_kernel_size": 1}, {"skip_gate": "nope"}, {"in_channels": 0}, {"init": "xavier"},
                {"kernel_size": True}]

    def full_size_configs(self):
        paper = {"in_channels": 3, "out_channels": 2, "channels": (32, 64, 128, 256, 512)}
        return [(2, paper), (3, {**paper, "in_channels": 1})]
