"""Demo phantoms: determinism, difficulty (thresholding fails), and the exact public on-disk layouts."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from data_prep.cli import main
from data_prep.phantoms import (
    PHANTOM_DESCRIP,
    PHANTOM_NOTICE,
    README_NAME,
    case_rng,
    liver_ct_phantom,
    prostate_mr_phantom,
    skin_phantom,
    write_isic2017,
    write_msd_liver,
    write_msd_prostate,
)

LIVER_TINY = {"shape": (48, 48, 16), "spacing": (3.2, 3.2, 8.0)}
PROSTATE_TINY = {"shape": (64, 64, 12), "spacing": (1.9, 1.9, 5.4)}


def _best_window_dice(image: np.ndarray, target: np.ndarray, lo: int, hi: int, step: int) -> float:
    """Best Dice of any intensity window [a, b) against ``target`` (an oracle threshold segmentation)."""
    best = 0.0
    for a in range(lo, hi, step):
        for b in range(a + step, hi + step, step):
            m = (image >= a) & (image < b)
            best = max(best, 2.0 * np.count_nonzero(m & target) / (np.count_nonzero(m) + np.count_nonzero(target)))
    return best


@pytest.mark.parametrize(
    "make",
    [
        lambda s: liver_ct_phantom(np.random.default_rng(s), **LIVER_TINY),
        lambda s: prostate_mr_phantom(np.random.default_rng(s), **PROSTATE_TINY),
        lambda s: skin_phantom(np.random.default_rng(s), (48, 64)),
    ],
    ids=["liver", "prostate", "skin"],
)
def test_deterministic_per_seed_and_different_across_seeds(make):
    a, b, c = make(7), make(7), make(8)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)
    assert a.label.shape != c.label.shape or not np.array_equal(a.label, c.label)


def test_liver_values_labels_and_default_size():
    v = liver_ct_phantom(np.random.default_rng(0))  # default size: 200 x 200 x 52 at 0.8 x 0.8 x 2.5 mm
    assert v.image.shape == (200, 200, 52) and v.image.dtype == np.int16
    assert v.spacing == (0.8, 0.8, 2.5)
    extent_at_2mm = [n * s / 2.0 for n, s in zip(v.image.shape, v.spacing)]
    assert max(extent_at_2mm[:2]) <= 82 and extent_at_2mm[2] <= 66  # small enough for CPU demo training
    assert v.label.dtype == np.uint8 and set(np.unique(v.label)) <= {0, 1, 2}
    liver = v.label > 0
    assert 0.01 < liver.mean() < 0.15
    assert v.image.min() <= -900  # air around the body
    assert np.median(v.image[liver]) == pytest.approx(v.info["liver_hu"], abs=15)


def test_liver_is_not_a_threshold_problem():
    """Distractors share the liver's HU: the best possible HU window scores Dice < 0.8 against the liver mask."""
    for seed in range(3):
        v = liver_ct_phantom(np.random.default_rng(seed), **LIVER_TINY)
        liver = v.label > 0
        assert liver.any()
        dice = _best_window_dice(v.image, liver, -50, 250, 10)
        assert dice < 0.8, f"seed {seed}: a HU window segments the liver with Dice {dice:.2f}"
        # and the spleen/kidney HU drawn for this case overlap the liver's intensity range
        lo, hi = np.percentile(v.image[liver], [5, 95])
        assert lo <= v.info["spleen_hu"] <= hi + 20 or lo <= v.info["kidney_hu"] <= hi + 20


def test_liver_lesions_lie_inside_the_liver_and_are_hypodense():
    seen = False
    for seed in range(6):
        v = liver_ct_phantom(np.random.default_rng(seed), shape=(80, 80, 24), spacing=(2.0, 2.0, 5.4))
        lesion, liver = v.label == 2, v.label == 1
        if lesion.sum() > 20:
            seen = True
            assert np.median(v.image[lesion]) < np.median(v.image[liver]) - 10
    assert seen, "no seed produced a lesion"


def test_prostate_channels_zones_and_difficulty():
    v = prostate_mr_phantom(np.random.default_rng(1), **PROSTATE_TINY)
    assert v.image.shape == (*PROSTATE_TINY["shape"], 2) and v.image.dtype == np.int16
    assert set(np.unique(v.label)) == {0, 1, 2}
    t2, adc = v.image[..., 0].astype(float), v.image[..., 1].astype(float)
    pz, tz = v.label == 1, v.label == 2
    assert t2[pz].mean() > t2[tz].mean()  # bright peripheral zone, darker transition zone on T2
    body = t2 > 50
    assert np.corrcoef(t2[body], adc[body])[0, 1] != pytest.approx(1.0, abs=0.05)  # a different contrast
    for target in (pz, tz, pz | tz):
        assert _best_window_dice(t2, target, 0, 1200, 25) < 0.5
    # default size: about 64 x 64 x 32 at 2 mm
    d = prostate_mr_phantom(np.random.default_rng(0))
    assert [round(n * s / 2.0) for n, s in zip(d.image.shape[:3], d.spacing)] == [60, 60, 32]


def test_skin_image_mask_and_difficulty():
    dices = []
    sizes = set()
    for seed in range(6):
        v = skin_phantom(np.random.default_rng(seed))
        h, w, c = v.image.shape
        sizes.add((h, w))
        assert c == 3 and v.image.dtype == np.uint8 and v.label.shape == (h, w)
        assert 150 <= h <= 260 and 180 <= w <= 320  # about 256 x 192
        assert set(np.unique(v.label)) == {0, 255}
        assert 0.01 < (v.label > 0).mean() < 0.8
        grey = v.image.astype(float).mean(axis=-1)
        dices.append(max(_best_window_dice(grey, v.label > 0, 0, 256, 8), 0))
    assert len(sizes) > 1  # sizes and aspect ratios vary, as in ISIC
    assert np.mean(dices) < 0.9, dices
    fixed = skin_phantom(np.random.default_rng(0), (40, 50), vary_size=False)
    assert fixed.image.shape == (40, 50, 3)


def test_write_msd_liver_layout(tmp_path):
    task = write_msd_liver(tmp_path / "a", cases=3, seed=5, test_cases=1, **LIVER_TINY)
    assert task == tmp_path / "a" / "Task03_Liver"
    names = sorted(p.name for p in (task / "imagesTr").iterdir())
    assert names == ["liver_0.nii.gz", "liver_1.nii.gz", "liver_2.nii.gz"]
    assert sorted(p.name for p in (task / "labelsTr").iterdir()) == names
    assert [p.name for p in (task / "imagesTs").iterdir()] == ["liver_3.nii.gz"]
    ds = json.loads((task / "dataset.json").read_text())
    assert ds["labels"] == {"0": "background", "1": "liver", "2": "cancer"}
    assert ds["modality"] == {"0": "CT"} and ds["tensorImageSize"] == "3D"
    assert ds["numTraining"] == 3 and ds["numTest"] == 1
    assert ds["training"][0] == {"image": "./imagesTr/liver_0.nii.gz", "label": "./labelsTr/liver_0.nii.gz"}
    assert ds["test"] == ["./imagesTs/liver_3.nii.gz"]
    for key in ("description", "reference", "licence"):
        assert PHANTOM_NOTICE in ds[key]
    assert "not patient data" in (tmp_path / "a" / README_NAME).read_text()
    img = nib.load(task / "imagesTr" / "liver_1.nii.gz")
    lab = nib.load(task / "labelsTr" / "liver_1.nii.gz")
    assert img.header["descrip"].tobytes().rstrip(b"\0").decode() == PHANTOM_DESCRIP
    assert img.get_data_dtype() == np.int16 and lab.get_data_dtype() == np.uint8
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    np.testing.assert_allclose(img.header.get_zooms(), LIVER_TINY["spacing"])
    np.testing.assert_array_equal(img.affine, lab.affine)
    # the files hold exactly the generator's case 1, and the same seed gives byte-identical files
    expected = liver_ct_phantom(case_rng("liver", 5, 1), **LIVER_TINY)
    np.testing.assert_array_equal(np.asarray(img.dataobj), expected.image)
    np.testing.assert_array_equal(np.asarray(lab.dataobj), expected.label)
    again = write_msd_liver(tmp_path / "b", cases=2, seed=5, test_cases=0, **LIVER_TINY)
    assert (again / "imagesTr" / "liver_1.nii.gz").read_bytes() == (task / "imagesTr" / "liver_1.nii.gz").read_bytes()


def test_write_msd_prostate_layout(tmp_path):
    task = write_msd_prostate(tmp_path, cases=2, seed=0, test_cases=1, **PROSTATE_TINY)
    assert task.name == "Task05_Prostate"
    assert sorted(p.name for p in (task / "imagesTr").iterdir()) == ["prostate_00.nii.gz", "prostate_01.nii.gz"]
    assert [p.name for p in (task / "imagesTs").iterdir()] == ["prostate_02.nii.gz"]
    ds = json.loads((task / "dataset.json").read_text())
    assert ds["modality"] == {"0": "T2", "1": "ADC"} and ds["labels"] == {"0": "background", "1": "PZ", "2": "TZ"}
    assert ds["tensorImageSize"] == "4D" and PHANTOM_NOTICE in ds["description"]
    img = nib.load(task / "imagesTr" / "prostate_00.nii.gz")
    lab = nib.load(task / "labelsTr" / "prostate_00.nii.gz")
    assert img.shape == (*PROSTATE_TINY["shape"], 2) and lab.shape == PROSTATE_TINY["shape"]
    assert set(np.unique(np.asarray(lab.dataobj))) == {0, 1, 2}
    assert img.header["descrip"].tobytes().rstrip(b"\0").decode() == PHANTOM_DESCRIP


def test_write_isic2017_layout(tmp_path):
    root = write_isic2017(tmp_path, cases=3, seed=1, size=(48, 64))
    data, gt = root / "ISIC-2017_Training_Data", root / "ISIC-2017_Training_Part1_GroundTruth"
    ids = ["ISIC_9000000", "ISIC_9000001", "ISIC_9000002"]
    assert sorted(p.name for p in data.glob("ISIC_???????.jpg")) == [f"{i}.jpg" for i in ids]
    assert sorted(p.name for p in data.glob("*_superpixels.png")) == [f"{i}_superpixels.png" for i in ids]
    assert sorted(p.name for p in gt.iterdir()) == [f"{i}_segmentation.png" for i in ids]
    with open(data / "ISIC-2017_Training_Data_metadata.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["image_id"] for r in rows] == ids
    for i in ids:
        with Image.open(data / f"{i}.jpg") as im, Image.open(gt / f"{i}_segmentation.png") as mk:
            assert im.mode == "RGB" and mk.mode == "L" and im.size == mk.size
            assert set(np.unique(np.asarray(mk))) == {0, 255}
    assert "not patient data" in (root / README_NAME).read_text()


def test_demo_cli_resume_refuse_and_overwrite(tmp_path, capsys):
    out = tmp_path / "skin"
    assert main(["demo", "--task", "skin", "--out", str(out), "--cases", "3", "--shape", "40", "48"]) == 0
    jpg = out / "ISIC-2017_Training_Data" / "ISIC_9000001.jpg"
    first = jpg.read_bytes()
    jpg.unlink()  # an interrupted run: the re-run regenerates only what is missing, identically
    stamp = (out / "ISIC-2017_Training_Data" / "ISIC_9000000.jpg").stat().st_mtime_ns
    assert main(["demo", "--task", "skin", "--out", str(out), "--cases", "3", "--shape", "40", "48"]) == 0
    assert jpg.read_bytes() == first
    assert (out / "ISIC-2017_Training_Data" / "ISIC_9000000.jpg").stat().st_mtime_ns == stamp
    # other parameters into the same folder: refused without --overwrite
    assert main(["demo", "--task", "skin", "--out", str(out), "--cases", "3", "--seed", "9"]) == 2
    assert "other parameters" in capsys.readouterr().err
    assert main(["demo", "--task", "skin", "--out", str(out), "--cases", "3", "--seed", "9", "--overwrite"]) == 0
    assert jpg.read_bytes() != first
    # fewer cases: refused without --overwrite (it would leave stale cases), and --overwrite removes the extra ones
    assert main(["demo", "--task", "skin", "--out", str(out), "--cases", "2", "--seed", "9"]) == 2
    assert main(["demo", "--task", "skin", "--out", str(out), "--cases", "2", "--seed", "9", "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "ISIC-2017_Training_Part1_GroundTruth").iterdir()) == [
        "ISIC_9000000_segmentation.png", "ISIC_9000001_segmentation.png"]
    assert not (out / "ISIC-2017_Training_Data" / "ISIC_9000002_superpixels.png").exists()
    assert main(["demo", "--task", "liver", "--out", str(tmp_path / "x"), "--shape", "8", "8"]) == 2
