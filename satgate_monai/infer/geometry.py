"""Network space <-> source grid for the CLI's attention maps: MetaTensor affines as SimpleITK images, one resampling.

The label map and the probabilities return to the source grid in the case engine
(:mod:`satgate_monai.bundle.engine.grid`). The attention maps (``--save-attention``) live on the working grid (the
MetaTensor's ``affine``, a 4x4 index -> world matrix, RAS unless ``meta["space"]`` says LPS): they are wrapped as a
SimpleITK image with exactly that geometry and resampled once, linearly, onto the source image's grid
(:func:`resample_to_source`; voxels outside the network grid get ``default_value``, except within one network voxel
of its border: the grid is first extended by one voxel of edge values, as MONAI's ``padding_mode="border"``).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch

__all__ = ["RAS_TO_LPS", "affine_to_sitk_geometry", "array_to_sitk", "resample_to_source",
           "sitk_affine"]

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def affine_to_sitk_geometry(affine, space: str = "RAS") -> tuple[tuple, tuple, tuple]:
    """Split a 4x4 index -> world affine into SimpleITK ``(spacing, origin, direction)`` in LPS.

    Args:
        affine: ``(4, 4)`` array or tensor, columns = world step per array index ``(i, j, k)``.
        space: ``"RAS"`` (MONAI's default) or ``"LPS"``: the world frame of ``affine``.

    Returns:
        ``spacing`` (3,), ``origin`` (3,), ``direction`` (9,) row-major, as SimpleITK expects.

    Raises:
        ValueError: for a singular affine, a non-3D affine or an unknown space.
    """
    a = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"expected a 4x4 affine (3D image), got shape {a.shape}")
    space = str(space).upper()
    if space == "RAS":
        a = RAS_TO_LPS @ a
    elif space != "LPS":
        raise ValueError(f"unknown world space {space!r}: expected 'RAS' or 'LPS'")
    m = a[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"singular affine (a zero column):\n{a}")
    direction = m / spacing
    return tuple(spacing.tolist()), tuple(a[:3, 3].tolist()), tuple(direction.flatten().tolist())


def array_to_sitk(array, affine, space: str = "RAS") -> sitk.Image:
    """Wrap a MONAI-ordered array ``(*S)`` = ``(i, j, k)`` with its affine as a SimpleITK image (array ``(k, j, i)``).

    Args:
        array: ``(X, Y, Z)`` numpy array or tensor in MONAI index order (no channel axis).
        affine: its ``(4, 4)`` index -> world affine.
        space: world frame of ``affine`` (``"RAS"`` or ``"LPS"``).

    Returns:
        A SimpleITK image whose voxel ``(i, j, k)`` holds ``array[i, j, k]`` at the affine's world position.
    """
    arr = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if arr.ndim != 3:
        raise ValueError(f"expected a 3D array (X, Y, Z), got shape {arr.shape}")
    spacing, origin, direction = affine_to_sitk_geometry(affine, space)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    return img


def sitk_affine(image: sitk.Image) -> np.ndarray:
    """The 4x4 index -> LPS world affine of a 3D SimpleITK image (columns in ``(x, y, z)`` index order)."""
    d = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    a = np.eye(4)
    a[:3, :3] = d * np.asarray(image.GetSpacing(), dtype=np.float64)
    a[:3, 3] = image.GetOrigin()
    return a


def resample_to_source(image: sitk.Image, reference: sitk.Image, *, interpolation: str = "nearest",
                       default_value: float = 0.0, edge_pad: int = 1) -> sitk.Image:
    """Resample a network-space image onto ``reference``'s grid (same size, spacing, origin, direction).

    Args:
        image: a label map (nearest) or a continuous map (linear) with its own geometry.
        reference: the source image whose grid the output takes.
        interpolation: ``"nearest"`` for labels (integers stay integers) or ``"linear"``.
        default_value: value for source voxels outside ``image``'s grid (background).
        edge_pad: voxels of edge values added around ``image`` first (see the module docstring); 0 disables.

    Returns:
        An image of ``image``'s pixel type on exactly ``reference``'s grid.
    """
    modes = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}
    if interpolation not in modes:
        raise ValueError(f"interpolation must be one of {sorted(modes)}, got {interpolation!r}")
    if edge_pad:
        image = sitk.ZeroFluxNeumannPad(image, [edge_pad] * image.GetDimension(), [edge_pad] * image.GetDimension())
    return sitk.Resample(image, reference, sitk.Transform(), modes[interpolation], default_value,
                         image.GetPixelID())
