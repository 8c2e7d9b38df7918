"""The CLI's batch behaviour and safety: broken cases, malicious checkpoints, unsafe names, overwrite, attention."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from satgate_monai.infer.cli import main
from tests.infer.conftest import THRESHOLD_OVERRIDES, TINY_UNET_OVERRIDES
from tests.infer.helpers import add_localizer, read_report, set_args, write_ct_series


@pytest.fixture(scope="module")
def small_ct(lung_crop: sitk.Image) -> sitk.Image:
    """A 64x64x12 piece of the real CT (fast cases)."""
    return lung_crop[32:96, 32:96, 6:18]


def _cli(bundle: Path, inp: Path, out: Path, ckpt: Path, *extra: str, overrides=THRESHOLD_OVERRIDES) -> int:
    return main(["--bundle", str(bundle), "--input", str(inp), "--out", str(out), "--ckpt", str(ckpt),
                 "--device", "cpu", "--no-progress", *set_args(overrides), *extra])


@pytest.mark.slow
def test_folder_with_a_broken_case(liver_bundle, small_ct, threshold_ckpt, tmp_path, capsys):
    cases = tmp_path / "cases"
    cases.mkdir()
    sitk.WriteImage(small_ct, str(cases / "good_nifti.nii.gz"))
    write_ct_series(small_ct, cases / "good_dicom", seed=2)
    write_ct_series(small_ct, cases / "broken_dicom", seed=3, corrupt_slice=5)  # a truncated file
    (cases / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    rc = _cli(liver_bundle, cases, out, threshold_ckpt, "--format", "nifti,dicomseg")
    assert rc == 1  # one case failed
    rows = read_report(out)
    assert set(rows) == {"good_nifti", "good_dicom", "broken_dicom"}
    assert rows["good_nifti"]["status"] == "ok" and rows["good_dicom"]["status"] == "ok"
    assert rows["broken_dicom"]["status"] == "failed" and "broken_dicom" in rows["broken_dicom"]["error"]
    for f in ("good_nifti_seg.nii.gz", "good_dicom_seg.nii.gz", "good_dicom_seg.dcm"):
        assert (out / f).is_file()
    assert not list(out.glob("broken_dicom*")) and not list(out.glob(".*"))  # nothing partial, no temporaries
    assert not (out / "good_nifti_seg.dcm").exists()  # DICOM-SEG only for DICOM input
    assert "broken_dicom: failed" in capsys.readouterr().err


@pytest.mark.slow
def test_series_with_a_localizer(liver_bundle, small_ct, threshold_ckpt, tmp_path):
    """The reader leaves the scout out; the DICOM-SEG references exactly the stack's instances, not the scout."""
    import pydicom

    series = tmp_path / "with_scout"
    uids = write_ct_series(small_ct, series, seed=4)
    scout = add_localizer(series)
    assert _cli(liver_bundle, series, tmp_path / "out", threshold_ckpt) == 0
    seg = pydicom.dcmread(tmp_path / "out" / "with_scout_seg.dcm")
    refs = [fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            for fg in seg.PerFrameFunctionalGroupsSequence]
    assert sorted(refs) == sorted(uids) and scout not in refs


class _Payload:
    """Unpickling this would create ``target`` (a stand-in for arbitrary code)."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_checkpoint_is_refused(liver_bundle, small_ct, tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pt"
    torch.save({"model": {"level": torch.tensor(0.3)}, "extra": _Payload(marker)}, ckpt)
    assert not marker.exists()
    image = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_ct, str(image))
    rc = _cli(liver_bundle, image, tmp_path / "out", ckpt)
    assert rc == 2
    assert "refused checkpoint" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "out" / "ct_seg.nii.gz").exists()
    # the payload is real: an unrestricted load would have run it
    torch.load(ckpt, weights_only=False)
    assert marker.exists()


@pytest.mark.slow
def test_patient_id_cannot_escape_the_output_folder(liver_bundle, small_ct, threshold_ckpt, tmp_path):
    write_ct_series(small_ct, tmp_path / "in" / "series", patient_id="../../x", series_number=7)
    out = tmp_path / "deep" / "er" / "out"
    before = {p for p in tmp_path.rglob("*")}
    rc = _cli(liver_bundle, tmp_path / "in" / "series", out, threshold_ckpt, "--name-from", "patient")
    assert rc == 0
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p == out or out in p.parents or p in out.parents for p in created)
    assert (out / "x_7_seg.nii.gz").is_file() and (out / "x_7_seg.dcm").is_file()
    assert read_report(out)["x_7"]["status"] == "ok"


@pytest.mark.slow
def test_nothing_overwritten_without_overwrite(liver_bundle, small_ct, threshold_ckpt, tmp_path):
    image = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_ct, str(image))
    out = tmp_path / "out"
    assert _cli(liver_bundle, image, out, threshold_ckpt) == 0
    seg = out / "ct_seg.nii.gz"
    earlier = sitk.Image(small_ct.GetSize(), sitk.sitkUInt8)  # a complete earlier result (another mask)
    earlier.CopyInformation(small_ct)
    sitk.WriteImage(earlier, str(seg))
    kept = seg.read_bytes()
    assert _cli(liver_bundle, image, out, threshold_ckpt) == 0
    assert seg.read_bytes() == kept
    assert read_report(out)["ct"]["status"] == "skipped"
    seg.write_bytes(b"earlier result")  # not a mask: never taken as done, the case runs again
    assert _cli(liver_bundle, image, out, threshold_ckpt) == 0
    assert read_report(out)["ct"]["status"] == "ok" and nib.load(seg).shape == small_ct.GetSize()
    assert _cli(liver_bundle, image, out, threshold_ckpt, "--overwrite") == 0
    assert nib.load(seg).shape == small_ct.GetSize()
    assert read_report(out)["ct"]["status"] == "ok"


@pytest.mark.slow
def test_attention_maps_on_the_source_grid(liver_bundle, small_ct, tiny_unet_ckpt, tmp_path):
    image = tmp_path / "ct.nii.gz"
    sitk.WriteImage(small_ct, str(image))
    out = tmp_path / "out"
    rc = _cli(liver_bundle, image, out, tiny_unet_ckpt, "--save-attention", "--overlap", "0.5",
              overrides=TINY_UNET_OVERRIDES)
    assert rc == 0
    src = nib.load(image)
    maps = sorted(out.glob("ct_attention_*.nii.gz"))
    assert len(maps) == 2  # a 3-level SATUNet has two gated skips
    for m in maps:
        a = nib.load(m)
        assert a.shape == src.shape
        np.testing.assert_allclose(a.affine, src.affine, atol=1e-4)
        v = a.get_fdata()
        assert v.min() >= 0.0 and v.max() <= 1.0 and np.isfinite(v).all()
    seg = nib.load(out / "ct_seg.nii.gz")
    assert seg.shape == src.shape
    np.testing.assert_allclose(seg.affine, src.affine, atol=1e-4)
    # beside the maps: where the selection weights lie, per gate and pooled (the shares of the checkpoint's weights)
    state = json.loads((out / "selection.json").read_text())
    ckpt = torch.load(tiny_unet_ckpt, weights_only=True)
    w = torch.cat([v for k, v in ckpt.items() if k.endswith("selection.weight")])
    assert len(state) == 3 and state["all"]["n"] == w.numel()
    assert state["all"]["off"] == pytest.approx(float((w <= 0).double().mean()))
    assert state["all"]["frozen"] == pytest.approx(float((w >= 1).double().mean()))
    assert sum(state["all"][k] for k in ("off", "between", "frozen")) == pytest.approx(1.0)


def test_unusable_runs_exit_2(liver_bundle, small_ct, threshold_ckpt, tmp_path, capsys):
    image = tmp_path / "cases" / "ct.nii.gz"
    image.parent.mkdir()
    sitk.WriteImage(small_ct, str(image))
    assert _cli(tmp_path / "no_bundle", image, tmp_path / "out", threshold_ckpt) == 2
    assert _cli(liver_bundle, tmp_path / "missing.nii.gz", tmp_path / "out", threshold_ckpt) == 2
    assert _cli(liver_bundle, image.parent, image.parent / "out", threshold_ckpt) == 2  # output inside input
    assert _cli(liver_bundle, image, tmp_path / "out", tmp_path / "missing.pt") == 2
    assert _cli(liver_bundle, image, tmp_path / "out", threshold_ckpt, "--format", "png") == 2
    err = capsys.readouterr().err
    assert "no_bundle" in err and "missing.nii.gz" in err and "inside the input" in err and "missing.pt" in err
    assert "png" in err
    skin = liver_bundle.parent / "skin_lesion_sat"
    if skin.is_dir():
        assert _cli(skin, image, tmp_path / "out", threshold_ckpt) == 2
        assert "2D bundle" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_runner_uses_the_bundle_config(liver_bundle, threshold_ckpt):
    from satgate_monai.infer.bundle import BundleRunner
    from satgate_monai.infer.cli import parse_overrides

    runner = BundleRunner(liver_bundle, device="cpu", ckpt=threshold_ckpt, overlap=0.5,
                          overrides=parse_overrides(THRESHOLD_OVERRIDES))
    assert runner.inferer.overlap == 0.5 and list(runner.inferer.roi_size) == [32, 32, 32]
    # the bundle's postprocessing without Invertd/SaveImaged/AsDiscreted: activation, then the label steps
    assert [type(t).__name__ for t in runner.engine.activation] == ["Activationsd"]
    assert runner.engine.label_steps == [] and runner.engine.pixdim == (2.0, 2.0, 2.0)
    assert runner.labels == {1: "liver"} and runner.device.type == "cpu"
    assert float(runner.network.level) == pytest.approx(0.3)  # weights came from the checkpoint
    with pytest.raises(ValueError, match="overlap"):
        BundleRunner(liver_bundle, device="cpu", ckpt=threshold_ckpt, overlap=1.5,
                     overrides=parse_overrides(THRESHOLD_OVERRIDES))
