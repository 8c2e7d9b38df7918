"""Resampling to isotropic voxels on the source's own axes, keeping physical space.

The output grid keeps the source **origin** (centre of the first voxel) and **direction** (so oblique and LPS/RAS
sources stay as they are) and only changes the spacing. Its size along an axis with ``N`` source voxels of spacing
``sp`` is::

    size = floor((N - 1) * sp / s + 0.5) + 1        (s: the new spacing)

the smallest size whose buffer (in ITK's sense: continuous index in ``[-0.5, size - 0.5)``) contains every source
voxel centre. So a mask resampled to 2 mm and back with nearest neighbour lands on every original voxel: nothing at
the far edge falls outside and becomes background (``round(N * sp / s)``, the usual choice, loses the last source
slices whenever it rounds down). Output voxel centres up to half an output voxel past the last source centre take
the edge value (SimpleITK's nearest-neighbour extrapolator), never a fill value.

Because the output axes are the source axes, trilinear interpolation is separable: :func:`resample_image` applies 1-D
linear interpolation along one axis at a time (the most shrinking axis first) in NumPy, which gives the same values as
``SimpleITK.ResampleImageFilter`` with ``sitkLinear`` and ``UseNearestNeighborExtrapolator(True)`` onto the same grid
(to float rounding; checked in the tests) and is faster (``benchmarks/prep.py``). Nearest neighbour for labels is
separable index selection (ITK's rounding: half-integers round up). B-spline (cubic) uses SimpleITK's filter.

Intensities are not rescaled or normalised (HU stay HU). Integer images are rounded back to their integer type (linear
interpolation stays within the source range; B-spline overshoot is clipped to the type's range), float images give
float32.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from data_prep.tasks import TARGET_SPACING

__all__ = [
    "Grid",
    "isotropic_grid",
    "resample_image",
    "resample_label",
    "resample_to_grid_sitk",
    "check_same_physical_space",
    "INTERPOLATIONS",
    "default_threads",
]

INTERPOLATIONS = ("linear", "bspline")


@dataclass(frozen=True)
class Grid:
    """An image grid in SimpleITK terms: size and spacing in (x, y, z) order, origin in mm, direction row-major."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image) -> Grid:
        return cls(tuple(image.GetSize()), tuple(image.GetSpacing()), tuple(image.GetOrigin()),
                   tuple(image.GetDirection()))

    def reference(self, pixel_id: int = sitk.sitkUInt8) -> sitk.Image:
        """A 1-component image on this grid (for SimpleITK's resampler)."""
        ref = sitk.Image([int(s) for s in self.size], pixel_id)
        ref.SetSpacing(self.spacing)
        ref.SetOrigin(self.origin)
        ref.SetDirection(self.direction)
        return ref


def _spacing_tuple(spacing: float | Sequence[float], dim: int) -> tuple[float, ...]:
    if isinstance(spacing, (int, float)):
        sp = (float(spacing),) * dim
    else:
        sp = tuple(float(s) for s in spacing)
    if len(sp) != dim or not all(math.isfinite(s) and s > 0 for s in sp):
        raise ValueError(f"spacing must be {dim} positive numbers (mm), got {spacing!r}")
    return sp


def isotropic_grid(image: sitk.Image, spacing: float | Sequence[float] = TARGET_SPACING) -> Grid:
    """The output grid for ``image`` at ``spacing`` (same origin and direction; size rule in the module docstring).

    Args:
        image: the source image (any dimension).
        spacing: new spacing in mm, one number (isotropic) or one per axis.

    Returns:
        The :class:`Grid`.
    """
    dim = image.GetDimension()
    new = _spacing_tuple(spacing, dim)
    size = tuple(
        max(1, int(math.floor((n - 1) * sp / s + 0.5 + 1e-6)) + 1)
        for n, sp, s in zip(image.GetSize(), image.GetSpacing(), new)
    )
    return Grid(size, new, tuple(image.GetOrigin()), tuple(image.GetDirection()))


def _positions(n_out: int, s_out: float, n_in: int, s_in: float) -> np.ndarray:
    """Continuous source indices of the output centres along one axis, clamped to the source's centres."""
    x = np.arange(n_out, dtype=np.float64) * (s_out / s_in)
    return np.clip(x, 0.0, n_in - 1.0)


def _linear_axis(a: np.ndarray, axis: int, x: np.ndarray) -> np.ndarray:
    n = a.shape[axis]
    if n == 1:
        return np.take(a, np.zeros(len(x), dtype=np.intp), axis=axis).astype(np.float32, copy=False)
    i0 = np.minimum(np.floor(x).astype(np.intp), n - 2)
    w = (x - i0).astype(np.float32)
    shape = [1] * a.ndim
    shape[axis] = len(x)
    if np.all(w == 0.0):  # grids coincide on this axis
        return np.take(a, i0, axis=axis).astype(np.float32, copy=False)
    w = w.reshape(shape)
    out = np.take(a, i0, axis=axis).astype(np.float32, copy=False)
    hi = np.take(a, i0 + 1, axis=axis).astype(np.float32, copy=False)
    hi -= out
    hi *= w
    out += hi
    return out


def _separable_linear_3d(
    a: np.ndarray,
    pz: np.ndarray,
    py: np.ndarray,
    px: np.ndarray,
    dtype: np.dtype | type = np.float32,
    threads: int = 1,
    slab_slices: int = 16,
) -> np.ndarray:
    """Trilinear resampling of a (Z, Y, X) array at separable positions, one slab of output slices at a time.

    Each block of output slices interpolates, in y then x, only the input slices it reads: the two neighbours of each
    output slice, or one where the output slice falls exactly on an input slice (2x downsampling along z reads half
    the input). It then blends along z and casts into ``dtype`` (:func:`_cast_like`) while the block is in cache.
    Blocks run in ``threads`` threads (NumPy releases the GIL).

    Args:
        a: source array (Z, Y, X), any real dtype.
        pz, py, px: continuous source indices of the output centres along each axis, within ``[0, n - 1]``.
        dtype: output dtype: integer types are rounded (and clipped to the type's range), others give float32.
        threads: worker threads.
        slab_slices: about how many input slices one block reads.

    Returns:
        Array (len(pz), len(py), len(px)) of ``dtype`` (float32 for non-integer types).
    """
    nz = a.shape[0]
    out_dtype = np.dtype(dtype) if np.issubdtype(np.dtype(dtype), np.integer) else np.dtype(np.float32)
    out = np.empty((len(pz), len(py), len(px)), out_dtype)
    i0 = np.minimum(np.floor(pz).astype(np.intp), max(nz - 2, 0))
    wz = (pz - i0).astype(np.float32)
    blk = max(1, int(slab_slices * len(pz) / nz))
    blocks = [(k, min(k + blk, len(pz))) for k in range(0, len(pz), blk)]

    def work(block: tuple[int, int]) -> None:
        k0, k1 = block
        lo, w = i0[k0:k1], wz[k0:k1]
        blend = w != 0.0
        need = np.unique(np.concatenate([lo, lo[blend] + 1]))
        contiguous = int(need[-1] - need[0]) + 1 == len(need)
        src = a[int(need[0]) : int(need[-1]) + 1] if contiguous else a[need]
        t = _linear_axis(_linear_axis(src, 1, py), 2, px)
        res = t[np.searchsorted(need, lo)]
        if blend.any():
            hi = t[np.searchsorted(need, lo[blend] + 1)]
            hi -= res[blend]
            hi *= w[blend, None, None]
            res[blend] += hi
        out[k0:k1] = _cast_like(res, out_dtype)

    if threads > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(min(threads, len(blocks))) as pool:
            list(pool.map(work, blocks))
    else:
        for b in blocks:
            work(b)
    return out


def default_threads() -> int:
    """Threads for one resampling call: the CPUs this process may use (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def _cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.rint(values, out=values)
        np.clip(values, info.min, info.max, out=values)
        return values.astype(dtype)
    return values.astype(np.float32, copy=False)


def _to_image(arr: np.ndarray, grid: Grid) -> sitk.Image:
    out = sitk.GetImageFromArray(arr, isVector=False)
    out.SetSpacing(grid.spacing)
    out.SetOrigin(grid.origin)
    out.SetDirection(grid.direction)
    return out


def _check_scalar(image: sitk.Image, what: str) -> None:
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"{what} has {image.GetNumberOfComponentsPerPixel()} components per pixel: resample one channel at a time"
        )


def resample_to_grid_sitk(
    image: sitk.Image, grid: Grid, interpolator: int = sitk.sitkLinear, output_pixel_id: int | None = None
) -> sitk.Image:
    """SimpleITK's ``ResampleImageFilter`` onto ``grid`` with the nearest-neighbour extrapolator (the reference)."""
    f = sitk.ResampleImageFilter()
    f.SetReferenceImage(grid.reference())
    f.SetInterpolator(interpolator)
    f.SetTransform(sitk.Transform())
    f.SetUseNearestNeighborExtrapolator(True)
    f.SetOutputPixelType(image.GetPixelID() if output_pixel_id is None else output_pixel_id)
    return f.Execute(image)


def resample_image(
    image: sitk.Image,
    spacing: float | Sequence[float] = TARGET_SPACING,
    interpolation: str = "linear",
    grid: Grid | None = None,
    threads: int | None = None,
) -> sitk.Image:
    """Resample an intensity image to ``spacing`` on its own axes (linear by default, or cubic B-spline).

    Args:
        image: scalar SimpleITK image, any dimension (x, y[, z]).
        spacing: new spacing in mm (one number: isotropic).
        interpolation: ``"linear"`` (separable, NumPy) or ``"bspline"`` (SimpleITK cubic B-spline).
        grid: output grid; default :func:`isotropic_grid` (``image`` origin and direction, size rule above). A grid
            with another origin or direction is not separable: it is done by SimpleITK.
        threads: worker threads for the separable path (default :func:`default_threads`).

    Returns:
        The resampled image: integer source types are kept (values rounded), otherwise float32.

    Raises:
        ValueError: unknown interpolation, multi-component image, or bad spacing.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    _check_scalar(image, "image")
    grid = grid or isotropic_grid(image, spacing)
    src = sitk.GetArrayViewFromImage(image)
    dtype = src.dtype
    same_frame = grid.origin == tuple(image.GetOrigin()) and grid.direction == tuple(image.GetDirection())
    if interpolation == "bspline" or not same_frame:
        interp = sitk.sitkBSpline if interpolation == "bspline" else sitk.sitkLinear
        out = resample_to_grid_sitk(image, grid, interp, sitk.sitkFloat32)
        arr = sitk.GetArrayFromImage(out)
        return _to_image(_cast_like(arr, dtype), grid)
    if image.GetDimension() not in (2, 3):
        out = resample_to_grid_sitk(image, grid, sitk.sitkLinear, sitk.sitkFloat32)
        return _to_image(_cast_like(sitk.GetArrayFromImage(out), dtype), grid)
    # numpy axes are reversed (z, y, x); a 2D image is one slice
    pos = [_positions(n_out, s_out, n_in, s_in)
           for n_in, s_in, n_out, s_out in zip(image.GetSize(), image.GetSpacing(), grid.size, grid.spacing)]
    arr3 = src if src.ndim == 3 else src[None]
    pz = pos[2] if src.ndim == 3 else np.zeros(1)
    nt = default_threads() if threads is None else max(1, int(threads))
    arr = _separable_linear_3d(arr3, pz, pos[1], pos[0], dtype, threads=nt)
    if src.ndim == 2:
        arr = arr[0]
    return _to_image(arr, grid)


def resample_label(
    label: sitk.Image, spacing: float | Sequence[float] = TARGET_SPACING, grid: Grid | None = None
) -> sitk.Image:
    """Resample a label map with nearest neighbour (values are only ever copied, never blended).

    Args:
        label: scalar integer SimpleITK image.
        spacing: new spacing in mm.
        grid: output grid (default :func:`isotropic_grid` of ``label``).

    Returns:
        The label on the new grid, same pixel type.
    """
    _check_scalar(label, "label")
    grid = grid or isotropic_grid(label, spacing)
    if not (grid.origin == tuple(label.GetOrigin()) and grid.direction == tuple(label.GetDirection())):
        return resample_to_grid_sitk(label, grid, sitk.sitkNearestNeighbor)
    arr = sitk.GetArrayViewFromImage(label)
    index = []
    for n_in, s_in, n_out, s_out in zip(label.GetSize(), label.GetSpacing(), grid.size, grid.spacing):
        x = _positions(n_out, s_out, n_in, s_in)
        index.append(np.clip(np.floor(x + 0.5).astype(np.intp), 0, n_in - 1))
    index.reverse()  # numpy order (z, y, x)
    if arr.ndim in (2, 3):
        # rows first (contiguous copies of only the rows kept), then columns: about 4x faster than np.ix_ on a CT
        rows = arr[index[0][:, None], index[1][None, :]] if arr.ndim == 3 else arr[index[0]]
        out = rows.take(index[-1], axis=-1)
    else:
        out = arr[np.ix_(*index)]
    return _to_image(np.ascontiguousarray(out), grid)


def check_same_physical_space(
    image: sitk.Image,
    label: sitk.Image,
    *,
    image_name: str = "image",
    label_name: str = "label",
    rtol: float = 1e-4,
) -> None:
    """Raise ``ValueError`` unless ``label`` lies on ``image``'s grid (size exact; spacing, origin, direction close).

    Tolerances: spacing relative ``rtol``; origin ``1e-3`` of the smallest voxel spacing; direction cosines ``1e-4``.
    Those absorb float32 header rounding, not a real misalignment.

    Raises:
        ValueError: naming both files and every mismatching property with both values.
    """
    problems = []
    if image.GetDimension() != label.GetDimension():
        problems.append(f"dimension {image.GetDimension()} vs {label.GetDimension()}")
    else:
        if image.GetSize() != label.GetSize():
            problems.append(f"size {image.GetSize()} vs {label.GetSize()}")
        sp_i, sp_l = np.array(image.GetSpacing()), np.array(label.GetSpacing())
        if not np.allclose(sp_i, sp_l, rtol=rtol, atol=0):
            problems.append(f"spacing {tuple(sp_i)} vs {tuple(sp_l)}")
        tol = 1e-3 * float(sp_i.min())
        o_i, o_l = np.array(image.GetOrigin()), np.array(label.GetOrigin())
        if np.max(np.abs(o_i - o_l)) > tol:
            problems.append(f"origin {tuple(np.round(o_i, 4))} vs {tuple(np.round(o_l, 4))} mm")
        d_i, d_l = np.array(image.GetDirection()), np.array(label.GetDirection())
        if np.max(np.abs(d_i - d_l)) > 1e-4:
            problems.append(f"direction {tuple(np.round(d_i, 5))} vs {tuple(np.round(d_l, 5))}")
    if problems:
        raise ValueError(
            f"label {label_name} does not lie in the physical space of image {image_name}: " + "; ".join(problems)
        )
