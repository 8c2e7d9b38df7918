"""The one input-validation layer: every image or label that any entry point reads passes through here.

Libraries are tolerant where a clinical tool must not be: ITK reads a ``.nii.gz`` cut in half with the missing half
zero-filled, reads a zero NIfTI spacing as 1 mm and a negative one as a flipped axis, keeps a sheared MetaImage
direction, and passes NaN voxels on. The checks here refuse all of that, with one :class:`InputError` line that names
the file and the fault:

- :func:`data_prep.file_checks.check_file` (the file itself, before any library reads it): the whole compressed stream
  is read and its CRC and length checked, the decompressed size compared with what the header announces; PNG/JPEG
  are fully decoded; the spacing written in the header must be positive and the direction orthonormal.
- :func:`check_image` (a read ``SimpleITK.Image``): dimensionality and channel count (when the caller states them),
  a sane size (every axis >= 1, at most :data:`MAX_VOXELS` voxels), finite positive spacing, an orthonormal direction
  within :data:`ORTHONORMAL_TOLERANCE`, and finite voxels. Non-finite voxels are refused unless the caller chooses a
  :data:`NONFINITE_POLICIES` replacement, which is then returned as a note for the report.
- :func:`check_array` / :func:`check_affine`: the same voxel and geometry checks for arrays (MONAI MetaTensors in
  the bundles, see ``satgate_monai.bundle.transforms.ValidateImaged``).
- :func:`check_label_values`: a label's values must be among the task's declared labels; NaN refused.

DICOM series are validated by :mod:`data_prep.dicom` when they are stacked; :func:`check_image` then runs on the
stacked volume like on any other image.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "InputError",
    "MAX_VOXELS",
    "NONFINITE_POLICIES",
    "ORTHONORMAL_TOLERANCE",
    "check_affine",
    "check_array",
    "check_direction",
    "check_image",
    "check_label_values",
    "check_spacing",
    "replace_nonfinite",
]

logger = logging.getLogger(__name__)

#: largest |D^T D - I| accepted for a direction matrix (cosines; 1e-3 is about 0.06 degree of shear)
ORTHONORMAL_TOLERANCE = 1e-3
#: at most this many voxels (spatial x channels) in one image: 2**31, 8 GiB as float32
MAX_VOXELS = 2**31
#: what to do with NaN/Inf voxels: refuse the file (default), or replace them by 0 (and say so in the report)
NONFINITE_POLICIES = ("refuse", "zero")

class InputError(ValueError):
    """An input that must not be used: the message is one line naming the file and the fault."""


def _name(source: object) -> str:
    return str(source) if source not in (None, "") else "input"


# ---------------------------------------------------------------------------------------------------- geometry


def check_spacing(spacing: Sequence[float], source: object = None) -> None:
    """Every spacing value must be finite and > 0 (a zero or negative spacing is not a grid).

    Raises:
        InputError: naming ``source`` and the spacing.
    """
    sp = [float(s) for s in spacing]
    if not all(math.isfinite(s) and s > 0 for s in sp):
        raise InputError(f"{_name(source)}: invalid voxel spacing {tuple(sp)}: every spacing must be a positive "
                         "number of mm (zero, negative or NaN spacing refused)")


def check_direction(direction: np.ndarray | Sequence[float], source: object = None,
                    tolerance: float = ORTHONORMAL_TOLERANCE) -> None:
    """The direction cosines (columns of a ``D x D`` matrix) must be orthonormal within ``tolerance``.

    Raises:
        InputError: a non-finite, singular or sheared direction, naming ``source`` and the deviation.
    """
    d = np.asarray(direction, dtype=float)
    if d.ndim == 1:
        n = int(round(math.sqrt(d.size)))
        d = d.reshape(n, n)
    if not np.all(np.isfinite(d)):
        raise InputError(f"{_name(source)}: the direction matrix holds NaN or infinite values")
    dev = float(np.abs(d.T @ d - np.eye(d.shape[1])).max()) if d.size else 0.0
    if dev > tolerance:
        raise InputError(f"{_name(source)}: the direction matrix is not orthonormal (sheared or scaled axes, "
                         f"max |D^T D - I| = {dev:.3g} > {tolerance:g}); its voxels have no rotation-only grid")


def check_affine(affine: np.ndarray, source: object = None, tolerance: float = ORTHONORMAL_TOLERANCE) -> None:
    """A ``(D+1) x (D+1)`` voxel-to-world affine: finite, non-zero column lengths (spacing), orthonormal directions.

    Raises:
        InputError: naming ``source`` and the fault.
    """
    a = np.asarray(affine, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise InputError(f"{_name(source)}: expected a square affine, got shape {a.shape}")
    m = a[:-1, :-1]
    if not np.all(np.isfinite(a)):
        raise InputError(f"{_name(source)}: the affine holds NaN or infinite values")
    norms = np.linalg.norm(m, axis=0)
    check_spacing(norms, source)
    check_direction(m / norms, source, tolerance)


# ---------------------------------------------------------------------------------------------------- voxels


def replace_nonfinite(array: np.ndarray) -> tuple[np.ndarray, int]:
    """Return a copy of ``array`` with NaN/Inf replaced by 0, and how many were replaced."""
    bad = ~np.isfinite(array)
    n = int(bad.sum())
    if not n:
        return array, 0
    out = np.array(array, copy=True)
    out[bad] = 0
    return out, n


def _nonfinite_summary(array: np.ndarray) -> str:
    n_nan = int(np.isnan(array).sum())
    n_inf = int(np.isinf(array).sum())
    return ", ".join(p for p in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} infinite" if n_inf else "") if p)


def check_array(array: np.ndarray, source: object = None, *, nonfinite: str = "refuse",
                what: str = "image") -> tuple[np.ndarray, list[str]]:
    """Finite voxels: refuse NaN/Inf (default) or replace them per ``nonfinite`` and say so.

    Args:
        array: voxel values (any shape).
        source: the file, for messages.
        nonfinite: one of :data:`NONFINITE_POLICIES`.
        what: ``"image"`` or ``"label"`` (a label is always refused).

    Returns:
        ``(array, notes)``: the (possibly replaced) array and human-readable notes for the report.

    Raises:
        InputError: non-finite voxels under ``"refuse"``, or in a label.
        ValueError: an unknown policy.
    """
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    arr = np.asarray(array)
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.complexfloating):
        return array, []
    if bool(np.isfinite(arr).all()):
        return array, []
    summary = _nonfinite_summary(arr)
    if what == "label" or nonfinite == "refuse":
        hint = "" if what == "label" else " (--nonfinite zero replaces them, and the report says so)"
        raise InputError(f"{_name(source)}: {what} has non-finite voxels ({summary}){hint}")
    out, n = replace_nonfinite(arr)
    note = f"replaced {n} non-finite voxel(s) ({summary}) by 0"
    logger.warning("%s: %s", _name(source), note)
    return out, [note]


def check_label_values(array: np.ndarray, allowed: Iterable[int] | None, source: object = None) -> list[int]:
    """A label's values must be integer class indices among ``allowed`` (None: any integer >= 0).

    Returns:
        The sorted values found.

    Raises:
        InputError: NaN/Inf, fractional or negative values, or values the task does not declare (listed).
    """
    arr = np.asarray(array)
    if np.issubdtype(arr.dtype, np.floating):
        if not bool(np.isfinite(arr).all()):
            raise InputError(f"{_name(source)}: label has non-finite values ({_nonfinite_summary(arr)})")
        frac = arr != np.round(arr)
        if frac.any():
            raise InputError(f"{_name(source)}: label has non-integer values (e.g. {float(arr[frac][0]):g}): a "
                             "probability map or an interpolated label? Labels hold class indices")
    values = sorted(int(v) for v in np.unique(arr))
    if values and values[0] < 0:
        raise InputError(f"{_name(source)}: label has negative values (min {values[0]}): labels are class indices")
    if allowed is not None:
        allowed_set = {int(a) for a in allowed}
        extra = [v for v in values if v not in allowed_set]
        if extra:
            shown = ", ".join(map(str, extra[:8])) + (" ..." if len(extra) > 8 else "")
            raise InputError(f"{_name(source)}: label values {{{shown}}} are not declared by the task (declared: "
                             f"{', '.join(map(str, sorted(allowed_set)))}; found: "
                             f"{', '.join(map(str, values[:12]))}{' ...' if len(values) > 12 else ''})")
    return values


def check_image(image, source: object = None, *, spatial_dims: int | None = None, channels: int | None = None,
                nonfinite: str = "refuse", what: str = "image", max_voxels: int = MAX_VOXELS):
    """Validate a ``SimpleITK.Image``; return ``(image, notes)`` (a copy when non-finite voxels were replaced).

    Args:
        image: the image (2D-4D; a 4D image is 3D + channels, as data_prep reads MSD files).
        source: the file, for messages.
        spatial_dims: required spatial dimensionality (2 or 3), None: any.
        channels: required channel count (components or a 4th axis), None: any.
        nonfinite: see :func:`check_array`.
        what: ``"image"`` or ``"label"``.
        max_voxels: the size limit.

    Raises:
        InputError: any fault, one line naming ``source``.
    """
    import SimpleITK as sitk

    dim = image.GetDimension()
    size = image.GetSize()
    ncomp = image.GetNumberOfComponentsPerPixel()
    sdim = 3 if dim == 4 else dim
    n_channels = size[3] if dim == 4 else ncomp
    if dim not in (2, 3, 4) or (dim == 4 and ncomp > 1):
        raise InputError(f"{_name(source)}: {dim}D image with {ncomp} component(s) is not supported")
    if any(s < 1 for s in size) or int(np.prod(size, dtype=np.int64)) * ncomp > max_voxels:
        raise InputError(f"{_name(source)}: implausible image size {size} x {ncomp} component(s) "
                         f"(every axis >= 1, at most {max_voxels} voxels)")
    if spatial_dims is not None and sdim != spatial_dims:
        raise InputError(f"{_name(source)}: expected a {spatial_dims}D {what}, got {sdim}D (size {size})")
    if channels is not None and n_channels != channels:
        raise InputError(f"{_name(source)}: expected {channels} channel(s), got {n_channels}")
    spacing = image.GetSpacing()[:sdim]
    check_spacing(spacing, source)
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(dim, dim)
    check_direction(direction[:sdim, :sdim], source)
    arr = sitk.GetArrayViewFromImage(image)
    if what == "label":
        check_array(arr, source, what="label")
        return image, []
    new, notes = check_array(arr, source, nonfinite=nonfinite, what=what)
    if not notes:
        return image, []
    out = sitk.GetImageFromArray(new, isVector=ncomp > 1)
    out.CopyInformation(image)
    return out, notes
