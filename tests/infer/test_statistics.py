"""Per-label statistics against numpy on a planted mask; ``--stats json``, ``report.csv`` columns and ``run.json``."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import ndimage

from satgate_monai.infer.cli import main
from satgate_monai.infer.statistics import label_statistics
from tests.infer.conftest import THRESHOLD_OVERRIDES
from tests.infer.helpers import rotation, set_args


def _bundle_version(name: str) -> str:
    """The version a bundle's metadata.json declares (what run.json must record)."""
    from satgate_monai.resources import bundle_path

    return json.loads((bundle_path(name) / "configs" / "metadata.json").read_text())["version"]


def _oblique(arr: np.ndarray, dtype=sitk.sitkFloat32) -> sitk.Image:
    img = sitk.Cast(sitk.GetImageFromArray(arr), dtype)
    img.SetSpacing((0.8, 1.1, 2.5))
    img.SetOrigin((-40.0, 12.5, 100.0))
    img.SetDirection(rotation(30.0, 10.0).flatten().tolist())
    return img


def test_statistics_equal_numpy_on_a_planted_mask():
    rng = np.random.default_rng(0)
    values = rng.normal(40.0, 15.0, size=(14, 30, 26))  # (z, y, x)
    lab = np.zeros(values.shape, np.uint8)
    lab[2:9, 5:17, 4:11] = 1  # label 1: two components (a box and a single diagonal voxel)
    lab[12, 25, 20] = 1
    lab[10:13, 20:24, 15:19] = 2
    image, label = _oblique(values), _oblique(lab, sitk.sitkUInt8)
    stats = label_statistics(label, image, {1: "organ", 2: "lesion", 3: "absent"})
    d = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    for value, name in ((1, "organ"), (2, "lesion")):
        m = lab == value
        st = stats[name]
        inside = values.astype(np.float32)[m].astype(np.float64)
        assert st["voxels"] == m.sum()
        assert st["volume_ml"] == pytest.approx(m.sum() * 0.8 * 1.1 * 2.5 / 1000)
        assert st["mean"] == pytest.approx(inside.mean()) and st["std"] == pytest.approx(inside.std())
        assert st["min"] == pytest.approx(inside.min()) and st["max"] == pytest.approx(inside.max())
        assert st["components"] == ndimage.label(m, structure=np.ones((3, 3, 3)))[1]
        world = np.argwhere(m)[:, ::-1] @ d.T + np.asarray(image.GetOrigin())  # voxel centres, LPS mm
        # oblique grid: the box around the transformed index-box corners contains every voxel centre
        assert np.all(np.asarray(st["bbox_min_mm"]) <= world.min(0) + 1e-6)
        assert np.all(np.asarray(st["bbox_max_mm"]) >= world.max(0) - 1e-6)
    assert stats["organ"]["components"] == 2 and stats["lesion"]["components"] == 1
    axis_aligned = sitk.GetImageFromArray(lab)
    axis_aligned.SetSpacing((0.8, 1.1, 2.5))
    st = label_statistics(axis_aligned, sitk.GetImageFromArray(values), {2: "lesion"})["lesion"]
    idx = np.argwhere(lab == 2)[:, ::-1] * np.array([0.8, 1.1, 2.5])
    np.testing.assert_allclose(st["bbox_min_mm"], idx.min(0))  # axis-aligned: exactly the voxel centres' box
    np.testing.assert_allclose(st["bbox_max_mm"], idx.max(0))
    assert stats["absent"]["voxels"] == 0 and np.isnan(stats["absent"]["mean"]) and stats["absent"]["components"] == 0


@pytest.mark.slow
def test_stats_json_report_columns_and_run_json(liver_bundle, lung_crop, ct_dicom, threshold_ckpt, tmp_path):
    import pydicom

    folder, _uids = ct_dicom
    cases = tmp_path / "cases"
    cases.mkdir()
    small = lung_crop[32:96, 32:96, 6:18]
    sitk.WriteImage(small, str(cases / "ct.nii.gz"))
    shutil.copytree(folder, cases / "lung1")
    out = tmp_path / "out"
    rc = main(["--bundle", str(liver_bundle), "--input", str(cases), "--out", str(out), "--ckpt", str(threshold_ckpt),
               "--device", "cpu", "--no-progress", "--stats", "json", *set_args(THRESHOLD_OVERRIDES)])
    assert rc == 0
    with open(out / "report.csv", newline="") as f:
        rows = {r["case"]: r for r in csv.DictReader(f)}
    doc = json.loads((out / "ct_stats.json").read_text())
    seg = sitk.ReadImage(str(out / "ct_seg.nii.gz"))
    m = sitk.GetArrayFromImage(seg) == 1
    hu = sitk.GetArrayFromImage(small).astype(np.float64)[m]
    liver = doc["labels"]["liver"]
    assert liver["voxels"] == m.sum() > 0 and liver["mean"] == pytest.approx(hu.mean())
    assert int(rows["ct"]["voxels_liver"]) == m.sum()
    assert float(rows["ct"]["mean_liver"]) == pytest.approx(hu.mean(), rel=1e-5)
    assert float(rows["ct"]["volume_ml_liver"]) == pytest.approx(liver["volume_ml"], abs=1e-3)
    assert len(rows["ct"]["bbox_min_mm_liver"].split()) == 3 and int(rows["ct"]["components_liver"]) >= 1

    run = json.loads((out / "run.json").read_text())
    assert run["bundle"]["name"] == "liver_ct_sat" and run["bundle"]["version"] == _bundle_version("liver_ct_sat")
    assert run["checkpoints"][0]["sha256"] == hashlib.sha256(threshold_ckpt.read_bytes()).hexdigest()
    assert run["overrides"]["roi_size"] == [32, 32, 32] and "--stats" in run["command"]
    assert run["device"] == "cpu" and run["precision"] and run["packages"]["monai"] and run["packages"]["torch"]
    assert run["cases"]["ct"]["files"][0]["sha256"] == hashlib.sha256((cases / "ct.nii.gz").read_bytes()).hexdigest()
    dcm = run["cases"]["lung1"]
    first = pydicom.dcmread(next(p for p in sorted((cases / "lung1").iterdir())), stop_before_pixels=True)
    assert dcm["series_uid"] == first.SeriesInstanceUID and dcm["n_files"] == len(list((cases / "lung1").iterdir()))
    assert dcm["status"] == "ok" and "lung1_seg.dcm" in dcm["outputs"] and len(dcm["digest"]) == 64
    segds = pydicom.dcmread(out / "lung1_seg.dcm")
    algo = segds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmName == run["bundle"]["name"]
    assert algo.AlgorithmVersion.startswith(run["bundle"]["version"]) and run["packages"]["satgate-monai"] in \
        algo.AlgorithmVersion
    # a second run into the same folder keeps the first run's cases and describes the first run
    torch.save({"model": {"level": torch.tensor(0.35)}}, tmp_path / "other.pt")
    assert main(["--bundle", str(liver_bundle), "--input", str(cases / "ct.nii.gz"), "--out", str(out), "--ckpt",
                 str(tmp_path / "other.pt"), "--device", "cpu", "--no-progress", "--overwrite",
                 *set_args(THRESHOLD_OVERRIDES)]) == 0
    run2 = json.loads((out / "run.json").read_text())
    assert set(run2["cases"]) == {"ct", "lung1"} and run2["previous_runs"][0]["checkpoints"] == run["checkpoints"]
    assert run2["cases"]["ct"]["run_started"] == run2["started"]
    assert run2["cases"]["lung1"]["run_started"] == run["started"]
