"""Fault catalogue of ``python -m satgate_monai.infer``: no mask from a bad input, checkpoint or disk.

The liver bundle's own inference config runs with a threshold "network" (``tests.infer.helpers.ThresholdNet``) on
small synthetic CT volumes, so every case takes a fraction of a second; each test puts one fault in a batch and checks
the exit code, the one-line message naming the file and the fault, that nothing was written under a final name for
the faulty case, that the other cases finished and that the inputs are unchanged.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pydicom
import pytest
import SimpleITK as sitk
import torch

from satgate_monai.infer.cli import main
from tests.conftest import REPO_ROOT
from tests.infer.helpers import read_report, set_args, write_ct_series
from tests.reliability.faults import FILE_FAULTS, MAX_LINE, ct_image, one_error_line, snapshot

LIVER = REPO_ROOT / "bundles" / "liver_ct_sat"
OVERRIDES = ['network_def={"_target_": "tests.infer.helpers.ThresholdNet"}', "roi_size=[16,16,16]",
             "inferer#sw_batch_size=2"]


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    p = tmp_path / "ckpt" / "threshold.pt"
    p.parent.mkdir()
    torch.save({"model": {"level": torch.tensor(0.3)}}, p)
    return p


def _infer(inp: Path, out: Path, ckpt: Path, *extra: str) -> int:
    return main(["--bundle", str(LIVER), "--input", str(inp), "--out", str(out), "--ckpt", str(ckpt),
                 "--device", "cpu", "--no-progress", "--format", "nifti", *set_args(OVERRIDES), *extra])


def _batch(tmp_path: Path) -> Path:
    cases = tmp_path / "cases"
    cases.mkdir()
    sitk.WriteImage(ct_image(seed=1), str(cases / "good1.nii.gz"))
    sitk.WriteImage(ct_image(seed=2), str(cases / "good2.mha"))
    return cases


@pytest.mark.parametrize("fault", sorted(FILE_FAULTS))
def test_faulty_input_gives_no_mask(fault, tmp_path, ckpt, capsys):
    cases = _batch(tmp_path)
    bad, pattern = FILE_FAULTS[fault](cases, "bad")
    before = snapshot(cases)
    out = tmp_path / "out"
    assert _infer(cases, out, ckpt) == 1
    rows = read_report(out)
    assert rows["good1"]["status"] == "ok" and rows["good2"]["status"] == "ok"
    err = rows["bad"]["error"]
    assert rows["bad"]["status"] == "failed" and bad.name in err and re.search(pattern, err, re.IGNORECASE), err
    assert len(err) <= MAX_LINE
    assert not list(out.glob("bad*")) and not list(out.glob(".*")), "no mask, no temporary for a refused input"
    assert (out / "good1_seg.nii.gz").is_file() and (out / "good2_seg.nii.gz").is_file()
    assert snapshot(cases) == before
    assert "Traceback" not in capsys.readouterr().err


def test_nonfinite_voxels_replaced_on_request_are_reported(tmp_path, ckpt):
    cases = tmp_path / "cases"
    cases.mkdir()
    FILE_FAULTS["inf_voxels_mha"](cases, "inf")
    out = tmp_path / "out"
    assert _infer(cases, out, ckpt, "--nonfinite", "zero") == 0
    row = read_report(out)["inf"]
    assert row["status"] == "ok" and "replaced 1 non-finite" in row["warning"]


def test_nan_weights_are_refused(tmp_path, ckpt, capsys):
    cases = _batch(tmp_path)
    bad = tmp_path / "nan.pt"
    torch.save({"model": {"level": torch.tensor(float("nan"))}}, bad)
    assert _infer(cases, tmp_path / "out", bad) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "nan.pt" in line and "NaN or infinite weights" in line, line
    assert not list((tmp_path / "out").glob("*_seg.nii.gz")) if (tmp_path / "out").exists() else True


def test_checkpoint_of_another_network_in_one_short_line(tmp_path, ckpt, capsys):
    from monai.networks.nets import UNet

    other = tmp_path / "unet.pt"
    torch.save(UNet(3, 1, 2, channels=(4, 8, 16, 32), strides=(2, 2, 2)).state_dict(), other)
    assert _infer(_batch(tmp_path), tmp_path / "out", other) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "unet.pt" in line and re.search(r"\d+ unexpected key", line) and "missing key" in line, line


def _silent_full_disk(image, path, *args, **kwargs):
    """What ITK does on a full disk: the file is created, nothing (or part) is written, no error is raised."""
    Path(path).write_bytes(b"")


def _loud_full_disk(image, path, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


@pytest.mark.parametrize("writer", [_silent_full_disk, _loud_full_disk], ids=["silent", "raising"])
def test_full_disk_leaves_no_mask_and_the_rerun_redoes_the_case(writer, tmp_path, ckpt, monkeypatch):
    import satgate_monai.infer.nifti as nifti

    cases = tmp_path / "cases"
    cases.mkdir()
    sitk.WriteImage(ct_image(), str(cases / "ct.nii.gz"))
    out = tmp_path / "out"
    real = nifti.sitk.WriteImage
    with monkeypatch.context() as m:
        m.setattr(nifti.sitk, "WriteImage", lambda img, p, *a, **k: writer(img, p) if "_seg" in str(p)
                  else real(img, p, *a, **k))
        assert _infer(cases, out, ckpt) == 1
    row = read_report(out)["ct"]
    assert row["status"] == "failed" and "ct_seg" in row["error"]
    assert not (out / "ct_seg.nii.gz").exists() and not list(out.glob(".*")), "no mask under its final name"
    assert _infer(cases, out, ckpt) == 0  # the re-run does not take the case as done
    assert read_report(out)["ct"]["status"] == "ok"
    assert sitk.ReadImage(str(out / "ct_seg.nii.gz")).GetSize() == ct_image().GetSize()


@pytest.mark.parametrize("leftover", [b"", b"\x1f\x8b\x08partial"], ids=["empty", "cut"])
def test_rerun_never_skips_an_unreadable_output(leftover, tmp_path, ckpt):
    cases = tmp_path / "cases"
    cases.mkdir()
    sitk.WriteImage(ct_image(), str(cases / "ct.nii.gz"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "ct_seg.nii.gz").write_bytes(leftover)
    assert _infer(cases, out, ckpt) == 0
    assert read_report(out)["ct"]["status"] == "ok"
    assert sitk.ReadImage(str(out / "ct_seg.nii.gz")).GetSize() == ct_image().GetSize()


def _dicom_case(tmp_path: Path, drop: tuple[str, ...] = ()) -> Path:
    series = tmp_path / "cases" / "anon"
    write_ct_series(ct_image(), series, patient_id="ANON")
    for f in series.iterdir():
        ds = pydicom.dcmread(f)
        for a in drop:
            if a in ds:
                delattr(ds, a)
        ds.save_as(f)
    return series


def test_dicom_seg_of_an_anonymised_series(tmp_path, ckpt):
    """Absent type 2 patient/study attributes (usual after anonymisation) do not stop the DICOM-SEG."""
    series = _dicom_case(tmp_path, drop=("PatientName", "PatientBirthDate", "PatientSex", "StudyID",
                                         "AccessionNumber", "ReferringPhysicianName", "StudyDate", "StudyTime"))
    before = snapshot(series)
    out = tmp_path / "out"
    assert _infer(series, out, ckpt, "--format", "nifti,dicomseg") == 0, read_report(out)
    seg = pydicom.dcmread(out / "anon_seg.dcm")
    assert seg.Modality == "SEG" and str(seg.PatientName) == "" and seg.PatientID == "ANON"
    assert snapshot(series) == before


def test_dicom_seg_failure_keeps_the_nifti_mask(tmp_path, ckpt, monkeypatch, capsys):
    import satgate_monai.infer.pipeline as pipeline

    def broken(*a, **k):
        raise AttributeError("'FileDataset' object has no attribute 'PatientName'")

    monkeypatch.setattr(pipeline, "write_dicom_seg", broken)
    series = _dicom_case(tmp_path)
    out = tmp_path / "out"
    assert _infer(series, out, ckpt, "--format", "nifti,dicomseg") == 1
    row = read_report(out)["anon"]
    assert row["status"] == "failed" and "DICOM-SEG" in row["error"] and str(series) in row["error"], row["error"]
    assert (out / "anon_seg.nii.gz").is_file() and not (out / "anon_seg.dcm").exists()
    assert "anon_seg.nii.gz" in row["outputs"]
    assert "Traceback" not in capsys.readouterr().err


def test_ctrl_c_exits_130_without_traceback(tmp_path, ckpt, monkeypatch, capsys):
    import satgate_monai.infer.pipeline as pipeline

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_network", interrupted)  # the network stage: on the main thread
    assert _infer(_batch(tmp_path), tmp_path / "out", ckpt) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err


def test_two_channel_input_is_refused_for_a_single_channel_bundle(tmp_path, ckpt):
    cases = _batch(tmp_path)
    two = sitk.Compose(ct_image(), ct_image(seed=5))
    sitk.WriteImage(two, str(cases / "two.mha"))
    out = tmp_path / "out"
    assert _infer(cases, out, ckpt) == 1
    row = read_report(out)["two"]
    assert row["status"] == "failed" and "two.mha" in row["error"] and "channel" in row["error"]
    assert not list(out.glob("two*"))


def test_error_lines_are_bounded(tmp_path, ckpt):
    """Even a long path and a long library message give one report line of at most 300 characters."""
    deep = tmp_path / ("x" * 120) / ("y" * 120)
    deep.mkdir(parents=True)
    FILE_FAULTS["truncated_nii_gz"](deep, "bad")
    out = tmp_path / "out"
    assert _infer(deep, out, ckpt) == 1
    err = read_report(out)["bad"]["error"]
    assert len(err) <= MAX_LINE and "\n" not in err, err
    assert err.startswith(str(deep)[:100]) and ("truncated" in err or err.endswith(" ...")), err
