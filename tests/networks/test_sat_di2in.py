"""SATDI2IN through the shared network checks, plus the paper's counts and deep supervision."""

from __future__ import annotations

import io

import pytest
import torch
from monai.losses import DeepSupervisionLoss, DiceCELoss

from satgate_monai.networks.nets import DI2IN_CHANNELS, SATDI2IN
from tests.networks.base import GATES, NetworkChecks, n_params, predicted_saving


class TestSATDI2IN(NetworkChecks):
    net_cls = SATDI2IN

    def kwargs(self, dims):
        # the shared checks expect one tensor in training mode: deep supervision is checked below
        return {"in_channels": 3 if dims == 2 else 1, "out_channels": 2, "channels": (4, 8, 16),
                "deep_supervision": False}

    def input_size(self, dims):
        return (16, 16) if dims == 2 else (8, 8, 8)

    def bad_sizes(self, dims):
        return [(10, 16), (16, 6)] if dims == 2 else [(8, 8, 6), (8, 10, 8)]

    def skip_costs(self, kwargs, dims):
        # each skip feeds one k^d convolution with C / 2 outputs
        k = kwargs.get("kernel_size", 3)
        return [(c, c // 2 * k**dims) for c in kwargs.get("channels", DI2IN_CHANNELS)[:-1]]

    def gate_strides(self, kwargs, dims):
        return [2**i for i in range(len(kwargs.get("channels", DI2IN_CHANNELS)) - 1)]

    def bad_kwargs(self):
        return [{"channels": (8,)}, {"channels": (5, 8, 16)}, {"encoder_convs": 0}, {"decoder_convs": True},
                {"kernel_size": 2}, {"dropout": 1.0}, {"skip_gate": "nope"}, {"spatial_dims": 1}]

    def full_size_configs(self):
        return [(3, {"in_channels": 1, "out_channels": 1, "deep_supervision": False}),
                (3, {"in_channels": 1, "out_channels": 2, "deep_supervision": True})]


def _counts(**kwargs) -> dict[str, int]:
    with torch.device("meta"):
        return {g: n_params(SATDI2IN(3, 1, 1, skip_gate=g, **kwargs)) for g in GATES}


def test_paper_counts_exactly():
    """Taghanaki et al.: DI2IN 2,353,089 parameters, 2,063,053 with SAT; saving sum of (C-1)(C/2)27 - (2C+1)."""
    counts = _counts(deep_supervision=False)
    formula = sum((c - 1) * (c // 2) * 27 - (2 * c + 1) for c in (16, 32, 64, 128))
    assert formula == 290_036
    assert counts["org"] - counts["sat"] == formula
    assert counts["org"] == 2_353_089 and counts["sat"] == 2_063_053
    assert counts["org"] - counts["at"] == predicted_saving("at", [(c, c // 2 * 27) for c in DI2IN_CHANNELS[:-1]])
    # the deep-supervision branches (1x1 convolutions off the bottom and the 1/4 level) add the same to every gate
    with_branches = _counts(deep_supervision=True)
    assert {g: with_branches[g] - counts[g] for g in GATES} == dict.fromkeys(GATES, (128 + 1) + (32 + 1))


def test_default_layout_follows_the_description():
    net = SATDI2IN(3, 1, 1)
    assert [g.in_channels for g in net.gates] == [16, 32, 64, 128] and net.size_divisor == 16
    assert net.deep_supervision_levels == (4, 2)  # Yang et al.: branches upscaled by 16 and 4 (and the output by 1)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    assert all(m.kernel_size == (3, 3, 3) for m in convs if m.out_channels > 1)
    strided = [m for m in convs if m.stride == (2, 2, 2)]
    assert len(strided) == 4 and not any(isinstance(m, torch.nn.MaxPool3d) for m in net.modules())
    acts = [m for m in net.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.PReLU))]
    assert len(acts) == sum(m.kernel_size == (3, 3, 3) for m in convs) == 14  # one after every 3x3x3 conv
    assert all(isinstance(m, torch.nn.LeakyReLU) for m in acts)


@pytest.mark.parametrize("gate", ["sat", "org"])
def test_deep_supervision_trains_with_monai_loss_and_is_dropped_in_eval(gate):
    torch.manual_seed(0)
    net = SATDI2IN(3, 1, 2, channels=(4, 8, 16, 32, 32), skip_gate=gate)
    x = torch.randn(2, 1, 16, 16, 16)
    y = (torch.rand(2, 1, 16, 16, 16) > 0.5).float()
    outputs = net.train()(x)
    assert isinstance(outputs, list) and len(outputs) == 3  # main, 1/4 and 1/16 branches
    assert all(o.shape == (2, 2, 16, 16, 16) for o in outputs)
    loss = DeepSupervisionLoss(DiceCELoss(to_onehot_y=True, softmax=True), weight_mode="exp")(outputs, y)
    loss.backward()
    for branch in net.branches:
        grad = branch.conv.conv.weight.grad
        assert grad is not None and grad.abs().sum() > 0
    net.eval()
    with torch.no_grad():
        single = net(x)
        assert isinstance(single, torch.Tensor) and single.shape == (2, 2, 16, 16, 16)
        scripted = torch.jit.script(net.eval())
        torch.testing.assert_close(scripted(x), single)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
        torch.testing.assert_close(loaded(x), single)
        loaded.train()
        assert isinstance(loaded(x), list) and len(loaded(x)) == 3


def test_main_output_is_the_same_with_and_without_branches():
    torch.manual_seed(0)
    a = SATDI2IN(2, 1, 2, channels=(4, 8, 16), deep_supervision=True).eval()
    b = SATDI2IN(2, 1, 2, channels=(4, 8, 16), deep_supervision=False).eval()
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("branches.")})
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))
