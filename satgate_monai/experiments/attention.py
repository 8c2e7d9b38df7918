"""Where the skip attention looks: attention maps of every attending skip, and the mass outside the ground truth.

The paper claims that plain attention (``at``) attends to wrong regions and that selection (``sat``) corrects it. The
measure used here is the share of attention mass outside the dilated ground truth,
``sum(a * (1 - D(g))) / sum(a)``, where ``a`` is the attention map upsampled to the label grid and ``D`` a Euclidean
dilation by ``dilation`` pixels/voxels (the margin forgives attention on the lesion border). A constant map scores the
share of the image outside ``D(g)`` (returned as the ``uniform`` baseline), so a map is informative only when it scores
clearly below that baseline.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "dilate",
    "outside_mass",
    "uniform_outside_share",
    "resize_map",
    "padded_input",
    "collect_attention_maps",
    "gate_inputs",
]


def dilate(mask: np.ndarray, dilation: float) -> np.ndarray:
    """Euclidean dilation of a boolean mask by ``dilation`` pixels/voxels (``0`` returns the mask itself)."""
    from scipy import ndimage

    mask = np.asarray(mask).astype(bool)
    if dilation < 0:
        raise ValueError(f"dilation must be >= 0, got {dilation!r}.")
    if dilation == 0 or not mask.any():
        return mask
    return ndimage.distance_transform_edt(~mask) <= float(dilation)


def outside_mass(attention: np.ndarray, label: np.ndarray, dilation: float = 5.0) -> float:
    """Share of attention mass outside the dilated ground truth.

    Args:
        attention: non-negative map, same shape as ``label`` (resize it first with :func:`resize_map`).
        label: ground-truth mask (non-zero = foreground), shape ``S``.
        dilation: margin in pixels/voxels. Defaults to 5.

    Returns:
        a value in ``[0, 1]``; ``nan`` when the label is empty or the map sums to zero.

    Raises:
        ValueError: shapes differ or the map has negative values.
    """
    attention = np.asarray(attention, dtype=np.float64)
    label = np.asarray(label)
    if attention.shape != label.shape:
        raise ValueError(f"attention map shape {attention.shape} differs from label shape {label.shape}.")
    if (attention < 0).any():
        raise ValueError("attention map has negative values; expected a map in [0, 1].")
    fg = label != 0
    total = attention.sum()
    if not fg.any() or total <= 0:
        return float("nan")
    return float(attention[~dilate(fg, dilation)].sum() / total)


def uniform_outside_share(label: np.ndarray, dilation: float = 5.0) -> float:
    """What a constant attention map scores: the share of pixels outside the dilated ground truth (nan if empty)."""
    fg = np.asarray(label) != 0
    if not fg.any():
        return float("nan")
    return float((~dilate(fg, dilation)).mean())


def resize_map(attention: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(Bi/tri)linear resize of ``(N, 1, *S_gate)`` maps to ``(N, 1, *size)``."""
    if tuple(attention.shape[2:]) == tuple(size):
        return attention
    mode = "bilinear" if len(size) == 2 else "trilinear"
    return F.interpolate(attention.float(), size=tuple(size), mode=mode, align_corners=False)


def padded_input(image: torch.Tensor, divisor: int) -> tuple[torch.Tensor, tuple[int, ...], list[int]]:
    """A whole preprocessed case ``(C, *S)`` as a network input ``(1, C, *P)``, zero-padded at the end of every axis
    to a multiple of ``divisor``; returns it with ``S`` and ``P`` (crop maps upsampled to ``P`` back to ``S``)."""
    import math

    size = tuple(image.shape[1:])
    padded = [math.ceil(s / divisor) * divisor for s in size]
    pad = [v for s, p in zip(reversed(size), reversed(padded)) for v in (0, p - s)]
    return F.pad(torch.as_tensor(image), pad)[None].float(), size, padded


def _attention_modules(net: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Modules whose forward output is an attention map: our gates that produce one (sat/at), and MONAI
    AttentionUnet's ``psi``."""
    from monai.networks.nets.attentionunet import AttentionBlock

    from satgate_monai.networks.inspection import gate_modules

    found: dict[str, tuple[nn.Module, str]] = {}
    gates = gate_modules(net)
    for name, module in net.named_modules():
        if name in gates and module.produces_attention:
            found[name] = (module, "gate")
        elif isinstance(module, AttentionBlock):
            found[name] = (module.psi, "psi")
    return found


@torch.no_grad()
def collect_attention_maps(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``net`` on ``x`` and return every attention map, ordered from the finest (largest) to the coarsest.

    Works for networks with ``sat``/``at`` gates and for MONAI's ``AttentionUnet`` (its attention-gate ``psi``).

    Args:
        net: the network, in ``eval()`` mode.
        x: input ``(N, C_in, *S)``.

    Returns:
        ``{module name: (N, 1, *S_gate)}`` detached on the CPU; empty for ``org``/``st`` networks.
    """
    maps: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda _m, _i, out, name=name: maps.__setitem__(name, out.detach().cpu()))
        for name, (module, _) in _attention_modules(net).items()
    ]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    return dict(sorted(maps.items(), key=lambda kv: -int(np.prod(kv[1].shape[2:]))))


@torch.no_grad()
def gate_inputs(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``net`` on ``x`` and return the skip features entering every ``sat``/``st`` gate, finest first.

    Returns:
        ``{gate name: (N, C, *S_gate)}`` detached on the CPU.
    """
    from satgate_monai.networks.inspection import gate_modules

    feats: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda _m, inp, _o, name=name: feats.__setitem__(name, inp[0].detach().cpu()))
        for name, module in gate_modules(net).items()
        if module.has_selection
    ]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    return dict(sorted(feats.items(), key=lambda kv: -int(np.prod(kv[1].shape[2:]))))
