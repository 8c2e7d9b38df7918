"""Model-zoo habits for ``inference.json``: ``--dataset_dir`` may be a plain folder of images, not only data_prep's.

A MONAI model-zoo bundle is pointed at a folder of images. :func:`inference_datalist` takes either a ``data_prep``
output folder (``datalist.json``: its ``split``, as :func:`~satgate_monai.bundle.data.load_datalist` reads it) or a
folder of image files (NIfTI, NRRD, MHA), DICOM series folders, or 2D pictures (PNG, JPEG), found by data_prep's
:func:`~data_prep.readers.discover_cases` (the inference CLI finds its cases the same way). Anything else is refused
in one line saying what was expected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.files import IMAGE_SUFFIXES, PICTURE_SUFFIXES
from satgate_monai.bundle.data import DatasetNotFoundError, load_datalist

__all__ = ["image_folder_datalist", "inference_datalist"]

logger = logging.getLogger(__name__)


def image_folder_datalist(folder: str | Path) -> list[dict[str, str]]:
    """``[{"image": "/abs/case.nii.gz"}, ...]`` for every case of ``folder``, sorted by case name.

    ``folder`` holds image files, DICOM series (sub-)folders or is one DICOM series folder (data_prep's
    ``discover_cases``); a folder holding only 2D pictures lists those.

    Raises:
        DatasetNotFoundError: ``folder`` is missing or holds none of these (one line saying what was expected).
    """
    from data_prep.readers import discover_cases

    root = Path(str(folder)).expanduser()
    expected = (f"a data_prep output folder (datalist.json) or a folder of images ({', '.join(IMAGE_SUFFIXES)}), "
                f"DICOM series folders or 2D pictures ({', '.join(PICTURE_SUFFIXES)})")
    if not root.is_dir():
        raise DatasetNotFoundError(f"dataset_dir {str(root)!r} is not a folder: expected {expected}")
    try:
        cases = discover_cases(root)
    except ValueError:
        cases = {p.name: p for p in sorted(root.iterdir()) if p.is_file() and p.name.lower().endswith(PICTURE_SUFFIXES)}
    if not cases:
        raise DatasetNotFoundError(f"dataset_dir {str(root)!r} holds no case: expected {expected}")
    logger.info("%s: %d case(s) found in a plain folder (no datalist.json)", root, len(cases))
    return [{"image": str(Path(p).resolve())} for p in cases.values()]


def inference_datalist(
    dataset_dir: str | Path,
    split: str = "test",
    task: str | None = None,
    spacing: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """The images ``inference.json`` segments: ``split`` of a data_prep folder's ``datalist.json`` (its spacing
    checked against ``spacing``), else every case of a plain folder (:func:`image_folder_datalist`).

    Raises:
        DatasetNotFoundError, ValueError: as :func:`~satgate_monai.bundle.data.load_datalist` for a data_prep
            folder; one line saying what was expected for a folder that is neither.
    """
    root = Path(str(dataset_dir)).expanduser()
    if not root.is_dir() or (root / "datalist.json").is_file():  # load_datalist names the commands that create it
        return load_datalist(dataset_dir, split, task=task, keys=["image"], spacing=spacing)
    return image_folder_datalist(dataset_dir)
