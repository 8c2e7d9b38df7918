"""The working grid of a case and the two linear resamplings between it and the source grid.

One geometry gives one working grid, whatever precision it was stored with:

1. :func:`snap_affine` rounds the source's index -> world affine (RAS, mm) to a tolerance far coarser than
   float32 storage noise (spacing to 1e-4 mm, direction cosines to 1e-4, origin to 1e-2 mm), so the same volume as a
   DICOM series (float64 geometry) and as a NIfTI file (float32 header) gives the bit-identical affine. Every step
   below uses the snapped affine; outputs keep the source's own geometry.
2. :func:`working_grid` reorients to ``axcodes`` (as ``Orientationd``: a permutation and flips of the index axes)
   and scales each axis to ``pixdim``, anchored on the first voxel of the reoriented source (MONAI's
   ``compute_shape_offset`` corner rule, chosen always instead of by its exact-equality test), with
   ``round((n - 1) * spacing / pixdim) + 1`` voxels per axis.
3. :func:`to_working_grid` samples the source linearly onto that grid, slab by slab along the last axis, from the
   source's own dtype (int16 CT stays int16 until a slab's block is taken), border padding (as ``Spacingd``).
4. :func:`labels_on_source` returns probabilities linearly to the source grid, slab by slab of the source, and takes
   the argmax per slab into a uint8 volume (``Invertd`` of the probabilities then ``AsDiscreted(argmax)``, without a
   full-resolution float tensor per class).

Arrays are in MONAI index order ``(X, Y, Z)``; affines map ``(i, j, k, 1)`` to RAS millimetres.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["GEOMETRY_TOLERANCE", "labels_on_picture", "labels_on_source", "snap_affine", "to_working_grid",
           "working_grid"]

#: decimals kept: spacing (mm), direction cosines, origin (mm)
GEOMETRY_TOLERANCE = {"spacing": 4, "direction": 4, "origin": 2}


def snap_affine(affine) -> np.ndarray:
    """The 4x4 affine with spacing, direction and origin rounded to :data:`GEOMETRY_TOLERANCE` (float64).

    Raises:
        ValueError: not a 4x4 affine, or a zero column.
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"expected a 4x4 affine, got shape {a.shape}")
    spacing = np.linalg.norm(a[:3, :3], axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"singular affine (a zero column):\n{a}")
    direction = np.round(a[:3, :3] / spacing, GEOMETRY_TOLERANCE["direction"])
    out = np.eye(4)
    out[:3, :3] = direction * np.round(spacing, GEOMETRY_TOLERANCE["spacing"])
    out[:3, 3] = np.round(a[:3, 3], GEOMETRY_TOLERANCE["origin"]) + 0.0  # + 0.0: no -0.0
    return out


def _reoriented(affine: np.ndarray, shape: Sequence[int], axcodes: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """The affine and shape of the source reoriented to ``axcodes`` (``Orientationd``'s flips and permutation)."""
    from nibabel import orientations as nio

    ornt = nio.ornt_transform(nio.io_orientation(affine), nio.axcodes2ornt(axcodes))
    new = affine @ nio.inv_ornt_aff(ornt, shape)
    new_shape = tuple(int(shape[int(i)]) for i in np.argsort(ornt[:, 0]))
    return new, new_shape


def working_grid(affine, shape: Sequence[int], pixdim: Sequence[float], axcodes: str = "RAS"
                 ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The working grid of a source grid: ``(affine (4, 4), shape (X, Y, Z))``.

    Args:
        affine: the source's snapped index -> RAS affine (:func:`snap_affine`).
        shape: the source's ``(X, Y, Z)``.
        pixdim: working voxel size (mm), e.g. ``(2, 2, 2)``.
        axcodes: the orientation of the working grid's axes.

    Raises:
        ValueError: a non-3D shape or a non-positive ``pixdim``.
    """
    if len(shape) != 3 or len(pixdim) != 3:
        raise ValueError(f"expected a 3D shape and pixdim, got {tuple(shape)} and {tuple(pixdim)}")
    pix = np.asarray(pixdim, dtype=np.float64)
    if np.any(pix <= 0):
        raise ValueError(f"pixdim must be positive, got {tuple(pixdim)}")
    oriented, oshape = _reoriented(np.asarray(affine, dtype=np.float64), shape, axcodes)
    spacing = np.linalg.norm(oriented[:3, :3], axis=0)
    out = oriented.copy()
    out[:3, :3] = oriented[:3, :3] / spacing * pix
    extent = np.round((np.asarray(oshape) - 1) * spacing / pix, 6)
    size = tuple(int(max(1, np.floor(e + 0.5) + 1)) for e in extent)
    return out, size  # type: ignore[return-value]


def _index_points(shape: Sequence[int], k0: int, k1: int) -> np.ndarray:
    """Homogeneous index points ``(4, X*Y*(k1-k0))`` of the slab ``[:, :, k0:k1]``, in C order."""
    i, j, k = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), np.arange(k0, k1), indexing="ij")
    return np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)]).astype(np.float64)


def _sample(volume: torch.Tensor, coords: np.ndarray, out_shape: Sequence[int], mode: str = "bilinear"
            ) -> torch.Tensor:
    """Samples of ``volume`` ``(C, X, Y, Z)`` at index coordinates ``coords`` ``(3, N)`` (trilinear or nearest),
    border padding: ``(C, *out_shape)`` float32."""
    size = np.asarray(volume.shape[1:], dtype=np.float64)
    norm = np.where(size[:, None] > 1, 2.0 * coords / np.maximum(size - 1, 1)[:, None] - 1.0, 0.0)
    grid = torch.from_numpy(np.ascontiguousarray(norm[::-1].T, dtype=np.float32).reshape(1, *out_shape, 3))
    return F.grid_sample(volume[None].float(), grid, mode=mode, padding_mode="border", align_corners=True)[0]


def to_working_grid(voxels: np.ndarray, affine, grid_affine, grid_shape: Sequence[int], *, slab: int = 16,
                    mode: str = "bilinear") -> np.ndarray:
    """The source voxels ``(X, Y, Z)`` (any real dtype, e.g. an int16 view) linearly resampled onto the working grid.

    Each slab of the working grid reads only the block of source voxels it needs, converted to float32 there.
    ``mode="nearest"`` for label maps.

    Returns:
        float32 ``grid_shape``.
    """
    src_shape = np.asarray(voxels.shape)
    to_src = np.linalg.solve(np.asarray(affine, dtype=np.float64), np.asarray(grid_affine, dtype=np.float64))
    out = np.empty(tuple(grid_shape), dtype=np.float32)
    for k0 in range(0, grid_shape[2], slab):
        k1 = min(k0 + slab, grid_shape[2])
        coords = (to_src @ _index_points(grid_shape, k0, k1))[:3]
        lo = np.clip(np.floor(coords.min(axis=1)).astype(int), 0, src_shape - 1)
        hi = np.clip(np.ceil(coords.max(axis=1)).astype(int), 0, src_shape - 1)
        block = np.ascontiguousarray(voxels[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1], dtype=np.float32)
        vals = _sample(torch.from_numpy(block)[None], coords - lo[:, None], (grid_shape[0], grid_shape[1], k1 - k0),
                       mode)
        out[:, :, k0:k1] = vals[0].numpy()
    return out


def labels_on_source(probabilities: torch.Tensor, grid_affine, affine, shape: Sequence[int], *, slab: int = 8,
                     probabilities_out: np.ndarray | None = None) -> np.ndarray:
    """Probabilities on the working grid -> the label map on the source grid (linear, then argmax per slab).

    Args:
        probabilities: ``(C, X, Y, Z)`` on the working grid (``C == 1``: a foreground probability, > 0.5 is 1).
        grid_affine: the working grid's affine.
        affine: the source's snapped affine; ``shape`` its ``(X, Y, Z)``.
        slab: source slices per step (memory: ``C * X * Y * slab`` float32).
        probabilities_out: a float16 ``(C, Z, Y, X)`` array (SimpleITK/numpy order) that receives the probabilities
            on the source grid; the labels are then the argmax of these float16 values, so the two agree exactly.

    Returns:
        uint8 ``(X, Y, Z)`` (ties: the lower label, as ``torch.argmax``).
    """
    p = probabilities.detach().float().cpu()
    if p.ndim != 4:
        raise ValueError(f"expected probabilities (C, X, Y, Z), got shape {tuple(p.shape)}")
    if p.shape[0] > 255:
        raise ValueError(f"{p.shape[0]} classes do not fit a uint8 label map")
    to_grid = np.linalg.solve(np.asarray(grid_affine, dtype=np.float64), np.asarray(affine, dtype=np.float64))
    out = np.empty(tuple(shape), dtype=np.uint8)
    for k0 in range(0, shape[2], slab):
        k1 = min(k0 + slab, shape[2])
        vals = _sample(p, (to_grid @ _index_points(shape, k0, k1))[:3], (shape[0], shape[1], k1 - k0))
        if probabilities_out is not None:
            vals = vals.to(torch.float16)
            probabilities_out[:, k0:k1] = vals.permute(0, 3, 2, 1).numpy()
        lab = torch.argmax(vals, dim=0) if p.shape[0] > 1 else (vals[0] > 0.5)
        out[:, :, k0:k1] = lab.to(torch.uint8).numpy()
    return out


def labels_on_picture(probabilities: torch.Tensor, shape: Sequence[int]) -> np.ndarray:
    """Probabilities on a picture's working size -> its label map at its own size: bilinear (``Resize``'s inverse:
    ``align_corners=False``, no anti-aliasing), then argmax.

    Args:
        probabilities: ``(C, X, Y)`` (``C == 1``: a foreground probability, > 0.5 is 1).
        shape: the picture's ``(X, Y)``.

    Returns:
        uint8 ``(X, Y)`` (ties: the lower label, as ``torch.argmax``).
    """
    p = probabilities.detach().float().cpu()
    if p.ndim != 3 or len(shape) != 2:
        raise ValueError(f"expected probabilities (C, X, Y) and a 2D shape, got {tuple(p.shape)} and {tuple(shape)}")
    if p.shape[0] > 255:
        raise ValueError(f"{p.shape[0]} classes do not fit a uint8 label map")
    vals = F.interpolate(p[None], size=tuple(int(s) for s in shape), mode="bilinear", align_corners=False)[0]
    lab = torch.argmax(vals, dim=0) if p.shape[0] > 1 else (vals[0] > 0.5)
    return lab.to(torch.uint8).numpy()
