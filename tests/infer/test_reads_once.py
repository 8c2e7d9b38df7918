"""Each DICOM file of a case is parsed once (one ``pydicom.dcmread``) in every entry point.

The four entry points run as users run them, each in a subprocess with ``tests/dcmread_counter`` first on PYTHONPATH
(its ``sitecustomize`` counts ``pydicom.dcmread`` per file, also inside MONAI, MONAI Label and the MONAI Deploy SDK):

- ``python -m satgate_monai.infer`` on a multi-series study, with ``--name-from patient`` (the name is taken from the
  first file's header, and that parse is handed to the reader);
- ``python -m monai.bundle run --config_file inference.json`` on a DICOM series folder (the case engine parses each
  file once; ``run.json`` records the SeriesInstanceUID from those headers, parsing nothing again);
- the MONAI Label app's DICOM path in MONAI Label's own environment: MONAI Label's conversion of a fetched series to
  NIfTI (SimpleITK/GDCM, as its DICOMweb datastore does) and the app's DICOM-SEG writer on a submitted label;
- the MONAI Deploy application in its own environment on the study (the SDK's loader parses every file; the series
  selector and the segmentation operator reuse those datasets).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tests.conftest import REPO_ROOT
from tests.infer.study import write_ct_study
from tests.infer.test_deploy_app import _run_app, _threshold_copy, deploy_python  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow

COUNTER = REPO_ROOT / "tests" / "dcmread_counter"


def _image() -> sitk.Image:
    """A small CT (HU) with a bright block: 40 x 40 x 36 voxels of 1.5 x 1.5 x 2.5 mm (the liver bundle's series
    rules want 16 slices or more)."""
    arr = np.full((36, 40, 40), -900, np.int16)
    arr[8:28, 10:30, 12:28] = 60
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.5, 1.5, 2.5))
    image.SetOrigin((-30.0, -30.0, 10.0))
    return image


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_ct_study(_image(), tmp_path_factory.mktemp("reads") / "study", patient_id="P7")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return _threshold_copy(REPO_ROOT / "bundles" / "liver_ct_sat", tmp_path_factory.mktemp("b") / "liver_ct_sat")


@pytest.fixture(scope="module")
def thin_series(study, tmp_path_factory) -> Path:
    """The thin reconstruction alone in a folder (a series as fetched from a PACS)."""
    import pydicom

    folder = tmp_path_factory.mktemp("series") / "thin"
    folder.mkdir()
    for f in sorted(study.folder.iterdir()):
        if str(pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID) == study.thin:
            shutil.copy2(f, folder / f.name)
    return folder


def _counting_env(log: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(COUNTER), str(REPO_ROOT)])
    env.update(SATGATE_DCMREAD_LOG=str(log), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", SATGATE_DEVICE="cpu")
    return env


def _reads(log: Path, folder: Path) -> dict[str, int]:
    """``pydicom.dcmread`` calls per file of ``folder`` (every file listed, 0 when never read)."""
    counts = collections.Counter(log.read_text().splitlines()) if log.is_file() else collections.Counter()
    files = [os.path.realpath(p) for p in sorted(folder.rglob("*")) if p.is_file()]
    return {Path(f).name: counts.get(f, 0) for f in files}


def _run(cmd: list[str], log: Path, cwd: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_counting_env(log), cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_cli_parses_each_file_of_a_study_once(study, bundle, tmp_path):
    log = tmp_path / "reads.log"
    _run([sys.executable, "-m", "satgate_monai.infer", "--bundle", str(bundle), "--input", str(study.folder),
          "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress", "--name-from", "patient"], log, tmp_path)
    reads = _reads(log, study.folder)
    print("CLI dcmread per file:", sorted(collections.Counter(reads.values()).items()))
    assert set(reads.values()) == {1}, reads  # every file of the study (all series, SR, dose report) exactly once
    assert list((tmp_path / "out").glob("P7_*_seg.dcm"))  # named from the header that was handed on


def test_bundle_run_parses_no_file_twice(study, thin_series, bundle, tmp_path):
    log = tmp_path / "reads.log"
    configs = bundle / "configs"
    _run([sys.executable, "-m", "monai.bundle", "run", "--config_file", str(configs / "inference.json"),
          "--meta_file", str(configs / "metadata.json"), "--bundle_root", str(bundle),
          "--dataset#data", repr([{"image": str(thin_series)}]), "--output_dir", str(tmp_path / "pred"),
          "--device", "cpu", "--num_workers", "0"], log, tmp_path)
    reads = _reads(log, thin_series)
    print("bundle run dcmread per file:", sorted(collections.Counter(reads.values()).items()))
    # every file once by the case engine; run.json's SeriesInstanceUID comes from the headers it parsed
    assert set(reads.values()) <= {0, 1}, reads
    run = json.loads((tmp_path / "pred" / "run.json").read_text())
    assert [c["series_uid"] for c in run["cases"].values()] == [study.thin], run["cases"]
    assert any((tmp_path / "pred").rglob("*.nii.gz"))


_LABEL_SCRIPT = """
import sys
import numpy as np, SimpleITK as sitk
from monailabel.datastore.utils.convert import dicom_to_nifti
from satgate_monai.label.app.datastore import write_dicom_seg

series, label = sys.argv[1], sys.argv[2]
image = sitk.ReadImage(dicom_to_nifti(series))
mask = sitk.GetImageFromArray((sitk.GetArrayFromImage(image) > 0).astype(np.uint8))
mask.CopyInformation(image)
sitk.WriteImage(mask, label)
print(write_dicom_seg(series, label, {1: "block"}, "reads once"))
"""


def test_monai_label_app_parses_each_file_at_most_once(thin_series, tmp_path):
    from tests.label.client import label_python

    log = tmp_path / "reads.log"
    _run([str(label_python()), "-c", _LABEL_SCRIPT, str(thin_series), str(tmp_path / "label.nii.gz")], log, tmp_path)
    reads = _reads(log, thin_series)
    print("MONAI Label dcmread per file:", sorted(collections.Counter(reads.values()).items()))
    assert max(reads.values()) <= 1, reads


def test_deploy_app_parses_each_file_once(deploy_python, study, bundle, tmp_path):  # noqa: F811
    log = tmp_path / "reads.log"
    out = tmp_path / "out"
    out.mkdir()
    env = _counting_env(log)
    r = _run_app(deploy_python, study.folder, out, bundle, PYTHONPATH=env["PYTHONPATH"], SATGATE_DCMREAD_LOG=str(log))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    reads = _reads(log, study.folder)
    print("Deploy dcmread per file:", sorted(collections.Counter(reads.values()).items()))
    assert set(reads.values()) == {1}, reads
    assert json.loads(json.dumps(reads))  # printed above
    assert (out / "study_seg.dcm").is_file()
