"""The Select-Attend-Transfer skip-gate family: ``sat``, ``st``, ``at`` and ``org``.

On a skip connection carrying ``f`` of shape ``(N, C, *spatial)`` (Taghanaki et al., "Select, Attend, and Transfer:
Light, Learnable Skip Connections", MLMI 2019, arXiv:1804.05181):

* ``sat``: ``sigmoid(K * (f ⊙ trelu(w)) + b)``, shape ``(N, 1, *spatial)``;
* ``st``:  ``f ⊙ trelu(w)``, shape ``(N, C, *spatial)``;
* ``at``:  ``sigmoid(K * f + b)``, shape ``(N, 1, *spatial)`` (selection weights fixed to one);
* ``org``: ``f`` unchanged.

``w`` is a learned vector of ``C`` selection weights, ``trelu(z) = clamp(z, 0, 1)`` and ``K`` a 1x1 (1x1x1)
convolution from ``C`` channels to one. ``w`` starts with the paper's Keras ``glorot_uniform`` draw by default, so about
half the channels start switched off (``w <= 0``) and stay off; see :class:`SelectionWeights` for the other inits.
Every gate takes ``(spatial_dims, in_channels, **kwargs)`` and exposes ``out_channels``, which a decoder uses to size
its input.
"""

from __future__ import annotations

import math
import warnings
from typing import Union

import torch
from torch import nn

from satgate_monai.networks.layers.trelu import trelu

__all__ = [
    "SATGate",
    "STGate",
    "ATGate",
    "OrgGate",
    "SelectionWeights",
    "SkipGateModule",
    "SELECTION_INITS",
    "SELECTION_FANS",
    "SelectionInit",
    "check_selection_init",
    "glorot_limit",
    "selection_shares",
]


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


SELECTION_INITS = ("glorot", "uniform")
"""Named selection inits; a float in ``(0, 1]`` is a constant init."""
SELECTION_FANS = ("sqrt", "c")
"""Fan rules of the ``"glorot"`` init on a 1-D weight of ``C`` entries: ``fan = sqrt(C)`` or ``fan = C``."""

SelectionInit = Union[str, float]


def glorot_limit(in_channels: int, fan: str = "sqrt") -> float:
    """The bound ``L`` of Keras's ``glorot_uniform`` ``U(-L, L)``, ``L = sqrt(6 / (fan_in + fan_out))``, on a 1-D
    weight of ``C = in_channels`` entries.

    Keras has no fan rule for 1-D shapes and falls back on its generic one: standalone Keras 2 (the paper's, 2018)
    takes ``fan_in = fan_out = sqrt(C)`` (``fan="sqrt"``, ``L = sqrt(3 / sqrt(C))``), ``tf.keras`` takes
    ``fan_in = fan_out = C`` (``fan="c"``, ``L = sqrt(3 / C)``).

    Raises:
        ValueError: for an unknown ``fan``.
    """
    if fan not in SELECTION_FANS:
        raise ValueError(f"fan must be one of {SELECTION_FANS}, got {fan!r}.")
    f = math.sqrt(in_channels) if fan == "sqrt" else float(in_channels)
    return math.sqrt(6.0 / (2.0 * f))


def check_selection_init(init: SelectionInit, fan: str = "sqrt") -> None:
    """Validate a selection init (``ValueError`` naming the value); warn when a constant 1.0 freezes every weight."""
    if fan not in SELECTION_FANS:
        raise ValueError(f"fan must be one of {SELECTION_FANS}, got {fan!r}.")
    if isinstance(init, str):
        if init not in SELECTION_INITS:
            raise ValueError(f"selection init must be one of {SELECTION_INITS} or a number in (0, 1], got {init!r}.")
        return
    if isinstance(init, bool) or not isinstance(init, (int, float)) or not 0.0 < float(init) <= 1.0:
        raise ValueError(f"selection init must be one of {SELECTION_INITS} or a number in (0, 1], got {init!r}.")
    if float(init) == 1.0:
        warnings.warn(
            "selection init 1.0: trelu has no gradient above 1, so the first update that pushes a weight above 1 "
            "freezes it fully on for good; in practice the gate then never switches a channel off (sat computes at, "
            "st computes org). Use 'glorot' (the paper's) or a constant below 1.",
            UserWarning,
            stacklevel=3,
        )
def _sigmoid(z: torch.Tensor) -> torch.Tensor:
    """``sigmoid(z)`` computed in float32 when ``z`` is half precision (autocast), returned in ``z``'s dtype."""
    if z.dtype == torch.float16 or z.dtype == torch.bfloat16:
        return torch.sigmoid(z.float()).to(z.dtype)
    return torch.sigmoid(z)


class SelectionWeights(nn.Module):
    """The learned selection vector ``w`` (``C`` scalars) and its inspection helpers.

    Weights drawn ``<= 0`` are switched off from the start and stay off (:func:`trelu` has zero gradient there); weights
    ``>= 1`` are frozen fully on for good (zero gradient above 1); only weights strictly inside ``(0, 1)`` select.

    Args:
        in_channels: ``C``, the number of skip channels.
        init: ``"glorot"`` (default, the paper's recipe: Keras ``glorot_uniform``, ``U(-L, L)`` with
            ``L = sqrt(6 / (2 fan))``, see :func:`glorot_limit`; about half the weights start ``<= 0``, i.e. off),
            ``"uniform"`` (``U(0, 1)``, every weight trainable) or a constant in ``(0, 1]`` (1.0 warns: the weights
            freeze fully on at the first update above 1).
        fan: fan rule of ``"glorot"``: ``"sqrt"`` (default, standalone Keras 2, ``fan = sqrt(C)``) or ``"c"``
            (``tf.keras``, ``fan = C``). Ignored by the other inits.
        generator: random generator of the draw (default: torch's global one, so ``torch.manual_seed`` /
            ``monai.utils.set_determinism`` make it reproducible).

    Raises:
        ValueError: for an unknown init or fan, or a constant outside ``(0, 1]``.
    """

    def __init__(self, in_channels: int, init: SelectionInit = "glorot", fan: str = "sqrt",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        check_selection_init(init, fan)
        self.init = init
        self.fan = fan
        weight = torch.empty(in_channels)
        if init == "glorot":
            limit = glorot_limit(in_channels, fan)
            weight.uniform_(-limit, limit, generator=generator)
        elif init == "uniform":
            weight.uniform_(0.0, 1.0, generator=generator)
        else:
            weight.fill_(float(init))
        self.weight = nn.Parameter(weight)

    def forward(self) -> torch.Tensor:
        """Returns ``trelu(w)``, shape ``(C,)``."""
        return trelu(self.weight)

    @torch.jit.unused
    def switched_off(self) -> torch.Tensor:
        """Boolean mask ``(C,)`` of channels switched off: ``w <= 0`` (``trelu(w) == 0``, no gradient)."""
        return self.weight.detach() <= 0.0

    @torch.jit.unused
    def frozen_on(self) -> torch.Tensor:
        """Boolean mask ``(C,)`` of channels frozen fully on: ``w >= 1`` (passed whole; no gradient above 1)."""
        return self.weight.detach() >= 1.0

    @torch.jit.unused
    def switched_off_fraction(self) -> float:
        """Share of channels switched off, in ``[0, 1]`` (the paper reports 55-67 % after training)."""
        return float(self.switched_off().float().mean())

    @torch.jit.unused
    def shares(self) -> dict[str, float]:
        """``{"off": w <= 0, "between": 0 < w < 1, "frozen": w >= 1}`` as shares of the ``C`` channels (sum 1)."""
        return selection_shares(self.weight.detach())


def selection_shares(weight: torch.Tensor) -> dict[str, float]:
    """Shares of raw selection weights ``w`` (any shape) switched off (``w <= 0``), strictly between 0 and 1 (the
    channels that select), and frozen fully on (``w >= 1``); the three sum to 1. ``nan`` each for an empty tensor."""
    w = weight.detach().flatten().double()
    if w.numel() == 0:
        return {"off": float("nan"), "between": float("nan"), "frozen": float("nan")}
    off = float((w <= 0).double().mean())
    frozen = float((w >= 1).double().mean())
    return {"off": off, "between": 1.0 - off - frozen, "frozen": frozen}


class SkipGateModule(nn.Module):
    """Base of every skip gate: the capabilities it declares, read by inspection, folding, inference and experiments.

    Class attributes (a new gate sets them; they default to "none"):

    * ``transfers_one_channel``: the gate hands the decoder one channel (an attention map) instead of ``C``;
    * ``has_selection``: it owns a :class:`SelectionWeights` as ``self.selection`` (and ``selection_weights``);
    * ``produces_attention``: its output is an attention map ``(N, 1, *spatial)`` in ``(0, 1)``;
    * ``foldable``: :meth:`fold` returns an equivalent, cheaper module for deployment.

    Every gate takes ``(spatial_dims, in_channels, **kwargs)`` and sets ``spatial_dims``, ``in_channels`` and
    ``out_channels``.
    """

    transfers_one_channel: bool = False
    has_selection: bool = False
    produces_attention: bool = False
    foldable: bool = False

    @torch.jit.unused
    def fold(self) -> nn.Module:
        """An equivalent module without the parts that only training needs (``foldable`` gates only)."""
        raise NotImplementedError(f"{type(self).__name__} is not foldable.")


class _SelectingGate(SkipGateModule):
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

    @torch.jit.unused
    def selection_shares(self) -> dict[str, float]:
        """Shares of this gate's channels off (``w <= 0``), between (``0 < w < 1``) and frozen on (``w >= 1``)."""
        return self.selection.shares()


class SATGate(_SelectingGate):
    """Select-Attend-Transfer: ``sigmoid(K * (f ⊙ trelu(w)) + b)``, one output channel.

    By default it is computed as a single 1x1 convolution whose weight is ``K ⊙ trelu(w)``: the same outputs and
    gradients as the literal equations, without building the ``C``-channel selected tensor that autograd would keep
    for backward. ``folded=False`` computes the literal equations (for tests and the memory benchmark).

    Args:
        spatial_dims: 2 or 3.
        in_channels: ``C``, channels of the skip feature map.
        selection_init: ``"glorot"`` (default, the paper's), ``"uniform"`` or a constant in ``(0, 1]``; see
            :class:`SelectionWeights`.
        fan: fan rule of the ``"glorot"`` init, ``"sqrt"`` (default) or ``"c"``; see :func:`glorot_limit`.
        bias: whether ``K`` has a bias ``b``. Defaults to True.
        folded: compute through the folded 1x1 convolution. Defaults to True.

    Shapes:
        input ``(N, C, *spatial)`` -> output ``(N, 1, *spatial)``, values in ``(0, 1)``.

    Example::

        >>> gate = SATGate(spatial_dims=3, in_channels=32)
        >>> gate(torch.rand(2, 32, 8, 8, 8)).shape
        torch.Size([2, 1, 8, 8, 8])
    """

    transfers_one_channel = True
    has_selection = True
    produces_attention = True
    foldable = True

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        selection_init: SelectionInit = "glorot",
        fan: str = "sqrt",
        bias: bool = True,
        folded: bool = True,
    ) -> None:
        super().__init__()
        _check_args(spatial_dims, in_channels)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = 1
        self.folded = folded
        self.selection = SelectionWeights(in_channels, selection_init, fan)
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

    @torch.jit.unused
    def fold(self) -> nn.Module:
        """:meth:`to_attention_gate`: the selection folded into ``K`` (switched-off channels get a zero kernel)."""
        return self.to_attention_gate()


class STGate(_SelectingGate):
    """Select-Transfer: ``f ⊙ trelu(w)``, passes the ``C`` selected channels.

    Args:
        spatial_dims: 2 or 3.
        in_channels: ``C``.
        selection_init: ``"glorot"`` (default, the paper's), ``"uniform"`` or a constant in ``(0, 1]``; see
            :class:`SelectionWeights`.
        fan: fan rule of the ``"glorot"`` init, ``"sqrt"`` (default) or ``"c"``; see :func:`glorot_limit`.

    Shapes:
        input ``(N, C, *spatial)`` -> output ``(N, C, *spatial)``.
    """

    has_selection = True

    def __init__(self, spatial_dims: int, in_channels: int, selection_init: SelectionInit = "glorot",
                 fan: str = "sqrt") -> None:
        super().__init__()
        _check_args(spatial_dims, in_channels)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = in_channels
        self.selection = SelectionWeights(in_channels, selection_init, fan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.selection().view([1, self.in_channels] + [1] * self.spatial_dims)


class ATGate(SkipGateModule):
    """Attend-Transfer: ``sigmoid(K * f + b)``, one output channel, no selection.

    Args:
        spatial_dims: 2 or 3.
        in_channels: ``C``.
        bias: whether ``K`` has a bias. Defaults to True.

    Shapes:
        input ``(N, C, *spatial)`` -> output ``(N, 1, *spatial)``, values in ``(0, 1)``.
    """

    transfers_one_channel = True
    produces_attention = True

    def __init__(self, spatial_dims: int, in_channels: int, bias: bool = True) -> None:
        super().__init__()
        _check_args(spatial_dims, in_channels)
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = 1
        self.attention = _attention_conv(spatial_dims, in_channels, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _sigmoid(self.attention(x))


class OrgGate(SkipGateModule):
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
