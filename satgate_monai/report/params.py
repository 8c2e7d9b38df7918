"""Parameters, forward FLOPs and transferred skip channels of every network with ORG/AT/ST/SAT skips (Table 3).

Networks are built on PyTorch's ``meta`` device, so the counts cost no memory and no arithmetic: FLOPs come from
:class:`torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per multiply-add, convolutions and matrix products only;
element-wise operations, normalisation and activations are not counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from satgate_monai.networks.factories import SKIP_GATE_NAMES, build_skip_gate, gate_names
from satgate_monai.networks.nets import DI2IN_CHANNELS, FCDENSENET_PRESETS, SATDI2IN, SATFCDenseNet, SATUNet, SATVNet

__all__ = [
    "ReportConfig", "CONFIGS", "GATE_ORDER", "predicted_saving", "count_row", "parameter_table", "describe",
    "input_label",
]

GATE_ORDER = SKIP_GATE_NAMES  # the registry order: org, at, st, sat


@dataclass(frozen=True)
class ReportConfig:
    """One network in one setting of the report.

    Attributes:
        setting: e.g. ``"2D skin"``.
        network: the row label, e.g. ``"U-Net"``.
        net_cls: the network class.
        kwargs: constructor arguments, without ``skip_gate``.
        input_shape: ``(N, C, *S)`` of the forward pass counted for FLOPs.
    """

    setting: str
    network: str
    net_cls: type[nn.Module]
    kwargs: dict = field(hash=False)
    input_shape: tuple[int, ...]

    @property
    def spatial_dims(self) -> int:
        return len(self.input_shape) - 2

    def build(self, gate: str, device: str | torch.device = "meta") -> nn.Module:
        with torch.device(device):
            return self.net_cls(spatial_dims=self.spatial_dims, skip_gate=gate, **self.kwargs).eval()


SKIN_2D = (1, 3, 192, 192)
MRI_3D = (1, 1, 96, 96, 64)
LIVER_3D = (1, 1, 96, 96, 96)
_UNET_2D = {"channels": (32, 64, 128, 256, 512), "kernel_size": 3}
_UNET_3D = {"channels": (16, 32, 64, 128, 256), "kernel_size": 3}
_VNET = {"channels": (16, 32, 64, 128, 256), "kernel_size": 5}


def _dense(preset: str) -> dict:
    return {"preset": None, "kernel_size": 3, **FCDENSENET_PRESETS[preset]}


CONFIGS: tuple[ReportConfig, ...] = (
    ReportConfig("2D skin", "U-Net", SATUNet, {"in_channels": 3, "out_channels": 2, **_UNET_2D}, SKIN_2D),
    ReportConfig("2D skin", "V-Net", SATVNet, {"in_channels": 3, "out_channels": 2, **_VNET}, SKIN_2D),
    ReportConfig("2D skin", "FC-DenseNet56", SATFCDenseNet,
                 {"in_channels": 3, "out_channels": 2, **_dense("fcdensenet56")}, SKIN_2D),
    ReportConfig("2D skin", "FC-DenseNet103", SATFCDenseNet,
                 {"in_channels": 3, "out_channels": 2, **_dense("fcdensenet103")}, SKIN_2D),
    ReportConfig("3D MRI", "U-Net", SATUNet, {"in_channels": 1, "out_channels": 2, **_UNET_3D}, MRI_3D),
    ReportConfig("3D MRI", "V-Net", SATVNet, {"in_channels": 1, "out_channels": 2, **_VNET}, MRI_3D),
    ReportConfig("3D MRI", "FC-DenseNet56", SATFCDenseNet,
                 {"in_channels": 1, "out_channels": 2, **_dense("fcdensenet56")}, MRI_3D),
    ReportConfig("3D MRI", "FC-DenseNet103", SATFCDenseNet,
                 {"in_channels": 1, "out_channels": 2, **_dense("fcdensenet103")}, MRI_3D),
    ReportConfig("3D liver CT", "DI2IN", SATDI2IN,
                 {"in_channels": 1, "out_channels": 1, "channels": DI2IN_CHANNELS, "deep_supervision": False},
                 LIVER_3D),
)
"""The report's settings: 2D skin (ISIC RGB 192x192, 2 classes), 3D MRI (1 channel, 96x96x64, 2 classes) and 3D
liver CT (DI2IN as deployed: one sigmoid output, deep-supervision branches dropped; 1 channel, 96x96x96)."""


def _skip_costs(config: ReportConfig) -> list[tuple[int, int]]:
    """Per long skip: ``(C, parameters one more concatenated skip channel costs downstream)``."""
    kw, d = config.kwargs, config.spatial_dims
    k = kw.get("kernel_size", 3)
    if config.net_cls is SATUNet:  # first decoder conv: C_out = channels[i]
        return [(c, c * k**d) for c in kw["channels"][:-1]]
    if config.net_cls is SATVNet:  # first conv of the residual stage: C_out = 2 * channels[i]
        return [(c, 2 * c * k**d) for c in kw["channels"][:-1]]
    if config.net_cls is SATDI2IN:  # one conv after the concatenation, C_out = channels[i] / 2
        return [(c, c // 2 * k**d) for c in kw["channels"][:-1]]
    # FC-DenseNet: every layer of the decoder block (batch norm 2 + conv growth * k^d) and, last skip, the classifier
    g, layers, first = kw["growth_rate"], kw["layers_per_block"], kw["first_channels"]
    n = (len(layers) - 1) // 2
    return [
        (first + g * sum(layers[: i + 1]),
         layers[2 * n - i] * (2 + g * k**d) + (kw["out_channels"] if i == 0 else 0))
        for i in range(n)
    ]


def predicted_saving(config: ReportConfig, gate: str) -> int:
    """ORG minus ``gate`` parameters from the skip formula: sum over skips of ``(C - C') * cost - gate parameters``.

    With ``cost = C_out * k^d`` (U-Net, V-Net) this is the paper's ``(C - 1) C_out k^d - (2C + 1)`` for ``sat``.
    """
    total = 0
    for channels, cost in _skip_costs(config):
        transferred, params = _gate_cost(gate, config.spatial_dims, channels)
        total += (channels - transferred) * cost - params
    return total


def _gate_cost(gate: str, spatial_dims: int, channels: int) -> tuple[int, int]:
    """``(channels the gate passes on, its own parameters)`` for a skip of ``channels``, read off the registered gate
    itself (``sat``: ``(1, 2C + 1)``, ``at``: ``(1, C + 1)``, ``st``: ``(C, C)``, ``org``: ``(C, 0)``)."""
    with torch.device("meta"):
        module = build_skip_gate(gate, spatial_dims, channels)
    return int(module.out_channels), sum(p.numel() for p in module.parameters())


def _flops(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    x = torch.empty(input_shape, device="meta")
    with FlopCounterMode(display=False) as counter:
        net(x)
    return int(counter.get_total_flops())


def count_row(config: ReportConfig, gate: str, org: dict | None = None) -> dict:
    """Counts for one network and gate; ``org`` (the ORG row) adds the changes vs ORG."""
    net = config.build(gate)
    params = sum(p.numel() for p in net.parameters())
    flops = _flops(net, config.input_shape)
    row = {
        "setting": config.setting,
        "network": config.network,
        "gate": gate.upper(),
        "params": params,
        "params_change_pct": 0.0,
        "gflops": flops / 1e9,
        "gflops_change_pct": 0.0,
        "skip_in": "/".join(str(g.in_channels) for g in net.gates),
        "skip_out": "/".join(str(g.out_channels) for g in net.gates),
        "saving": 0,
        "formula": 0,
    }
    if org is not None:
        row["params_change_pct"] = 100.0 * (params - org["params"]) / org["params"]
        row["gflops_change_pct"] = 100.0 * (row["gflops"] - org["gflops"]) / org["gflops"]
        row["saving"] = org["params"] - params
        row["formula"] = predicted_saving(config, gate)
    return row


def parameter_table(configs: tuple[ReportConfig, ...] = CONFIGS, gates: tuple[str, ...] = GATE_ORDER) -> list[dict]:
    """Rows for every configuration and gate (ORG first, the others relative to it)."""
    unknown = [g for g in gates if g not in gate_names()]
    if unknown:
        raise ValueError(f"unknown gates {unknown}; valid: {gate_names()}.")
    rows = []
    for config in configs:
        org = count_row(config, "org")
        rows.append(org)
        rows.extend(count_row(config, g, org) for g in gates if g != "org")
    return rows


def input_label(config: ReportConfig) -> str:
    n, c, *s = config.input_shape
    return f"{n}x{c}x" + "x".join(map(str, s))


def describe(config: ReportConfig) -> str:
    """A one-line description of a configuration's widths for the report."""
    kw = config.kwargs
    if config.net_cls is SATFCDenseNet:
        return (f"growth {kw['growth_rate']}, layers per block {tuple(kw['layers_per_block'])}, first conv "
                f"{kw['first_channels']}, k={kw['kernel_size']}, transposed conv 3, dropout 0.2")
    if config.net_cls is SATDI2IN:
        with torch.device("meta"):
            full = SATDI2IN(config.spatial_dims, **{**kw, "deep_supervision": True})
        extra = sum(p.numel() for p in full.branches.parameters())
        return (f"channels {tuple(kw['channels'])}, two 3x3x3 convs per encoder level (stride-2 down), one per "
                f"decoder level (C/2 wide, trilinear up), leaky ReLU, one output; the deep-supervision branches "
                f"(+{extra:,} parameters, training only) are not counted, as at inference")
    if config.net_cls is SATVNet:
        return (f"channels {tuple(kw['channels'])} (decoder stages twice the skip width), k={kw['kernel_size']}, "
                "convs per stage (1,2,3,3,3) down / (3,3,2,1) up, per-channel PReLU")
    return f"channels {tuple(kw['channels'])}, two k={kw['kernel_size']} convs per level, transposed conv 2"
