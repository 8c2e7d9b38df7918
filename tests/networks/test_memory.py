"""The activation-memory meters behind the benchmarks, and SAT's memory saving they show."""

from __future__ import annotations

import torch

from satgate_monai.networks.blocks.skip_gates import SATGate
from satgate_monai.networks.nets import SATUNet
from satgate_monai.report.memory import peak_live_bytes, saved_tensor_bytes
from tests.networks.base import randomise_batch_norm


def test_peak_live_bytes_counts_live_tensors_only():
    x = torch.ones(1000)

    def fn():
        a = x * 2  # 4000 bytes
        b = a + 1  # 8000 live
        del a
        c = b * 3  # 8000 live again (a was freed)
        return c

    assert peak_live_bytes(fn, exclude=[x]) == 8000
    assert peak_live_bytes(lambda: x.view(10, 100).t(), exclude=[x]) == 0  # views of an input are free


def test_saved_tensor_bytes_of_the_sat_gate():
    x = torch.randn(1, 8, 16, 16, requires_grad=True)
    folded, literal = SATGate(2, 8, folded=True), SATGate(2, 8, folded=False)
    literal.load_state_dict(folded.state_dict())
    kept_folded = saved_tensor_bytes(lambda: folded(x).sum(), exclude=[x, *folded.parameters()])
    kept_literal = saved_tensor_bytes(lambda: literal(x).sum(), exclude=[x, *literal.parameters()])
    # literal: keeps x * trelu(w) (8 channels) for the convolution; folded: only the 1-channel sigmoid output
    assert kept_literal - kept_folded >= 8 * 16 * 16 * 4 - 256  # minus a few small vectors
    assert kept_folded < 2 * 16 * 16 * 4 + 1024


def test_sat_unet_uses_less_activation_memory_than_org():
    x = torch.randn(1, 1, 32, 32)
    out = {}
    for gate in ("org", "sat"):
        torch.manual_seed(0)
        net = SATUNet(2, 1, 2, channels=(8, 16, 32), skip_gate=gate)
        excluded = [*net.parameters(), *net.buffers(), x]
        kept = saved_tensor_bytes(lambda net=net: net.train()(x).square().mean(), excluded)
        with torch.no_grad():
            peak = peak_live_bytes(lambda net=net: net.eval()(x), excluded)
        out[gate] = kept, peak
    assert out["sat"][0] < out["org"][0]
    # the gate runs as soon as the encoder produces a skip: only one channel per skip waits for the decoder
    assert out["sat"][1] < 0.8 * out["org"][1]


def test_in_place_activations_lower_the_peak_and_change_nothing_else():
    torch.manual_seed(0)
    net = SATUNet(3, 1, 2, channels=(8, 16, 32), skip_gate="sat")
    relus = [m for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    assert relus and all(m.inplace for m in relus)  # "relu" after a norm runs in place
    randomise_batch_norm(net)
    copy = SATUNet(3, 1, 2, channels=(8, 16, 32), skip_gate="sat", act=("relu", {"inplace": False}))
    copy.load_state_dict(net.state_dict())
    assert not any(m.inplace for m in copy.modules() if isinstance(m, torch.nn.ReLU))
    x = torch.randn(2, 1, 32, 32, 32)
    for m in (net, copy):
        m.train().zero_grad()
        m(x).square().mean().backward()
    torch.testing.assert_close(net(x), copy(x), atol=1e-6, rtol=1e-6)
    for (key, p), q in zip(net.named_parameters(), copy.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-6, msg=key)
    peaks, kept = [], []
    for m in (net, copy):
        excluded = [*m.parameters(), *m.buffers(), x]
        kept.append(saved_tensor_bytes(lambda m=m: m.train()(x).square().mean(), excluded))
        with torch.inference_mode():
            peaks.append(peak_live_bytes(lambda m=m: m.eval()(x), excluded))
    assert kept[0] == kept[1]
    assert peaks[0] <= peaks[1] - 8 * 32**3 * 4 * 2  # one full-resolution 8-channel tensor fewer, batch of two


def test_peak_live_bytes_counts_meta_tensors_as_real_ones():
    def fn(device):
        x = torch.ones(1000, device=device)
        a = x * 2
        b = a + 1
        del a
        return b * 3

    assert peak_live_bytes(lambda: fn("meta")) == peak_live_bytes(lambda: fn("cpu")) == 12000
