"""Unit tests: checkpoint layouts, safe names, label maps, the report, and equivalence with MONAI's Invertd."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from satgate_monai.bundle.checkpoint import CheckpointError, load_state_dict, load_weights
from satgate_monai.infer.bundle import resolve_device
from satgate_monai.infer.cases import safe_output_path, sanitize_name
from satgate_monai.infer.cli import parse_overrides
from satgate_monai.infer.geometry import affine_to_sitk_geometry, array_to_sitk, resample_to_source, sitk_affine
from satgate_monai.infer.report import CaseReport, label_volumes_ml, read_rows, write_report
from satgate_monai.infer.statistics import label_statistics
from tests.infer.helpers import rotation


@pytest.mark.parametrize("layout", ["flat", "model", "state_dict", "ddp"])
def test_checkpoint_layouts(layout, tmp_path):
    net = torch.nn.Conv3d(1, 2, 3)
    sd = net.state_dict()
    obj = {"flat": sd, "model": {"model": sd, "epoch": 3}, "state_dict": {"state_dict": sd},
           "ddp": {f"module.{k}": v for k, v in sd.items()}}[layout]
    torch.save(obj, tmp_path / "c.pt")
    other = torch.nn.Conv3d(1, 2, 3)
    load_weights(other, tmp_path / "c.pt")
    for k, v in other.state_dict().items():
        assert torch.equal(v, sd[k])


def test_checkpoint_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_state_dict(tmp_path / "junk.pt")
    torch.save({"epoch": 3}, tmp_path / "nostate.pt")
    with pytest.raises(CheckpointError, match="holds no state dict"):
        load_state_dict(tmp_path / "nostate.pt")
    torch.save(torch.nn.Conv3d(1, 4, 3).state_dict(), tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights(torch.nn.Conv3d(1, 2, 3), tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_state_dict(tmp_path / "absent.pt")


@pytest.mark.parametrize("raw, safe", [
    ("../../x", "x"), ("Doe^John 01", "Doe_John_01"), ("..", "case"), ("", "case"), ("/etc/passwd", "etc_passwd"),
    (".hidden", "hidden"), ("a/../../b", "a_.._.._b"), ("Ünïcode", "Unicode"), ("case_01.v2", "case_01.v2"),
])
def test_sanitize_name(raw, safe):
    assert sanitize_name(raw) == safe


def test_safe_output_path(tmp_path):
    assert safe_output_path(tmp_path, "a_seg.nii.gz") == (tmp_path / "a_seg.nii.gz").resolve()
    for bad in ("../a.nii.gz", "..", "sub/a.nii.gz", "/tmp/a.nii.gz"):
        with pytest.raises(ValueError):
            safe_output_path(tmp_path, bad)


def test_overrides_and_device():
    assert parse_overrides(["a#b=[1,2]", "c=text", "d=0.5"]) == {"a#b": [1, 2], "c": "text", "d": 0.5}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["novalue"])
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_report_merges_runs(tmp_path):
    lab = sitk.GetImageFromArray(np.ones((2, 5, 10), np.uint8))
    lab.SetSpacing((1.0, 2.0, 5.0))
    vols = label_volumes_ml(label_statistics(lab, lab, {1: "liver", 2: "tumour"}))
    assert vols == {"liver": pytest.approx(100 * 10 / 1000), "tumour": 0.0}
    write_report(tmp_path / "r.csv", [CaseReport("a", "in/a", "ok", 1.0, volumes_ml=vols),
                                      CaseReport("b", "in/b", "failed", 0.1, error="bad\nfile")])
    write_report(tmp_path / "r.csv", [CaseReport("b", "in/b", "ok", 0.5, volumes_ml=vols)])
    rows = {r["case"]: r for r in read_rows(tmp_path / "r.csv")}
    assert rows["a"]["status"] == "ok" and rows["b"]["status"] == "ok" and rows["b"]["error"] == ""
    assert float(rows["a"]["volume_ml_liver"]) == pytest.approx(1.0)


def test_affine_round_trip():
    img = sitk.Image(5, 6, 7, sitk.sitkUInt8)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((10.0, -3.0, 40.0))
    img.SetDirection(rotation(30, -20).flatten().tolist())
    spacing, origin, direction = affine_to_sitk_geometry(sitk_affine(img), "LPS")
    np.testing.assert_allclose(spacing, img.GetSpacing())
    np.testing.assert_allclose(origin, img.GetOrigin())
    np.testing.assert_allclose(direction, img.GetDirection(), atol=1e-12)
    ras = np.diag([-1.0, -1, 1, 1]) @ sitk_affine(img)
    back = array_to_sitk(np.zeros((5, 6, 7)), ras, "RAS")
    np.testing.assert_allclose(sitk_affine(back), sitk_affine(img), atol=1e-12)
    with pytest.raises(ValueError, match="space"):
        affine_to_sitk_geometry(np.eye(4), "XYZ")


def test_same_labels_as_invertd(tmp_path: Path):
    """On an oblique source, our return to the source grid equals MONAI's Invertd(nearest) voxel for voxel."""
    from monai.data import MetaTensor
    from monai.transforms import Compose, EnsureChannelFirstd, Invertd, LoadImaged, Orientationd, Spacingd

    rng = np.random.default_rng(0)
    src = sitk.GetImageFromArray(rng.integers(-100, 100, (17, 40, 36)).astype(np.int16))
    src.SetSpacing((0.77, 0.91, 2.9))  # no source voxel centre falls exactly half-way between 2 mm centres
    src.SetOrigin((12.3, -40.1, 7.7))
    src.SetDirection(rotation(20.0, 10.0)[:, [1, 0, 2]].flatten().tolist())  # oblique, axes swapped
    sitk.WriteImage(src, str(tmp_path / "src.nii"))
    pre = Compose([LoadImaged("image"), EnsureChannelFirstd("image"), Orientationd("image", "RAS"),
                   Spacingd("image", (2.0, 2.0, 2.0))])
    d = pre({"image": str(tmp_path / "src.nii")})
    img = d["image"]
    labels = rng.integers(0, 4, img.shape[1:]).astype(np.uint8)  # every network voxel boundary matters
    d["pred"] = MetaTensor(torch.from_numpy(labels)[None], affine=img.affine, meta=dict(img.meta))
    theirs = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=True)(d)["pred"][0].numpy()
    ours = resample_to_source(array_to_sitk(labels, img.affine, "RAS"), src)
    ours = sitk.GetArrayFromImage(ours).transpose(2, 1, 0)
    assert ours.shape == theirs.shape == src.GetSize()
    assert (ours == theirs).mean() > 0.999


def test_oblique_rotation_is_a_rotation():
    r = rotation(25, 15)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert math.isclose(np.linalg.det(r), 1.0)
