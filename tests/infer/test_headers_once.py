"""Each DICOM file is parsed once per case: the chosen series travels from the reader to the DICOM-SEG writer."""

from __future__ import annotations

import collections
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import satgate_monai.infer.dicomseg as dicomseg
import satgate_monai.infer.pipeline as pipeline
from satgate_monai.infer.bundle import BundleRunner
from satgate_monai.infer.cases import find_cases
from satgate_monai.infer.cli import parse_overrides
from satgate_monai.infer.pipeline import InferenceOptions, run_case
from tests.infer.conftest import THRESHOLD_OVERRIDES
from tests.infer.study import write_ct_study


def _seg_content(path: Path) -> dict:
    """What a SEG says apart from its own new UIDs and time stamps: frames, their source instances and positions."""
    ds = pydicom.dcmread(path)
    seg = hd.seg.segread(path)
    refs = [fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            for fg in ds.PerFrameFunctionalGroupsSequence]
    positions = [tuple(float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient)
                 for fg in ds.PerFrameFunctionalGroupsSequence]
    return {"pixels": np.asarray(seg.pixel_array), "refs": refs, "positions": positions,
            "series": ds.ReferencedSeriesSequence[0].SeriesInstanceUID,
            "instances": sorted(i.ReferencedSOPInstanceUID
                                for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence),
            "patient": (ds.PatientID, ds.StudyInstanceUID, ds.FrameOfReferenceUID)}


@pytest.mark.slow
def test_seg_writer_reads_nothing_and_writes_the_same_seg(liver_bundle, lung_crop, threshold_ckpt, tmp_path,
                                                          monkeypatch):
    study = write_ct_study(lung_crop, tmp_path / "study")  # two reconstructions, a localizer, an SR, a dose report
    [case] = find_cases(study.folder)
    runner = BundleRunner(liver_bundle, device="cpu", ckpt=threshold_ckpt,
                          overrides=parse_overrides(THRESHOLD_OVERRIDES))
    reads: collections.Counter = collections.Counter()
    real_dcmread = pydicom.dcmread

    def counting_dcmread(fp, *a, **k):
        reads[str(fp)] += 1
        return real_dcmread(fp, *a, **k)

    in_seg_writer = []
    real_writer = pipeline.write_dicom_seg

    def watched_writer(*a, **k):
        in_seg_writer.append(sum(reads.values()))
        globbed = []
        monkeypatch.setattr(Path, "rglob", lambda self, *x: globbed.append(self) or iter(()))
        try:
            return real_writer(*a, **k)
        finally:
            monkeypatch.undo()  # restores rglob (and the dcmread counter, re-set below)
            monkeypatch.setattr(pydicom, "dcmread", counting_dcmread)
            in_seg_writer.append(sum(reads.values()))
            assert not globbed, f"the SEG writer searched {globbed}"

    monkeypatch.setattr(pydicom, "dcmread", counting_dcmread)
    monkeypatch.setattr(pipeline, "write_dicom_seg", watched_writer)
    out = tmp_path / "out"
    out.mkdir()
    report = run_case(runner, case, out, InferenceOptions(formats=("nifti", "dicomseg"), series_uid=study.thin))
    monkeypatch.undo()
    assert report.status == "ok", report.error
    assert report.extra["series"] == study.thin
    assert len(in_seg_writer) == 2 and in_seg_writer[0] == in_seg_writer[1]  # no DICOM file read by the SEG writer
    assert reads and max(reads.values()) == 1  # every file parsed once in the whole case, headers and pixels
    n_files = sum(1 for p in study.folder.rglob("*") if p.is_file())
    assert len(reads) == n_files
    # the former route (the folder searched again, the series chosen again by its UID) gives the same SEG
    label = sitk.ReadImage(str(out / f"{case.name}_seg.nii.gz"))
    old = tmp_path / "old.dcm"
    dicomseg.write_dicom_seg(label, study.folder, old, runner.labels, algorithm_name="satgate-monai liver_ct_sat",
                             algorithm_version="x", series_uid=study.thin)
    new, before = _seg_content(out / f"{case.name}_seg.dcm"), _seg_content(old)
    np.testing.assert_array_equal(new.pop("pixels"), before.pop("pixels"))
    assert new == before
    assert new["series"] == study.thin and sorted(new["refs"]) == sorted(study.thin_sops)


def test_run_json_names_the_series_read(liver_bundle, lung_crop, threshold_ckpt, tmp_path):
    """In a study of several series, ``run.json`` records the series the case was read from."""
    import json

    study = write_ct_study(lung_crop, tmp_path / "study")
    runner = BundleRunner(liver_bundle, device="cpu", ckpt=threshold_ckpt,
                          overrides=parse_overrides(THRESHOLD_OVERRIDES))
    for uid in (study.thin, study.thick):
        out = tmp_path / f"out-{uid[-6:]}"
        [report] = pipeline.run_inference(runner, study.folder, out, InferenceOptions(formats=("nifti",),
                                          series_uid=uid), progress=False)
        assert report.status == "ok", report.error
        [record] = json.loads((out / "run.json").read_text())["cases"].values()
        assert record["series_uid"] == uid
