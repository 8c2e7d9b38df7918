"""Per-label statistics of a label map on the source grid (TotalSegmentator's ``--statistics``, and more).

For every label the bundle names (:func:`label_statistics`), counted on the source image's own grid:

* ``voxels``: voxel count; ``volume_ml``: ``voxels x`` voxel volume (mm^3) ``/ 1000``;
* ``mean``, ``std`` (population, ddof 0), ``min``, ``max``: the source image's intensities inside the label
  (CT: HU as read, rescale applied); empty label: ``nan``;
* ``components``: connected components with full connectivity (26 neighbours in 3D, the connectivity of MONAI's
  ``KeepLargestConnectedComponent`` default, so ``components == 1`` after keep-largest-component);
* ``bbox_min_mm``, ``bbox_max_mm``: the axis-aligned box in patient coordinates (DICOM LPS, mm) around the centres
  of the label's voxels (for an oblique grid: around the 8 transformed corners of the voxel-index box); empty label:
  ``nan``.

``report.csv`` gets them as columns ``<statistic>_<label>`` (bounding boxes as ``x y z``), ``--stats json`` writes
``<case>_stats.json`` with the same numbers per case.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk

__all__ = ["STAT_COLUMNS", "label_statistics", "report_columns", "write_stats_json"]

STAT_COLUMNS = ("voxels", "mean", "std", "min", "max", "components", "bbox_min_mm", "bbox_max_mm")


def _bbox_mm(image: sitk.Image, lo: np.ndarray, hi: np.ndarray) -> tuple[list[float], list[float]]:
    """World (LPS) axis-aligned box of the index box ``lo..hi`` (inclusive, SimpleITK ``(x, y, z)`` order)."""
    corners = [image.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
               for corner in itertools.product(*zip(lo, hi))]
    pts = np.asarray(corners)
    return pts.min(0).tolist(), pts.max(0).tolist()


def _index_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inclusive index box ``(lo, hi)`` (array order) of a non-empty boolean mask, from one projection per axis
    (no table of the voxels' indices)."""
    lo, hi = [], []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        lo.append(hit[0])
        hi.append(hit[-1])
    return np.asarray(lo), np.asarray(hi)


def _components(mask: np.ndarray, slab: int = 32) -> int:
    """Connected components of a boolean mask ``(Z, Y, X)`` with full connectivity (26 neighbours in 3D).

    Counted ``slab`` planes at a time (SimpleITK's component image is uint32: four bytes per voxel of the slab, not
    of the volume), then the components that touch across each slab boundary (any of the 9 neighbours in the next
    plane) are joined; the count is that of the whole mask.
    """
    cc = sitk.ConnectedComponentImageFilter()
    cc.SetFullyConnected(True)
    if mask.ndim != 3:
        cc.Execute(sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8)))
        return int(cc.GetObjectCount())
    total, edges, previous = 0, [], None
    for z0 in range(0, mask.shape[0], slab):
        labels = sitk.GetArrayFromImage(cc.Execute(sitk.GetImageFromArray(
            np.ascontiguousarray(mask[z0:z0 + slab], dtype=np.uint8))))
        labels[labels > 0] += total
        if previous is not None:
            edges.append(_touching(previous, labels[0]))
        total += int(cc.GetObjectCount())
        previous = labels[-1].copy()
    pairs = np.concatenate(edges) if edges else np.empty((0, 2), dtype=np.int64)
    return total - _joins(pairs, total)


def _touching(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Pairs ``(a, b)`` of component labels of two adjacent planes ``(Y, X)`` that touch diagonally or directly."""
    pairs = []
    h, w = lower.shape
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            a = lower[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
            b = upper[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
            both = (a > 0) & (b > 0)
            pairs.append(np.stack([a[both], b[both]], axis=1).astype(np.int64))
    return np.unique(np.concatenate(pairs), axis=0)


def _joins(pairs: np.ndarray, n: int) -> int:
    """How many of ``n`` labels (1..n) the ``pairs`` merge away: ``n`` minus the connected groups they form."""
    if len(pairs) == 0:
        return 0
    root = np.arange(n + 1)
    while True:  # min-label propagation over the pairs with pointer jumping
        low = np.minimum(root[pairs[:, 0]], root[pairs[:, 1]])
        new = root.copy()
        np.minimum.at(new, pairs[:, 0], low)
        np.minimum.at(new, pairs[:, 1], low)
        new = new[new]
        if np.array_equal(new, root):
            break
        root = new
    return n - int(np.count_nonzero(root[1:] == np.arange(1, n + 1)))


def label_statistics(label: sitk.Image, image: sitk.Image, labels: Mapping[int, str]) -> dict[str, dict[str, Any]]:
    """Statistics of every named label (see the module docstring).

    Args:
        label: integer label map on ``image``'s grid.
        image: the single-channel source image (intensities).
        labels: label value -> name (background excluded).

    Returns:
        ``{name: {"voxels", "volume_ml", "mean", "std", "min", "max", "components", "bbox_min_mm", "bbox_max_mm"}}``.

    Raises:
        ValueError: ``label`` and ``image`` differ in size.
    """
    if label.GetSize() != image.GetSize():
        raise ValueError(f"label size {label.GetSize()} differs from the image size {image.GetSize()}")
    lab = sitk.GetArrayViewFromImage(label)  # (z, y, x)
    vals = sitk.GetArrayViewFromImage(image)
    voxel_ml = float(np.prod(label.GetSpacing())) / 1000.0
    nan3 = [math.nan] * label.GetDimension()
    out: dict[str, dict[str, Any]] = {}
    for value, name in sorted(labels.items()):
        mask = lab == value
        n = int(mask.sum())
        st: dict[str, Any] = {"voxels": n, "volume_ml": n * voxel_ml}
        if n:
            inside = vals[mask]  # the source's own dtype; float64 only in the sums
            st.update(mean=float(inside.mean(dtype=np.float64)), std=float(inside.std(dtype=np.float64)),
                      min=float(inside.min()), max=float(inside.max()))
            lo, hi = _index_box(mask)
            st["components"] = _components(mask[tuple(slice(a, b + 1) for a, b in zip(lo, hi))])
            st["bbox_min_mm"], st["bbox_max_mm"] = _bbox_mm(label, lo[::-1], hi[::-1])
        else:
            st.update(mean=math.nan, std=math.nan, min=math.nan, max=math.nan, components=0,
                      bbox_min_mm=nan3, bbox_max_mm=nan3)
        out[name] = st
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return " ".join(_fmt(x) for x in v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def report_columns(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``report.csv`` columns ``<statistic>_<label>`` for :data:`STAT_COLUMNS` (``volume_ml`` has its own column)."""
    return {f"{k}_{name}": _fmt(st[k]) for name, st in stats.items() for k in STAT_COLUMNS}


def write_stats_json(stats: Mapping[str, Mapping[str, Any]], path: str | os.PathLike, *, case: str = "",
                     image: sitk.Image | None = None) -> None:
    """Write ``<case>_stats.json`` (``nan`` as ``null``); the caller makes the write atomic."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    doc: dict[str, Any] = {"case": case, "coordinates": "LPS mm", "intensity": "source image values"}
    if image is not None:
        doc["spacing_mm"] = list(image.GetSpacing())
    doc["labels"] = {name: {k: clean(v) for k, v in st.items()} for name, st in stats.items()}
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
