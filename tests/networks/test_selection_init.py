"""The selection inits of the sat/st gates: distributions, the frozen-at-1 warning, and what training does to them."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from satgate_monai import SATUNet, build_skip_gate
from satgate_monai.networks.blocks.skip_gates import SelectionWeights, glorot_limit, selection_shares


@pytest.mark.parametrize("fan,limit", [("sqrt", math.sqrt(3 / math.sqrt(4096))), ("c", math.sqrt(3 / 4096))])
def test_glorot_is_kerass_glorot_uniform_on_a_1d_weight(fan, limit):
    assert glorot_limit(4096, fan) == pytest.approx(limit)
    torch.manual_seed(0)
    w = SelectionWeights(4096, "glorot", fan).weight.detach()
    assert w.abs().max() <= limit
    assert w.min() < -0.95 * limit and w.max() > 0.95 * limit  # the whole range U(-L, L), not a narrower one
    assert (w <= 0).float().mean().item() == pytest.approx(0.5, abs=0.03)  # about half start switched off
    assert w.mean().item() == pytest.approx(0.0, abs=0.05 * limit)
    assert w.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.05)


def test_glorot_is_the_default_of_every_gate_and_network():
    torch.manual_seed(0)
    for name in ("sat", "st"):
        gate = build_skip_gate(name, 2, 256)
        assert gate.selection.init == "glorot" and gate.selection.fan == "sqrt"
        assert gate.selection.weight.abs().max() <= glorot_limit(256)
    net = SATUNet(2, 1, 2, channels=(8, 16, 32), strides=(2, 2))
    assert all(g.selection.init == "glorot" for g in net.gates)
    net = SATUNet(2, 1, 2, channels=(8, 16, 32), strides=(2, 2),
                  skip_gate=("sat", {"selection_init": "glorot", "fan": "c"}))
    assert all(g.selection.weight.abs().max() <= glorot_limit(g.in_channels, "c") for g in net.gates)


def test_uniform_and_constant_inits():
    torch.manual_seed(0)
    w = SelectionWeights(4096, "uniform").weight.detach()
    assert torch.all((w > 0) & (w < 1))
    assert w.mean().item() == pytest.approx(0.5, abs=0.03)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.all(SelectionWeights(8, 0.5).weight == 0.5)


def test_constant_one_warns_that_weights_freeze_fully_on():
    with pytest.warns(UserWarning, match="freezes it fully on"):
        gate = build_skip_gate(("sat", {"selection_init": 1.0}), 2, 8)
    assert torch.all(gate.selection.weight == 1.0)
    assert gate.selection_shares() == {"off": 0.0, "between": 0.0, "frozen": 1.0}


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, "keras", "1.0", True, None])
def test_bad_inits_are_refused_naming_the_value(bad):
    with pytest.raises(ValueError, match="selection init") as err:
        SelectionWeights(8, bad)
    assert repr(bad) in str(err.value)
    with pytest.raises(ValueError, match="'fan'"):
        SelectionWeights(8, "glorot", "fan")


def test_draws_follow_torch_manual_seed_and_an_explicit_generator():
    torch.manual_seed(7)
    a = SelectionWeights(32).weight.detach()
    torch.manual_seed(7)
    b = SelectionWeights(32).weight.detach()
    assert torch.equal(a, b)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(SelectionWeights(32, generator=g1).weight, SelectionWeights(32, generator=g2).weight)
    assert not torch.equal(a, SelectionWeights(32).weight.detach())


def test_selection_shares_count_off_between_and_frozen():
    shares = selection_shares(torch.tensor([-1.0, 0.0, 0.3, 0.99, 1.0, 2.0]))
    assert shares["off"] == pytest.approx(2 / 6) and shares["frozen"] == pytest.approx(2 / 6)
    assert shares["between"] == pytest.approx(2 / 6)


def _train(net: torch.nn.Module, steps: int, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((4, 1, 32, 32), generator=g)
    y = (x[:, :1] > 0.5).long()
    opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y[:, 0])
        loss.backward()
        opt.step()


def test_trained_sat_with_the_default_init_selects():
    """With the paper's init, training keeps channels switched off (they get no gradient) and the rest strictly
    inside (0, 1), so the gate selects; with 1.0 no channel is ever switched off."""
    torch.manual_seed(0)
    net = SATUNet(2, 1, 2, channels=(8, 16, 32), strides=(2, 2), skip_gate="sat")
    start = {n: g.selection.weight.detach().clone() for n, g in enumerate(net.gates)}
    _train(net, steps=20)
    for n, gate in enumerate(net.gates):
        w0, w = start[n], gate.selection.weight.detach()
        assert torch.equal(w[w0 <= 0], w0[w0 <= 0])  # off from the start, and still off
        assert not torch.equal(w[w0 > 0], w0[w0 > 0])  # the others learned
        shares = gate.selection_shares()
        assert shares["off"] > 0.2 and shares["between"] > 0.2
    with pytest.warns(UserWarning):
        one = SATUNet(2, 1, 2, channels=(8, 16, 32), strides=(2, 2), skip_gate=("sat", {"selection_init": 1.0}))
    _train(one, steps=20)
    assert all(g.selection_shares()["off"] == 0.0 for g in one.gates)
