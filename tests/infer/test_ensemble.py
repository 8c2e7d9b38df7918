"""Checkpoint ensembles and test-time mirroring (EnsembleInferer) against the averages computed by hand."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import SlidingWindowInferer

from satgate_monai.bundle.checkpoint import CheckpointError
from satgate_monai.bundle.ensemble import EnsembleInferer, mirror_subsets
from satgate_monai.networks.nets import SATUNet


def _net(seed: int) -> SATUNet:
    torch.manual_seed(seed)
    return SATUNet(spatial_dims=3, in_channels=1, out_channels=3, channels=[4, 8], strides=[2]).eval()


@pytest.fixture()
def setup(tmp_path):
    torch.manual_seed(7)
    x = torch.rand(1, 1, 20, 18, 12)
    inferer = SlidingWindowInferer(roi_size=(16, 16, 8), sw_batch_size=2, overlap=0.25, mode="gaussian")
    paths = []
    for seed in (0, 1):
        paths.append(tmp_path / f"m{seed}.pt")
        torch.save({"model": _net(seed).state_dict()}, paths[-1])
    return x, inferer, paths


@torch.no_grad()
def test_ensemble_of_two_checkpoints_is_the_mean_of_their_probabilities(setup):
    x, inferer, paths = setup
    by_hand = sum(torch.softmax(inferer(x, _net(seed)), dim=1) for seed in (0, 1)) / 2
    net = _net(5)
    out = EnsembleInferer(inferer, checkpoints=paths)(x, net)
    assert out.shape == by_hand.shape
    torch.testing.assert_close(torch.softmax(out, dim=1), by_hand, atol=1e-6, rtol=1e-5)
    single = torch.softmax(inferer(x, _net(0)), dim=1)
    assert (single - by_hand).abs().max() > 1e-3  # the two models differ, so the test can tell
    for k, v in _net(0).state_dict().items():  # the network is left holding the first checkpoint
        torch.testing.assert_close(net.state_dict()[k], v)


@torch.no_grad()
def test_mirroring_equals_hand_flipped_predictions(setup):
    x, inferer, _ = setup
    net = _net(0)
    by_hand = 0
    for dims in ([], [2], [4], [2, 4]):
        by_hand = by_hand + torch.flip(torch.softmax(inferer(torch.flip(x, dims), net), dim=1), dims)
    by_hand = by_hand / 4
    out = EnsembleInferer(inferer, mirror_axes=[0, 2])(x, net)
    torch.testing.assert_close(torch.softmax(out, dim=1), by_hand, atol=1e-6, rtol=1e-5)
    assert (torch.softmax(inferer(x, net), dim=1) - by_hand).abs().max() > 1e-3


@torch.no_grad()
def test_off_returns_the_inner_inferers_logits_and_passes_are_counted(setup):
    x, inferer, paths = setup
    net = _net(0)
    torch.testing.assert_close(EnsembleInferer(inferer)(x, net), inferer(x, net))
    calls = []

    def counting(inputs, network):
        calls.append(1)
        return inferer(inputs, network)

    ens = EnsembleInferer(counting, checkpoints=paths, mirror_axes=[0, 1, 2])
    ens(x, net)
    assert len(calls) == ens.n_passes == 16
    assert mirror_subsets([0, 1]) == [(), (0,), (1,), (0, 1)]


def test_bad_members_and_axes_are_refused(setup, tmp_path):
    x, inferer, paths = setup
    with pytest.raises(ValueError, match=r"do not fit a 3D image"):
        EnsembleInferer(inferer, mirror_axes=[3])(x, _net(0))
    with pytest.raises(ValueError, match="distinct"):
        EnsembleInferer(inferer, mirror_axes=[0, 0])
    other = tmp_path / "other.pt"
    torch.save(SATUNet(spatial_dims=3, in_channels=1, out_channels=3, channels=[4, 8, 16], strides=[2, 2])
               .state_dict(), other)
    with pytest.raises(CheckpointError, match="other.pt does not fit"):
        EnsembleInferer(inferer, checkpoints=[paths[0], other]).check(_net(0))
    with pytest.raises(CheckpointError, match="not found"):
        EnsembleInferer(inferer, checkpoints=[tmp_path / "missing.pt"])
