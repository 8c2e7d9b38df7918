"""NIfTI writer for masks and attention maps on the source grid."""

from __future__ import annotations

import os

import SimpleITK as sitk

__all__ = ["write_nifti"]


def write_nifti(image: sitk.Image, path: str | os.PathLike, *, compress: bool | None = None) -> None:
    """Write ``image`` with its own geometry (the source grid) to ``path`` (``.nii`` or ``.nii.gz``).

    The caller makes the write atomic (it passes a temporary name; see :func:`data_prep.atomic.atomic_path`).

    Args:
        image: a 3D label map (integer) or attention map (float32) on the source grid.
        path: destination; its suffix must be ``.nii`` or ``.nii.gz``.
        compress: gzip the data; defaults to True for ``.nii.gz``.

    Raises:
        ValueError: another suffix.
    """
    p = str(path)
    if not p.lower().endswith((".nii", ".nii.gz")):
        raise ValueError(f"NIfTI output must end with .nii or .nii.gz, got {p}")
    sitk.WriteImage(image, p, useCompression=p.lower().endswith(".gz") if compress is None else compress)
