"""Dataset importers on miniature copies of the public layouts (demo phantoms and hand-built LiTS folders)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from data_prep.cli import main
from data_prep.importers import LayoutError, find_isic2017, find_lits, find_msd, import_msd_liver
from data_prep.phantoms import write_isic2017, write_msd_liver, write_msd_prostate
from data_prep.tasks import TARGET_SPACING

LIVER_TINY = {"shape": (48, 48, 16), "spacing": (3.2, 3.2, 8.0)}
PROSTATE_TINY = {"shape": (64, 64, 12), "spacing": (1.9, 1.9, 5.4)}


@pytest.fixture(scope="module")
def msd_root(tmp_path_factory) -> Path:
    """Miniature MSD Task03 and Task05 phantoms (3 training + 1 test case each) with macOS junk files."""
    root = tmp_path_factory.mktemp("msd")
    liver = write_msd_liver(root / "liver", cases=3, seed=1, test_cases=1, **LIVER_TINY)
    prostate = write_msd_prostate(root / "prostate", cases=3, seed=0, test_cases=1, **PROSTATE_TINY)
    for task in (liver, prostate):
        for sub in ("imagesTr", "labelsTr"):
            first = sorted((task / sub).iterdir())[0]
            (task / sub / f"._{first.name}").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    return root


def _report(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "report.csv", newline="") as f:
        return {r["case"]: r for r in csv.DictReader(f)}


def _datalist(out: Path) -> dict:
    dl = json.loads((out / "datalist.json").read_text())
    assert {"training", "validation", "test", "labels", "modality"} <= dl.keys()
    for key in ("training", "validation", "test"):
        for e in dl[key]:
            assert not Path(e["image"]).is_absolute() and (out / e["image"]).is_file()
            if "label" in e:
                assert (out / e["label"]).is_file()
    return dl


def _label_values(out: Path, dl: dict) -> set[int]:
    values: set[int] = set()
    for key in ("training", "validation", "test"):
        for e in dl[key]:
            values |= set(np.unique(np.asarray(nib.load(out / e["label"]).dataobj)).tolist())
    return values


def test_msd_liver_merges_tumour_by_default_and_keeps_it_on_request(msd_root, tmp_path):
    src = msd_root / "liver" / "Task03_Liver"
    source_values = set()
    for p in (src / "labelsTr").glob("liver_*.nii.gz"):
        source_values |= set(np.unique(np.asarray(nib.load(p).dataobj)).tolist())
    assert source_values == {0, 1, 2}  # the miniature has tumour voxels to merge

    out = tmp_path / "merged"
    assert main(["import", "--dataset", "msd-liver", "--src", str(msd_root / "liver"), "--out", str(out),
                 "--spacing", "4", "--no-progress"]) == 0
    dl = _datalist(out)
    assert dl["labels"] == {"0": "background", "1": "liver"} and dl["modality"] == {"0": "CT"}
    assert (dl["numTraining"], dl["numValidation"], dl["numTest"]) == (1, 1, 1)  # imagesTs ignored by default
    assert _label_values(out, dl) == {0, 1}
    assert "phantom" in dl["description"].lower()
    rep = _report(out)
    assert sorted(rep) == ["liver_0", "liver_1", "liver_2"] and {r["status"] for r in rep.values()} == {"ok"}
    img = nib.load(out / "images" / "liver_0.nii.gz")
    np.testing.assert_allclose(img.header.get_zooms(), (4.0, 4.0, 4.0))
    assert img.get_data_dtype() == np.int16

    kept = tmp_path / "kept"
    assert import_msd_liver(src, kept, keep_tumour=True, spacing=4.0, progress=False) == 0
    dl = _datalist(kept)
    assert dl["labels"] == {"0": "background", "1": "liver", "2": "tumour"}
    assert _label_values(kept, dl) == {0, 1, 2}


def test_msd_rerun_skips_overwrite_redoes_and_unlabelled_on_request(msd_root, tmp_path):
    out = tmp_path / "out"
    args = ["import", "--dataset", "msd-liver", "--src", str(msd_root / "liver" / "Task03_Liver"), "--out", str(out),
            "--spacing", "5", "--no-progress"]
    assert main(args) == 0
    assert main(args) == 0
    assert {r["status"] for r in _report(out).values()} == {"skipped"}
    assert main(args + ["--overwrite", "--include-unlabelled"]) == 0
    rep = _report(out)
    assert {r["status"] for r in rep.values()} == {"ok"} and "liver_3" in rep
    dl = _datalist(out)
    assert {"image": "images/liver_3.nii.gz"} in dl["test"]


def test_msd_missing_label_fails_only_that_case(msd_root, tmp_path):
    src = tmp_path / "Task03_Liver"
    shutil.copytree(msd_root / "liver" / "Task03_Liver", src)
    (src / "labelsTr" / "liver_2.nii.gz").unlink()
    out = tmp_path / "out"
    assert main(["import", "--dataset", "msd-liver", "--src", str(src), "--out", str(out), "--spacing", "5",
                 "--no-progress"]) == 1
    rep = _report(out)
    assert rep["liver_2"]["status"] == "failed" and "liver_2" in rep["liver_2"]["error"]
    assert rep["liver_0"]["status"] == rep["liver_1"]["status"] == "ok"
    assert not (out / "images" / "liver_2.nii.gz").exists()
    assert len(_datalist(out)["training"]) >= 1


def test_msd_prostate_picks_t2_and_merges_zones(msd_root, tmp_path):
    src = msd_root / "prostate"
    t2_out, all_out = tmp_path / "t2", tmp_path / "all"
    assert main(["import", "--dataset", "msd-prostate", "--src", str(src), "--out", str(t2_out), "--no-progress"]) == 0
    assert main(["import", "--dataset", "msd-prostate", "--src", str(src), "--out", str(all_out), "--channels", "all",
                 "--keep-zones", "--no-progress"]) == 0
    dl_t2, dl_all = _datalist(t2_out), _datalist(all_out)
    assert dl_t2["modality"] == {"0": "T2"} and dl_t2["labels"] == {"0": "background", "1": "prostate"}
    assert dl_all["modality"] == {"0": "T2", "1": "ADC"} and dl_all["labels"]["2"] == "TZ"
    assert _label_values(t2_out, dl_t2) == {0, 1}
    assert _label_values(all_out, dl_all) == {0, 1, 2}

    # the T2 output is the source's channel 0 resampled to 2 mm (not ADC)
    source = sitk.ReadImage(str(src / "Task05_Prostate" / "imagesTr" / "prostate_01.nii.gz"))
    size = list(source.GetSize()[:3]) + [0]
    channels = [sitk.Extract(source, size, [0, 0, 0, c], sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX)
                for c in range(2)]
    out_img = sitk.ReadImage(str(t2_out / "images" / "prostate_01.nii.gz"))
    assert out_img.GetDimension() == 3 and out_img.GetSpacing() == pytest.approx((TARGET_SPACING,) * 3)  # default
    got = sitk.GetArrayFromImage(out_img).astype(float)
    refs = [sitk.GetArrayFromImage(sitk.Resample(sitk.Cast(c, sitk.sitkFloat32), out_img, sitk.Transform(),
                                                 sitk.sitkLinear, 0.0)) for c in channels]
    inside = refs[0] > 0
    corr = [np.corrcoef(got[inside], r[inside])[0, 1] for r in refs]
    assert corr[0] > 0.99 and corr[1] < 0.9, corr
    assert np.abs(got - refs[0])[inside].mean() < 2.0
    both = nib.load(all_out / "images" / "prostate_01.nii.gz")
    assert both.shape[3] == 2
    np.testing.assert_array_equal(np.asarray(both.dataobj)[..., 0], np.asarray(nib.load(
        t2_out / "images" / "prostate_01.nii.gz").dataobj))


def _write_nifti(path: Path, data: np.ndarray, spacing=(1.5, 1.5, 4.0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])), str(path))


def test_lits_batches_pairing_and_broken_cases(tmp_path):
    src = tmp_path / "LiTS"
    rng = np.random.default_rng(0)
    for n in range(4):
        batch = "Training Batch 1" if n == 0 else "Training Batch 2"
        vol = rng.integers(-200, 200, size=(24, 20, 8)).astype(np.int16)
        seg = np.zeros((24, 20, 8), np.uint8)
        seg[5:18, 4:15, 2:6] = 1
        seg[8:12, 7:10, 3:5] = 2
        _write_nifti(src / batch / f"volume-{n}.nii", vol)
        if n != 2:  # case 2: volume without segmentation
            _write_nifti(src / batch / f"segmentation-{n}.nii", seg)
    (src / "Training Batch 2" / "volume-3.nii").write_bytes(b"not a nifti")  # case 3: corrupt volume
    (src / "Training Batch 1" / "._volume-0.nii").write_bytes(b"junk")
    _write_nifti(src / "Test" / "test-volume-7.nii", np.zeros((4, 4, 4), np.int16))

    found = find_lits(src)
    assert [c[0] for c in found] == ["lits_0", "lits_1", "lits_2", "lits_3"]
    assert found[1][1].parent.name == "Training Batch 2" and found[1][2].name == "segmentation-1.nii"

    out = tmp_path / "out"
    assert main(["import", "--dataset", "lits", "--src", str(src), "--out", str(out), "--no-progress"]) == 1
    rep = _report(out)
    assert rep["lits_0"]["status"] == rep["lits_1"]["status"] == "ok"
    assert rep["lits_2"]["status"] == "failed" and "segmentation-2.nii" in rep["lits_2"]["error"]
    assert rep["lits_3"]["status"] == "failed" and "volume-3.nii" in rep["lits_3"]["error"]
    dl = _datalist(out)
    assert dl["labels"] == {"0": "background", "1": "liver"} and _label_values(out, dl) == {0, 1}
    assert rep["lits_0"]["source_spacing"] == "1.5x1.5x4"


@pytest.fixture(scope="module")
def isic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("isic")
    write_isic2017(root, cases=4, seed=3, size=(60, 80))
    return root


def test_isic_resize_keeps_aspect_binarises_and_reports_missing_mask(isic_root, tmp_path):
    src = tmp_path / "isic"
    shutil.copytree(isic_root, src)
    data = src / "ISIC-2017_Training_Data"
    shutil.copy(data / "ISIC_9000000.jpg", data / "ISIC_9000099.jpg")  # an image without a mask
    out = tmp_path / "out"
    size = 48
    assert main(["import", "--dataset", "isic2017", "--src", str(src), "--out", str(out), "--size", str(size),
                 "--workers", "2", "--no-progress"]) == 1
    rep = _report(out)
    assert rep["ISIC_9000099"]["status"] == "failed" and "segmentation.png" in rep["ISIC_9000099"]["error"]
    assert sum(r["status"] == "ok" for r in rep.values()) == 4 and "ISIC_9000000_superpixels" not in rep
    dl = _datalist(out)
    assert dl["tensorImageSize"] == "2D" and dl["spacing"] is None
    assert dl["labels"] == {"0": "background", "1": "lesion"}
    assert dl["numTraining"] + dl["numValidation"] + dl["numTest"] == 4
    for cid in ("ISIC_9000000", "ISIC_9000001", "ISIC_9000002", "ISIC_9000003"):
        with Image.open(data / f"{cid}.jpg") as im, Image.open(
            src / "ISIC-2017_Training_Part1_GroundTruth" / f"{cid}_segmentation.png"
        ) as mk:
            w, h = im.size
            src_frac = (np.asarray(mk) > 127).mean()
        img = np.asarray(Image.open(out / "images" / f"{cid}.png"))
        lab = np.asarray(Image.open(out / "labels" / f"{cid}.png"))
        assert img.shape == (size, size, 3) and img.dtype == np.uint8 and lab.shape == (size, size)
        assert set(np.unique(lab)) <= {0, 1} and lab.any()
        # pad mode: the longer side fills the output, the shorter one is scaled by the same factor and centred
        content = round(min(w, h) * size / max(w, h))
        axis = 1 if w >= h else 0  # image rows that hold content when the width is the longer side
        filled = np.flatnonzero(img.any(axis=(axis, 2)))
        assert abs(len(filled) - content) <= 1 and abs(filled[0] - (size - content) // 2) <= 1
        assert lab.sum() / (size * content) == pytest.approx(src_frac, abs=0.06)

    crop = tmp_path / "crop"
    assert main(["import", "--dataset", "isic2017", "--src", str(isic_root), "--out", str(crop), "--size", "32",
                 "--resize", "crop", "--no-progress"]) == 0
    img = np.asarray(Image.open(crop / "images" / "ISIC_9000000.png"))
    assert img.shape == (32, 32, 3) and img.any(axis=(1, 2)).all() and img.any(axis=(0, 2)).all()
    assert main(["import", "--dataset", "isic2017", "--src", str(isic_root), "--out", str(crop), "--size", "32",
                 "--resize", "crop", "--no-progress"]) == 0
    assert {r["status"] for r in _report(crop).values()} == {"skipped"}


def test_layout_errors_name_the_folder_and_what_was_expected(msd_root, isic_root, tmp_path, capsys):
    def run_err(*argv: str) -> str:
        assert main(["import", *argv, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
        return capsys.readouterr().err

    missing = tmp_path / "nowhere"
    assert str(missing) in run_err("--dataset", "msd-liver", "--src", str(missing))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "empty" in run_err("--dataset", "lits", "--src", str(empty))
    err = run_err("--dataset", "msd-liver", "--src", str(msd_root / "prostate"))
    assert "imagesTr" in err and "liver_N.nii.gz" in err
    err = run_err("--dataset", "msd-liver", "--src", str(msd_root / "prostate" / "Task05_Prostate"))
    assert "prostate_00.nii.gz" in err and "another dataset" in err
    assert "volume-N.nii" in run_err("--dataset", "lits", "--src", str(isic_root))
    only_images = tmp_path / "only_images"
    shutil.copytree(isic_root / "ISIC-2017_Training_Data", only_images / "ISIC-2017_Training_Data")
    assert "_segmentation.png" in run_err("--dataset", "isic2017", "--src", str(only_images))
    assert "does not apply" in run_err("--dataset", "msd-liver", "--src", str(msd_root / "liver"), "--size", "64")
    assert "inside" in run_err_inside(msd_root, capsys)
    with pytest.raises(LayoutError):
        find_msd(isic_root, "liver")
    with pytest.raises(LayoutError):
        find_isic2017(msd_root)


def run_err_inside(msd_root: Path, capsys) -> str:
    src = msd_root / "liver"
    assert main(["import", "--dataset", "msd-liver", "--src", str(src), "--out", str(src / "prepared"),
                 "--no-progress"]) == 2
    assert not (src / "prepared").exists()
    return capsys.readouterr().err
