"""SATFCDenseNet through the shared network checks, plus presets and gates inside dense blocks."""

from __future__ import annotations

import math

import pytest
import torch

from satgate_monai.networks.blocks.skip_gates import SATGate
from satgate_monai.networks.fold import fold_gates
from satgate_monai.networks.inspection import attention_maps, gate_modules, switched_off_fraction
from satgate_monai.networks.nets import FCDENSENET_PRESETS, SATFCDenseNet
from tests.networks.base import NetworkChecks, n_params, randomise_batch_norm, set_selection

SMALL = {"preset": None, "growth_rate": 4, "layers_per_block": (2, 2, 3, 2, 2), "first_channels": 8}


def dense_skip_costs(kwargs: dict, dims: int) -> list[tuple[int, int]]:
    """Per long skip (shallow to deep): its channels and what one more concatenated channel costs downstream.

    The decoder block's input x_0 = [up, gate(skip)] reaches every one of its L layers (batch norm: 2 parameters,
    convolution: growth * k^d per input channel) and, for the shallowest skip, the 1x1 classifier (out_channels).
    """
    g, layers, first = kwargs["growth_rate"], kwargs["layers_per_block"], kwargs["first_channels"]
    k = kwargs.get("kernel_size", 3)
    n = (len(layers) - 1) // 2
    costs = []
    for i in range(n):
        channels = first + g * sum(layers[: i + 1])
        decoder_layers = layers[2 * n - i]
        costs.append((channels, decoder_layers * (2 + g * k**dims) + (kwargs["out_channels"] if i == 0 else 0)))
    return costs


class TestSATFCDenseNet(NetworkChecks):
    net_cls = SATFCDenseNet

    def kwargs(self, dims):
        return {"in_channels": 3 if dims == 2 else 1, "out_channels": 2, **SMALL}

    def input_size(self, dims):
        return (16, 16) if dims == 2 else (8, 8, 8)

    def bad_sizes(self, dims):
        return [(10, 16), (16, 2)] if dims == 2 else [(8, 8, 6), (10, 8, 8)]

    def skip_costs(self, kwargs, dims):
        return dense_skip_costs(kwargs, dims)

    def gate_strides(self, kwargs, dims):
        n = (len(kwargs["layers_per_block"]) - 1) // 2
        return [2**i for i in range(n)]

    def bad_kwargs(self):
        return [{"preset": "fcdensenet99"}, {"preset": None, "growth_rate": None, "layers_per_block": None,
                                             "first_channels": None},
                {"layers_per_block": (2, 2)}, {"layers_per_block": (2, 0, 2)}, {"growth_rate": 0},
                {"strides": (2, 2, 2)}, {"up_kernel_size": 1}, {"kernel_size": 2}, {"dropout": -0.1},
                {"dense_gate": "nope"}, {"first_channels": 1.5}]

    def full_size_configs(self):
        cfg = {"in_channels": 3, "out_channels": 2}
        return [(2, {**cfg, **preset_config("fcdensenet103")}),
                (2, {**cfg, **preset_config("fcdensenet67")}),
                (3, {**cfg, "in_channels": 1, **preset_config("fcdensenet56")})]


def preset_config(name: str) -> dict:
    """A preset spelled out explicitly (the formula needs the numbers)."""
    return {"preset": None, **FCDENSENET_PRESETS[name]}


@pytest.mark.parametrize(("preset", "published"), [("fcdensenet56", 1.5e6), ("fcdensenet67", 3.5e6),
                                                   ("103", 9.4e6)])
def test_presets_match_published_sizes(preset, published):
    with torch.device("meta"):
        net = SATFCDenseNet(2, 3, 11, preset=preset, skip_gate="org")  # CamVid: 11 classes, as Jégou et al.
    count = n_params(net)
    assert abs(count - published) / published < 0.10, count
    if preset == "103":
        assert 9.2e6 < count < 9.5e6
        assert [len(b.layers) for b in net.down_blocks] == [4, 5, 7, 10, 12]
        assert len(net.bottleneck.layers) == 15


def test_explicit_values_override_preset():
    with torch.device("meta"):
        net = SATFCDenseNet(2, 3, 2, preset="fcdensenet56", growth_rate=8)
    assert net.growth_rate == 8 and net.layers_per_block == (4,) * 11 and net.first_channels == 48


@pytest.mark.parametrize("dims", [2, 3])
def test_dense_gate_org_is_the_plain_network(dims):
    torch.manual_seed(0)
    cfg = {"in_channels": 1, "out_channels": 2, "skip_gate": "sat", **SMALL}
    plain = SATFCDenseNet(dims, **cfg)
    gated = SATFCDenseNet(dims, dense_gate="org", **cfg)
    gated.load_state_dict(plain.state_dict())  # same parameters, same names
    randomise_batch_norm(plain)
    gated.load_state_dict(plain.state_dict())
    x = torch.randn(2, 1, *(8,) * dims)
    with torch.no_grad():
        torch.testing.assert_close(gated.eval()(x), plain.eval()(x))


@pytest.mark.parametrize("dims", [2, 3])
def test_dense_gate_sat(dims):
    cfg = {"in_channels": 1, "out_channels": 2, **SMALL}
    torch.manual_seed(0)
    net = SATFCDenseNet(dims, skip_gate="sat", dense_gate="sat", **cfg)
    plain = SATFCDenseNet(dims, skip_gate="sat", **cfg)
    assert n_params(net) < n_params(plain)
    # one gate per dense-block feature map read again later: L - 1 per block, plus the long skips
    layers = SMALL["layers_per_block"]
    n_dense = sum(n - 1 for n in layers)
    sat_gates = [g for g in gate_modules(net).values() if isinstance(g, SATGate)]
    assert len(sat_gates) == n_dense + len(net.gates)
    x = torch.randn(2, 1, *(8,) * dims)
    y = net.train()(x)
    assert y.shape == (2, 2, *(8,) * dims)
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    randomise_batch_norm(net)
    set_selection(net)
    net.eval()
    maps = attention_maps(net, x[:1])
    assert len(maps) == len(sat_gates) and all(m.shape[:2] == (1, 1) for m in maps.values())
    assert 0.0 < switched_off_fraction(net) < 1.0
    with torch.no_grad():
        torch.testing.assert_close(fold_gates(net)(x), net(x), rtol=1e-5, atol=1e-5)
        if dims == 2:
            torch.testing.assert_close(torch.jit.script(net)(x), net(x), rtol=1e-5, atol=1e-6)


def test_skip_channels_of_fcdensenet103():
    with torch.device("meta"):
        net = SATFCDenseNet(2, 3, 2, preset="fcdensenet103")
    assert [g.in_channels for g in net.gates] == [112, 192, 304, 464, 656]  # Jégou et al., Table 2
    assert math.prod(net.strides) == 32
