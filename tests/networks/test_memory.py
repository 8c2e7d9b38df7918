"""The activation-memory meters behind the benchmarks, and SAT's memory saving they show."""

from __future__ import annotations

import torch

from satgate_monai.networks.blocks.skip_gates import SATGate
from satgate_monai.networks.nets import SATUNet
from satgate_monai.report.memory import peak_live_bytes, saved_tensor_bytes


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
