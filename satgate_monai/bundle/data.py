"""Loud loading of a ``data_prep`` output folder for the bundles.

A bundle's ``dataset_dir`` is a folder written by ``python -m data_prep import|prepare``: ``datalist.json`` with
``training``/``validation``/``test`` lists of ``{"image": "images/..", "label": "labels/.."}`` paths relative to the
folder. MONAI skips a run whose data list is empty with a warning and exit code 0; these helpers raise instead, with
a message naming the commands that create the data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.commands.import_dataset import DATASETS as DATASET_NAMES
from satgate_monai.tasks import TASKS

__all__ = [
    "DatasetNotFoundError",
    "TASK_DATASETS",
    "check_spacing",
    "create_data_hint",
    "load_datalist",
    "require_data",
    "require_file",
]

logger = logging.getLogger(__name__)

# task name -> the `data_prep import --dataset` value for its demo phantoms (the public dataset's layout)
TASK_DATASETS = {name: task.data.dataset for name, task in TASKS.items()}


class DatasetNotFoundError(FileNotFoundError):
    """A bundle's ``dataset_dir`` is missing, has no ``datalist.json``, or lists no usable case."""


def create_data_hint(dataset_dir: str | Path, task: str | None = None) -> str:
    """The commands that create a ``data_prep`` output at ``dataset_dir`` (demo phantoms or a public dataset)."""
    task_arg = task if task in TASK_DATASETS else "|".join(TASK_DATASETS)
    dataset = TASK_DATASETS.get(task or "", "|".join(DATASET_NAMES))
    return (
        "Create it with data_prep, e.g. from demo phantoms:\n"
        f"    python -m data_prep demo --task {task_arg} --out RAW\n"
        f"    python -m data_prep import --dataset {dataset} --src RAW --out {dataset_dir}\n"
        "or from your own files: python -m data_prep prepare --images ... --labels ... "
        f"--out {dataset_dir}\n"
        "then pass it to the bundle with --dataset_dir."
    )


def _absolute_item(item: Any, i: int, keys: Sequence[str], root: Path, datalist_file: Path, split: str,
                   hint: str) -> dict[str, str]:
    """Item ``i`` of a split restricted to ``keys``, each an absolute path of an existing file (see
    :func:`load_datalist` for the errors)."""
    if not isinstance(item, dict) or any(k not in item for k in keys):
        raise ValueError(f"{datalist_file}: item {i} of {split!r} must have the keys {list(keys)}, got {item!r}")
    entry = {}
    for k in keys:
        path = Path(str(item[k]))
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise DatasetNotFoundError(
                f"{datalist_file}: {split!r} item {i} names {k} file {str(path)!r}, which does not exist.\n{hint}"
            )
        entry[k] = str(path)
    return entry


def load_datalist(
    dataset_dir: str | Path,
    split: str = "training",
    task: str | None = None,
    keys: Sequence[str] = ("image", "label"),
    spacing: Sequence[float] | None = None,
    fold: int | None = None,
) -> list[dict[str, Any]]:
    """Read one split of ``dataset_dir/datalist.json`` as absolute paths, failing loudly when there is no data.

    With ``fold=f`` (a datalist written with ``--folds k``), ``"training"`` is every training/validation case whose
    ``"fold"`` is not ``f`` and ``"validation"`` those whose fold is ``f``; ``"test"`` is unchanged.

    Args:
        dataset_dir: a ``data_prep`` output folder.
        split: ``"training"``, ``"validation"`` or ``"test"``.
        task: ``"liver" | "prostate" | "skin"``, only used to name the right commands in error messages.
        keys: the keys every item must have and that are returned (e.g. ``("image",)`` for inference).
        spacing: the bundle's voxel size in mm (its ``pixdim``); the ``spacing`` that ``datalist.json`` records (when
            it records one) must match it.
        fold: ``None`` (the datalist's own lists) or the cross-validation fold ``0..k-1``.

    Returns:
        ``[{"image": "/abs/images/c.nii.gz", "label": "/abs/labels/c.nii.gz"}, ...]`` restricted to ``keys``.

    Raises:
        DatasetNotFoundError: the folder or its ``datalist.json`` is missing, the split is absent or empty, or a
            listed file does not exist. The message names the commands that create the data.
        ValueError: ``datalist.json`` is not valid JSON, an item lacks one of ``keys``, the data was prepared at
            another spacing than ``spacing``, or ``fold`` is given for a datalist without folds or is out of range.
    """
    root = Path(str(dataset_dir)).expanduser()
    hint = create_data_hint(dataset_dir, task)
    if not root.is_dir():
        raise DatasetNotFoundError(f"dataset_dir {str(root)!r} does not exist or is not a folder.\n{hint}")
    datalist_file = root / "datalist.json"
    if not datalist_file.is_file():
        raise DatasetNotFoundError(
            f"dataset_dir {str(root)!r} has no datalist.json: it is not a data_prep output folder.\n{hint}"
        )
    try:
        content = json.loads(datalist_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{datalist_file} is not valid JSON: {e}") from e
    if spacing is not None and isinstance(content, dict):
        check_spacing(content.get("spacing"), spacing, datalist_file)
    items = content.get(split) if isinstance(content, dict) else None
    if fold is not None and split in ("training", "validation"):
        items = _fold_items(content, datalist_file, int(fold), split)
    if not items:
        available = {k: len(v) for k, v in content.items() if isinstance(v, list)} if isinstance(content, dict) else {}
        raise DatasetNotFoundError(
            f"{datalist_file} lists no {split!r} case (lists found: {available}); a bundle cannot run on an empty "
            f"dataset.\n{hint}"
        )
    out = [_absolute_item(item, i, keys, root, datalist_file, split, hint) for i, item in enumerate(items)]
    logger.info("%s: %d %s case(s)%s", datalist_file, len(out), split, "" if fold is None else f" (fold {fold})")
    return out


def check_spacing(recorded: Sequence[float] | float | None, pixdim: Sequence[float], datalist_file: str | Path) -> None:
    """Raise ``ValueError`` (one line naming both) unless ``recorded`` (a datalist's ``spacing``) equals ``pixdim``.

    ``recorded=None`` (2D data, or a hand-written datalist that records no spacing) passes; a number means isotropic.
    """
    if recorded is None:
        return
    want = np.asarray([float(v) for v in pixdim], dtype=np.float64)
    try:
        got = np.broadcast_to(np.asarray(recorded, dtype=np.float64), want.shape)
    except ValueError:
        got = None
    if got is None or not np.allclose(got, want, rtol=1e-5, atol=0.0):
        raise ValueError(
            f"{datalist_file} records spacing {recorded} mm but the bundle's pixdim is {want.tolist()} mm: prepare "
            "the data again with data_prep --spacing at the bundle's pixdim, or override the bundle's pixdim"
        )


def _fold_items(content: dict, datalist_file: Path, fold: int, split: str) -> list[dict[str, Any]]:
    """The training (fold != ``fold``) or validation (fold == ``fold``) items of a k-fold datalist."""
    k = content.get("folds")
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"fold={fold} requested but {datalist_file} has no cross-validation folds: write it with "
                         "`python -m data_prep import|prepare ... --folds K`")
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in 0..{k - 1} for {datalist_file} ({k} folds), got {fold}")
    pool = [it for key in ("training", "validation") for it in content.get(key) or []]
    return [it for it in pool if isinstance(it, dict) and (it.get("fold") == fold) == (split == "validation")]


def require_data(data: Sequence[Any] | Any, name: str = "dataset") -> int:
    """Raise :class:`DatasetNotFoundError` if ``data`` (a list, a Dataset or a DataLoader) is empty; return its length.

    Used in the bundles' ``run`` section so an overridden empty data list (``--train#dataset#data "[]"``) fails
    instead of MONAI's warning-and-exit-0.
    """
    n = len(data)
    if n == 0:
        hint = create_data_hint("DIR")
        raise DatasetNotFoundError(f"{name} is empty: nothing to train, evaluate or infer on.\n{hint}")
    return n


def require_file(path: str | Path, what: str, how: str) -> str:
    """Return ``str(path)`` if it is an existing file, else raise ``FileNotFoundError`` naming ``what`` and ``how``.

    Example: ``require_file(ckpt, "checkpoint", "train the bundle first (configs/train.json)")``.
    """
    if not Path(str(path)).is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist: {how}")
    return str(path)
