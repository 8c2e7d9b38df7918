"""The gate registry: capability flags, one list of names, and a fifth gate that flows through without other edits."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from satgate_monai import SATUNet, SkipGate, build_skip_gate, gate_name
from satgate_monai.experiments.analysis import _unselected_twin, gate_order, selection_warnings
from satgate_monai.experiments.attention import collect_attention_maps, gate_inputs
from satgate_monai.experiments.grid import build_grid
from satgate_monai.networks.blocks.skip_gates import ATGate, SelectionWeights, SkipGateModule
from satgate_monai.networks.factories import (
    GATE_CAPABILITIES,
    SKIP_GATE_NAMES,
    gate_class,
    gate_classes,
    gate_names,
    register_skip_gate,
)
from satgate_monai.networks.fold import fold_gates
from satgate_monai.networks.inspection import (
    attention_maps,
    format_selection_state,
    gate_modules,
    selection_state,
    selection_weights,
)
from satgate_monai.networks.layers.trelu import trelu
from tests.networks.gate_table import CAPABILITIES


def test_built_in_gates_declare_their_capabilities():
    assert SKIP_GATE_NAMES == gate_names() == tuple(CAPABILITIES)
    for name, flags in CAPABILITIES.items():
        cls = gate_class(name)
        assert tuple(getattr(cls, f) for f in GATE_CAPABILITIES) == flags, name
        gate = build_skip_gate(name, 2, 8)
        assert (gate.out_channels == 1) == cls.transfers_one_channel
        assert hasattr(gate, "selection") == cls.has_selection
    for i, flag in enumerate(GATE_CAPABILITIES):  # the registry's filters agree with the table
        assert gate_names(**{flag: True}) == tuple(n for n, flags in CAPABILITIES.items() if flags[i]), flag
    assert gate_names(has_selection=True)[-2:] == ("st", "sat") and gate_names(foldable=True)[0] == "sat"
    with pytest.raises(ValueError, match="capabilities"):
        gate_names(selects=True)


def test_registration_is_checked():
    with pytest.raises(ValueError, match="SkipGateModule"):
        register_skip_gate("plain", nn.Identity)
    with pytest.raises(ValueError, match="already registered"):
        register_skip_gate("sat", ATGate)
    register_skip_gate("sat", gate_class("sat"))  # the same class again: a no-op
    assert gate_names() == tuple(CAPABILITIES)


class ScaledAttentionGate(SkipGateModule):
    """A throwaway fifth gate: ``sigmoid(mean_c(f ⊙ trelu(w)) * a + b)``; knows nothing of the rest of the package."""

    transfers_one_channel = True
    has_selection = True
    produces_attention = True
    foldable = True

    def __init__(self, spatial_dims: int, in_channels: int, selection_init="glorot") -> None:
        super().__init__()
        self.spatial_dims, self.in_channels, self.out_channels = spatial_dims, in_channels, 1
        self.selection = SelectionWeights(in_channels, selection_init)
        self.scale = nn.Parameter(torch.tensor(2.0))

    @property
    def selection_weights(self) -> torch.Tensor:
        return self.selection().detach()

    def _kernel(self) -> torch.Tensor:
        k = trelu(self.selection.weight) * self.scale / self.in_channels
        return k.view([1, self.in_channels] + [1] * self.spatial_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid((x * self._kernel()).sum(1, keepdim=True))

    def fold(self) -> nn.Module:
        gate = ATGate(self.spatial_dims, self.in_channels, bias=True)
        with torch.no_grad():
            gate.attention.weight.copy_(self._kernel())
            gate.attention.bias.zero_()
        return gate


@pytest.fixture()
def fifth_gate():
    register_skip_gate("xsat", ScaledAttentionGate, "a throwaway gate registered by a test")
    try:
        yield "xsat"
    finally:
        SkipGate.components.pop("XSAT")
        assert "xsat" not in gate_names()


def test_a_fifth_gate_flows_through_inspection_fold_and_the_grid(fifth_gate, caplog):
    assert gate_name("XSAT") == "xsat" and "xsat" in gate_classes()
    assert "xsat" in gate_names(has_selection=True, foldable=True)
    torch.manual_seed(0)
    net = SATUNet(2, 1, 2, channels=(8, 16, 32), strides=(2, 2), skip_gate=fifth_gate).eval()
    x = torch.rand(1, 1, 32, 32)
    # inspection finds the gates by the registry and reads their flags
    gates = gate_modules(net)
    assert len(gates) == 2 and all(isinstance(g, ScaledAttentionGate) for g in gates.values())
    assert set(attention_maps(net, x)) == set(gates) == set(selection_weights(net))
    state = selection_state(net)
    assert set(state) == {*gates, "all"} and state["all"]["n"] == 8 + 16
    assert "pooled: 24 channels" in format_selection_state(state)
    assert set(collect_attention_maps(net, x)) == set(gate_inputs(net, x)) == set(gates)
    # folding: every foldable gate, with its switched-off channels counted and their kernel exactly zero
    with caplog.at_level(logging.INFO, logger="satgate_monai.networks.fold"):
        folded, report = fold_gates(net, return_report=True)
    assert not any(isinstance(m, ScaledAttentionGate) for m in folded.modules())
    off = sum(int((g.selection.weight <= 0).sum()) for g in gates.values())
    assert report.dropped == off > 0 and report.channels == 24 and sorted(report.gates) == sorted(gates)
    assert f"{off} of 24 skip channels switched off" in caplog.text
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)
    # the experiment grid and its tables take it as a gate
    bundle_def = {"_target_": "satgate_monai.networks.nets.SATUNet", "spatial_dims": 2, "in_channels": 1,
                  "out_channels": 2, "channels": [8, 16, 32], "strides": [2, 2], "skip_gate": "sat"}
    cells = build_grid(bundle_def, ["unet"], ["org", fifth_gate], [0], selection_args={"selection_init": 0.5})
    assert cells[1].network_def["skip_gate"] == [fifth_gate, {"selection_init": 0.5}]
    assert cells[0].network_def["skip_gate"] == "org"  # selection arguments only reach gates with selection
    assert gate_order().index(fifth_gate) > gate_order().index("sat")
    assert _unselected_twin(fifth_gate) == "at"


def test_fold_drops_switched_off_channels_explicitly():
    torch.manual_seed(1)
    net = SATUNet(2, 1, 2, channels=(8, 16, 32), strides=(2, 2), skip_gate="sat").eval()
    with torch.no_grad():
        net.gates[0].selection.weight[:3] = torch.tensor([-0.4, 0.0, 1.5])
    folded, report = fold_gates(net, return_report=True)
    offs = [g.selection.switched_off() for g in net.gates]
    assert report.dropped == sum(int(o.sum()) for o in offs) and report.frozen >= 1
    for gate, off in zip(folded.gates, offs):
        w = gate.attention.weight.flatten()
        assert torch.all(w[off] == 0) and not torch.any(torch.signbit(w[off]))  # exactly +0, not -0
    assert fold_gates(net) is not net  # the plain call still returns the network alone


def test_selection_warnings_name_the_gate_without_selection():
    def row(gate, off, between, frozen):
        d = {"mean": None, "std": None, "n": 3}
        return {"gate": gate, "label": f"U-Net {gate.upper()}", "seeds": [0, 1, 2], "selection": {
            "off": {**d, "mean": off}, "between": {**d, "mean": between}, "frozen": {**d, "mean": frozen},
            "never_between": between == 0, "all_frozen": frozen == 1}}

    warnings = selection_warnings([row("sat", 0.0, 0.0, 1.0), row("st", 0.5, 0.0, 0.5),
                                   row("sat", 0.5, 0.5, 0.0), row("at", 0, 0, 0) | {"selection": None},
                                   row("sat", 0.0, 0.12, 0.88), row("st", 0.0, 0.6, 0.4)])
    assert len(warnings) == 3
    assert "U-Net SAT behaves as AT" in warnings[0] and "frozen" in warnings[0]
    assert "U-Net ST behaves as ORG with channels dropped" in warnings[1]
    assert "U-Net SAT nearly behaves as AT: no channel is switched off" in warnings[2] and "88.0 %" in warnings[2]
