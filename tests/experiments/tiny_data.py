"""Tiny skin-like phantoms in the data_prep output layout, generated with a fixed seed (for the experiment tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_tiny_skin(root: Path, n_train: int = 6, n_val: int = 2, n_test: int = 6, size: int = 40,
                    seed: int = 0) -> Path:
    """``root/images/<case>.png`` (RGB), ``root/labels/<case>.png`` (0/1) and ``root/datalist.json``.

    Each image: skin-coloured noisy background, one dark elliptic lesion (the label) and a dark distractor spot.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    items = []
    for i in range(n_train + n_val + n_test):
        case = f"TINY_{i:04d}"
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        ry, rx = rng.uniform(0.12, 0.25, 2) * size
        lesion = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        dy, dx = rng.uniform(0.05, 0.95, 2) * size
        spot = (yy - dy) ** 2 + (xx - dx) ** 2 <= (0.05 * size) ** 2
        img = np.array([200.0, 150.0, 130.0])[None, None] + rng.normal(0, 12, (size, size, 3))
        img[lesion] *= rng.uniform(0.35, 0.6)
        img[spot & ~lesion] *= 0.5
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "images" / f"{case}.png")
        Image.fromarray(lesion.astype(np.uint8)).save(root / "labels" / f"{case}.png")
        items.append({"image": f"images/{case}.png", "label": f"labels/{case}.png"})
    datalist = {
        "description": "tiny synthetic phantoms for tests (not patient data)",
        "labels": {"0": "background", "1": "lesion"},
        "modality": {"0": "RGB"},
        "training": items[:n_train],
        "validation": items[n_train:n_train + n_val],
        "test": items[n_train + n_val:],
    }
    (root / "datalist.json").write_text(json.dumps(datalist, indent=1))
    return root
