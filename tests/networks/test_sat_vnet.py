"""SATVNet through the shared network checks, plus V-Net specifics."""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
from torch import nn

from satgate_monai.bundle.checkpoint import load_weights
from satgate_monai.networks.blocks import vnet_blocks
from satgate_monai.networks.blocks.vnet_blocks import JoinResidualStage, ResidualStage
from satgate_monai.networks.nets import SATVNet
from satgate_monai.report.memory import saved_tensor_bytes
from tests.networks.base import NetworkChecks, randomise_batch_norm


class TestSATVNet(NetworkChecks):
    net_cls = SATVNet

    def kwargs(self, dims):
        # 2D: 4 % 2 == 0, the input stage tiles its input; 3D: 3 input channels need the 1x1 projection shortcut
        return {"in_channels": 2 if dims == 2 else 3, "out_channels": 2, "channels": (4, 8, 16)}

    def input_size(self, dims):
        return (16, 16) if dims == 2 else (8, 8, 8)

    def bad_sizes(self, dims):
        return [(10, 16), (16, 6)] if dims == 2 else [(8, 8, 6), (8, 10, 8)]

    def skip_costs(self, kwargs, dims):
        # the first convolution of decoder stage i is 2 * channels[i] wide, k^d kernel; the zero-padding shortcut
        # and the per-channel PReLU depend on the stage width only
        k = kwargs.get("kernel_size", 5)
        return [(c, 2 * c * k**dims) for c in kwargs["channels"][:-1]]

    def gate_strides(self, kwargs, dims):
        strides = kwargs.get("strides") or (2,) * (len(kwargs["channels"]) - 1)
        return [math.prod(strides[:i]) for i in range(len(kwargs["channels"]) - 1)]

    def bad_kwargs(self):
        return [{"channels": (8,)}, {"strides": (2, 2, 2)}, {"kernel_size": 4}, {"up_kernel_size": 1},
                {"encoder_convs": (1, 0, 2)}, {"decoder_convs": (1, 2, 3)}, {"dropout": 1.5},
                {"skip_gate": ("sat", {"selection_init": 2.0})}, {"skip_gate": "nope"}, {"spatial_dims": 4}]

    def full_size_configs(self):
        vnet = {"in_channels": 1, "out_channels": 2, "channels": (16, 32, 64, 128, 256)}  # Milletari et al., k = 5
        return [(3, vnet), (2, {**vnet, "in_channels": 3})]


def test_vnet_default_stage_depths_and_prelu():
    net = SATVNet(3, 1, 2)
    stages = [m for m in net.modules() if isinstance(m, (ResidualStage, JoinResidualStage))]
    encoder = [s.num_convs for s in stages[:5]]
    decoder = [s.num_convs for s in stages[5:]]
    assert all(isinstance(s, JoinResidualStage) for s in stages[5:])  # one-channel gate: the split join
    assert encoder == [1, 2, 3, 3, 3]  # Milletari et al., Fig. 1
    assert decoder == [3, 3, 2, 1]  # deep to shallow
    prelus = [m for m in net.modules() if isinstance(m, nn.PReLU)]
    assert prelus and all(m.num_parameters > 1 for m in prelus)  # per-channel, as V-Net's PReLU
    assert [s.out_channels for s in net.decoder] == [256, 128, 64, 32]


def test_vnet_sat_stage_uses_parameter_free_padding_shortcut():
    net = SATVNet(2, 1, 2, channels=(4, 8), skip_gate="sat").eval()
    stage = net.decoder[0].stage
    assert stage.pad == 4 - 1 + 4 - 4 == 3 and not stage.use_projection  # 4 up + 1 gate channel, padded to 8
    with torch.no_grad():
        assert net(torch.rand(1, 1, 8, 8)).shape == (1, 2, 8, 8)


def _concatenating_vnet(dims: int, gate: str, seed: int = 0) -> SATVNet:
    """A SATVNet whose up stages concatenate: the checkpoint layout before the split join."""
    torch.manual_seed(seed)
    with mock.patch.object(vnet_blocks, "split_join", lambda skip, inp: False):
        return SATVNet(dims, 1, 2, channels=(4, 8, 16), decoder_convs=(1, 2), skip_gate=gate)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("gate", ["sat", "at"])
def test_vnet_concatenated_checkpoint_loads_and_split_stage_computes_the_same(dims, gate, tmp_path):
    old = _concatenating_vnet(dims, gate)
    randomise_batch_norm(old)
    old_state = old.state_dict()
    assert isinstance(old.decoder[0].stage, ResidualStage) and "decoder.0.stage.convs.1.conv.weight" in old_state
    torch.save({"model": old_state}, tmp_path / "model.pt")
    new = SATVNet(dims, 1, 2, channels=(4, 8, 16), decoder_convs=(1, 2), skip_gate=gate)
    assert all(isinstance(d.stage, JoinResidualStage) for d in new.decoder)
    load_weights(new, tmp_path / "model.pt")  # strict: every key matched after the conversion
    state = new.state_dict()
    assert state["decoder.0.stage.join.conv.weight"].shape[1] == 8  # 8 up-sampled channels, the gate's apart
    assert state["decoder.0.stage.join.side.weight"].shape[1] == 1
    assert "decoder.0.stage.convs.0.conv.weight" in state and "decoder.0.stage.convs.1.conv.weight" not in state

    torch.manual_seed(1)
    x = torch.randn((2, 1) + (16,) * dims)
    for net in (old, new):
        net.train().zero_grad()
        net(x).square().mean().backward()
    torch.testing.assert_close(new(x), old(x), atol=1e-5, rtol=1e-5)
    old_grads = dict(old.named_parameters())
    for key, p in new.named_parameters():  # every parameter's gradient, the joined weight's as its two halves
        if ".join." in key:
            stage, _, rest = key.partition(".join.")
            ref = old_grads[f"{stage}.convs.0.{rest.replace('side.', 'conv.')}"].grad
            if rest.endswith("conv.weight"):
                ref = ref[:, : p.shape[1]]
            elif rest.endswith("side.weight"):
                ref = ref[:, -p.shape[1]:]
        elif ".stage.convs." in key and key.startswith("decoder."):
            head, _, rest = key.partition(".stage.convs.")
            index, _, tail = rest.partition(".")
            ref = old_grads[f"{head}.stage.convs.{int(index) + 1}.{tail}"].grad
        else:
            ref = old_grads[key].grad
        torch.testing.assert_close(p.grad, ref, atol=1e-5, rtol=1e-5, msg=key)
    for net in (old, new):
        net.eval()
    with torch.inference_mode():
        torch.testing.assert_close(new(x), old(x), atol=1e-5, rtol=1e-5)


def test_vnet_split_stage_keeps_no_concatenation_for_backward():
    x = torch.randn(1, 1, 32, 32, 32)
    sizes = {}
    for split in (True, False):
        torch.manual_seed(0)
        with mock.patch.object(vnet_blocks, "split_join", lambda skip, inp, split=split: split):
            net = SATVNet(3, 1, 2, channels=(8, 16), decoder_convs=(2,))
        excluded = [*net.parameters(), *net.buffers(), x]
        sizes[split] = saved_tensor_bytes(lambda net=net: net(x).sum(), excluded)
    # the concatenation copied the up-sampled features and the attention map; the split stage keeps the features
    # themselves (its convolution's input) and the map the gate's sigmoid keeps anyway: one 32^3 channel less
    assert sizes[False] - sizes[True] >= 32**3 * 4
