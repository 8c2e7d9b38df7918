"""``python -m data_prep export-nnunet``: a data_prep dataset in nnU-Net v2's raw layout, atomic, inputs unread-only."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.cli import main
from tests.conftest import REPO_ROOT
from tests.nnunet.phantom import write_tiny_dataset


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    write_tiny_dataset(out, cases=5)
    return out


def test_export_writes_nnunet_raw_layout(prepared, tmp_path):
    before = _digests(prepared)
    raw = tmp_path / "raw"
    assert main(["export-nnunet", "--src", str(prepared), "--out", str(raw), "--id", "7", "--name", "Blobs"]) == 0
    folder = raw / "Dataset007_Blobs"
    meta = json.loads((folder / "dataset.json").read_text())
    datalist = json.loads((prepared / "datalist.json").read_text())
    train = datalist["training"] + datalist["validation"]
    assert meta["channel_names"] == {"0": "CT"} and meta["labels"] == {"background": 0, "blob": 1}
    assert meta["numTraining"] == len(train) and meta["file_ending"] == ".nii.gz"
    stems = sorted(Path(c["image"]).name[:-7] for c in train)
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == [f"{s}_0000.nii.gz" for s in stems]
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == [f"{s}.nii.gz" for s in stems]
    tests = sorted(Path(c["image"]).name[:-7] for c in datalist["test"])
    assert sorted(p.name for p in (folder / "imagesTs").iterdir()) == [f"{s}_0000.nii.gz" for s in tests]
    # single-channel .nii.gz files are copied byte for byte; the input is untouched; nothing temporary is left
    assert (folder / "imagesTr" / f"{stems[0]}_0000.nii.gz").read_bytes() == \
        (prepared / "images" / f"{stems[0]}.nii.gz").read_bytes()
    assert _digests(prepared) == before
    assert [p.name for p in raw.iterdir()] == ["Dataset007_Blobs"]


def test_export_splits_channels(tmp_path):
    import numpy as np
    import SimpleITK as sitk

    write_tiny_dataset(tmp_path / "prep", cases=3)
    image = tmp_path / "prep" / "images" / "blob_0.nii.gz"
    vector = sitk.Compose([sitk.ReadImage(str(image))] * 2)  # a two-channel image, e.g. T2 + ADC
    sitk.WriteImage(vector, str(image))
    from data_prep.nnunet_export import export_nnunet

    datalist = json.loads((tmp_path / "prep" / "datalist.json").read_text())
    for key in ("training", "validation", "test"):
        for case in datalist[key]:
            if case["image"] != "images/blob_0.nii.gz":
                sitk.WriteImage(sitk.Compose([sitk.ReadImage(str(tmp_path / "prep" / case["image"]))] * 2),
                                str(tmp_path / "prep" / case["image"]))
    folder = export_nnunet(tmp_path / "prep" / "datalist.json", tmp_path / "raw", 8, "Two")
    meta = json.loads((folder / "dataset.json").read_text())
    assert list(meta["channel_names"]) == ["0", "1"]
    split = "Ts" if any(c["image"].endswith("blob_0.nii.gz") for c in datalist["test"]) else "Tr"
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"images{split}" / "blob_0_0001.nii.gz")))
    assert a.shape == (16, 24, 24) and np.array_equal(a, sitk.GetArrayFromImage(vector)[..., 1])


def test_export_refuses_taken_id_and_bad_input_in_one_line(prepared, tmp_path):
    raw = tmp_path / "raw"
    (raw / "Dataset007_Other").mkdir(parents=True)
    cmd = [sys.executable, "-m", "data_prep", "export-nnunet", "--src", str(prepared), "--out", str(raw),
           "--id", "7", "--name", "Blobs"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Dataset007_Other" in proc.stderr
    assert [p.name for p in raw.iterdir()] == ["Dataset007_Other"]  # nothing half-written
    missing = tmp_path / "nowhere"
    proc = subprocess.run(cmd[:5] + [str(missing)] + cmd[6:], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "datalist.json" in proc.stderr
