"""A tiny 3D phantom dataset in data_prep's layout (``datalist.json``, ``images/``, ``labels/``): a bright ellipsoid
(label 1) on noise in each case, seeded per case. Small enough for nnU-Net to plan, train and predict in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_prep.datalist import write_datalist

__all__ = ["write_tiny_dataset"]


def write_tiny_dataset(out: Path, cases: int = 6, shape: tuple[int, int, int] = (24, 24, 16), seed: int = 0) -> Path:
    """Write ``cases`` cases of ``shape`` (x, y, z) voxels of 2 mm; returns ``out/datalist.json``."""
    import SimpleITK as sitk

    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    entries = []
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape[::-1]), indexing="ij")
    for i in range(cases):
        rng = np.random.default_rng(seed + i)
        centre = rng.uniform(0.35, 0.65, 3) * np.array(shape)
        radii = rng.uniform(0.15, 0.25, 3) * np.array(shape)
        inside = ((xx - centre[0]) / radii[0]) ** 2 + ((yy - centre[1]) / radii[1]) ** 2 \
            + ((zz - centre[2]) / radii[2]) ** 2 <= 1
        image = (rng.normal(0, 30, shape[::-1]) + 200 * inside).astype(np.int16)
        for array, folder, dtype in ((image, "images", np.int16), (inside.astype(np.uint8), "labels", np.uint8)):
            img = sitk.GetImageFromArray(array.astype(dtype))
            img.SetSpacing((2.0, 2.0, 2.0))
            sitk.WriteImage(img, str(out / folder / f"blob_{i}.nii.gz"), True)
        entries.append({"image": f"images/blob_{i}.nii.gz", "label": f"labels/blob_{i}.nii.gz"})
    return write_datalist(out, entries, seed, name="blobs", description="synthetic phantom, not patient data",
                          labels={"0": "background", "1": "blob"}, modality={"0": "CT"}, spacing=2.0)
