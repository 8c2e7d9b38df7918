"""A case as the engine takes it: a volume (:class:`Case`: the source voxels, their geometry and (DICOM) the chosen
series' headers) or a picture (:class:`Picture`: the pixels as the bundle's loading transforms give them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

__all__ = ["Case", "Picture", "read_case", "read_picture"]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Case:
    """One source volume.

    Attributes:
        voxels: ``(X, Y, Z)`` in MONAI index order, the source's own dtype (a view of ``image``'s buffer: no copy).
        affine: index -> RAS world affine (4x4 float64), the source's own geometry.
        source: where it came from (messages, output names).
        headers: the chosen DICOM series' headers (None for other files).
        image: the SimpleITK image owning ``voxels`` (LPS), kept for writers that copy its geometry.
    """

    voxels: np.ndarray
    affine: np.ndarray
    source: str = ""
    headers: list | None = None
    image: Any = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(X, Y, Z)``."""
        return tuple(int(s) for s in self.voxels.shape)  # type: ignore[return-value]

    @property
    def series_uid(self) -> str | None:
        """The SeriesInstanceUID of the DICOM series read (None for other files), from the headers already parsed."""
        if not self.headers:
            return None
        return str(getattr(self.headers[0], "SeriesInstanceUID", "") or "") or None

    @classmethod
    def from_sitk(cls, image: sitk.Image, source: object = "", headers: list | None = None) -> Case:
        """Wrap a validated 3D SimpleITK image (LPS) without copying its voxels.

        Raises:
            ValueError: an image that is not 3D single-component.
        """
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(f"{source}: expected a 3D single-channel image, got {image.GetDimension()}D with "
                             f"{image.GetNumberOfComponentsPerPixel()} component(s)")
        lps = np.eye(4)
        lps[:3, :3] = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3) * np.asarray(image.GetSpacing())
        lps[:3, 3] = image.GetOrigin()
        voxels = sitk.GetArrayViewFromImage(image).transpose(2, 1, 0)
        return cls(voxels=voxels, affine=_LPS_TO_RAS @ lps, source=str(source), headers=headers, image=image)

    def label_image(self, labels: np.ndarray) -> sitk.Image:
        """``labels`` ``(X, Y, Z)`` as a SimpleITK image on exactly the source grid."""
        out = sitk.GetImageFromArray(np.ascontiguousarray(labels.transpose(2, 1, 0)))
        if self.image is not None:
            out.CopyInformation(self.image)
        else:
            lps = _LPS_TO_RAS @ self.affine
            spacing = np.linalg.norm(lps[:3, :3], axis=0)
            out.SetSpacing(spacing.tolist())
            out.SetOrigin(lps[:3, 3].tolist())
            out.SetDirection((lps[:3, :3] / spacing).flatten().tolist())
        return out


def read_case(path: str | os.PathLike, **reader: Any) -> Case:
    """Read an image file or a DICOM series folder with data_prep's validated reader (3D, one channel).

    Args:
        path: the image.
        reader: options of :func:`data_prep.readers.read_image` (``series_uid``, ``rules``, ``nonfinite``).

    Raises:
        ValueError, FileNotFoundError: the reader's one-line refusals.
    """
    from data_prep.readers import read_image

    headers: list = []
    image = read_image(path, spatial_dims=3, channels=1, headers=headers, **reader)
    return Case.from_sitk(image, source=path, headers=headers or None)


@dataclass
class Picture:
    """One 2D picture (PNG, JPEG...) as the bundle's loading transforms give it.

    Attributes:
        pixels: ``(C, X, Y)`` MetaTensor in MONAI index order (``X`` the picture's width), the loaded values.
        source: where it came from (messages, output names).
    """

    pixels: Any
    source: str = ""
    headers: None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(X, Y)``: the picture's own size, the grid its mask is returned to."""
        return tuple(int(s) for s in self.pixels.shape[1:])  # type: ignore[return-value]

    @property
    def affine(self) -> np.ndarray:
        """The picture's index -> world affine (as loaded)."""
        return np.asarray(self.pixels.affine, dtype=np.float64)

    series_uid = None


def read_picture(path: str | os.PathLike, loading: Any) -> Picture:
    """Load a picture with the bundle's loading transforms (``LoadImaged``, ``EnsureChannelFirstd`` and its checks on
    ``"image"``, as one callable).

    Raises:
        ValueError: a picture that does not load as ``(C, X, Y)`` (or the loading transforms' own refusals).
    """
    pixels = loading({"image": str(path)})["image"]
    if getattr(pixels, "ndim", 0) != 3:
        raise ValueError(f"{path}: expected a 2D picture (C, X, Y), got shape {tuple(getattr(pixels, 'shape', ()))}")
    return Picture(pixels=pixels, source=str(path))
