"""A data_prep dataset (``datalist.json`` + its images and labels) in nnU-Net v2's raw format.

``OUT/DatasetXXX_Name/``: ``dataset.json`` (``channel_names``, ``labels`` name -> value, ``numTraining``,
``file_ending``), ``imagesTr/<case>_<CCCC>.nii.gz`` (one file per channel), ``labelsTr/<case>.nii.gz``; the datalist's
``test`` cases go to ``imagesTs``/``labelsTs``. ``training`` and ``validation`` both become nnU-Net training cases:
nnU-Net makes its own five folds. The folder is built under a temporary name beside its final place and renamed only
when complete; the input dataset is only read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from data_prep.atomic import atomic_copy, atomic_write, atomic_write_text, fsync_dir

__all__ = ["NNUNET_FILE_ENDING", "export_nnunet", "nnunet_dataset_json"]

NNUNET_FILE_ENDING = ".nii.gz"


def _case_name(image: str) -> str:
    """``images/liver_3.nii.gz`` -> ``liver_3`` (nnU-Net's case identifier; the channel suffix is added later)."""
    name = Path(image).name
    for ending in (".nii.gz", ".nii"):
        if name.endswith(ending):
            return name[: -len(ending)]
    raise ValueError(f"{image}: nnU-Net export reads NIfTI (.nii.gz/.nii) images only")


def nnunet_dataset_json(datalist: dict[str, Any], num_training: int, n_channels: int) -> dict[str, Any]:
    """nnU-Net v2's ``dataset.json`` for a data_prep datalist (labels ``{"0": "background"}`` become
    ``{"background": 0}``; ``modality`` becomes ``channel_names``, ``CT`` kept so nnU-Net normalises by HU)."""
    labels = {str(name): int(value) for value, name in sorted(datalist["labels"].items(), key=lambda kv: int(kv[0]))}
    if labels.get("background") != 0:
        raise ValueError(f"nnU-Net needs label 0 named 'background', the datalist has {datalist['labels']}")
    modality = datalist.get("modality") or {"0": "unknown"}
    channels = {str(c): str(modality.get(str(c), "unknown")) for c in range(n_channels)}
    return {"name": datalist.get("name", ""), "description": datalist.get("description", ""),
            "channel_names": channels, "labels": labels, "numTraining": num_training,
            "file_ending": NNUNET_FILE_ENDING}


def _write_channels(src: Path, dest_stem: Path) -> int:
    """``<dest_stem>_0000.nii.gz`` (and ``_0001``... for a multi-channel image); returns the channel count. A
    single-channel ``.nii.gz`` is copied byte for byte."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(src))
    reader.ReadImageInformation()
    n = reader.GetNumberOfComponents()
    if n == 1 and reader.GetDimension() <= 3 and src.name.endswith(".nii.gz"):
        atomic_copy(src, f"{dest_stem}_0000{NNUNET_FILE_ENDING}")
        return 1
    image = sitk.ReadImage(str(src))
    if image.GetDimension() == 4:  # (x, y, z, c) NIfTI read as a 4D scalar image
        size = list(image.GetSize())
        channels = [sitk.Extract(image, size[:3] + [0], [0, 0, 0, c]) for c in range(size[3])]
    else:
        channels = [sitk.VectorIndexSelectionCast(image, c) if n > 1 else image for c in range(n)]
    for c, channel in enumerate(channels):
        atomic_write(f"{dest_stem}_{c:04d}{NNUNET_FILE_ENDING}", lambda tmp, ch=channel: sitk.WriteImage(
            ch, str(tmp), True, imageIO="NiftiImageIO"))
    return len(channels)


def export_nnunet(datalist_path: Path, out_root: Path, dataset_id: int, name: str) -> Path:
    """Write the dataset of ``datalist_path`` as ``out_root/Dataset{id:03d}_{name}``; returns that folder.

    Raises:
        ValueError: an id outside 1-999, a name nnU-Net cannot use, an id already taken in ``out_root``, a case
            without a label, or images with different channel counts.
        FileExistsError: the target folder exists.
        FileNotFoundError: the datalist or a file it names is missing.
    """
    if not 1 <= dataset_id <= 999:
        raise ValueError(f"nnU-Net dataset ids are 1-999, got {dataset_id}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise ValueError(f"dataset name must be letters, digits, '_' or '-', got {name!r}")
    if not datalist_path.is_file():
        raise FileNotFoundError(f"{datalist_path} does not exist (a data_prep dataset has a datalist.json)")
    try:
        datalist = json.loads(datalist_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{datalist_path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    base = datalist_path.parent
    folder_name = f"Dataset{dataset_id:03d}_{name}"
    final = out_root / folder_name
    if final.exists():
        raise FileExistsError(f"{final} exists; remove it or choose another --id/--name")
    taken = [p.name for p in out_root.glob(f"Dataset{dataset_id:03d}_*")] if out_root.is_dir() else []
    if taken:
        raise ValueError(f"dataset id {dataset_id} is already used in {out_root} by {taken}")
    splits = {"Tr": datalist.get("training", []) + datalist.get("validation", []), "Ts": datalist.get("test", [])}
    if not splits["Tr"]:
        raise ValueError(f"{datalist_path}: no training or validation cases")

    out_root.mkdir(parents=True, exist_ok=True)
    tmp = out_root / f".{folder_name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        n_channels: set[int] = set()
        for suffix, cases in splits.items():
            for case in cases:
                if "label" not in case:
                    raise ValueError(f"{datalist_path}: case {case.get('image')} has no label")
                stem = _case_name(case["image"])
                for key in ("image", "label"):
                    if not (base / case[key]).is_file():
                        raise FileNotFoundError(f"{base / case[key]} (named in {datalist_path}) does not exist")
                (tmp / f"images{suffix}").mkdir(parents=True, exist_ok=True)
                n_channels.add(_write_channels(base / case["image"], tmp / f"images{suffix}" / stem))
                atomic_copy(base / case["label"], tmp / f"labels{suffix}" / f"{stem}{NNUNET_FILE_ENDING}")
        if len(n_channels) != 1:
            raise ValueError(f"{datalist_path}: images with different channel counts {sorted(n_channels)}")
        dataset_json = nnunet_dataset_json(datalist, len(splits["Tr"]), n_channels.pop())
        atomic_write_text(tmp / "dataset.json", json.dumps(dataset_json, indent=4) + "\n")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(out_root)
    return final
