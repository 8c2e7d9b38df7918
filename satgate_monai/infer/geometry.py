"""Network space <-> source grid: MetaTensor affines as SimpleITK images, and the fast return to the source grid.

The bundle's preprocessing (``Orientationd``, ``Spacingd``, crops, pads...) leaves the network-space grid in the
MetaTensor's ``affine`` (a 4x4 index -> world matrix, RAS unless ``meta["space"]`` says LPS). Instead of replaying
the inverse of every transform (MONAI's ``Invertd``), the label map is wrapped as a SimpleITK image with exactly
that geometry and resampled once, nearest neighbour, onto the source image's grid; voxels of the source grid outside
the network grid get background (0), except within one network voxel of its border: the network grid is first
extended by one voxel of edge values (zero-flux Neumann padding), as MONAI's ``Spacingd`` inverse does with its
default ``padding_mode="border"``. Without it, source slices whose centres lie just outside the network grid (MONAI
sizes the 2 mm grid by the source's edge-to-edge extent, so the last 5 mm slice's centre can sit exactly half a
network voxel outside) would lose their labels. For a label map this is what ``Invertd(nearest_interp=True)``
followed by an argmax computes, at the cost of one SimpleITK nearest-neighbour resampling (``benchmarks/infer.py``).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch

__all__ = ["RAS_TO_LPS", "affine_to_sitk_geometry", "array_to_sitk", "image_to_metatensor", "resample_to_source",
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


def image_to_metatensor(image: sitk.Image, source: object = None, dtype=np.float32):
    """A 3D SimpleITK image (LPS) as the MetaTensor MONAI's ``LoadImage`` would give for it (before any channel).

    What ``LoadImage(image_only=True)`` returns for a file of ``image``: the voxels in MONAI index order
    ``(X, Y, Z)`` (``dtype``, default float32 as ``LoadImage``), ``affine`` and ``original_affine`` the exact index ->
    RAS world matrix (LPS -> RAS as MONAI's ITK reader with ``affine_lps_to_ras=True`` and the NIfTI reader do),
    ``space`` ``"RAS"``, ``spatial_shape``, ``original_channel_dim`` ``nan`` (no channel; ``EnsureChannelFirst``
    adds one) and ``filename_or_obj`` naming ``source``. The affine is float64, not the float32 of a NIfTI header.

    Args:
        image: a 3D single-component image.
        source: the input it came from (messages of later checks name it).
        dtype: voxel type of the tensor.

    Returns:
        A :class:`monai.data.MetaTensor` of shape ``(X, Y, Z)``.

    Raises:
        ValueError: an image that is not 3D single-component.
    """
    from monai.data import MetaTensor

    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"expected a 3D single-channel image, got {image.GetDimension()}D with "
                         f"{image.GetNumberOfComponentsPerPixel()} component(s)")
    arr = np.ascontiguousarray(sitk.GetArrayViewFromImage(image).transpose(2, 1, 0), dtype=dtype)
    affine = RAS_TO_LPS @ sitk_affine(image)  # the flip is its own inverse: LPS -> RAS
    meta = {"affine": affine, "original_affine": affine.copy(), "space": "RAS",
            "spatial_shape": np.asarray(image.GetSize(), dtype=np.int64), "original_channel_dim": float("nan"),
            "filename_or_obj": str(source) if source is not None else ""}
    return MetaTensor.ensure_torch_and_prune_meta(arr, meta)


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
