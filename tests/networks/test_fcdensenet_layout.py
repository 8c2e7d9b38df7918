"""SATFCDenseNet on the shared encoder/decoder base: checkpoints of the layout before the stages still load."""

from __future__ import annotations

import re

import pytest
import torch

from satgate_monai.networks.nets import SATFCDenseNet
from satgate_monai.networks.nets.gated_encoder_decoder import GatedEncoderDecoder
from tests.networks.base import randomise_batch_norm

KWARGS = {"preset": None, "growth_rate": 3, "layers_per_block": (2, 2, 2, 2, 2), "first_channels": 4}


def _legacy_key(key: str, n_pool: int) -> str:
    """The name a parameter had when the network kept first_conv / down_blocks / transitions / up_blocks."""
    rules = [(r"^encoder\.0\.0\.", "first_conv."), (rf"^encoder\.{n_pool}\.1\.", "bottleneck.")]
    rules += [(rf"^encoder\.{lv}\.1\.", f"down_blocks.{lv}.") for lv in range(n_pool)]
    rules += [(rf"^encoder\.{lv + 1}\.0\.", f"transitions_down.{lv}.") for lv in range(n_pool)]
    rules += [(rf"^decoder\.{i}\.up\.", f"transitions_up.{i}.") for i in range(n_pool)]
    rules += [(rf"^decoder\.{i}\.block\.", f"up_blocks.{i}.") for i in range(n_pool)]
    for pattern, legacy in rules:
        if re.match(pattern, key):
            return re.sub(pattern, legacy, key)
    return key


@pytest.mark.parametrize("dense_gate", [None, "sat"])
def test_legacy_layout_checkpoint_loads(dense_gate):
    torch.manual_seed(0)
    net = SATFCDenseNet(2, 2, 3, dense_gate=dense_gate, **KWARGS)
    assert isinstance(net, GatedEncoderDecoder) and len(net.down_blocks) == 2 and net.bottleneck is net.encoder[-1][1]
    randomise_batch_norm(net)
    legacy = {_legacy_key(k, 2): v for k, v in net.state_dict().items()}
    assert "first_conv.weight" in legacy and "up_blocks.1.layers.0.conv.0.weight" in legacy
    other = SATFCDenseNet(2, 2, 3, dense_gate=dense_gate, **KWARGS)
    other.load_state_dict(legacy)  # strict
    x = torch.randn(2, 2, 16, 16)
    torch.testing.assert_close(other.eval()(x), net.eval()(x), atol=0, rtol=0)
