"""Semi-real lung lesion cases: real chest CT with real tumour tissue transplanted into the lung field.

The pyradiomics 3.0.1 samples (``python -m data_prep samples``) hold two real chest CTs, ``lung1`` and ``lung2``
(int16 HU, about 0.6 x 0.6 x 5 mm, LPS), each with its real tumour labelled. A case here is:

1. a crop of one patient's CT (``lung1`` or ``lung2``, drawn per case), resampled to :data:`GRID_SPACING` mm
   isotropic, centred on a random voxel of the lung field so that lung, vessels, pleura, heart and chest wall are in
   view (real anatomy and real distractors). The patient's own tumour stays labelled wherever the crop holds it.
2. 1-3 real tumours transplanted into it: the tumour of ``lung1`` or ``lung2`` (its real HU voxels and its mask, on
   the same grid), randomly flipped on each axis, rotated by a multiple of 90 degrees in the axial plane and scaled
   (:data:`SCALE_RANGE`, linear interpolation of the HU, mask at 0.5), pasted at a random position where every voxel
   of its mask lies inside the lung field and away from the other lesions. Inside the mask the voxels are the
   donor's (scaled) tumour voxels exactly; a one- to two-voxel rim around it blends the donor's surroundings into the
   recipient's lung (``alpha`` from a Gaussian of the mask), so no edge artefact gives the lesion away.

The label is 1 on every tumour voxel (the patient's own and the transplanted ones), 0 elsewhere. The anatomy and the
tumour tissue are real, the placement is synthetic: results on these cases are not clinical results. Only two
patients exist, so cases share anatomy (different crops, flips and lesions); what separates training from test cases is
the position and shape of the lesions, not the patient.

The lung field of a source volume: body = largest connected component of ``HU > -500``, holes filled slice by slice;
lung = ``HU < -400`` inside the body, components under 20 ml dropped, then holes filled slice by slice (so vessels and
nodules inside the lung count as lung field, mediastinum and chest wall do not).

Case ``i`` is drawn from ``numpy.random.default_rng([seed, LESION_SEED, i])``: it depends only on the seed and its
index, never on how many cases are written.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_prep.tasks import TARGET_SPACING

__all__ = [
    "SOURCES",
    "GRID_SPACING",
    "CROP_SHAPE",
    "SCALE_RANGE",
    "LESION_SEED",
    "SourceVolume",
    "LesionCase",
    "load_source",
    "lung_field",
    "lesion_case",
]

#: the pyradiomics sample patients whose CT and tumour are used
SOURCES = ("lung1", "lung2")
#: isotropic voxel size (mm) of the cases: the spacing the bundles train at (the sources are resampled to it once)
GRID_SPACING = TARGET_SPACING
#: default crop size (x, y, z) in voxels of GRID_SPACING mm: 192 x 192 x 128 mm, about one lung and the mediastinum
CROP_SHAPE = (96, 96, 64)
#: range of the random isotropic scale applied to a transplanted tumour
SCALE_RANGE = (0.75, 1.3)
#: case-seed component of this dataset (``default_rng([seed, LESION_SEED, index])``)
LESION_SEED = 42
LUNG_HU = -400.0
BODY_HU = -500.0
MIN_LUNG_ML = 20.0
AIR_HU = -1024
#: donor draws per wanted lesion before a crop is accepted with fewer lesions
MAX_DRAWS = 8


@dataclass(frozen=True)
class SourceVolume:
    """One sample patient on the case grid, arrays ``(x, y, z)`` (axis 0 towards the left, 1 posterior, 2 superior).

    Attributes:
        name: ``"lung1"`` or ``"lung2"``.
        image: HU, float32 ``(X, Y, Z)``.
        tumour: the patient's tumour mask, bool ``(X, Y, Z)``.
        lung: the lung field (see the module docstring), bool ``(X, Y, Z)``.
    """

    name: str
    image: np.ndarray
    tumour: np.ndarray
    lung: np.ndarray

    def donor(self, margin: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """The tumour's bounding box grown by ``margin`` voxels: ``(hu float32, mask bool)``, both ``(x, y, z)``."""
        idx = np.nonzero(self.tumour)
        lo = [max(int(i.min()) - margin, 0) for i in idx]
        hi = [min(int(i.max()) + margin + 1, s) for i, s in zip(idx, self.tumour.shape)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        return self.image[box].copy(), self.tumour[box].copy()


@dataclass
class LesionCase:
    """One semi-real case.

    Attributes:
        image: int16 HU ``(x, y, z)`` on a :data:`GRID_SPACING` mm grid.
        label: uint8 ``(x, y, z)``, 1 = tumour.
        spacing: voxel size in mm.
        info: provenance: ``patient`` (the CT), ``crop_origin`` (voxel of the source grid), ``own_tumour_voxels``
            (the patient's tumour voxels kept in the crop) and ``lesions`` (per transplanted tumour: donor, flips,
            rot90, scale, origin, voxels).
    """

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    info: dict = field(default_factory=dict)


def _to_xyz(arr: np.ndarray) -> np.ndarray:
    """SimpleITK's ``(z, y, x)`` array -> ``(x, y, z)``."""
    return np.ascontiguousarray(np.transpose(arr, (2, 1, 0)))


def _fill_slices(mask: np.ndarray) -> np.ndarray:
    """``binary_fill_holes`` on every axial slice (``mask[:, :, k]``)."""
    from scipy import ndimage

    out = np.empty_like(mask)
    for k in range(mask.shape[2]):
        out[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    return out


def lung_field(image: np.ndarray, spacing: float = GRID_SPACING) -> np.ndarray:
    """The lung field of a chest CT ``(x, y, z)`` in HU (bool, same shape); see the module docstring."""
    from scipy import ndimage

    body = image > BODY_HU
    lab, n = ndimage.label(body)
    if n == 0:
        raise ValueError("no voxel above -500 HU: not a CT in HU")
    sizes = ndimage.sum_labels(body, lab, index=np.arange(1, n + 1))
    body = _fill_slices(lab == int(np.argmax(sizes)) + 1)
    lung = body & (image < LUNG_HU)
    lung = ndimage.binary_opening(lung, iterations=1)
    lab, n = ndimage.label(lung)
    if n:
        sizes = ndimage.sum_labels(lung, lab, index=np.arange(1, n + 1))
        min_voxels = MIN_LUNG_ML * 1000.0 / spacing**3
        keep = np.flatnonzero(sizes >= min_voxels) + 1
        lung = np.isin(lab, keep)
    return _fill_slices(lung)


@functools.lru_cache(maxsize=4)
def _load_cached(samples_dir: str, name: str) -> SourceVolume:
    import SimpleITK as sitk

    folder = Path(samples_dir)
    paths = {k: folder / f"{name}_{k}.nrrd" for k in ("image", "label")}
    for p in paths.values():
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist: fetch the samples with `python -m data_prep samples --out "
                                    f"{folder}`")
    img = sitk.ReadImage(str(paths["image"]))
    lab = sitk.ReadImage(str(paths["label"]))
    if img.GetSize() != lab.GetSize():
        raise ValueError(f"{paths['label']}: size {lab.GetSize()} differs from the image's {img.GetSize()}")
    size = [int(round(n * s / GRID_SPACING)) for n, s in zip(img.GetSize(), img.GetSpacing())]

    def resample(im: sitk.Image, interp: int, pixel: int, default: float) -> np.ndarray:
        f = sitk.ResampleImageFilter()
        f.SetOutputSpacing((GRID_SPACING,) * 3)
        f.SetSize(size)
        f.SetOutputOrigin(img.GetOrigin())
        f.SetOutputDirection(img.GetDirection())
        f.SetInterpolator(interp)
        f.SetOutputPixelType(pixel)
        f.SetDefaultPixelValue(default)
        return _to_xyz(sitk.GetArrayFromImage(f.Execute(im)))

    image = resample(img, sitk.sitkLinear, sitk.sitkFloat32, float(AIR_HU))
    lab.CopyInformation(img)
    tumour = resample(lab, sitk.sitkNearestNeighbor, sitk.sitkUInt8, 0) > 0
    if not tumour.any():
        raise ValueError(f"{paths['label']} labels no voxel")
    return SourceVolume(name, image, tumour, lung_field(image))


def load_source(samples_dir: str | os.PathLike, name: str) -> SourceVolume:
    """Read ``{name}_image.nrrd`` / ``{name}_label.nrrd`` from ``samples_dir`` onto the case grid (cached per process).

    Raises:
        FileNotFoundError: a file is missing (the message says how to fetch it).
        ValueError: ``name`` is not in :data:`SOURCES`, or the files do not fit together.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown sample patient {name!r}: expected one of {SOURCES}")
    return _load_cached(str(Path(samples_dir).expanduser().resolve()), name)


def _transform_donor(rng: np.random.Generator, hu: np.ndarray, mask: np.ndarray,
                     scale: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Random flips, axial rot90 and isotropic ``scale`` of a donor box; returns ``(hu, mask, params)``."""
    from scipy import ndimage

    flips = [bool(f) for f in rng.random(3) < 0.5]
    k = int(rng.integers(0, 4))
    for axis, f in enumerate(flips):
        if f:
            hu, mask = np.flip(hu, axis), np.flip(mask, axis)
    hu, mask = np.rot90(hu, k, axes=(0, 1)), np.rot90(mask, k, axes=(0, 1))
    if abs(scale - 1.0) > 1e-6:
        hu = ndimage.zoom(hu, scale, order=1, mode="nearest")
        mask = ndimage.zoom(mask.astype(np.float32), scale, order=1, mode="nearest") >= 0.5
    return np.ascontiguousarray(hu, dtype=np.float32), np.ascontiguousarray(mask), {"flips": flips, "rot90": k}


def _place(rng: np.random.Generator, mask: np.ndarray, allowed: np.ndarray, tries: int = 200) -> tuple[int, ...] | None:
    """A random origin where every voxel of ``mask`` falls on ``allowed`` (same grid as the crop), or ``None``."""
    cand = np.argwhere(allowed)
    if len(cand) == 0:
        return None
    centre = np.array(mask.shape) // 2
    for _ in range(tries):
        origin = cand[int(rng.integers(len(cand)))] - centre
        if np.any(origin < 0) or np.any(origin + mask.shape > allowed.shape):
            continue
        box = tuple(slice(int(o), int(o) + n) for o, n in zip(origin, mask.shape))
        if allowed[box][mask].all():
            return tuple(int(o) for o in origin)
    return None


def lesion_case(
    rng: np.random.Generator,
    sources: Sequence[SourceVolume],
    *,
    crop_shape: Sequence[int] = CROP_SHAPE,
    lesions: tuple[int, int] = (1, 3),
) -> LesionCase:
    """Draw one semi-real case from the loaded ``sources`` (recipients and donors alike).

    Args:
        rng: the case's generator.
        sources: the patients, e.g. ``[load_source(d, n) for n in SOURCES]``.
        crop_shape: crop size ``(x, y, z)`` in voxels; each axis at most the smallest source's.
        lesions: inclusive range of the number of transplanted tumours.

    Returns:
        The case; ``image`` int16 and ``label`` uint8, both ``crop_shape``.

    Raises:
        ValueError: a crop axis larger than a source, or an empty lesion range.
    """
    from scipy import ndimage

    crop = np.array([int(v) for v in crop_shape])
    if len(crop) != 3 or np.any(crop < 16):
        raise ValueError(f"crop_shape must be 3 sizes >= 16 voxels, got {tuple(crop_shape)}")
    for s in sources:
        if np.any(crop > s.image.shape):
            raise ValueError(f"crop_shape {tuple(crop)} exceeds {s.name}'s grid {s.image.shape}")
    lo_n, hi_n = lesions
    if not 0 <= lo_n <= hi_n:
        raise ValueError(f"lesions must be a range (min, max) with 0 <= min <= max, got {lesions}")
    recipient = sources[int(rng.integers(len(sources)))]
    lung_idx = np.argwhere(recipient.lung)
    centre = lung_idx[int(rng.integers(len(lung_idx)))]
    origin = np.clip(centre - crop // 2, 0, np.array(recipient.image.shape) - crop)
    box = tuple(slice(int(o), int(o) + int(n)) for o, n in zip(origin, crop))
    image = recipient.image[box].copy()
    label = recipient.tumour[box].copy()
    allowed = recipient.lung[box] & ~ndimage.binary_dilation(label, iterations=3)
    info: dict = {"patient": recipient.name, "crop_origin": [int(v) for v in origin],
                  "own_tumour_voxels": int(label.sum()), "lesions": []}
    wanted = int(rng.integers(lo_n, hi_n + 1))
    for _ in range(MAX_DRAWS * max(wanted, 1)):
        if len(info["lesions"]) >= wanted:
            break
        donor = sources[int(rng.integers(len(sources)))]
        hu, mask = donor.donor()
        scale = float(rng.uniform(*SCALE_RANGE))
        hu, mask, params = _transform_donor(rng, hu, mask, scale)
        where = _place(rng, mask, allowed)
        if where is None:  # no room for this lesion in this crop's lung: draw another donor / transform
            continue
        sub = tuple(slice(o, o + n) for o, n in zip(where, mask.shape))
        alpha = np.clip(ndimage.gaussian_filter(mask.astype(np.float32), 1.0) * 2.0, 0.0, 1.0)
        alpha[mask] = 1.0
        image[sub] = alpha * hu + (1.0 - alpha) * image[sub]
        label[sub] |= mask
        allowed[sub] &= ~ndimage.binary_dilation(mask, iterations=3)
        info["lesions"].append({"donor": donor.name, "scale": round(scale, 4), "origin": list(where),
                                "voxels": int(mask.sum()), **params})
    image = np.clip(np.rint(image), -32768, 32767).astype(np.int16)
    return LesionCase(image, label.astype(np.uint8), (GRID_SPACING,) * 3, info)
