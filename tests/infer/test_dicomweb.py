"""PACS to PACS against a real Orthanc: a multi-series study in, the DICOM-SEG back by STOW-RS, read back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from satgate_monai.infer.cli import main
from satgate_monai.infer.dicomweb import parse_dicomweb
from tests.infer.conftest import THRESHOLD_OVERRIDES
from tests.infer.helpers import read_report, set_args
from tests.infer.study import write_ct_study
from tests.infer.test_series import check_seg_matches_mask


def _args(bundle: Path, address: str, out: Path, ckpt: Path, *extra: str) -> list[str]:
    return ["--bundle", str(bundle), "--input", address, "--out", str(out), "--ckpt", str(ckpt), "--device", "cpu",
            "--no-progress", *extra, *set_args(THRESHOLD_OVERRIDES)]


def test_address_parsing() -> None:
    src = parse_dicomweb("dicomweb://127.0.0.1:8042/dicom-web/?study=1.2.3&series=4.5")
    assert (src.url, src.study, src.series) == ("http://127.0.0.1:8042/dicom-web", "1.2.3", "4.5")
    assert parse_dicomweb("dicomwebs://pacs.example:443/wado?study=9").url == "https://pacs.example:443/wado"
    for bad, frag in (("dicomweb://h:1/dw", "no study=UID"), ("http://h:1/dw?study=1", "expected dicomweb://"),
                      ("dicomweb://h:1/dw?study=1&patient=2", "unknown parameter")):
        with pytest.raises(ValueError, match=frag):
            parse_dicomweb(bad)


@pytest.mark.slow
def test_pacs_to_pacs_round_trip(orthanc, liver_bundle, lung_crop, threshold_ckpt, tmp_path):
    study = write_ct_study(lung_crop, tmp_path / "study", patient_id="PACS1")
    files = sorted(study.folder.iterdir())
    for f in files:
        orthanc.upload(f)
    address = f"dicomweb://127.0.0.1:{orthanc.port}/dicom-web?study={study.study}"
    out = tmp_path / "out"
    assert main(_args(liver_bundle, address, out, threshold_ckpt, "--store")) == 0, read_report(out)
    row = read_report(out)[study.study]
    assert row["status"] == "ok" and row["series"] == study.thin and row["input"] == address
    assert float(row["retrieve_seconds"]) > 0 and float(row["store_seconds"]) > 0
    # the PACS now holds one SEG series in the study; QIDO-RS finds it, WADO-RS returns it
    segs = orthanc.get_json(f"/dicom-web/studies/{study.study}/series?Modality=SEG")
    assert len(segs) == 1
    seg_series = segs[0]["0020000E"]["Value"][0]
    instances = orthanc.get_json(f"/dicom-web/studies/{study.study}/series/{seg_series}/instances")
    assert [i["00080018"]["Value"][0] for i in instances] == [row["stored_seg"]]
    status, body = orthanc.request(f"/instances/{_orthanc_id(orthanc, row['stored_seg'])}/file")
    assert status == 200
    seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(io.BytesIO(body)))
    assert seg.StudyInstanceUID == study.study and seg.PatientID == "PACS1"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == study.thin
    fetched = tmp_path / "fetched_seg.dcm"
    fetched.write_bytes(body)
    check_seg_matches_mask(fetched, out / f"{study.study}_seg.nii.gz", study.thin, study.thin_sops)
    # the source series is untouched: as many instances as were uploaded, plus the one SEG
    assert len(orthanc.get_json(f"/studies/{_orthanc_study(orthanc, study.study)}/instances")) == len(files) + 1


def test_unreachable_server_and_unknown_study_exit_2(orthanc, liver_bundle, threshold_ckpt, tmp_path, capsys):
    from tests.orthanc import free_port

    dead = f"dicomweb://127.0.0.1:{free_port()}/dicom-web?study=1.2.3"
    assert main(_args(liver_bundle, dead, tmp_path / "o1", threshold_ckpt)) == 2
    err = capsys.readouterr().err
    assert "no answer" in err and "1.2.3" in err and "Traceback" not in err
    missing = f"dicomweb://127.0.0.1:{orthanc.port}/dicom-web?study=1.2.999"
    assert main(_args(liver_bundle, missing, tmp_path / "o2", threshold_ckpt)) == 2
    err = capsys.readouterr().err
    assert "study 1.2.999" in err and len(err.strip().splitlines()) == 1


def _orthanc_id(orthanc, sop_uid: str) -> str:
    status, body = orthanc.request("/tools/lookup", "POST", sop_uid.encode())
    assert status == 200
    return next(r["ID"] for r in json.loads(body) if r["Type"] == "Instance")


def _orthanc_study(orthanc, study_uid: str) -> str:
    status, body = orthanc.request("/tools/lookup", "POST", study_uid.encode())
    assert status == 200
    return next(r["ID"] for r in json.loads(body) if r["Type"] == "Study")
