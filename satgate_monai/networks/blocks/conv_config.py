"""One small object for the layer settings every convolution of a network shares.

A network validates its hyperparameters once and hands a :class:`ConvConfig` to its blocks, instead of passing
``spatial_dims, kernel_size, act, norm, dropout, bias`` positionally through every helper.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from monai.networks.blocks import Convolution
from monai.networks.blocks.acti_norm import ADN
from monai.networks.layers.factories import split_args
from torch import nn

from satgate_monai.networks.blocks.utils import ActSpec, channel_act

__all__ = ["ConvConfig", "in_place"]

_IN_PLACE_ACTS = ("relu", "leakyrelu")


def in_place(act: ActSpec) -> ActSpec:
    """``act`` computed in place when it is a ReLU or leaky ReLU (slope >= 0) given without ``inplace``.

    In a ``conv - norm - dropout - act`` layer the activation's input is a fresh tensor that nothing else reads (no
    norm, dropout or convolution keeps its output for backward), so overwriting it gives the same values and
    gradients while one full-size tensor fewer is alive at a time (the SATUNets' peak inference memory sat at such an
    activation). An explicit ``inplace`` is respected.
    """
    if act is None:
        return None
    name, kwargs = split_args(tuple(act) if isinstance(act, list) else act)
    if (isinstance(name, str) and name.lower() in _IN_PLACE_ACTS and "inplace" not in kwargs
            and kwargs.get("negative_slope", 0.0) >= 0):
        return name, {**kwargs, "inplace": True}
    return act


@dataclass(frozen=True)
class ConvConfig:
    """Settings shared by a network's ``conv - norm - dropout - act`` layers (MONAI's ``Convolution``).

    Attributes:
        spatial_dims: 2 or 3.
        kernel_size: convolution kernel (odd).
        act: activation name or ``(name, kwargs)``, or None.
        norm: normalisation name or ``(name, kwargs)``, or None.
        dropout: dropout probability after each convolution (0 for none).
        bias: convolution bias.
        channel_prelu: an unsized ``"prelu"`` gets one parameter per output channel (V-Net's Caffe PReLU) instead
            of PyTorch's single one.
    """

    spatial_dims: int
    kernel_size: int = 3
    act: ActSpec = "relu"
    norm: ActSpec = "batch"
    dropout: float | None = 0.0
    bias: bool = True
    channel_prelu: bool = False

    def _act(self, act: ActSpec, channels: int) -> ActSpec:
        return in_place(channel_act(act, channels) if self.channel_prelu else act)

    def with_(self, **changes: Any) -> ConvConfig:
        """A copy with some fields changed, e.g. ``cfg.with_(act=None)``."""
        return replace(self, **changes)

    def conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> Convolution:
        """MONAI ``Convolution`` ``(N, in_channels, *S) -> (N, out_channels, *S')`` with these settings; ``kwargs``
        (``strides``, ``kernel_size``, ``act``, ``is_transposed``...) override or extend them."""
        args: dict[str, Any] = {"kernel_size": self.kernel_size, "act": self.act, "norm": self.norm,
                                "dropout": self.dropout, "bias": self.bias}
        args.update(kwargs)
        args["act"] = self._act(args["act"], out_channels)
        return Convolution(self.spatial_dims, in_channels, out_channels, **args)

    def adn(self, channels: int, act: ActSpec | None = ...) -> nn.Module:
        """The ``norm - dropout - act`` that follows a convolution of ``channels`` outputs (MONAI's ``ADN``, the
        same as inside ``Convolution``), or an ``nn.Identity`` when there is none. ``act`` overrides the config's."""
        act = self.act if act is ... else act
        if act is None and self.norm is None and self.dropout is None:
            return nn.Identity()
        return ADN(ordering="NDA", in_channels=channels, act=self._act(act, channels), norm=self.norm,
                   norm_dim=self.spatial_dims, dropout=self.dropout, dropout_dim=1)
