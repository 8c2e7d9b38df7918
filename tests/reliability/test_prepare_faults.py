"""Fault catalogue of ``python -m data_prep prepare`` / ``import``: every bad input is refused in one line.

Each test builds a batch in a temporary folder (good cases plus one faulty case), runs the command in-process and
checks: the exit code, the one-line message naming the file and the fault, nothing written for the faulty case, the
other cases finished, and the inputs unchanged.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from data_prep.cli import main
from tests.reliability.faults import FILE_FAULTS, MAX_LINE, ct_image, label_image, one_error_line, snapshot


def _report(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "report.csv", newline="", encoding="utf-8") as f:
        return {r["case"]: r for r in csv.DictReader(f)}


def _prepare(*args: str) -> int:
    return main(["--log-level", "WARNING", "prepare", "--no-progress", *args])


@pytest.mark.parametrize("fault", sorted(FILE_FAULTS))
def test_faulty_image_fails_its_case_only(fault, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    sitk.WriteImage(ct_image(seed=1), str(images / "good1.nii.gz"))
    sitk.WriteImage(ct_image(seed=2), str(images / "good2.mha"))
    bad, pattern = FILE_FAULTS[fault](images, "bad")
    before = snapshot(images)
    out = tmp_path / "out"
    rc = _prepare("--images", str(images), "--out", str(out))
    assert rc == 1
    rows = _report(out)
    assert rows["good1"]["status"] == "ok" and rows["good2"]["status"] == "ok"
    row = rows["bad"]
    assert row["status"] == "failed"
    assert bad.name in row["error"], row["error"]
    assert re.search(pattern, row["error"], flags=re.IGNORECASE), row["error"]
    assert len(row["error"]) <= MAX_LINE and "\n" not in row["error"]
    assert not list((out / "images").glob("bad*")), "nothing may be written for a refused case"
    assert (out / "images" / "good1.nii.gz").is_file() and (out / "images" / "good2.nii.gz").is_file()
    assert snapshot(images) == before
    assert "Traceback" not in capsys.readouterr().err


def test_nonfinite_voxels_can_be_replaced_and_the_report_says_so(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    FILE_FAULTS["nan_voxels_nifti"](images, "nan")
    out = tmp_path / "out"
    assert _prepare("--images", str(images), "--out", str(out), "--nonfinite", "zero") == 0
    row = _report(out)["nan"]
    assert row["status"] == "ok" and "replaced 16 non-finite" in row["warning"]
    assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(out / "images" / "nan.nii.gz")))).all()


def _labelled_batch(tmp_path: Path, bad_label) -> tuple[Path, Path]:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for name in ("good", "bad"):
        img = ct_image(seed=3)
        sitk.WriteImage(img, str(images / f"{name}.nii.gz"))
        lab = label_image(img) if name == "good" else bad_label(img)
        sitk.WriteImage(lab, str(labels / f"{name}.nii.gz"))
    return images, labels


def test_undeclared_label_value_is_refused(tmp_path):
    def with_seven(img):
        lab = label_image(img)
        lab[1, 1, 1] = 7
        return lab

    images, labels = _labelled_batch(tmp_path, with_seven)
    before = snapshot(labels)
    out = tmp_path / "out"
    assert _prepare("--images", str(images), "--labels", str(labels), "--out", str(out), "--label-values", "0,1") == 1
    rows = _report(out)
    assert rows["good"]["status"] == "ok"
    assert rows["bad"]["status"] == "failed"
    assert "bad.nii.gz" in rows["bad"]["error"] and "{7}" in rows["bad"]["error"]
    assert not (out / "labels" / "bad.nii.gz").exists() and not (out / "images" / "bad.nii.gz").exists()
    assert snapshot(labels) == before


def test_nan_in_a_label_is_refused(tmp_path):
    def nan_label(img):
        arr = sitk.GetArrayFromImage(label_image(img)).astype(np.float32)
        arr[0, 0, 0] = np.nan
        lab = sitk.GetImageFromArray(arr)
        lab.CopyInformation(img)
        return lab

    images, labels = _labelled_batch(tmp_path, nan_label)
    out = tmp_path / "out"
    assert _prepare("--images", str(images), "--labels", str(labels), "--out", str(out)) == 1
    rows = _report(out)
    assert rows["good"]["status"] == "ok" and rows["bad"]["status"] == "failed"
    assert "bad.nii.gz" in rows["bad"]["error"] and "non-finite" in rows["bad"]["error"]
    assert not (out / "labels" / "bad.nii.gz").exists()


def test_all_background_label_is_reported(tmp_path):
    def empty(img):
        return label_image(img, value=0)

    images, labels = _labelled_batch(tmp_path, empty)
    out = tmp_path / "out"
    assert _prepare("--images", str(images), "--labels", str(labels), "--out", str(out)) == 0
    rows = _report(out)
    assert rows["bad"]["status"] == "ok" and "all background" in rows["bad"]["warning"]
    assert rows["good"]["warning"] == ""


def test_label_foreground_vanishing_on_the_output_grid_is_reported(tmp_path):
    def speck(img):
        lab = label_image(img, value=0)
        lab[3, 3, 1] = 1  # one 1.5 mm voxel between 8 mm output voxel centres
        return lab

    images, labels = _labelled_batch(tmp_path, speck)
    out = tmp_path / "out"
    assert _prepare("--images", str(images), "--labels", str(labels), "--out", str(out), "--spacing", "8") == 0
    assert "vanished" in _report(out)["bad"]["warning"]


def _msd_liver(root: Path, bad_value: int | None) -> Path:
    task = root / "Task03_Liver"
    (task / "imagesTr").mkdir(parents=True)
    (task / "labelsTr").mkdir()
    for i in range(3):
        img = ct_image(seed=i)
        sitk.WriteImage(img, str(task / "imagesTr" / f"liver_{i}.nii.gz"))
        lab = label_image(img)
        if i == 1 and bad_value is not None:
            lab[2, 2, 2] = bad_value
        sitk.WriteImage(lab, str(task / "labelsTr" / f"liver_{i}.nii.gz"))
    (task / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "liver", "2": "cancer"}}))
    return root


def test_msd_label_value_not_in_dataset_json_is_refused(tmp_path, capsys):
    src = _msd_liver(tmp_path / "msd", bad_value=7)
    before = snapshot(src)
    out = tmp_path / "out"
    rc = main(["--log-level", "WARNING", "import", "--dataset", "msd-liver", "--src", str(src), "--out", str(out),
               "--no-progress"])
    assert rc == 1
    rows = _report(out)
    assert rows["liver_0"]["status"] == "ok" and rows["liver_2"]["status"] == "ok"
    err = rows["liver_1"]["error"]
    assert rows["liver_1"]["status"] == "failed" and "liver_1.nii.gz" in err and "{7}" in err, err
    assert not (out / "labels" / "liver_1.nii.gz").exists()
    assert snapshot(src) == before
    assert "Traceback" not in capsys.readouterr().err


def test_out_is_a_file(tmp_path, capsys):
    sitk.WriteImage(ct_image(), str(tmp_path / "ct.nii.gz"))
    (tmp_path / "out").write_text("not a folder")
    rc = _prepare("--images", str(tmp_path / "ct.nii.gz"), "--out", str(tmp_path / "out"))
    assert rc == 2
    line = one_error_line(capsys.readouterr().err)
    assert "out" in line and ("Not a directory" in line or "not a folder" in line or "exists" in line), line
    assert (tmp_path / "out").read_text() == "not a folder"


def test_out_in_a_read_only_place(tmp_path, capsys):
    import os

    sitk.WriteImage(ct_image(), str(tmp_path / "ct.nii.gz"))
    if os.geteuid() == 0:  # root writes anywhere on an ordinary file system: /sys refuses even root
        out = Path("/sys/satgate-readonly-test/out")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        out = ro / "out"
    rc = _prepare("--images", str(tmp_path / "ct.nii.gz"), "--out", str(out))
    assert rc == 2
    line = one_error_line(capsys.readouterr().err)
    assert "satgate-readonly-test" in line or "ro/out" in line, line


def test_ctrl_c_exits_130_without_traceback(tmp_path, capsys, monkeypatch):
    import data_prep.pipeline

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(data_prep.pipeline, "process_case", interrupted)
    sitk.WriteImage(ct_image(), str(tmp_path / "ct.nii.gz"))
    rc = _prepare("--images", str(tmp_path / "ct.nii.gz"), "--out", str(tmp_path / "out"))
    assert rc == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err


def test_rerun_prepares_a_cut_output_again(tmp_path):
    """An output cut short (a copy or a disk problem after the run) is never kept as done."""
    sitk.WriteImage(ct_image(), str(tmp_path / "ct.nii.gz"))
    out = tmp_path / "out"
    assert _prepare("--images", str(tmp_path / "ct.nii.gz"), "--out", str(out)) == 0
    done = out / "images" / "ct.nii.gz"
    done.write_bytes(done.read_bytes()[: done.stat().st_size // 2])
    assert _prepare("--images", str(tmp_path / "ct.nii.gz"), "--out", str(out)) == 0
    assert _report(out)["ct"]["status"] == "ok"
    gzip.decompress(done.read_bytes())  # the whole stream again


def test_short_write_on_a_full_disk_leaves_no_output(tmp_path, monkeypatch):
    """ITK may write a short file on a full disk without raising: no output may appear under its final name."""
    import data_prep.writers as writers

    real = writers.sitk.WriteImage

    def short(image, path, *args, **kwargs):
        real(image, path, *args, **kwargs)
        Path(path).write_bytes(Path(path).read_bytes()[:1000])

    sitk.WriteImage(ct_image(), str(tmp_path / "ct.nii.gz"))
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(writers.sitk, "WriteImage", short)
        assert _prepare("--images", str(tmp_path / "ct.nii.gz"), "--out", str(out)) == 1
    row = _report(out)["ct"]
    assert row["status"] == "failed" and "truncated NIfTI" in row["error"], row["error"]
    assert not (out / "images" / "ct.nii.gz").exists() and not list((out / "images").glob(".*"))
    assert _prepare("--images", str(tmp_path / "ct.nii.gz"), "--out", str(out)) == 0
    assert _report(out)["ct"]["status"] == "ok"


@pytest.mark.slow
def test_real_ctrl_c_during_a_batch(tmp_path):
    """SIGINT to a running ``prepare``: exit 130, the line ``interrupted``, only complete outputs, no temporaries."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO_ROOT

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        img = sitk.GetImageFromArray(rng.normal(0, 100, (150, 150, 150)).astype(np.int16))
        img.SetSpacing((0.8, 0.8, 0.8))
        sitk.WriteImage(img, str(images / f"c{i:02d}.nii.gz"))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "data_prep", "--log-level", "WARNING", "prepare", "--images",
                             str(images), "--out", str(out), "--no-progress", "--compression-level", "9"],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:  # interrupt once the first case is written
        if (out / "images").is_dir() and list((out / "images").glob("c*.nii.gz")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted"
    written = sorted((out / "images").iterdir())
    assert 0 < len(written) < 16 and not [p for p in written if p.name.startswith(".")]
    for p in written:
        gzip.decompress(p.read_bytes())  # every output under a final name is complete
