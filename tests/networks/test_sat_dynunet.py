"""SATDynUNet: DynUNet's arguments plus ``skip_gate``; ``org`` is DynUNet exactly (weights, keys, outputs)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from monai.networks.nets import DynUNet

from satgate_monai.networks.nets import SATDynUNet
from tests.networks.base import n_params, predicted_saving
from tests.networks.gate_table import GATES

KERNELS = [3, 3, [3, 3, 1], 3]
STRIDES = [1, 2, [2, 2, 1], 2]


def dyn_kwargs(dims: int, **overrides) -> dict:
    kernels = [k if isinstance(k, int) else k[:dims] for k in KERNELS]
    strides = [s if isinstance(s, int) else s[:dims] for s in STRIDES]
    return {"spatial_dims": dims, "in_channels": 2, "out_channels": 3, "kernel_size": kernels, "strides": strides,
            "upsample_kernel_size": strides[1:], "filters": [4, 8, 16, 32], **overrides}


def size(dims: int) -> tuple[int, ...]:
    return (16, 16) if dims == 2 else (16, 16, 8)


def pair(dims: int, **overrides) -> tuple[DynUNet, SATDynUNet]:
    torch.manual_seed(0)
    plain = DynUNet(**dyn_kwargs(dims, **overrides))
    torch.manual_seed(0)
    gated = SATDynUNet(**dyn_kwargs(dims, **overrides), skip_gate="org")
    return plain, gated


@pytest.mark.parametrize("dims", (2, 3))
@pytest.mark.parametrize("extra", ({}, {"deep_supervision": True, "deep_supr_num": 2}, {"res_block": True}),
                         ids=("plain", "deep_supervision", "res_block"))
def test_org_is_dynunet(dims, extra):
    plain, gated = pair(dims, **extra)
    a, b = plain.state_dict(), gated.state_dict()
    assert list(a) == list(b)  # same keys in the same order
    assert all(torch.equal(a[k], b[k]) for k in a)  # same initial weights for the same seed
    torch.manual_seed(5)
    other = DynUNet(**dyn_kwargs(dims, **extra))
    gated.load_state_dict(other.state_dict())  # a DynUNet checkpoint loads into SATDynUNet(org) ...
    plain.load_state_dict(gated.state_dict())  # ... and back
    x = torch.randn(2, 2, *size(dims))
    for mode in (False, True):
        other.train(mode), gated.train(mode)
        with torch.no_grad():
            torch.testing.assert_close(gated(x), other(x), rtol=0, atol=0)


@pytest.mark.parametrize("dims", (2, 3))
@pytest.mark.parametrize("gate", GATES)
def test_shapes_backward_and_saving(dims, gate):
    torch.manual_seed(0)
    net = SATDynUNet(**dyn_kwargs(dims, deep_supervision=True), skip_gate=gate).train()
    x = torch.randn(2, 2, *size(dims), requires_grad=True)
    y = net(x)
    assert y.shape == (2, 2, 3, *size(dims))  # DynUNet's stacked deep-supervision output
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert len(net.skip_gates) == 3 and [g.in_channels for g in net.skip_gates] == [4, 8, 16]
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (2, 3, *size(dims))
    # the up block's first convolution reads (C + gate channels): out C, kernel of that level
    kernels = dyn_kwargs(dims)["kernel_size"]
    costs = [(c, c * math.prod([k] * dims if isinstance(k, int) else k))
             for c, k in zip((4, 8, 16), kernels[1:])]
    plain = n_params(DynUNet(**dyn_kwargs(dims, deep_supervision=True)))
    assert plain - n_params(net) == predicted_saving(gate, costs)


@pytest.mark.parametrize("dims", (2, 3))
def test_sat_changes_the_join_and_scripts(dims):
    torch.manual_seed(0)
    net = SATDynUNet(**dyn_kwargs(dims), skip_gate=("sat", {"selection_init": "uniform"})).eval()
    firsts = [up.conv_block.conv1.conv.in_channels for up in net.upsamples]  # deepest first
    assert firsts == [16 + 1, 8 + 1, 4 + 1]
    x = torch.randn(1, 2, *size(dims))
    with torch.no_grad():
        scripted = torch.jit.script(net)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        torch.testing.assert_close(torch.jit.load(buffer)(x), net(x), rtol=1e-5, atol=1e-6)


def test_bad_gate_names_the_value():
    with pytest.raises(ValueError, match="nope"):
        SATDynUNet(**dyn_kwargs(2), skip_gate="nope")
