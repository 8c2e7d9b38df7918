"""V-Net building blocks (Milletari et al., "V-Net", 3DV 2016): residual convolution stages, strided-conv down,
transposed-conv up joined with a gated skip.

Every convolution is ``conv - norm - dropout - act`` (MONAI's ``Convolution``); a residual stage adds its input to the
output of its last convolution before that convolution's activation, as in He et al. (2016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.layers.utils import get_act_layer
from torch import nn

from satgate_monai.networks.blocks.conv_config import ConvConfig
from satgate_monai.networks.blocks.join import JoinConvolution, split_join
from satgate_monai.networks.blocks.utils import channel_act, transposed_padding

__all__ = ["ResidualStage", "JoinResidualStage", "VNetDownStage", "VNetUpStage"]


class ResidualStage(nn.Module):
    """``num_convs`` convolutions (``kernel_size``) with a residual shortcut: ``act(convs(x) + shortcut(x))``.

    The shortcut is the identity when ``in_channels == out_channels``. Otherwise it is parameter-free when it can be:
    ``"repeat"`` tiles the input channels (V-Net's input stage: a 1-channel volume copied 16 times) and ``"pad"``
    appends zero channels (a decoder stage whose skip went through a one-channel gate); ``"project"`` is a 1x1
    convolution, used when neither fits.

    Args:
        cfg: kernel size (5 in V-Net), activation (per-channel PReLU in V-Net), norm, dropout and bias of every
            convolution.
        in_channels: input channels.
        out_channels: output channels (of every convolution).
        num_convs: number of convolutions, at least 1.
        shortcut: ``"pad"``, ``"repeat"`` or ``"project"``, used only when the channel counts differ.

    Shapes:
        ``(N, in_channels, *S) -> (N, out_channels, *S)``.
    """

    def __init__(self, cfg: ConvConfig, in_channels: int, out_channels: int, num_convs: int,
                 shortcut: str = "pad") -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"a V-Net stage needs at least one convolution, got num_convs={num_convs!r}.")
        self.num_convs = num_convs
        self.convs = nn.Sequential(*(cfg.conv(in_channels if i == 0 else out_channels, out_channels,
                                              act=cfg.act if i < num_convs - 1 else None) for i in range(num_convs)))
        act = channel_act(cfg.act, out_channels)
        self.act = get_act_layer(act) if act is not None else nn.Identity()
        self.repeats = 0
        self.pad = 0
        self.project: nn.Module = nn.Identity()
        self.use_projection = False
        if in_channels != out_channels:
            if shortcut == "repeat" and out_channels % in_channels == 0:
                self.repeats = out_channels // in_channels
            elif shortcut == "pad" and out_channels > in_channels:
                self.pad = out_channels - in_channels
            else:
                self.project = cfg.conv(in_channels, out_channels, kernel_size=1, conv_only=True)
                self.use_projection = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs(x)
        if self.use_projection:
            res = self.project(x)
        elif self.repeats > 0:
            res = x.repeat([1, self.repeats] + [1] * (x.dim() - 2))
        elif self.pad > 0:
            res = F.pad(x, [0, 0] * (x.dim() - 2) + [0, self.pad])
        else:
            res = x
        return self.act(y + res)


class JoinResidualStage(nn.Module):
    """:class:`ResidualStage` of the concatenation ``[x, g]`` with the zero-padding shortcut, without building it.

    ``act(convs([x, g]) + pad([x, g]))`` computed as ``y = convs'(join(x, g))`` (the first convolution a
    :class:`~satgate_monai.networks.blocks.join.JoinConvolution`), then ``y[:, :C] += x``, ``y[:, C:C + G] += g``
    in place (the padded shortcut, channel by channel) and the activation: the same function, with no
    ``C + G``-channel tensor built or kept for backward.

    Checkpoints: a state dict of the :class:`ResidualStage` layout (``convs.0`` the convolution of the
    concatenation, ``convs.1...`` the others) is converted on load (``convs.0`` -> ``join``, split by
    :class:`~satgate_monai.networks.blocks.join.JoinConvolution`; ``convs.k`` -> ``convs.k-1``).

    Args:
        cfg: settings of every convolution.
        in_channels: ``C``, channels of ``x``.
        skip_channels: ``G``, channels of ``g``.
        out_channels: stage width, at least ``C + G``.
        num_convs: number of convolutions, at least 1.

    Shapes:
        ``x (N, C, *S)``, ``g (N, G, *S)`` -> ``(N, out_channels, *S)``.
    """

    def __init__(self, cfg: ConvConfig, in_channels: int, skip_channels: int, out_channels: int,
                 num_convs: int) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"a V-Net stage needs at least one convolution, got num_convs={num_convs!r}.")
        if out_channels < in_channels + skip_channels:
            raise ValueError(f"out_channels must be at least in_channels + skip_channels = "
                             f"{in_channels + skip_channels}, got {out_channels!r}.")
        self.in_channels = in_channels
        self.skip_channels = skip_channels
        self.num_convs = num_convs
        self.pad = out_channels - in_channels - skip_channels  # zero channels of the shortcut
        self.use_projection = False
        self.join = JoinConvolution(cfg, in_channels, skip_channels, out_channels,
                                    act=cfg.act if num_convs > 1 else None, split=True)
        self.convs = nn.Sequential(*(cfg.conv(out_channels, out_channels, act=cfg.act if i < num_convs - 1 else None)
                                     for i in range(1, num_convs)))
        act = channel_act(cfg.act, out_channels)
        self.act = get_act_layer(act) if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        y = self.convs(self.join(x, skip))
        y.narrow(1, 0, self.in_channels).add_(x)
        y.narrow(1, self.in_channels, self.skip_channels).add_(skip)
        return self.act(y)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Accept the :class:`ResidualStage` layout: ``convs.0.*`` -> ``join.*``, ``convs.k.*`` -> ``convs.k-1.*``."""
        old = prefix + "convs.0.conv.weight"
        if prefix + "join.conv.weight" not in state_dict and old in state_dict:
            head = prefix + "convs."
            renamed = {}
            for key in [k for k in state_dict if k.startswith(head)]:
                index, _, rest = key[len(head):].partition(".")
                if index.isdigit():
                    new = prefix + "join." + rest if index == "0" else f"{head}{int(index) - 1}.{rest}"
                    renamed[new] = state_dict.pop(key)
            state_dict.update(renamed)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class VNetDownStage(nn.Module):
    """Strided convolution down (kernel = stride, V-Net's 2x2x2 stride 2) then a residual stage.

    Shapes:
        ``(N, in_channels, *S) -> (N, out_channels, *S / stride)``.
    """

    def __init__(self, cfg: ConvConfig, in_channels: int, out_channels: int, stride: int, num_convs: int) -> None:
        super().__init__()
        self.down = cfg.conv(in_channels, out_channels, strides=stride, kernel_size=stride, padding=0)
        self.stage = ResidualStage(cfg, out_channels, out_channels, num_convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage(self.down(x))


class VNetUpStage(nn.Module):
    """Transposed convolution up, join with the gated skip, residual stage.

    The up-sampled features have ``skip_channels`` channels and the stage is ``2 * skip_channels`` wide, as in V-Net;
    with a one-channel gate (``sat``/``at``, ``gated_channels == 1``) the stage's first convolution takes
    ``skip_channels + 1`` channels and the shortcut zero-pads the concatenation to the stage width (parameter-free,
    so only that convolution shrinks). That stage is a :class:`JoinResidualStage`, which never builds the
    concatenation; a wide skip (``org``/``st``) concatenates and runs a :class:`ResidualStage`.

    Shapes:
        ``x (N, in_channels, *S / stride)`` and ``gated_skip (N, gated_channels, *S)`` ->
        ``(N, 2 * skip_channels, *S)``.
    """

    __constants__ = ["split"]  # TorchScript compiles only the form in use

    def __init__(self, cfg: ConvConfig, in_channels: int, skip_channels: int, gated_channels: int, stride: int,
                 num_convs: int, up_kernel_size: int) -> None:
        super().__init__()
        padding, output_padding = transposed_padding(up_kernel_size, stride)
        self.out_channels = 2 * skip_channels
        self.up = cfg.conv(in_channels, skip_channels, strides=stride, kernel_size=up_kernel_size, is_transposed=True,
                           padding=padding, output_padding=output_padding)
        self.split = split_join(gated_channels, skip_channels)
        if self.split:
            self.stage: nn.Module = JoinResidualStage(cfg, skip_channels, gated_channels, self.out_channels, num_convs)
        else:
            self.stage = ResidualStage(cfg, skip_channels + gated_channels, self.out_channels, num_convs,
                                       shortcut="pad")

    def forward(self, x: torch.Tensor, gated_skip: torch.Tensor) -> torch.Tensor:
        if self.split:
            return self.stage(self.up(x), gated_skip)
        return self.stage(torch.cat([self.up(x), gated_skip], dim=1))
