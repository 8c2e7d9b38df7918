"""Series selection in a multi-series study: the documented rule, the bundles' defaults, --series, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from data_prep.dicom import DicomSeriesError, read_dicom_series, read_dicom_study
from data_prep.readers import read_image
from data_prep.series_selection import (
    DEFAULT_RULES,
    Candidate,
    SeriesSelectionError,
    load_rules,
    orientation_name,
    select_series,
)
from tests.conftest import REPO_ROOT
from tests.data_prep.dicom_factory import volume, write_series
from tests.data_prep.study_factory import write_study

LIVER = REPO_ROOT / "bundles" / "liver_ct_sat"
PROSTATE = REPO_ROOT / "bundles" / "prostate_mri_sat"
AXIAL = [1, 0, 0, 0, 1, 0]
CORONAL = [1, 0, 0, 0, 0, -1]


def _c(uid: str, n: int = 20, **header) -> Candidate:
    h = {"Modality": "CT", "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], "ImageOrientationPatient": AXIAL,
         "SeriesDescription": uid, **header}
    return Candidate(uid, uid, h["SeriesDescription"], h["Modality"], n, n, h)


def test_bundle_rules_pick_the_thin_reconstruction_and_say_why(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study")
    image, choice = read_dicom_study(study.folder, rules=load_rules(LIVER))
    assert choice.chosen.uid == study.thin
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), study.thin_volume)
    assert image.GetSpacing()[2] == pytest.approx(2.5)
    why = {c.uid: reason for c, reason in choice.skipped}
    assert set(why) == {study.localizer, study.thick, study.sr, study.dose}
    assert why[study.localizer] == "localizer/scout images only"
    assert "fewer images (16 < 32)" in why[study.thick]
    assert why[study.sr] == "non-image object"
    assert "1 images < min_slices 16" in why[study.dose]
    line = choice.summary()
    assert "\n" not in line and study.thin in line and "ABD 2.5mm" in line and "most images" in line


def test_series_option_overrides_the_rules(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study")
    image, choice = read_dicom_study(study.folder, series_uid=study.thick, rules=load_rules(LIVER))
    assert choice.chosen.uid == study.thick and choice.reason == "requested with --series"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), study.thick_volume)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(study.folder, series_uid=study.thick)),
                                  study.thick_volume)


def test_default_rule_refuses_two_original_reconstructions_in_one_line(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study")
    with pytest.raises(DicomSeriesError) as ei:
        read_dicom_series(study.folder)
    msg = str(ei.value)
    assert "\n" not in msg and str(study.folder) in msg and "--series" in msg
    assert study.thin in msg and study.thick in msg and "2 image series" in msg
    assert study.localizer not in msg and study.sr not in msg and study.dose not in msg


def test_tie_is_refused_and_a_description_pattern_settles_it(tmp_path: Path) -> None:
    """Two kernels of one acquisition (same slice count): sorting cannot choose; the liver rule's pattern can."""
    vol = volume((20, 12, 10), seed=3)
    soft, bone = "1.2.826.0.1.3680043.8.498.71", "1.2.826.0.1.3680043.8.498.72"
    write_series(tmp_path / "s", vol, series_uid=soft, series_number=2, description="ABD soft tissue",
                 names=[f"a{k:02d}.dcm" for k in range(20)])
    write_series(tmp_path / "s", vol + 5, series_uid=bone, series_number=3, description="ABD BONE kernel",
                 names=[f"b{k:02d}.dcm" for k in range(20)])
    rules = {"selections": [{"name": "axial CT", "conditions": {"Modality": "CT"}}], "sort_by_sop_instance_count": True}
    with pytest.raises(DicomSeriesError, match="2 image series satisfy 'axial CT' equally well") as ei:
        read_dicom_series(tmp_path / "s", rules=rules)
    assert soft in str(ei.value) and bone in str(ei.value)
    _, choice = read_dicom_study(tmp_path / "s", rules=load_rules(LIVER))
    assert choice.chosen.uid == soft
    assert "SeriesDescription 'ABD BONE kernel' does not match" in dict((c.uid, w) for c, w in choice.skipped)[bone]


def test_orientation_and_modality_conditions() -> None:
    assert orientation_name(AXIAL) == "Axial" and orientation_name(CORONAL) == "Coronal"
    assert orientation_name([0, 1, 0, 0, 0, -1]) == "Sagittal"
    assert orientation_name([0.9848, 0.1736, 0, -0.1736, 0.9848, 0]) == "Axial"  # 10 deg in-plane rotation
    cor = _c("cor", 200, ImageOrientationPatient=CORONAL)
    ax = _c("ax", 40)
    mr = _c("mr", 300, Modality="MR")
    choice = select_series([cor, ax, mr], load_rules(LIVER))
    assert choice.chosen is ax
    why = dict((c.uid, w) for c, w in choice.skipped)
    assert "ImageOrientationPatient 'Coronal' does not match 'Axial'" in why["cor"]
    assert "Modality 'MR' does not match" in why["mr"]
    t2 = _c("t2", 24, Modality="MR", SeriesDescription="t2_tse_tra")
    adc = _c("adc", 24, Modality="MR", SeriesDescription="ep2d_diff_ADC", ImageType=["DERIVED", "PRIMARY", "ADC"])
    dwi = _c("dwi", 24, Modality="MR", SeriesDescription="ep2d_diff_b800")
    assert select_series([adc, dwi, t2], load_rules(PROSTATE)).chosen is t2
    assert select_series([adc, dwi], load_rules(PROSTATE)).chosen is dwi  # no T2: the fallback, ADC is derived


def test_numeric_conditions_and_min_slices() -> None:
    rules = {"selections": [{"name": "thin", "min_slices": 30, "conditions": {"SliceThickness": [0.5, 3]}},
                            {"name": "not 5 mm", "conditions": {"SliceThickness": [5, "!="]}}]}
    a, b, c = _c("a", 40, SliceThickness=5.0), _c("b", 20, SliceThickness=1.0), _c("c", 35, SliceThickness=2.0)
    assert select_series([a, b, c], rules).chosen is c
    choice = select_series([a, b], rules)  # nothing satisfies "thin" (b has 20 < 30 images): the next selection
    assert choice.chosen is b and choice.reason == "the only series satisfying 'not 5 mm'"
    with pytest.raises(SeriesSelectionError) as ei:
        select_series([a, _c("d", 40, SliceThickness=5.0)], rules)
    msg = str(ei.value)
    assert "none of its 2 image series satisfies" in msg and "40 images < min_slices 30" not in msg
    assert "SliceThickness 5 is not [0.5, 3]" in msg


def test_a_single_series_is_used_without_rules_and_unknown_series_refused() -> None:
    only = _c("only", 5, Modality="MR")
    assert select_series([only], load_rules(LIVER)).chosen is only  # rules choose between series, not gatekeep
    with pytest.raises(SeriesSelectionError, match="series 9.9 is not in it; it holds 2 image series"):
        select_series([_c("a"), _c("b")], series_uid="9.9")
    assert DEFAULT_RULES["selections"][0]["conditions"] == {"ImageType": ["ORIGINAL"]}


@pytest.mark.parametrize("bad, fragment", [
    ({}, "non-empty 'selections'"),
    ({"selections": [{"conditions": {"SeriesDescription": "(unclosed"}}]}, "invalid regular expression"),
    ({"selections": [{"conditions": {"ImageOrientationPatient": "oblique"}}]}, "Axial, Coronal or Sagittal"),
    ({"selections": [{"conditions": {}, "min_slices": -1}]}, "min_slices"),
    ({"selections": [{"conditions": {}}], "sort_by_sop_instance_count": "yes"}, "sort_by_sop_instance_count"),
])
def test_invalid_rules_refused(bad, fragment, tmp_path: Path) -> None:
    with pytest.raises(SeriesSelectionError, match=fragment.replace("(", r"\(")):
        select_series([_c("a"), _c("b")], bad)
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps({"series_selection": bad}))
    with pytest.raises(SeriesSelectionError, match=str(meta)):
        load_rules(meta)


def test_bundles_ship_rules() -> None:
    for bundle in (LIVER, PROSTATE):
        rules = load_rules(bundle)
        assert rules is not None and rules["selections"], bundle
    assert load_rules(REPO_ROOT / "bundles" / "skin_lesion_sat") is None  # 2D photographs: no DICOM study


def test_prepare_reads_the_series_the_rules_pick(tmp_path: Path) -> None:
    from data_prep.cli import main

    write_study(tmp_path / "in" / "study")
    out = tmp_path / "out"
    assert main(["prepare", "--images", str(tmp_path / "in"), "--out", str(out), "--no-progress"]) == 1  # a tie
    assert main(["prepare", "--images", str(tmp_path / "in"), "--out", str(out), "--series-rules", str(LIVER),
                 "--no-progress"]) == 0
    size = sitk.ReadImage(str(out / "images" / "study.nii.gz")).GetSize()
    assert size[2] == 40  # the 32 slices at 2.5 mm at 2 mm (the 16 at 5 mm would give 39)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["prepare", "--images", str(tmp_path / "in"), "--out", str(tmp_path / "o2"), "--series-rules",
                 str(bad)]) == 2
