"""Per-case binary segmentation metrics of the paper's Table 1: Dice, FPR and FNR, plus volumes.

Definitions (``P`` predicted foreground, ``G`` ground-truth foreground, counts over voxels/pixels):

* ``Dice = 2 TP / (2 TP + FP + FN)``; 1.0 when both masks are empty (they agree);
* ``FPR = FP / (FP + TN)`` (fall-out, background wrongly labelled foreground);
* ``FNR = FN / (FN + TP)`` (miss rate); ``nan`` when the ground truth is empty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["STD_DDOF", "confusion_counts", "case_metrics", "voxel_volume", "mean_std"]


def _as_bool(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x.detach())
    return t.cpu() > 0.5 if t.is_floating_point() else t.cpu() > 0


def confusion_counts(pred: torch.Tensor | np.ndarray, label: torch.Tensor | np.ndarray) -> dict[str, int]:
    """TP, FP, TN, FN of two binary masks of the same shape (any dims; values > 0 (ints) or > 0.5 (floats) are fg).

    Raises:
        ValueError: the shapes differ.
    """
    p, g = _as_bool(pred), _as_bool(label)
    if p.shape != g.shape:
        raise ValueError(f"pred and label shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
    tp = int((p & g).sum())
    fp = int((p & ~g).sum())
    fn = int((~p & g).sum())
    tn = int(p.numel() - tp - fp - fn)
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def voxel_volume(affine: torch.Tensor | np.ndarray | None, spatial_dims: int) -> float:
    """Volume of one voxel (mm^3 in 3D, mm^2 in 2D) from an affine, ``abs(det)`` of its spatial block; 1 if None."""
    if affine is None:
        return 1.0
    a = np.asarray(affine.cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    return float(abs(np.linalg.det(a[:spatial_dims, :spatial_dims])))


def case_metrics(
    pred: torch.Tensor | np.ndarray, label: torch.Tensor | np.ndarray, voxel_size: float = 1.0, unit_scale: float = 1.0
) -> dict[str, float]:
    """Dice, FPR, FNR and the predicted/true foreground volumes of one case.

    Args:
        pred: binary prediction, any shape (e.g. ``(H, W, D)``).
        label: binary ground truth, same shape.
        voxel_size: volume of one voxel (see :func:`voxel_volume`).
        unit_scale: factor applied to volumes (``1e-3`` turns mm^3 into mL).

    Returns:
        ``{"dice", "fpr", "fnr", "pred_volume", "label_volume", "tp", "fp", "tn", "fn"}``.
    """
    c = confusion_counts(pred, label)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    dice = 1.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    fpr = fp / (fp + tn) if fp + tn else math.nan
    fnr = fn / (fn + tp) if fn + tp else math.nan
    scale = voxel_size * unit_scale
    return {
        "dice": dice,
        "fpr": fpr,
        "fnr": fnr,
        "pred_volume": (tp + fp) * scale,
        "label_volume": (tp + fn) * scale,
        **{k: float(v) for k, v in c.items()},
    }


#: degrees of freedom of every "mean ± std" the project reports (bundle summaries and experiment tables): the sample
#: standard deviation, ``numpy.std(..., ddof=STD_DDOF)``
STD_DDOF = 1


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean and sample standard deviation (``ddof=1``) of the finite values, and their count.

    Returns:
        ``(mean, std, n)``: ``mean`` is ``nan`` for no finite value, ``std`` is ``nan`` for fewer than two.
    """
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan, 0
    std = float(arr.std(ddof=STD_DDOF)) if arr.size > STD_DDOF else math.nan
    return float(arr.mean()), std, int(arr.size)
