"""The SAT gate family against the paper's literal equations, its gradients, TorchScript and the MONAI registry."""

from __future__ import annotations

import pytest
import torch
from monai.networks.layers import Act

import satgate_monai
from satgate_monai import SkipGate, build_skip_gate, trelu
from satgate_monai.networks.blocks.skip_gates import ATGate, OrgGate, SATGate, STGate

DIMS = (2, 3)
C = 6
# selection weights below 0, at 0, inside (0, 1), at 1 and above 1
W = torch.tensor([-0.7, 0.0, 0.25, 0.9, 1.0, 1.8], dtype=torch.float64)


def _input(dims: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((2, C) + (5,) * dims, generator=g, dtype=torch.float64)


def _literal(name: str, gate: torch.nn.Module, f: torch.Tensor) -> torch.Tensor:
    """The paper's equations written out: selection, then a 1x1 convolution as a weighted channel sum."""
    dims = f.dim() - 2
    if name == "org":
        return f
    shape = [1, C] + [1] * dims
    selected = f * W.clamp(0, 1).view(shape) if name in ("sat", "st") else f
    if name == "st":
        return selected
    k = gate.attention.weight.reshape(1, C, *([1] * dims))
    u = (selected * k).sum(dim=1, keepdim=True) + gate.attention.bias.view([1, 1] + [1] * dims)
    return 1.0 / (1.0 + torch.exp(-u))


def _gate(name: str, dims: int, **kwargs) -> torch.nn.Module:
    gate = build_skip_gate((name, kwargs), dims, C).double()
    if hasattr(gate, "selection"):
        with torch.no_grad():
            gate.selection.weight.copy_(W)
    if hasattr(gate, "attention"):
        with torch.no_grad():
            gate.attention.bias.fill_(0.3)
    return gate


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("name,kwargs", [("sat", {}), ("sat", {"folded": False}), ("st", {}), ("at", {}), ("org", {})])
def test_gate_matches_literal_equations(name, kwargs, dims):
    gate = _gate(name, dims, **kwargs)
    f = _input(dims)
    out = gate(f)
    expected = _literal(name, gate, f)
    assert out.shape == expected.shape
    assert out.shape[1] == gate.out_channels == (1 if name in ("sat", "at") else C)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("dims", DIMS)
def test_folded_sat_has_the_literal_gradients(dims):
    folded, literal = _gate("sat", dims), _gate("sat", dims, folded=False)
    literal.load_state_dict(folded.state_dict())
    f1 = _input(dims).requires_grad_()
    f2 = f1.detach().clone().requires_grad_()
    target = torch.rand_like(folded(f1), generator=torch.Generator().manual_seed(1))
    ((folded(f1) - target) ** 2).sum().backward()
    ((literal(f2) - target) ** 2).sum().backward()
    torch.testing.assert_close(f1.grad, f2.grad, rtol=0, atol=1e-12)
    for (n1, p1), (_, p2) in zip(folded.named_parameters(), literal.named_parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, rtol=0, atol=1e-12, msg=n1)


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("name", ["sat", "st"])
def test_switched_off_channels_get_no_gradient_and_no_influence(name, dims):
    gate = _gate(name, dims)
    f = _input(dims).requires_grad_()
    gate(f).sum().backward()
    w_grad = gate.selection.weight.grad
    off = W <= 0
    assert torch.all(w_grad[off] == 0)
    assert torch.all(w_grad[(W > 0) & (W <= 1)] != 0)
    assert torch.all(f.grad[:, off] == 0)
    # changing the input of a switched-off channel does not change the output
    g = f.detach().clone()
    g[:, off] += 100.0
    torch.testing.assert_close(gate(g), gate(f.detach()), rtol=0, atol=0)
    if name == "sat":
        assert torch.all(gate.attention.weight.grad.flatten()[off] == 0)
    assert gate.switched_off_fraction() == pytest.approx(off.double().mean().item())
    torch.testing.assert_close(gate.selection_weights, W.clamp(0, 1))


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("name", ["sat", "st"])
def test_default_init_switches_channels_off_and_leaves_the_rest_trainable(name, dims):
    torch.manual_seed(3)
    gate = build_skip_gate(name, dims, 64)
    w = gate.selection.weight.detach().clone()
    off = w <= 0
    assert 0 < off.sum() < 64 and torch.all(w < 1)
    f = torch.randn((2, 64) + (4,) * dims)
    gate(f).pow(2).sum().backward()
    grad = gate.selection.weight.grad
    assert torch.all(grad[off] == 0) and torch.all(grad[~off] != 0)
    assert gate.switched_off_fraction() == pytest.approx(off.float().mean().item())


def test_attention_kernel_is_glorot_uniform():
    gate = SATGate(3, 512)
    bound = (6.0 / (512 + 1)) ** 0.5  # fan_in = 512, fan_out = 1 for a 1x1x1 conv C -> 1
    w = gate.attention.weight
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.8 * bound  # uniform over the full range, not a narrower default
    assert torch.all(gate.attention.bias == 0)


def test_trelu_gradient_rule():
    z = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    y = trelu(z)
    y.sum().backward()
    assert y.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert z.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("name", ["sat", "st", "at", "org"])
def test_torchscript_round_trip(name, dims, tmp_path):
    gate = build_skip_gate(name, dims, C)
    with torch.no_grad():
        if hasattr(gate, "selection"):
            gate.selection.weight.copy_(W.float())
    scripted = torch.jit.script(gate)
    path = tmp_path / "gate.pt"
    scripted.save(str(path))
    loaded = torch.jit.load(str(path))
    f = torch.randn((1, C) + (4,) * dims)
    torch.testing.assert_close(loaded(f), gate(f))


def test_sat_folds_into_an_attention_gate():
    gate = _gate("sat", 3)
    at = gate.to_attention_gate()
    assert isinstance(at, ATGate)
    f = _input(3)
    torch.testing.assert_close(at(f), gate(f), rtol=0, atol=1e-12)


def test_registry_lookups_and_errors():
    assert SkipGate["sat"] is SATGate and SkipGate["st"] is STGate
    assert SkipGate["at"] is ATGate and SkipGate["org"] is OrgGate
    assert SkipGate[SkipGate.SAT] is SATGate  # MONAI's constant-style member access
    assert satgate_monai.SkipGate is SkipGate
    assert isinstance(build_skip_gate("SAT", 2, 4), SATGate)
    gate = build_skip_gate(["sat", {"selection_init": 0.5}], 2, 4)  # a JSON list works like a tuple
    assert torch.all(gate.selection.weight == 0.5)
    with pytest.raises(ValueError, match="did you mean 'org'") as err:
        build_skip_gate("orgg", 2, 4)
    for name in ("sat", "st", "at", "org"):
        assert f"'{name}'" in str(err.value)  # the valid names are listed
    with pytest.raises(ValueError, match="spatial_dims"):
        build_skip_gate("sat", 1, 4)
    with pytest.raises(ValueError, match="in_channels"):
        build_skip_gate("at", 2, 0)
    with pytest.raises(ValueError, match="selection init"):
        build_skip_gate(("st", {"selection_init": 0.0}), 2, 4)


def test_trelu_is_a_monai_activation():
    act = Act["trelu"]()
    assert torch.equal(act(torch.tensor([-2.0, 0.3, 4.0])), torch.tensor([0.0, 0.3, 1.0]))
