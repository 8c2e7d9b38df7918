"""The Select-Attend-Transfer skip-gate family: ``sat``, ``st``, ``at`` and ``org``.

On a skip connection carrying ``f`` of shape ``(N, C, *spatial)`` (Taghanaki et al., "Select, Attend, and Transfer:
Light, Learnable Skip Connections", MLMI 2019, arXiv:1804.05181):

* ``sat``: ``sigmoid(K * (f ⊙ trelu(w)) + b)``, shape ``(N, 1, *spatial)``;
* ``st``:  ``f ⊙ trelu(w)``, shape ``(N, C, *spatial)``;
* ``at``:  ``sigmoid(K * f + b)``, shape ``(N, 1, *spatial)`` (selection weights fixed to one);
* ``org``: ``f`` unchanged.

``w`` is a learned vector of ``C`` selection weights, ``trelu(z) = clamp(z, 0, 1)`` and ``K`` a 1x1 (1x1x1)
convolution from ``C`` channels to one. Every gate takes ``(spatial_dims, in_channels, **kwargs)`` and exposes
``out_channels``, which a decoder uses to size its input.
"""

from __future__ import annotations

import torch
from torch import nn

from satgate_monai.networks.layers.trelu import trelu

__all__ = ["SATGate", "STGate", "ATGate", "OrgGate", "SelectionWeights"]


def _check_args(spatial_dims: int, in_channels: int) -> None:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}.")


def _attention_conv(spatial_dims: int, in_channels: int, bias: bool) -> nn.Module:
    """The ``K`` of the paper: a 1x1 (1x1x1) convolution ``C -> 1``, Glorot-uniform weight, zero bias."""
    conv_type = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
    conv = conv_type(in_channels, 1, kernel_size=1, bias=bias)
    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def _sigmoid(z: torch.Tensor) -> torch.Tensor:
    """``sigmoid(z)`` computed in float32 when ``z`` is half precision (autocast), returned in ``z``'s dtype."""
    if z.dtype == torch.float16 or z.dtype == torch.bfloat16:
        return torch.sigmoid(z.float()).to(z.dtype)
    return torch.sigmoid(z)


class SelectionWeights(nn.Module):
    """The learned selection vector ``w`` (``C`` scalars) and its inspection helpers.

    Args:
        in_channels: ``C``, the number of skip channels.
        init: initial value of every weight (default 1.0: the gate starts as "pass every channel", i.e. as ``at``;
            :func:`~satgate_monai.networks.layers.trelu.trelu` has gradient 1 at 1, so every weight is trainable).
    """

    def __init__(self, in_channels: int, init: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < float(init) <= 1.0:
            raise ValueError(f"selection init must lie in (0, 1] so every weight is trainable, got {init!r}.")
        self.weight = nn.Parameter(torch.full((in_channels,), float(init)))

    def forward(self) -> torch.Tensor:
        """Returns ``trelu(w)``, shape ``(C,)``."""
        return trelu(self.weight)

    @torch.jit.unused
    def switched_off(self) -> torch.Tensor:
        """Boolean mask ``(C,)`` of channels whose selection weight is exactly 0 (``w <= 0``)."""
        return self.weight.detach() <= 0.0

    @torch.jit.unused
    def switched_off_fraction(self) -> float:
        """Share of channels switched off, in ``[0, 1]`` (the paper reports 55-67 % after training)."""
        return float(self.switched_off().float().mean())


class _SelectingGate(nn.Module):
    """Common inspection API of the gates that own a selection vector (``sat``, ``st``)."""

    __jit_unused_properties__ = ["selection_weights"]

    @property
    def selection_weights(self) -> torch.Tensor:
        """``trelu(w)``, shape ``(C,)``, detached."""
        return self.selection().detach()

    @torch.jit.unused
    def switched_off_fraction(self) -> float:
        """Share of this gate's channels whose selection weight is 0."""
        return self.selection.switched_off_fraction()


class SATGate(_SelectingGate):
    """Select-Attend-Transfer: ``sigmoid(K * (f ⊙ trelu(w)) + b)``, one output channel.

    By default it is computed as a single 1x1 convolution whose weight is ``K ⊙ trelu(w)``: the same outputs and
    gradients as the literal equations, without building the ``C``-channel selected tensor that autograd would keep
    for backward. ``folded=False`` computes the literal equations (for tests and the memory benchmark).

    Args:
        spatial_dims: 2 or 3.
        in_channels: ``C``, channels of the skip feature map.
        selection_init: initial selection weight, in ``(0, 1]``. Defaults to 1.0.
        bias: whether ``K`` has a bias ``b``. Defaults to True.
        folded: compute through the folded 1x1 convolution. Defaults to True.

    Shapes:
        input ``(N, C, *spatial)`` -> output ``(N, 1, *spatial)``, values in ``(0, 1)``.

    Example::

        >>> gate = SATGate(spatial_dims=3, in_channels=32)
        >>> gate(torch.rand(2, 32, 8, 8, 8)).shape
        torch.Size([2, 1, 8, 8, 8])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        selection_init: float = 1.0,
        bias: bool = True,
        folded: bool = True,
    ) -> None:
        super().__init__()
        _check_args(spatial_dims, in_channels)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = 1
        self.folded = folded
        self.selection = SelectionWeights(in_channels, selection_init)
        self.attention = _attention_conv(spatial_dims, in_channels, bias)

    def folded_weight(self) -> torch.Tensor:
        """``K ⊙ trelu(w)``: the attention kernel with the selection folded in, shape ``(1, C, 1, 1[, 1])``."""
        scale = self.selection().view([1, self.in_channels] + [1] * self.spatial_dims)
        return self.attention.weight * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded:
            return _sigmoid(self.attention._conv_forward(x, self.folded_weight(), self.attention.bias))
        scale = self.selection().view([1, self.in_channels] + [1] * self.spatial_dims)
        return _sigmoid(self.attention(x * scale))

    @torch.jit.unused
    def to_attention_gate(self) -> ATGate:
        """An :class:`ATGate` computing exactly this gate's output, with weight ``K ⊙ trelu(w)`` (for deployment)."""
        gate = ATGate(self.spatial_dims, self.in_channels, bias=self.attention.bias is not None)
        gate = gate.to(device=self.attention.weight.device, dtype=self.attention.weight.dtype)
        with torch.no_grad():
            gate.attention.weight.copy_(self.folded_weight())
            if self.attention.bias is not None:
                gate.attention.bias.copy_(self.attention.bias)
        return gate


class STGate(_SelectingGate):
    """Select-Transfer: ``f ⊙ trelu(w)``, passes the ``C`` selected channels.

    Args:
        spatial_dims: 2 or 3.
        in_channels: ``C``.
        selection_init: initial selection weight, in ``(0, 1]``. Defaults to 1.0.

    Shapes:
        input ``(N, C, *spatial)`` -> output ``(N, C, *spatial)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, selection_init: float = 1.0) -> None:
        super().__init__()
        _check_args(spatial_dims, in_channels)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = in_channels
        self.selection = SelectionWeights(in_channels, selection_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.selection().view([1, self.in_channels] + [1] * self.spatial_dims)


class ATGate(nn.Module):
    """Attend-Transfer: ``sigmoid(K * f + b)``, one output channel, no selection.

    Args:
        spatial_dims: 2 or 3.
        in_channels: ``C``.
        bias: whether ``K`` has a bias. Defaults to True.

    Shapes:
        input ``(N, C, *spatial)`` -> output ``(N, 1, *spatial)``, values in ``(0, 1)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, bias: bool = True) -> None:
        super().__init__()
        _check_args(spatial_dims, in_channels)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = 1
        self.attention = _attention_conv(spatial_dims, in_channels, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _sigmoid(self.attention(x))


class OrgGate(nn.Module):
    """The plain skip connection: returns ``f`` unchanged (``out_channels == in_channels``).

    Args:
        spatial_dims: 2 or 3.
        in_channels: ``C``.
    """

    def __init__(self, spatial_dims: int, in_channels: int) -> None:
        super().__init__()
        _check_args(spatial_dims, in_channels)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
