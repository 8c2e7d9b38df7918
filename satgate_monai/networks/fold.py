"""Deployment: fold trained ``sat`` gates into plain 1x1 convolutions with weight ``K ⊙ trelu(w)``."""

from __future__ import annotations

import copy

from torch import nn

from satgate_monai.networks.blocks.skip_gates import SATGate

__all__ = ["fold_gates"]


def fold_gates(net: nn.Module, inplace: bool = False) -> nn.Module:
    """Replace every :class:`SATGate` by the equivalent :class:`ATGate` (one 1x1 convolution and a sigmoid).

    The folded network computes the same outputs (to float rounding) with fewer parameters and no selection vector.
    ``at`` gates are already plain convolutions; ``st``/``org`` gates are left as they are.

    Args:
        net: a trained network.
        inplace: modify ``net`` itself instead of a deep copy. Defaults to False.

    Returns:
        the folded network, in the same training/eval mode as ``net``.
    """
    target = net if inplace else copy.deepcopy(net)
    for parent in list(target.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, SATGate):
                folded = child.to_attention_gate()
                folded.train(child.training)
                setattr(parent, child_name, folded)
    return target
