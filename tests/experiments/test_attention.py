"""Attention-outside measure on hand-built maps, and map collection from real networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from satgate_monai.experiments.attention import (
    collect_attention_maps,
    dilate,
    gate_inputs,
    outside_mass,
    resize_map,
    uniform_outside_share,
)


def _square(shape=(20, 20)):
    g = np.zeros(shape, dtype=np.uint8)
    g[5:10, 5:10] = 1
    return g


def test_outside_mass_hand_built():
    g = _square()
    a = np.zeros(g.shape)
    a[0, 0] = 3.0  # far outside
    a[7, 7] = 1.0  # inside
    assert outside_mass(a, g, dilation=0) == pytest.approx(0.75)
    # (0, 0) is sqrt(50) ~ 7.07 px from the square's corner (5, 5): inside a dilation of 8, outside one of 7
    assert outside_mass(a, g, dilation=8) == pytest.approx(0.0)
    assert outside_mass(a, g, dilation=7) == pytest.approx(0.75)


def test_outside_mass_uniform_equals_baseline():
    g = _square((30, 30))
    for r in (0, 2, 5):
        assert outside_mass(np.full(g.shape, 0.37), g, r) == pytest.approx(uniform_outside_share(g, r))
    assert uniform_outside_share(g, 0) == pytest.approx(1 - 25 / 900)


def test_outside_mass_3d_and_edge_cases():
    g = np.zeros((8, 8, 8))
    g[2:4, 2:4, 2:4] = 1
    a = g.astype(float) * 0.9
    assert outside_mass(a, g, 0) == 0.0
    assert math.isnan(outside_mass(a, np.zeros_like(g), 1))  # empty ground truth
    assert math.isnan(outside_mass(np.zeros_like(a), g, 1))  # zero map
    with pytest.raises(ValueError, match="shape"):
        outside_mass(a[:4], g, 1)
    with pytest.raises(ValueError, match="negative"):
        outside_mass(-a, g, 1)


def test_dilate_is_euclidean():
    m = np.zeros((11, 11), bool)
    m[5, 5] = True
    d = dilate(m, 2)
    assert d.sum() == 13  # the pixels within distance 2 of the centre: 1 + 4 + 4 + 4
    assert not d[3, 3] and d[3, 5]


def test_collect_maps_from_networks():
    from monai.networks.nets import AttentionUnet

    from satgate_monai.networks.nets import SATUNet

    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    net = SATUNet(2, 3, 2, channels=(4, 8, 16), skip_gate="sat").eval()
    maps = collect_attention_maps(net, x)
    assert [tuple(m.shape) for m in maps.values()] == [(1, 1, 32, 32), (1, 1, 16, 16)]  # finest first
    assert all(float(m.min()) > 0 and float(m.max()) < 1 for m in maps.values())
    feats = gate_inputs(net, x)
    assert [tuple(f.shape) for f in feats.values()] == [(1, 4, 32, 32), (1, 8, 16, 16)]
    assert collect_attention_maps(SATUNet(2, 3, 2, channels=(4, 8, 16), skip_gate="org").eval(), x) == {}
    peer = AttentionUnet(2, 3, 2, channels=(4, 8, 16), strides=(2, 2)).eval()
    assert [tuple(m.shape) for m in collect_attention_maps(peer, x).values()] == [(1, 1, 32, 32), (1, 1, 16, 16)]
    assert tuple(resize_map(maps[next(iter(maps))][:, :, :16, :16], (32, 32)).shape) == (1, 1, 32, 32)
