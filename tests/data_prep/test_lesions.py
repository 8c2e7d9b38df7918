"""``lesions``: semi-real lung lesion cases (real CT, real tumour tissue, synthetic placement) in the MSD layout.

Data-free tests build a small synthetic chest (body, two lungs with vessels, a tumour of distinctive HU) and check the
placement rules exactly; the tests on the real pyradiomics samples check the same on real anatomy and that the
written folder goes through ``python -m data_prep import --dataset msd-liver`` unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from data_prep.cli import main
from data_prep.phantoms import lung_lesions
from data_prep.phantoms.lesion_dataset import SEMIREAL_DESCRIP, SIDECAR_NAME
from data_prep.phantoms.lung_lesions import SourceVolume, lesion_case, load_source, lung_field
from tests.sample_data import pyradiomics_samples  # noqa: F401 - pytest fixture


def _ellipsoid(shape, centre, radii) -> np.ndarray:
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def _chest(seed: int = 0) -> SourceVolume:
    """A 64 x 48 x 40 chest: air, soft-tissue body, two lungs with vessels, a tumour of HU 100-300 in the left lung."""
    rng = np.random.default_rng(seed)
    shape = (64, 48, 40)
    image = np.full(shape, -1000.0, dtype=np.float32)
    image[_ellipsoid(shape, (32, 24, 20), (30, 22, 40))] = 40.0
    lungs = _ellipsoid(shape, (18, 24, 20), (11, 16, 17)) | _ellipsoid(shape, (46, 24, 20), (11, 16, 17))
    image[lungs] = -850.0
    vessels = ndimage.binary_erosion(lungs, iterations=3) & (rng.random(shape) < 0.02)
    image[vessels] = 30.0
    tumour = _ellipsoid(shape, (46, 24, 20), (3, 3, 3))
    image[tumour] = rng.uniform(100, 300, int(tumour.sum())).round()
    return SourceVolume("lung1", image, tumour, lung_field(image))


def test_lung_field_holds_lungs_and_vessels_not_body_or_outside_air() -> None:
    chest = _chest()
    lungs = chest.image <= -850
    assert chest.lung[lungs & (chest.image == -850)].mean() > 0.97
    assert chest.lung[chest.image == 30.0].mean() > 0.9  # vessels inside the lung count as lung field
    assert not chest.lung[chest.image == 40.0].any()  # body
    assert not chest.lung[chest.image == -1000.0].any()  # air outside the body


def test_case_is_deterministic_by_seed() -> None:
    sources = [_chest(0), _chest(1)]
    cases = [lesion_case(np.random.default_rng(s), sources, crop_shape=(40, 40, 32)) for s in (5, 5, 6)]
    assert np.array_equal(cases[0].image, cases[1].image) and np.array_equal(cases[0].label, cases[1].label)
    assert cases[0].info == cases[1].info
    assert not np.array_equal(cases[0].image, cases[2].image)


def test_transplanted_voxels_are_the_donor_tumour_hu_inside_the_lung(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lung_lesions, "SCALE_RANGE", (1.0, 1.0))  # no interpolation: the donor's voxels exactly
    chest = _chest()
    donor_hu = np.sort(np.rint(chest.image[chest.tumour]))
    for seed in range(6):
        case = lesion_case(np.random.default_rng(seed), [chest], crop_shape=chest.image.shape, lesions=(1, 1))
        assert len(case.info["lesions"]) == 1
        new = case.label.astype(bool) & ~chest.tumour  # the whole grid is the crop: the own tumour is in place
        assert new.sum() == chest.tumour.sum() == case.info["lesions"][0]["voxels"]
        assert np.array_equal(np.sort(case.image[new].astype(float)), donor_hu)
        assert chest.lung[new].all()
        assert case.image.dtype == np.int16 and case.label.dtype == np.uint8
        outside = ~case.label.astype(bool)
        far = outside & (np.abs(case.image.astype(float) - chest.image) > 0.5)
        assert far.sum() < 8 * new.sum()  # only the blended rim around the lesion changed


def test_bad_arguments_raise_value_error() -> None:
    chest = _chest()
    with pytest.raises(ValueError, match="exceeds"):
        lesion_case(np.random.default_rng(0), [chest], crop_shape=(80, 40, 32))
    with pytest.raises(ValueError, match="lesions"):
        lesion_case(np.random.default_rng(0), [chest], lesions=(2, 1), crop_shape=(32, 32, 32))


def test_missing_samples_fail_in_one_line(tmp_path: Path, capsys) -> None:
    assert main(["lesions", "--samples", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["lesions", "--samples", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "lung1_image.nrrd" in err and "Traceback" not in err


def _transplanted(case, sources):
    """(recipient, crop box, mask of the transplanted voxels) of a case drawn from ``sources``."""
    src = next(s for s in sources if s.name == case.info["patient"])
    box = tuple(slice(o, o + n) for o, n in zip(case.info["crop_origin"], case.image.shape))
    return src, box, case.label.astype(bool) & ~src.tumour[box]


def test_real_cases_hold_real_tumour_tissue_in_the_real_lung(pyradiomics_samples,  # noqa: F811
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    sources = [load_source(pyradiomics_samples, n) for n in lung_lesions.SOURCES]
    donors = {s.name: s.image[s.tumour] for s in sources}
    for seed in range(6):
        case = lesion_case(np.random.default_rng(seed), sources, lesions=(1, 1))
        src, box, new = _transplanted(case, sources)
        (lesion,) = case.info["lesions"]
        assert new.sum() == lesion["voxels"] > 0
        assert src.lung[box][new].all()  # every transplanted voxel lies in the recipient's lung field
        assert np.median(src.image[box][new]) < -500  # and there was lung there before
        # scaled (linear interpolation): the donor tumour's HU distribution, not lung's (about -850)
        assert abs(np.median(case.image[new]) - np.median(donors[lesion["donor"]])) < 60
        untouched = ~ndimage.binary_dilation(new, np.ones((3, 3, 3), bool), iterations=4)  # beyond the blended rim
        assert np.array_equal(case.image[untouched], np.rint(src.image[box][untouched]))
    monkeypatch.setattr(lung_lesions, "SCALE_RANGE", (1.0, 1.0))  # unscaled: exactly the donor tumour's voxels
    for seed in range(4):
        case = lesion_case(np.random.default_rng(seed), sources, lesions=(1, 1))
        src, box, new = _transplanted(case, sources)
        donor = np.sort(np.rint(donors[case.info["lesions"][0]["donor"]]))
        assert np.array_equal(np.sort(case.image[new].astype(float)), donor)


def test_written_folder_imports_as_msd_liver_with_the_tumour_as_label_1(pyradiomics_samples, tmp_path) -> None:  # noqa: F811
    raw, prep = tmp_path / "raw", tmp_path / "prep"
    before = {p.name: p.stat().st_mtime_ns for p in pyradiomics_samples.iterdir()}
    assert main(["lesions", "--samples", str(pyradiomics_samples), "--out", str(raw), "--cases", "3",
                 "--crop", "64", "64", "40", "--seed", "3"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in pyradiomics_samples.iterdir()} == before  # inputs untouched
    task = raw / "Task03_Liver"
    sidecar = json.loads((raw / SIDECAR_NAME).read_text())
    assert sorted(sidecar["cases"]) == ["liver_0", "liver_1", "liver_2"]
    assert {c["patient"] for c in sidecar["cases"].values()} <= {"lung1", "lung2"}
    img = nib.load(task / "imagesTr" / "liver_0.nii.gz")
    assert img.header["descrip"].tobytes().rstrip(b"\0").decode() == SEMIREAL_DESCRIP
    again = tmp_path / "again"
    assert main(["lesions", "--samples", str(pyradiomics_samples), "--out", str(again), "--cases", "2",
                 "--crop", "64", "64", "40", "--seed", "3"]) == 0
    for name in ("liver_0", "liver_1"):  # a case depends on (seed, index) only, byte for byte
        for sub in ("imagesTr", "labelsTr"):
            assert (task / sub / f"{name}.nii.gz").read_bytes() == (again / "Task03_Liver" / sub /
                                                                     f"{name}.nii.gz").read_bytes()
    assert main(["import", "--dataset", "msd-liver", "--src", str(raw), "--out", str(prep), "--no-progress"]) == 0
    datalist = json.loads((prep / "datalist.json").read_text())
    entries = [e for k in ("training", "validation", "test") for e in datalist[k]]
    assert len(entries) == 3
    for e in entries:
        label = np.asarray(nib.load(prep / e["label"]).dataobj)
        assert set(np.unique(label)) == {0, 1}
        name = Path(e["label"]).name.split(".")[0]
        assert abs(int(label.sum()) - sidecar["cases"][name]["tumour_voxels"]) <= 0.1 * sidecar["cases"][name][
            "tumour_voxels"]


def test_rerun_removes_earlier_cases_and_foreign_folders_are_refused(pyradiomics_samples, tmp_path,  # noqa: F811
                                                                      capsys) -> None:
    out = tmp_path / "raw"
    args = ["lesions", "--samples", str(pyradiomics_samples), "--out", str(out), "--crop", "48", "48", "32"]
    assert main([*args, "--cases", "3"]) == 0
    assert main([*args, "--cases", "2"]) == 0
    for sub in ("imagesTr", "labelsTr"):
        assert sorted(p.name for p in (out / "Task03_Liver" / sub).iterdir()) == ["liver_0.nii.gz", "liver_1.nii.gz"]
    foreign = tmp_path / "foreign"
    (foreign / "Task03_Liver" / "imagesTr").mkdir(parents=True)
    (foreign / "Task03_Liver" / "imagesTr" / "liver_0.nii.gz").write_bytes(b"someone else's")
    assert main(["lesions", "--samples", str(pyradiomics_samples), "--out", str(foreign), "--cases", "1"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (foreign / "Task03_Liver" / "imagesTr" / "liver_0.nii.gz").read_bytes() == b"someone else's"
