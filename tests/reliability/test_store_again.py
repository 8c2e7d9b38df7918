"""A repeated ``--store`` does not duplicate the DICOM-SEG in a real Orthanc: the second run finds the first SEG
(QIDO-RS, then its metadata: same bundle, versions, weights and source series) and skips the store with a notice;
``--store-again`` stores another; other weights are another algorithm, so their SEG is stored."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import torch

from satgate_monai.infer.cli import main
from tests.conftest import REPO_ROOT
from tests.infer.helpers import read_report, set_args, write_ct_series
from tests.reliability.faults import ct_image

LIVER = REPO_ROOT / "bundles" / "liver_ct_sat"
OVERRIDES = ['network_def={"_target_": "tests.infer.helpers.ThresholdNet"}', "roi_size=[16,16,16]"]


def _ckpt(path: Path, level: float) -> Path:
    torch.save({"model": {"level": torch.tensor(level)}}, path)
    return path


@pytest.mark.slow
def test_a_repeated_store_is_skipped_with_a_notice(orthanc, tmp_path, caplog):
    folder = tmp_path / "study"
    write_ct_series(ct_image(size=(32, 32, 16), seed=5), folder, patient_id="STOREAGAIN")
    files = sorted(folder.iterdir())
    for f in files:
        orthanc.upload(f)
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    address = f"dicomweb://127.0.0.1:{orthanc.port}/dicom-web?study={study}"
    ckpt = _ckpt(tmp_path / "a.pt", 0.3)

    def run(out: str, ckpt: Path, *extra: str) -> dict:
        args = ["--bundle", str(LIVER), "--input", address, "--out", str(tmp_path / out), "--ckpt", str(ckpt),
                "--device", "cpu", "--no-progress", "--store", *extra, *set_args(OVERRIDES)]
        assert main(args) == 0, read_report(tmp_path / out)
        return read_report(tmp_path / out)[study]

    def segs() -> list[str]:
        found = orthanc.get_json(f"/dicom-web/studies/{study}/series?Modality=SEG") or []
        return sorted(s["0020000E"]["Value"][0] for s in found)

    first = run("o1", ckpt)
    assert len(segs()) == 1 and first["warning"] == ""
    caplog.clear()
    second = run("o2", ckpt)
    assert len(segs()) == 1
    assert f"already holds DICOM-SEG series {segs()[0]}" in second["warning"]
    assert second["stored_seg"] == f"already stored: series {segs()[0]}"
    assert any("already holds DICOM-SEG series" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    run("o3", ckpt, "--store-again")
    assert len(segs()) == 2
    run("o4", _ckpt(tmp_path / "b.pt", 0.35))  # other weights: another algorithm version
    assert len(segs()) == 3
