"""The decoder seam: the split join equals the convolution of the concatenation, and old checkpoints still load."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from satgate_monai.bundle.checkpoint import load_weights
from satgate_monai.networks.blocks import join
from satgate_monai.networks.blocks.conv_config import ConvConfig
from satgate_monai.networks.blocks.join import JoinConvolution
from satgate_monai.networks.nets import SATUNet
from satgate_monai.report.memory import saved_tensor_bytes
from tests.networks.base import randomise_batch_norm


def _concat_layout_unet(dims: int, gate: str = "sat", seed: int = 0) -> SATUNet:
    """A SATUNet whose joins are one convolution of the concatenation: the checkpoint layout before the split."""
    torch.manual_seed(seed)
    with mock.patch.object(join, "split_join", lambda skip, inp: False):
        return SATUNet(dims, 1, 2, channels=(4, 8, 16), skip_gate=gate)


@pytest.mark.parametrize("dims", [2, 3])
def test_split_join_equals_convolution_of_concatenation(dims):
    torch.manual_seed(0)
    cfg = ConvConfig(dims, kernel_size=3)
    split = JoinConvolution(cfg, 5, 1, 6)
    assert split.split and isinstance(split.side, torch.nn.Module)
    x = torch.randn((2, 5) + (8,) * dims, requires_grad=True)
    g = torch.rand((2, 1) + (8,) * dims, requires_grad=True)
    weight = split.joined_weight()
    assert weight.shape == (6, 6) + (3,) * dims
    conv = F.conv2d if dims == 2 else F.conv3d
    randomise_batch_norm(split)
    for mode in ("train", "eval"):
        getattr(split, mode)()
        ref = split.adn(conv(torch.cat([x, g], 1), weight, split.conv.bias, padding=1))
        out = split(x, g)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        with torch.no_grad():  # the inference path
            torch.testing.assert_close(split(x, g), ref, atol=1e-5, rtol=1e-5)
        grads = torch.autograd.grad(out.square().sum(), (x, g))
        ref_grads = torch.autograd.grad(ref.square().sum(), (x, g))
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("gate", ["sat", "at"])
def test_concatenated_layout_checkpoint_loads_and_gives_the_same_output(dims, gate, tmp_path):
    old = _concat_layout_unet(dims, gate)
    randomise_batch_norm(old)
    old_state = old.state_dict()
    joined_key = "decoder.0.conv.0.conv.weight"
    assert old_state[joined_key].shape[1] == 8 + 1 and "decoder.0.conv.0.side.weight" not in old_state
    torch.save({"model": old_state}, tmp_path / "model.pt")

    new = SATUNet(dims, 1, 2, channels=(4, 8, 16), skip_gate=gate)
    assert all(j.split for j in new.modules() if isinstance(j, JoinConvolution))
    load_weights(new, tmp_path / "model.pt")  # strict: every key matched after the conversion
    assert new.state_dict()[joined_key].shape[1] == 8
    x = torch.randn((2, 1) + (16,) * dims)
    for mode in ("train", "eval"):
        torch.testing.assert_close(getattr(new, mode)()(x), getattr(old, mode)()(x), atol=1e-5, rtol=1e-5)

    # and back: a split checkpoint loads into the concatenated layout
    back = _concat_layout_unet(dims, gate, seed=1)
    back.load_state_dict(new.state_dict())
    torch.testing.assert_close(back.state_dict()[joined_key], old_state[joined_key])


@pytest.mark.parametrize("init", ["glorot", "kaiming"])
def test_split_network_initialises_like_the_concatenated_one(init):
    torch.manual_seed(3)
    new = SATUNet(3, 1, 2, channels=(4, 8, 16), init=init)
    torch.manual_seed(3)
    with mock.patch.object(join, "split_join", lambda skip, inp: False):
        old = SATUNet(3, 1, 2, channels=(4, 8, 16), init=init)
    old_joins = [m for m in old.modules() if isinstance(m, JoinConvolution)]
    new_joins = [m for m in new.modules() if isinstance(m, JoinConvolution)]
    for a, b in zip(old_joins, new_joins):
        torch.testing.assert_close(a.joined_weight(), b.joined_weight(), atol=0, rtol=0)
    new_rest = {k: v for k, v in new.state_dict().items() if ".conv.0.conv." not in k and ".side." not in k}
    old_rest = {k: v for k, v in old.state_dict().items() if ".conv.0.conv." not in k}
    assert new_rest.keys() == old_rest.keys()
    for k in new_rest:
        assert torch.equal(new_rest[k], old_rest[k]), k


def test_wide_skips_keep_one_convolution_of_the_concatenation():
    net = SATUNet(2, 1, 2, channels=(4, 8, 16), skip_gate="org")
    assert not any(j.split for j in net.modules() if isinstance(j, JoinConvolution))
    assert not any(k.endswith("side.weight") for k in net.state_dict())


def test_split_join_keeps_no_concatenated_tensor_for_backward():
    x = torch.randn(1, 1, 32, 32, 32)
    sizes = {}
    for split in (True, False):
        torch.manual_seed(0)
        with mock.patch.object(join, "split_join", lambda skip, inp, split=split: split):
            net = SATUNet(3, 1, 2, channels=(8, 16))
        excluded = [*net.parameters(), *net.buffers(), x]
        sizes[split] = saved_tensor_bytes(lambda net=net: net(x).sum(), excluded)
    # the concatenated (8 + 1)-channel 32^3 float32 tensor is no longer kept
    assert sizes[False] - sizes[True] >= 9 * 32**3 * 4


def _unet_pair(dims: int, gate: str) -> tuple[SATUNet, SATUNet]:
    """A SATUNet with the split join and the same network as one convolution of the concatenation."""
    torch.manual_seed(0)
    split = SATUNet(dims, 1, 2, channels=(4, 8, 16), skip_gate=gate)
    randomise_batch_norm(split)
    with mock.patch.object(join, "split_join", lambda skip, inp: False):
        concat = SATUNet(dims, 1, 2, channels=(4, 8, 16), skip_gate=gate)
    concat.load_state_dict(split.state_dict())
    return split, concat


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_split_network_outputs_and_gradients_equal_the_concatenated_network(dims, channels_last):
    split, concat = _unet_pair(dims, "sat")
    x = torch.randn((2, 1) + (16,) * dims)
    if channels_last:
        fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
        split, concat, x = split.to(memory_format=fmt), concat.to(memory_format=fmt), x.contiguous(memory_format=fmt)
    # training mode: outputs, and the gradient of every parameter (selection weights, K, both join weights, ...)
    for net in (split, concat):
        net.train().zero_grad()
        net(x).square().mean().backward()
    torch.testing.assert_close(split(x), concat(x), atol=1e-5, rtol=1e-5)
    grads = {k: p.grad for k, p in split.named_parameters()}
    for key, p in concat.named_parameters():
        if key.startswith("decoder.") and key.endswith(".conv.0.conv.weight"):  # the joined weight: split halves
            c = grads[key].shape[1]
            torch.testing.assert_close(grads[key], p.grad[:, :c], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(grads[key.replace(".conv.weight", ".side.weight")], p.grad[:, c:],
                                       atol=1e-5, rtol=1e-5)
        else:
            torch.testing.assert_close(grads[key], p.grad, atol=1e-5, rtol=1e-5, msg=key)
    # inference, with and without autograd
    for net in (split, concat):
        net.eval()
    with torch.inference_mode():
        torch.testing.assert_close(split(x), concat(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(split(x), concat(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dims", [2, 3])
def test_onednn_convolution_equals_torch_convolution(dims):
    from satgate_monai.networks.blocks.fast_conv import convolution, uses_onednn

    torch.manual_seed(0)
    x = torch.randn((1, 1) + (12,) * dims, requires_grad=True)  # one channel, batch one: PyTorch's im2col kernel
    w = torch.randn((5, 1) + (3,) * dims, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    assert uses_onednn(x, w) == torch.backends.mkldnn.is_available()
    conv = F.conv2d if dims == 2 else F.conv3d
    out, ref = convolution(x, w, b, 1), conv(x, w, b, padding=1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for a, r in zip(torch.autograd.grad(out.square().sum(), (x, w, b)),
                    torch.autograd.grad(ref.square().sum(), (x, w, b))):
        torch.testing.assert_close(a, r, atol=1e-4, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: the ordinary (cast) convolution
        assert not uses_onednn(x, w)
        assert convolution(x, w, b, 1).dtype == torch.bfloat16
    assert not uses_onednn(x.double(), w.double())


def test_split_join_exports_ordinary_convolutions(tmp_path):
    net = SATUNet(2, 1, 2, channels=(4, 8), skip_gate="sat").eval()
    traced = torch.jit.trace(net, torch.randn(1, 1, 16, 16))
    kinds = {n.kind() for n in traced.inlined_graph.nodes()}
    assert "aten::_convolution" in kinds and "aten::mkldnn_convolution" not in kinds
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(traced(x), net(x), atol=1e-6, rtol=1e-5)
