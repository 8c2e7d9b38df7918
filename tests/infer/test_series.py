"""The CLI on a multi-series study: the bundle's rule picks the series, the report says why, the SEG references it."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from satgate_monai.infer.cli import main
from tests.infer.conftest import THRESHOLD_HU, THRESHOLD_OVERRIDES
from tests.infer.helpers import dice, read_report, set_args
from tests.infer.study import write_ct_study


def _cli(bundle: Path, src: Path, out: Path, ckpt: Path, *extra: str) -> int:
    return main(["--bundle", str(bundle), "--input", str(src), "--out", str(out), "--ckpt", str(ckpt), "--device",
                 "cpu", "--no-progress", *extra, *set_args(THRESHOLD_OVERRIDES)])


def check_seg_matches_mask(seg_path: Path, nifti_path: Path, series_uid: str, sops: list[str]) -> None:
    """The SEG references ``series_uid`` frame by frame (SOP Instance UID of slice k) and its frames equal the NIfTI
    mask's slices; every source slice is covered once."""
    ds = pydicom.dcmread(seg_path)
    assert ds.Modality == "SEG" and ds.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    mask = np.asarray(nib.load(nifti_path).dataobj)  # (X, Y, Z) on the source grid
    frames = hd.seg.segread(seg_path).pixel_array
    frames = frames if frames.ndim == 3 else frames[None]
    seen = []
    for i, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        k = sops.index(fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        np.testing.assert_array_equal(frames[i].astype(bool), mask[:, :, k].T.astype(bool))
        seen.append(k)
    assert sorted(seen) == list(range(mask.shape[2]))


@pytest.mark.slow
def test_study_folder_reads_the_series_the_bundle_rule_picks(liver_bundle, lung_crop, threshold_ckpt, tmp_path):
    study = write_ct_study(lung_crop, tmp_path / "study")
    out = tmp_path / "out"
    assert _cli(liver_bundle, study.folder, out, threshold_ckpt) == 0, read_report(out)
    row = read_report(out)["study"]
    assert row["status"] == "ok" and row["series"] == study.thin
    note = row["series_selection"]
    assert note.startswith(f"chose {study.thin}") and "ABD 1.0 soft" in note
    assert f"{study.thick} (series 2, 'ABD 2.0 soft', CT, 12 images, 12 file(s)): fails" in note
    assert f"{study.localizer} " in note and "localizer/scout images only" in note
    assert all(uid in note for uid in study.others)
    mask = np.asarray(nib.load(out / "study_seg.nii.gz").dataobj)
    assert mask.shape == lung_crop.GetSize()
    truth = sitk.GetArrayFromImage(lung_crop).transpose(2, 1, 0) > THRESHOLD_HU
    assert dice(mask, truth) > 0.9
    check_seg_matches_mask(out / "study_seg.dcm", out / "study_seg.nii.gz", study.thin, study.thin_sops)


@pytest.mark.slow
def test_series_option_and_tie_refusal(liver_bundle, lung_crop, threshold_ckpt, tmp_path):
    study = write_ct_study(lung_crop, tmp_path / "study")
    out = tmp_path / "out"
    assert _cli(liver_bundle, study.folder, out, threshold_ckpt, "--series", study.thick) == 0
    row = read_report(out)["study"]
    assert row["series"] == study.thick and "requested with --series" in row["series_selection"]
    assert np.asarray(nib.load(out / "study_seg.nii.gz").dataobj).shape[2] == 12
    ds = pydicom.dcmread(out / "study_seg.dcm")
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == study.thick
    # a rules file that cannot tell the two reconstructions apart: the case fails with one line naming both
    rules = tmp_path / "rules.json"
    rules.write_text('{"selections": [{"name": "any CT", "conditions": {"Modality": "CT", "ImageType": "ORIGINAL"}}]}')
    out2 = tmp_path / "out2"
    assert _cli(liver_bundle, study.folder, out2, threshold_ckpt, "--series-rules", str(rules)) == 1
    row = read_report(out2)["study"]
    assert row["status"] == "failed" and "2 image series satisfy 'any CT' equally well" in row["error"]
    assert study.thin in row["error"] and study.thick in row["error"] and "--series" in row["error"]
    assert not (out2 / "study_seg.nii.gz").exists()


def test_bad_rules_file_and_store_without_dicomweb_exit_2(liver_bundle, threshold_ckpt, tmp_path, capsys):
    bad = tmp_path / "rules.json"
    bad.write_text('{"selections": []}')
    src = tmp_path / "in.nii.gz"
    src.write_bytes(b"")
    assert main(["--bundle", str(liver_bundle), "--input", str(src), "--out", str(tmp_path / "o"), "--series-rules",
                 str(bad), "--ckpt", str(threshold_ckpt), *set_args(THRESHOLD_OVERRIDES)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and str(bad) in err and "selections" in err and "Traceback" not in err
    assert main(["--bundle", str(liver_bundle), "--input", str(src), "--out", str(tmp_path / "o"), "--store"]) == 2
    assert "--store needs a dicomweb://" in capsys.readouterr().err
