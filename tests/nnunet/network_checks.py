"""Checks of SATPlainConvUNet against nnU-Net's PlainConvUNet, run as a script in the nnU-Net environment (where
dynamic-network-architectures and nnunetv2 are installed) by ``test_network.py``. Prints ``ok`` when all pass."""

from __future__ import annotations

import math

import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from torch import nn

from satgate_monai.networks.blocks.skip_gates import SATGate
from satgate_monai.nnunet.network import SATPlainConvUNet


def kwargs(dims: int) -> dict:
    conv, norm = (nn.Conv2d, nn.InstanceNorm2d) if dims == 2 else (nn.Conv3d, nn.InstanceNorm3d)
    k = [3] * dims
    return {"input_channels": 2, "n_stages": 4, "features_per_stage": [4, 8, 16, 32], "conv_op": conv,
            "kernel_sizes": [k] * 4, "strides": [[1] * dims, [2] * dims, [2] * dims, [2] * (dims - 1) + [1]],
            "n_conv_per_stage": [2, 2, 2, 2], "num_classes": 3, "n_conv_per_stage_decoder": [2, 2, 2],
            "conv_bias": True, "norm_op": norm, "norm_op_kwargs": {"eps": 1e-5, "affine": True},
            "nonlin": nn.LeakyReLU, "nonlin_kwargs": {"inplace": True}}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def check(dims: int) -> None:
    size = (16, 16) if dims == 2 else (16, 16, 8)
    x = torch.randn(2, 2, *size)
    for ds in (True, False):
        torch.manual_seed(0)
        plain = PlainConvUNet(**kwargs(dims), deep_supervision=ds)
        torch.manual_seed(0)
        org = SATPlainConvUNet(**kwargs(dims), deep_supervision=ds, skip_gate="org")
        a, b = plain.state_dict(), org.state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a), "org: other state dict"
        torch.manual_seed(3)
        other = PlainConvUNet(**kwargs(dims), deep_supervision=ds)
        other.apply(other.initialize)
        org.load_state_dict(other.state_dict())  # PlainConvUNet -> SATPlainConvUNet(org) ...
        plain.load_state_dict(org.state_dict())  # ... and back
        with torch.no_grad():
            ya, yb = other(x), org(x)
        ya, yb = (ya, yb) if ds else ([ya], [yb])
        assert len(ya) == len(yb) == (3 if ds else 1)
        assert all(torch.equal(p, q) for p, q in zip(ya, yb)), "org: other outputs"

    torch.manual_seed(0)
    sat = SATPlainConvUNet(**kwargs(dims), deep_supervision=True, skip_gate="sat", selection_init="uniform")
    sat.apply(sat.initialize)
    ys = sat(x)
    assert [tuple(y.shape) for y in ys] == [(2, 3, *size), (2, 3, *(s // 2 for s in size)),
                                            (2, 3, *(s // 4 for s in size))], [y.shape for y in ys]
    sum(y.square().mean() for y in ys).backward()
    assert all(g.selection.weight.grad is not None for g in sat.skip_gates)
    w = sat.skip_gates[0].selection.weight
    assert (w > 0).all() and (w < 1).all(), "selection_init='uniform' did not reach the gate"
    for gate in sat.skip_gates:  # He init everywhere else, the gate keeps Glorot-uniform
        assert isinstance(gate, SATGate) and gate.attention.weight.abs().max() <= math.sqrt(6 / (gate.in_channels + 1))
    # the join reads C + 1 channels: stage s (deepest first) first conv
    firsts = [stage.convs[0].conv.in_channels for stage in sat.decoder.stages]
    assert firsts == [16 + 1, 8 + 1, 4 + 1], firsts
    k = 3 ** dims
    saving = sum((c - 1) * c * k - (2 * c + 1) for c in (4, 8, 16))
    assert n_params(PlainConvUNet(**kwargs(dims))) - n_params(sat) == saving
    assert sat.compute_conv_feature_map_size(size) > PlainConvUNet(**kwargs(dims)).compute_conv_feature_map_size(size)


def check_plans_resolution() -> None:
    """nnU-Net's own builder resolves the class by its dotted path and passes the gate arguments."""
    arch = {k: v for k, v in kwargs(3).items() if k not in ("input_channels", "num_classes")}
    arch.update(conv_op="torch.nn.modules.conv.Conv3d", norm_op="torch.nn.modules.instancenorm.InstanceNorm3d",
                nonlin="torch.nn.LeakyReLU", dropout_op=None, skip_gate="at", selection_init="glorot")
    net = get_network_from_plans("satgate_monai.nnunet.network.SATPlainConvUNet", arch,
                                 ["conv_op", "norm_op", "dropout_op", "nonlin"], 1, 2, deep_supervision=True)
    assert type(net).__name__ == "SATPlainConvUNet" and [g.out_channels for g in net.skip_gates] == [1, 1, 1]


if __name__ == "__main__":
    torch.set_num_threads(1)
    check(2)
    check(3)
    check_plans_resolution()
    print("ok")
