"""Truncated ReLU, the selection non-linearity of Select-Attend-Transfer.

``trelu(z) = clamp(z, 0, 1)`` (Taghanaki et al., MLMI 2019, arXiv:1804.05181, Eq. 1). Its gradient is 1 on the
half-open interval ``0 < z <= 1`` and 0 elsewhere, so a selection weight that reaches 0 is switched off for good
(its channel gets no gradient and no longer influences the output), and one pushed above 1 is frozen fully on for
good. ``torch.clamp`` would pass a gradient at ``z == 0`` too and let switched-off channels come back.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["trelu", "TReLU"]


def trelu(z: torch.Tensor) -> torch.Tensor:
    """Truncated ReLU ``clamp(z, 0, 1)`` with gradient 1 on ``(0, 1]`` and 0 elsewhere.

    Args:
        z: a tensor of any shape.

    Returns:
        a tensor of the same shape and dtype with values in ``[0, 1]``.
    """
    zero = torch.zeros_like(z)
    one = torch.ones_like(z)
    return torch.where(z > 1.0, one, torch.where(z > 0.0, z, zero))


class TReLU(nn.Module):
    """Module form of :func:`trelu`, registered in MONAI's activation factory as ``Act["trelu"]``.

    Example::

        >>> import satgate_monai  # registers the name
        >>> from monai.networks.layers import Act
        >>> Act["trelu"]()(torch.tensor([-1.0, 0.5, 2.0]))
        tensor([0.0000, 0.5000, 1.0000])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        # ``inplace`` is accepted so ``Act`` call sites that pass it work; the operation is never in place.
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return trelu(x)
