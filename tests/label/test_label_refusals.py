"""Bad requests to the MONAI Label server, sent with MONAI Label's own client: refused with a 4xx and the reason.

Uploaded images and labels that cannot be read, are not finite, hold values that are not the served models' labels
or do not lie on their image's grid are refused with HTTP 422 and nothing is stored; unknown models and images get
HTTP 404; a training that cannot start says what to do in ``GET /train/`` (and in the answer of a synchronous one).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.label.client import LabelClient, label_python, serving
from tests.label.phantoms import MR_AFFINE, copy_bundle, make_studies, mr_phantom, write_random_weights

PROSTATE, SKIN = "prostate_mri_sat", "skin_lesion_sat"


def _save(path: Path, array: np.ndarray, affine: np.ndarray = MR_AFFINE) -> Path:
    import nibabel as nib

    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _failed_training(client: LabelClient, model: str) -> str:
    client.call("train_start", model, {"max_epochs": 1, "multi_gpu": False})
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 300:
        status = client.call("train_status")
        if status.get("status") not in ("SUBMITTED", "RUNNING"):
            break
        time.sleep(1.0)
    assert status["status"] == "ERROR", json.dumps(status)[-2000:]
    return status["details"][-1]


@pytest.mark.slow
def test_client_bad_requests_are_refused_with_their_reason(tmp_path):
    python = label_python()
    studies = tmp_path / "studies"
    studies.mkdir()
    make_studies(studies, n_mr=2, n_rgb=0, labelled=1)  # one labelled 3D study, no 2D study at all
    bundles = [copy_bundle(REPO_ROOT / "bundles" / n, tmp_path / "bundles" / n) for n in (PROSTATE, SKIN)]
    for i, b in enumerate(bundles):
        write_random_weights(b, seed=i)
    files = tmp_path / "uploads"
    files.mkdir()
    image, label = mr_phantom(1)
    text = files / "notes.txt"
    text.write_text("patient list\n")
    fake_nifti = files / "fake.nii.gz"
    fake_nifti.write_text("not an image\n")
    with_nan = image.copy()
    with_nan[3, 4, 5] = np.nan
    nan_image = _save(files / "nan.nii.gz", with_nan)
    good_image = _save(files / "new_mr.nii.gz", image)
    unknown_value = _save(files / "value5.nii.gz", label * 5)
    shifted = MR_AFFINE.copy()
    shifted[:3, 3] += [4.0, 0.0, 0.0]
    off_grid = _save(files / "shifted.nii.gz", label, shifted)
    wrong_size = _save(files / "small.nii.gz", label[:-2])
    good_label = _save(files / "good.nii.gz", label)

    with serving(tmp_path, studies, bundles, python) as server:
        client = LabelClient(python, server.url, tmp_path / "client")
        try:
            before, objects = _snapshot(studies), set(client.call("datastore")["objects"])
            refusals = {}
            for name, path in (("text", text), ("fake", fake_nifti), ("nan", nan_image)):
                refusals[name] = client.error("upload_image", str(path), f"up_{name}")
            for name, path in (("fake_label", fake_nifti), ("value5", unknown_value), ("shifted", off_grid),
                               ("small", wrong_size)):
                refusals[name] = client.error("save_label", "mr_1", str(path), "final")
            refusals["label_of_unknown_image"] = client.error("save_label", "no_such_image", str(good_label), "final")
            refusals["unknown_model"] = client.error("infer", "no_such_model", "mr_1", {})
            refusals["unknown_image"] = client.error("infer", PROSTATE, "no_such_image", {})
            refusals["unknown_checkpoint"] = client.error("infer", PROSTATE, "mr_1", {"model_filename": "nope.pt"})
            refusals["train_unknown_model"] = client.error("train_start", "no_such_model", {"max_epochs": 1})
            for name, (status, message) in refusals.items():
                print(f"{name}: HTTP {status}: {message}")
            expected = {
                "text": (422, "not an image file the served models take"),
                "fake": (422, "cannot be read as a .nii.gz image"),
                "nan": (422, "1 of 37632 pixel values are not finite"),
                "fake_label": (422, "cannot be read as a .nii.gz image"),
                "value5": (422, "label values [5] are not labels of the served models"),
                "shifted": (422, "not on the grid of its image mr_1.nii.gz: its origin"),
                "small": (422, "not on the grid of its image mr_1.nii.gz: its size (54, 48, 14)"),
                "label_of_unknown_image": (404, "image 'no_such_image' is not in the datastore"),
                "unknown_model": (404, "model 'no_such_model' is not served here"),
                "unknown_image": (404, "image 'no_such_image' is not in the datastore"),
                "unknown_checkpoint": (422, "model_filename 'nope.pt' is not a servable checkpoint"),
                "train_unknown_model": (404, "model 'no_such_model' is not served here"),
            }
            for name, (status, text_part) in expected.items():
                got_status, message = refusals[name]
                assert got_status == status and text_part in message, (name, got_status, message)
                assert "\n" not in json.loads(message)["detail"], f"{name}: the reason is not one line"
            assert _snapshot(studies) == before, "a refused upload changed the studies folder"
            assert set(client.call("datastore")["objects"]) == objects

            # training that cannot start: the reason reaches GET /train/ (and a synchronous request's answer)
            last = _failed_training(client, PROSTATE)
            assert "needs at least 2 labelled 3D studies" in last and "Submit Label" in last, last
            last = _failed_training(client, SKIN)
            assert "has no labelled 2D study" in last and "Submit Label" in last, last
            request = urllib.request.Request(
                f"{server.url}/train/{PROSTATE}?run_sync=true",
                data=json.dumps({"max_epochs": 1}).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(request, timeout=120)
            assert err.value.code == 422 and "needs at least 2 labelled 3D studies" in err.value.read().decode()

            # what passes the checks is stored
            assert client.call("upload_image", str(good_image), "new_mr")
            assert client.call("save_label", "mr_1", str(good_label), "final")
            assert (studies / "new_mr.nii.gz").read_bytes() == good_image.read_bytes()
            assert (studies / "labels" / "final" / "mr_1.nii.gz").is_file()
        finally:
            client.close()
