"""The decoder seam: the first convolution after a gated skip joins the up-sampled features.

Mathematically it is ``conv([x, g])`` of the concatenation along channels of the up-sampled features ``x`` (``C``
channels) and the gated skip ``g`` (``G`` channels). A convolution is linear in its input channels, so it equals
``conv_x(x) + conv_g(g)`` with the weight split by input channel (the bias goes to ``conv_x``). With a one-channel
gate (``sat``/``at``) the split form builds no ``C + 1``-channel tensor, keeps none for backward, and runs the main
convolution on ``C`` channels, a count the vectorised CPU kernels handle well (oneDNN pads ``C + 1`` to its next
block of 16 channels: at ``C = 16`` that is the cost of ``2 C``). The ``1 -> C_out`` side term is added in place
into the main convolution's output. Both convolutions go through
:func:`~satgate_monai.networks.blocks.fast_conv.convolution` (oneDNN on a CPU whatever the shape: PyTorch would run
the one-channel side convolution and the deep 3D levels on its much slower im2col kernel). The split form is used in
training and inference alike. With a wide skip (``org``/``st``, ``G == C``) one convolution of the concatenation is
faster, so that form is kept there (it is the plain network exactly). ``benchmarks/join.py`` measures the forms side
by side.

Checkpoints store the split form as ``conv.weight`` (``C`` inputs) plus ``side.weight`` (``G`` inputs); a state dict
of the concatenated form (``conv.weight`` with ``C + G`` inputs, as written before the split existed) is converted
on load, and back.
"""

from __future__ import annotations

import math

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from satgate_monai.networks.blocks.conv_config import ConvConfig
from satgate_monai.networks.blocks.fast_conv import convolution
from satgate_monai.networks.blocks.utils import ActSpec

__all__ = ["JoinConvolution", "split_join"]


def split_join(skip_channels: int, in_channels: int) -> bool:
    """Whether the split form is used: for a skip narrower than the up-sampled features (one-channel gates)."""
    return skip_channels < in_channels


class JoinConvolution(nn.Module):
    """``act(dropout(norm(conv([x, g]))))``, the concatenation never built when the skip is narrow.

    Args:
        cfg: kernel size, norm, dropout, bias of the convolution.
        in_channels: ``C``, channels of the up-sampled features ``x``.
        skip_channels: ``G``, channels of the gated skip ``g`` (the gate's ``out_channels``).
        out_channels: ``C_out``.
        act: activation after the norm (default: the config's; None for a residual stage's last convolution).
        split: force the split (True) or concatenated (False) form; default :func:`split_join`.

    Shapes:
        ``x (N, C, *S)``, ``g (N, G, *S)`` -> ``(N, C_out, *S)``.
    """

    __constants__ = ["split", "padding"]  # TorchScript compiles only the form in use

    def __init__(self, cfg: ConvConfig, in_channels: int, skip_channels: int, out_channels: int,
                 act: ActSpec | None = ..., split: bool | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.skip_channels = skip_channels
        self.out_channels = out_channels
        self.split = split_join(skip_channels, in_channels) if split is None else bool(split)
        self.padding = cfg.kernel_size // 2
        conv_type = Conv[Conv.CONV, cfg.spatial_dims]
        k = cfg.kernel_size
        if self.split:
            self.conv = conv_type(in_channels, out_channels, k, padding=k // 2, bias=cfg.bias)
            self.side: nn.Module = conv_type(skip_channels, out_channels, k, padding=k // 2, bias=False)
        else:
            self.conv = conv_type(in_channels + skip_channels, out_channels, k, padding=k // 2, bias=cfg.bias)
            self.side = nn.Identity()
        self.adn = cfg.adn(out_channels, act)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.split:  # nothing concatenated is built (or kept for backward); the side term is added in place
            y = convolution(x, self.conv.weight, self.conv.bias, self.padding)
            y = y.add_(convolution(skip, self.side.weight, None, self.padding))
        else:
            y = self.conv(torch.cat([x, skip], dim=1))
        return self.adn(y)

    @torch.jit.unused
    def joined_weight(self) -> torch.Tensor:
        """The weight of the equivalent convolution of ``[x, g]``, shape ``(C_out, C + G, *kernel)``."""
        if self.split:
            return torch.cat([self.conv.weight, self.side.weight], dim=1)
        return self.conv.weight

    @torch.jit.unused
    def init_weights(self, scheme: str) -> None:
        """Initialise as one convolution of ``C + G`` inputs (the same draw as the concatenated form), zero bias."""
        weight = torch.empty((self.out_channels, self.in_channels + self.skip_channels, *self.conv.weight.shape[2:]),
                             device=self.conv.weight.device, dtype=self.conv.weight.dtype)
        if scheme == "glorot":
            nn.init.xavier_uniform_(weight)
        elif scheme == "kaiming":
            nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
        else:  # PyTorch's default for a convolution of this fan-in
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        with torch.no_grad():
            if self.split:
                self.conv.weight.copy_(weight[:, : self.in_channels])
                self.side.weight.copy_(weight[:, self.in_channels:])
            else:
                self.conv.weight.copy_(weight)
            if self.conv.bias is not None and scheme != "default":
                self.conv.bias.zero_()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Accept both forms: a concatenated ``conv.weight`` is split, a split pair is concatenated."""
        key, side_key = prefix + "conv.weight", prefix + "side.weight"
        weight = state_dict.get(key)
        joined = self.in_channels + self.skip_channels
        if self.split and weight is not None and side_key not in state_dict and weight.shape[1] == joined:
            state_dict[key] = weight[:, : self.in_channels]
            state_dict[side_key] = weight[:, self.in_channels:]
        elif not self.split and weight is not None and side_key in state_dict:
            state_dict[key] = torch.cat([weight, state_dict.pop(side_key)], dim=1)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
