"""Every failure names its object: a write that the file system refuses names the file being written.

The file size limit (``RLIMIT_FSIZE``, with SIGXFSZ ignored) makes the kernel refuse a write past it with EFBIG, the
same error path as a full disk's ENOSPC (``write`` fails without a file name), in a real CLI process, without root
or a small file system.
"""

from __future__ import annotations

import csv
import os
import resource
import signal
import subprocess
import sys

import pydicom
import pytest
import SimpleITK as sitk
import torch

from tests.conftest import REPO_ROOT
from tests.infer.helpers import read_report, set_args
from tests.reliability.faults import ct_image

LIVER = REPO_ROOT / "bundles" / "liver_ct_sat"
OVERRIDES = ['network_def={"_target_": "tests.infer.helpers.ThresholdNet"}', "roi_size=[16,16,16]"]
LIMIT = 8 * 1024  # bytes: the mask fits, the class probabilities do not


def _small_files() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.mark.slow
def test_a_refused_write_names_the_output_file(tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    sitk.WriteImage(ct_image(size=(64, 64, 24), seed=1), str(cases / "ct.nii.gz"))
    ckpt = tmp_path / "t.pt"
    torch.save({"model": {"level": torch.tensor(0.3)}}, ckpt)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "satgate_monai.infer", "--bundle", str(LIVER), "--input", str(cases), "--out",
           str(out), "--ckpt", str(ckpt), "--device", "cpu", "--no-progress", "--save-probabilities",
           *set_args(OVERRIDES)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, preexec_fn=_small_files)
    assert proc.returncode == 1, proc.stderr[-2000:]
    error = read_report(out)["ct"]["error"]
    assert f"{out}/ct_probabilities.npz: File too large" in error, error
    assert not (out / "ct_probabilities.npz").exists() and not (out / "ct_seg.nii.gz").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_a_folder_named_like_an_image_gets_a_report_row(tmp_path):
    from data_prep.cli import main as data_prep_main

    images = tmp_path / "images"
    images.mkdir()
    sitk.WriteImage(ct_image(seed=1), str(images / "good.nii.gz"))
    (images / "case.nii.gz").mkdir()
    (images / "case.nii.gz" / "notes.txt").write_text("not an image\n")
    out = tmp_path / "out"
    rc = data_prep_main(["--log-level", "WARNING", "prepare", "--no-progress", "--images", str(images), "--out",
                         str(out)])
    assert rc == 1
    with open(out / "report.csv", newline="", encoding="utf-8") as f:
        rows = {r["case"]: r for r in csv.DictReader(f)}
    assert rows["good"]["status"] == "ok"
    assert rows["case"]["status"] == "failed"
    assert rows["case"]["error"] == f"{images}/case.nii.gz: is a folder, not an image file"


@pytest.mark.slow
def test_a_dicomweb_study_without_images_is_named_once_by_server_and_study(orthanc, tmp_path):
    from tests.data_prep.dicom_factory import write_sr

    sr = pydicom.dcmread(write_sr(tmp_path / "sr.dcm"))
    orthanc.upload(tmp_path / "sr.dcm")
    ckpt = tmp_path / "t.pt"
    torch.save({"model": {"level": torch.tensor(0.3)}}, ckpt)
    address = f"dicomweb://127.0.0.1:{orthanc.port}/dicom-web?study={sr.StudyInstanceUID}"
    cmd = [sys.executable, "-m", "satgate_monai.infer", "--bundle", str(LIVER), "--input", address, "--out",
           str(tmp_path / "out"), "--ckpt", str(ckpt), "--device", "cpu", "--no-progress", *set_args(OVERRIDES)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    print(proc.stderr)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if str(sr.StudyInstanceUID) in line]
    assert len(lines) == 1, proc.stderr
    assert f"DICOMweb http://127.0.0.1:{orthanc.port}/dicom-web study {sr.StudyInstanceUID}" in lines[0]
    assert "satgate-dicomweb" not in proc.stderr and "/tmp" not in lines[0]
