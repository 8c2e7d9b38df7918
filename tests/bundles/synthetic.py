"""Tiny seeded datasets in data_prep's output layout (``datalist.json``, ``images/``, ``labels/``) for bundle tests.

The real demo data comes from ``python -m data_prep demo`` + ``import``; these are smaller still, so a one-epoch
train -> evaluate -> inference run of each bundle takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from satgate_monai.tasks import TASKS
from tests.bundles.helpers import BUNDLES, task_of

__all__ = ["make_dataset", "TASK_OF_BUNDLE"]

TASK_OF_BUNDLE = {b: task_of(b).name for b in BUNDLES}  # every bundle folder -> the task its configs name


def _blob(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    grid = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    centre = [rng.uniform(0.35 * s, 0.65 * s) for s in shape]
    radii = [rng.uniform(0.15 * s, 0.25 * s) for s in shape]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def make_dataset(
    out: Path, task: str, n_train: int = 2, n_val: int = 2, n_test: int = 1, size: int = 24, seed: int = 0
) -> Path:
    """Write a tiny ``data_prep``-style dataset for ``task`` ("liver" | "prostate" | "skin") into ``out``."""
    import nibabel as nib
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    names = [f"case{i:03d}" for i in range(n_train + n_val + n_test)]
    items = []
    for name in names:
        if TASKS[task].data.spatial_dims == 2:
            mask = _blob((size, size), rng)
            rgb = rng.normal(170, 15, (size, size, 3))
            rgb[mask] = rng.normal(90, 15, (int(mask.sum()), 3))
            Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(out / "images" / f"{name}.png")
            Image.fromarray(mask.astype(np.uint8), "L").save(out / "labels" / f"{name}.png")
            items.append({"image": f"images/{name}.png", "label": f"labels/{name}.png"})
            continue
        shape = (size, size, max(size * 2 // 3, 8))
        mask = _blob(shape, rng)
        if task == "liver":
            vol = rng.normal(-50, 30, shape)
            vol[mask] = rng.normal(80, 20, int(mask.sum()))
            dtype = np.int16
        else:
            vol = np.abs(rng.normal(200, 40, shape))
            vol[mask] = np.abs(rng.normal(450, 40, int(mask.sum())))
            dtype = np.float32
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        nib.save(nib.Nifti1Image(vol.astype(dtype), affine), out / "images" / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), out / "labels" / f"{name}.nii.gz")
        items.append({"image": f"images/{name}.nii.gz", "label": f"labels/{name}.nii.gz"})
    datalist = {
        "name": f"synthetic {task} (test phantoms)",
        "labels": dict(TASKS[task].data.labels),
        "training": items[:n_train],
        "validation": items[n_train : n_train + n_val],
        "test": items[n_train + n_val :],
    }
    (out / "datalist.json").write_text(json.dumps(datalist, indent=2))
    return out
