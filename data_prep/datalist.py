"""Seeded train/validation/test split and the MONAI decathlon-style ``datalist.json``.

The file layout matches the Medical Segmentation Decathlon's ``dataset.json`` with an explicit ``validation`` list, so
``monai.data.load_decathlon_datalist(OUT/"datalist.json", data_list_key="training", base_dir=OUT)`` resolves the
relative paths::

    {"name": ..., "description": ..., "labels": {"0": "background", "1": "liver"}, "modality": {"0": "CT"},
     "spacing": [2.0, 2.0, 2.0], "tensorImageSize": "3D", "numTraining": 7, "numValidation": 2, "numTest": 1,
     "seed": 0, "training": [{"image": "images/case1.nii.gz", "label": "labels/case1.nii.gz"}, ...],
     "validation": [...], "test": [...]}

With ``folds=k`` (``--folds k``), the test list is held out as before and the other labelled cases are dealt into
``k`` seeded folds (:mod:`data_prep.folds`): every training/validation entry gets ``"fold": i``, the top level gets
``"folds": k``, and ``training``/``validation`` hold folds ``!= 0`` / ``== 0`` (so a reader that ignores folds sees
fold 0's split).
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from data_prep.atomic import atomic_write_text
from data_prep.folds import assign_folds

__all__ = ["split_cases", "write_datalist", "DEFAULT_FRACTIONS", "SPLIT_KEYS"]

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
SPLIT_KEYS = ("training", "validation", "test")


def split_cases(
    names: Sequence[str], seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> dict[str, list[str]]:
    """Split case names into training/validation/test, deterministically.

    The names are sorted, then shuffled with ``random.Random(seed)``, so the split depends only on the set of names and
    the seed (not on discovery order or platform). Validation and test get ``round(n * fraction)`` cases; with
    ``n >= 3`` each of the three lists is non-empty (when its fraction is > 0); the rest is training.

    Args:
        names: unique case names.
        seed: the shuffle seed.
        fractions: (training, validation, test) fractions, non-negative, summing to 1 (default 0.7/0.15/0.15).

    Returns:
        ``{"training": [...], "validation": [...], "test": [...]}``, each list sorted.

    Raises:
        ValueError: duplicated names, or fractions that are negative or do not sum to 1.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    ordered = sorted(names)
    if len(set(ordered)) != len(ordered):
        dup = sorted({n for n in ordered if ordered.count(n) > 1})
        raise ValueError(f"duplicated case names: {dup}")
    rng = random.Random(seed)
    rng.shuffle(ordered)
    n = len(ordered)
    n_val = int(round(n * fractions[1]))
    n_test = int(round(n * fractions[2]))
    if n >= 3:
        n_val = max(n_val, 1 if fractions[1] > 0 else 0)
        n_test = max(n_test, 1 if fractions[2] > 0 else 0)
    # never starve training when it has a share
    while n - n_val - n_test < (1 if fractions[0] > 0 and n >= 1 else 0) and (n_val or n_test):
        if n_val >= n_test and n_val:
            n_val -= 1
        else:
            n_test -= 1
    val = ordered[:n_val]
    test = ordered[n_val : n_val + n_test]
    train = ordered[n_val + n_test :]
    return {"training": sorted(train), "validation": sorted(val), "test": sorted(test)}


def write_datalist(
    out_dir: str | os.PathLike,
    entries: Sequence[Mapping[str, str | None]],
    seed: int,
    *,
    name: str = "",
    description: str = "",
    labels: Mapping[str, str] | None = None,
    modality: Mapping[str, str] | None = None,
    spacing: Sequence[float] | float | None = None,
    tensor_image_size: str = "3D",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    filename: str = "datalist.json",
    folds: int | None = None,
) -> Path:
    """Write ``OUT/datalist.json`` (atomically) and return its path.

    Args:
        out_dir: the output folder; entry paths are relative to it.
        entries: one mapping per successful case with ``"image"`` (relative path, e.g. ``images/c1.nii.gz``) and
            optionally ``"label"`` (``None`` or missing: unlabelled). Unlabelled entries go only into ``"test"``.
            Extra keys (e.g. ``"case"``) are kept in the written entries, except ``None`` values.
        seed: split seed (see :func:`split_cases`); the labelled entries are split by their image path.
        name: dataset name.
        description: free text (e.g. provenance, "phantom").
        labels: label value (as a string) -> name, e.g. ``{"0": "background", "1": "liver"}``.
        modality: channel index (as a string) -> modality, e.g. ``{"0": "CT"}``.
        spacing: output voxel spacing in mm (a number for isotropic).
        tensor_image_size: ``"3D"`` or ``"2D"``.
        fractions: (training, validation, test) fractions.
        filename: file name inside ``out_dir``.
        folds: ``None`` (one training/validation split) or ``k >= 2``: seeded k-fold assignment of the
            training+validation cases (see the module docstring); same ``seed``.

    Returns:
        The written path.

    Raises:
        ValueError: an entry without ``"image"``, an absolute path, or duplicated images.
    """
    out = Path(out_dir)
    cleaned: list[dict[str, str]] = []
    for e in entries:
        if not e.get("image"):
            raise ValueError(f"datalist entry without an image: {dict(e)}")
        for key in ("image", "label"):
            v = e.get(key)
            if v and os.path.isabs(v):
                raise ValueError(f"datalist paths must be relative to {out}, got {key}={v}")
        cleaned.append({k: str(v) for k, v in e.items() if v is not None})
    by_image = {c["image"]: c for c in cleaned}
    if len(by_image) != len(cleaned):
        raise ValueError("duplicated images in datalist entries")
    labelled = [c["image"] for c in cleaned if c.get("label")]
    unlabelled = sorted(c["image"] for c in cleaned if not c.get("label"))
    split = split_cases(labelled, seed, fractions)
    lists = {k: [by_image[i] for i in split[k]] for k in SPLIT_KEYS}
    lists["test"] = sorted(lists["test"] + [by_image[i] for i in unlabelled], key=lambda c: c["image"])
    if folds is not None:
        pool = [c for k in ("training", "validation") for c in lists[k]]
        fold_of = assign_folds([c["image"] for c in pool], folds, seed)
        pool = [{**c, "fold": fold_of[c["image"]]} for c in sorted(pool, key=lambda c: c["image"])]
        lists["training"] = [c for c in pool if c["fold"] != 0]
        lists["validation"] = [c for c in pool if c["fold"] == 0]
    if spacing is None:
        spacing_list = None
    elif isinstance(spacing, (int, float)):
        dims = 2 if tensor_image_size.upper() == "2D" else 3
        spacing_list = [float(spacing)] * dims
    else:
        spacing_list = [float(s) for s in spacing]
    doc = {
        "name": name,
        "description": description,
        "labels": dict(labels) if labels else {"0": "background"},
        "modality": dict(modality) if modality else {"0": "unknown"},
        "spacing": spacing_list,
        "tensorImageSize": tensor_image_size,
        "numTraining": len(lists["training"]),
        "numValidation": len(lists["validation"]),
        "numTest": len(lists["test"]),
        "seed": seed,
        "fractions": [float(f) for f in fractions],
        **({"folds": int(folds)} if folds is not None else {}),
        "training": lists["training"],
        "validation": lists["validation"],
        "test": lists["test"],
    }
    path = out / filename
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return path
