"""A shared test base for every SAT network (in the spirit of segmentation_models_pytorch's model tests).

A network's test class subclasses :class:`NetworkChecks` and fills in its configuration hooks; every check then runs for
each ``(spatial_dims, skip_gate)`` pair: output shape, backward, TorchScript round trip (scripted == eager, save/load),
bad input size, the analytic parameter saving of each gate, fold equality and the inspection functions.
"""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from satgate_monai.networks.blocks.skip_gates import SATGate
from satgate_monai.networks.factories import gate_class
from satgate_monai.networks.fold import fold_gates
from satgate_monai.networks.inspection import attention_maps, gate_modules, switched_off_fraction
from tests.networks.gate_table import GATES, gate_cost


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def predicted_saving(gate: str, skips: list[tuple[int, int]]) -> int:
    """ORG minus ``gate`` parameters: sum over skips of ``(C - C') * per-channel cost - gate parameters``.

    ``skips`` lists ``(C, per-channel cost)``: the parameters one more concatenated skip channel adds downstream. For a
    network whose first convolution after the concatenation is the only consumer this is ``C_out * k^d``, giving the
    paper's ``(C - 1) C_out k^d - (2C + 1)`` for ``sat``.
    """
    total = 0
    for channels, per_channel in skips:
        transferred, own = gate_cost(gate, channels)
        total += (channels - transferred) * per_channel - own
    return total


def randomise_batch_norm(net: nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics so eval-mode checks exercise them."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def set_selection(net: nn.Module, seed: int = 0) -> None:
    """Selection weights below 0, inside (0, 1) and above 1."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if getattr(m, "has_selection", False):
            m.selection.weight.data = torch.rand(m.selection.weight.shape, generator=g) * 2.0 - 0.5


class NetworkChecks:
    """Checks shared by every network. Subclasses set ``net_cls`` and override the hooks below."""

    net_cls: type[nn.Module]
    name: str = "Net"

    # ---- hooks -------------------------------------------------------------------------------------------------
    def kwargs(self, dims: int) -> dict:
        """Small constructor arguments (without spatial_dims and skip_gate)."""
        raise NotImplementedError

    def input_size(self, dims: int) -> tuple[int, ...]:
        raise NotImplementedError

    def bad_sizes(self, dims: int) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def skip_costs(self, kwargs: dict, dims: int) -> list[tuple[int, int]]:
        """``(C, per-channel downstream cost)`` for every long skip, derived from the constructor arguments."""
        raise NotImplementedError

    def gate_strides(self, kwargs: dict, dims: int) -> list[int]:
        """Down-sampling factor of each long skip relative to the input, shallow to deep."""
        raise NotImplementedError

    def bad_kwargs(self) -> list[dict]:
        """Constructor overrides that must raise ``ValueError``."""
        return []

    def full_size_configs(self) -> list[tuple[int, dict]]:
        """``(dims, kwargs)`` of paper-sized configurations, checked for the parameter formula on the meta device."""
        return []

    # ---- helpers -----------------------------------------------------------------------------------------------
    def build(self, dims: int, gate: str, **overrides) -> nn.Module:
        torch.manual_seed(0)
        kwargs = {**self.kwargs(dims), **overrides}
        return self.net_cls(spatial_dims=dims, skip_gate=gate, **kwargs)

    def batch(self, dims: int, n: int = 2, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn((n, self.kwargs(dims)["in_channels"], *self.input_size(dims)), generator=g)

    def eval_net(self, dims: int, gate: str, **overrides) -> nn.Module:
        net = self.build(dims, gate, **overrides)
        randomise_batch_norm(net)
        set_selection(net)
        return net.eval()

    # ---- fixtures ----------------------------------------------------------------------------------------------
    @pytest.fixture(params=(2, 3), ids=lambda d: f"{d}d")
    def dims(self, request) -> int:
        return request.param

    @pytest.fixture(params=GATES)
    def gate(self, request) -> str:
        return request.param

    # ---- checks ------------------------------------------------------------------------------------------------
    def test_output_shape_and_backward(self, dims, gate):
        net = self.build(dims, gate).train()
        x = self.batch(dims).requires_grad_(True)
        y = net(x)
        assert y.shape == (x.shape[0], self.kwargs(dims)["out_channels"], *x.shape[2:])
        y.square().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        missing = [name for name, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not missing, f"parameters without a finite gradient: {missing}"
        if gate in ("sat", "st"):  # default init: weights drawn <= 0 (off) or > 1 (frozen) get no gradient
            for g in net.gates:
                w = g.selection.weight.detach()
                on = (w > 0) & (w <= 1)
                assert (g.selection.weight.grad[on] != 0).all() and (g.selection.weight.grad[~on] == 0).all()

    def test_gate_layout(self, dims, gate):
        net = self.build(dims, gate)
        gates = net.gates
        assert len(gates) == len(self.skip_costs(self.kwargs(dims), dims))
        assert all(g in gate_modules(net).values() for g in gates)
        assert net.skip_gate_name == gate

    def test_torchscript_round_trip(self, dims, gate):
        net = self.eval_net(dims, gate)
        x = self.batch(dims)
        with torch.no_grad():
            expected = net(x)
            scripted = torch.jit.script(net)
            torch.testing.assert_close(scripted(x), expected, rtol=1e-5, atol=1e-6)
            buffer = io.BytesIO()
            torch.jit.save(scripted, buffer)
            buffer.seek(0)
            loaded = torch.jit.load(buffer)
            torch.testing.assert_close(loaded(x), expected, rtol=1e-5, atol=1e-6)
            bad = self.bad_sizes(dims)[0]
            with pytest.raises(Exception, match="ValueError.*multiples of"):
                loaded(torch.zeros((1, x.shape[1], *bad)))

    def test_bad_input_size(self, dims):
        net = self.build(dims, "sat").eval()
        divisor = math.prod(net.strides)
        for size in self.bad_sizes(dims):
            with pytest.raises(ValueError, match=f"multiples of {divisor}"):
                net(torch.zeros((1, self.kwargs(dims)["in_channels"], *size)))
        other = (16,) * (5 - dims)  # 2D input to a 3D net and vice versa
        with pytest.raises(ValueError, match=f"{dims}D inputs"):
            net(torch.zeros((1, self.kwargs(dims)["in_channels"], *other)))

    def test_bad_hyperparameters(self):
        for overrides in self.bad_kwargs():
            with pytest.raises(ValueError):
                self.build(overrides.pop("spatial_dims", 2), overrides.pop("skip_gate", "sat"), **overrides)

    def test_parameter_saving_matches_formula(self, dims, gate):
        kwargs = self.kwargs(dims)
        org = n_params(self.build(dims, "org"))
        measured = org - n_params(self.build(dims, gate))
        assert measured == predicted_saving(gate, self.skip_costs(kwargs, dims))
        if gate_class(gate).transfers_one_channel:
            assert measured > 0

    def test_parameter_saving_full_size(self):
        for dims, kwargs in self.full_size_configs():
            with torch.device("meta"):
                counts = {g: n_params(self.net_cls(spatial_dims=dims, skip_gate=g, **kwargs)) for g in GATES}
            for g in GATES:
                assert counts["org"] - counts[g] == predicted_saving(g, self.skip_costs(kwargs, dims)), (dims, g)

    def test_fold_gates(self, dims, gate):
        net = self.eval_net(dims, gate)
        x = self.batch(dims)
        folded = fold_gates(net)
        assert not any(isinstance(m, SATGate) for m in folded.modules())
        assert any(isinstance(m, SATGate) for m in net.modules()) == (gate == "sat")  # the original is untouched
        n_sat = sum(g.in_channels for g in gate_modules(net).values() if isinstance(g, SATGate))
        assert n_params(net) - n_params(folded) == n_sat  # the selection vectors are folded into K
        with torch.no_grad():
            torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)
            if gate == "sat":  # deployment: fold, then script
                torch.testing.assert_close(torch.jit.script(folded)(x), net(x), rtol=1e-5, atol=1e-5)

    def test_attention_maps_and_switched_off(self, dims, gate):
        net = self.build(dims, gate).eval()
        x = self.batch(dims, n=1)
        maps = attention_maps(net, x)
        names = {id(m): name for name, m in gate_modules(net).items()}
        if gate_class(gate).produces_attention:
            for g, stride in zip(net.gates, self.gate_strides(self.kwargs(dims), dims)):
                m = maps[names[id(g)]]
                assert m.shape == (1, 1, *(s // stride for s in x.shape[2:]))
                assert ((m > 0) & (m < 1)).all()
        else:
            assert not maps
        # switched-off share: the first half of every selection vector set to <= 0
        selecting = [g for g in gate_modules(net).values() if g.has_selection]
        if not selecting:
            assert math.isnan(switched_off_fraction(net))
            return
        with torch.no_grad():
            for g in selecting:
                g.selection.weight.fill_(0.5)
        assert switched_off_fraction(net) == 0.0
        with torch.no_grad():
            for g in selecting:
                half = g.in_channels // 2
                g.selection.weight[:half] = -torch.rand(half)
                g.selection.weight[half:half + 1] = 0.0
        off = sum(g.in_channels // 2 + 1 for g in selecting)
        assert switched_off_fraction(net) == pytest.approx(off / sum(g.in_channels for g in selecting))
