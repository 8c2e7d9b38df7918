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


def _normalized(size: Sequence[int]) -> np.ndarray:
    """The 4x4 map from index coordinates of a volume of ``size`` ``(X, Y, Z)`` to ``grid_sample``'s normalised
    coordinates (``align_corners=True``: index 0 -> -1, index n - 1 -> 1; an axis of one voxel -> 0)."""
    n = np.asarray(size, dtype=np.float64)
    scale = np.where(n > 1, 2.0 / np.maximum(n - 1, 1), 0.0)
    out = np.eye(4)
    out[:3, :3] = np.diag(scale)
    out[:3, 3] = np.where(n > 1, -1.0, 0.0)
    return out


def _sampling_grid(index_map: np.ndarray, shape: Sequence[int], k0: int, k1: int) -> torch.Tensor:
    """``grid_sample``'s grid ``(1, X, Y, k1 - k0, 3)`` float32 for the slab ``[:, :, k0:k1]`` of a grid of ``shape``:
    ``index_map`` (4x4, slab voxel -> normalised coordinates of the sampled volume) applied to every voxel, by
    broadcasting (no table of index points), in ``grid_sample``'s (last axis first) order."""
    m = np.asarray(index_map, dtype=np.float64)[2::-1]  # rows (z, y, x): grid_sample's (W, H, D) order
    i = np.arange(shape[0], dtype=np.float64)[:, None, None, None] * m[:, 0]
    j = np.arange(shape[1], dtype=np.float64)[None, :, None, None] * m[:, 1]
    k = np.arange(k0, k1, dtype=np.float64)[None, None, :, None] * m[:, 2]
    grid = (i + m[:, 3]) + j + k
    return torch.from_numpy(grid.astype(np.float32))[None]


def _sample(volume: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Samples of ``volume`` ``(C, X, Y, Z)`` on ``grid`` (:func:`_sampling_grid`; trilinear or nearest), border
    padding: ``(C, X', Y', S)`` float32."""
    return F.grid_sample(volume[None].float(), grid, mode=mode, padding_mode="border", align_corners=True)[0]


def _argmax(values: torch.Tensor) -> torch.Tensor:
    """``torch.argmax(values, dim=0)`` as uint8 (ties: the lower label), one comparison per class instead of a
    reduction over the strided first axis; ``C == 1``: a foreground probability, > 0.5 is 1."""
    if values.shape[0] == 1:
        return (values[0] > 0.5).to(torch.uint8)
    best = values[0].clone()
    label = torch.zeros(values.shape[1:], dtype=torch.uint8)
    for c in range(1, values.shape[0]):
        higher = values[c] > best
        label[higher] = c
        torch.maximum(best, values[c], out=best)
    return label


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
        corners = np.array(np.meshgrid([0, grid_shape[0] - 1], [0, grid_shape[1] - 1], [k0, k1 - 1], [1],
                                       indexing="ij")).reshape(4, -1).astype(np.float64)
        coords = (to_src @ corners)[:3]  # the slab's extent in the source: an affine map takes corners to corners
        lo = np.clip(np.floor(coords.min(axis=1)).astype(int), 0, src_shape - 1)
        hi = np.clip(np.ceil(coords.max(axis=1)).astype(int), 0, src_shape - 1)
        block = np.ascontiguousarray(voxels[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1], dtype=np.float32)
        shift = np.eye(4)
        shift[:3, 3] = -lo
        grid = _sampling_grid(_normalized(block.shape) @ shift @ to_src, grid_shape, k0, k1)
        out[:, :, k0:k1] = _sample(torch.from_numpy(block)[None], grid, mode)[0].numpy()
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
        uint8 ``(X, Y, Z)`` (ties: the lower label, as ``torch.argmax``), a view of a ``(Z, Y, X)`` C-order array (a
        SimpleITK image is made of it without a transposed copy).
    """
    p = probabilities.detach().float().cpu()
    if p.ndim != 4:
        raise ValueError(f"expected probabilities (C, X, Y, Z), got shape {tuple(p.shape)}")
    if p.shape[0] > 255:
        raise ValueError(f"{p.shape[0]} classes do not fit a uint8 label map")
    to_grid = np.linalg.solve(np.asarray(grid_affine, dtype=np.float64), np.asarray(affine, dtype=np.float64))
    index_map = _normalized(p.shape[1:]) @ to_grid
    out = np.empty(tuple(shape)[::-1], dtype=np.uint8).transpose(2, 1, 0)  # (Z, Y, X) memory: SimpleITK's order
    for k0 in range(0, shape[2], slab):
        k1 = min(k0 + slab, shape[2])
        vals = _sample(p, _sampling_grid(index_map, shape, k0, k1))
        if probabilities_out is not None:
            vals = vals.to(torch.float16)
            probabilities_out[:, k0:k1] = vals.permute(0, 3, 2, 1).numpy()
        out[:, :, k0:k1] = _argmax(vals).numpy()
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
    return _argmax(vals).numpy()
