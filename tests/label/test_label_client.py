"""The MONAI Label server driven by MONAI Label's own client (the calls 3D Slicer's module makes), on a studies folder.

Bundle copies hold both ``models/model.pt`` and a *different* ``models/last.pt`` (as after any training), plus a file
that is not a checkpoint: the server must serve ``model.pt``, list only what it can serve, serve ``last.pt`` when a
request names it, and after a training round serve the new best weights. Served labels are compared voxel for voxel
with an offline run of the same checkpoint file on the same image (the inference CLI for this 3D bundle, whose
post-processing the app shares: :func:`tests.label.client.reference_command`).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.label.client import LabelClient, label_python, offline_run, serving
from tests.label.phantoms import MR_AFFINE, copy_bundle, make_studies, mr_phantom, write_random_weights

PROSTATE, SKIN, LIVER = "prostate_mri_sat", "skin_lesion_sat", "liver_ct_sat"
TRAIN_TIMEOUT = 600.0


def _nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    img = nib.load(path)
    return np.asanyarray(img.dataobj), img.affine


def _wait_training(client: LabelClient, timeout: float = TRAIN_TIMEOUT) -> dict:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        status = client.call("train_status")
        if status.get("status") not in ("SUBMITTED", "RUNNING"):
            return status
        time.sleep(1.0)
    pytest.fail(f"training still running after {timeout} s")


def _bundles(root: Path, mr: Path, rgb: Path) -> dict[str, Path]:
    """Served copies (model.pt, a different last.pt, a file that is no checkpoint) and a copy whose model.pt is
    the served last.pt, for the offline reference run."""
    import torch

    served = {name: copy_bundle(REPO_ROOT / "bundles" / name, root / "served" / name) for name in (PROSTATE, SKIN)}
    served[LIVER] = copy_bundle(REPO_ROOT / "bundles" / LIVER, root / "served" / LIVER)
    write_random_weights(served[PROSTATE], balance_on=mr, seed=1)
    write_random_weights(served[SKIN], balance_on=rgb, seed=2)
    write_random_weights(served[LIVER], seed=0)
    as_last = copy_bundle(REPO_ROOT / "bundles" / PROSTATE, root / "as_last" / PROSTATE)
    write_random_weights(as_last, balance_on=mr, seed=7)
    state = torch.load(as_last / "models" / "model.pt", map_location="cpu", weights_only=True)
    torch.save({"model": state, "epoch": 3, "completed": True}, served[PROSTATE] / "models" / "last.pt")
    (served[PROSTATE] / "models" / "notes.pt").write_text("not a checkpoint\n")
    return {**served, "as_last": as_last}


@pytest.mark.slow
def test_client_serves_model_pt_names_checkpoints_and_serves_retrained_weights(tmp_path):
    python = label_python()
    studies = tmp_path / "studies"
    studies.mkdir()
    ids = make_studies(studies, n_mr=3, n_rgb=1, labelled=2)
    mr, rgb = studies / f"{ids['mr'][2]}.nii.gz", studies / f"{ids['rgb'][0]}.png"
    bundles = _bundles(tmp_path, mr, rgb)
    offline = {
        "model": offline_run(python, bundles[PROSTATE], mr, tmp_path / "offline_model"),
        "last": offline_run(python, bundles["as_last"], mr, tmp_path / "offline_last"),
    }
    timings: dict[str, float] = {}
    with serving(tmp_path, studies, [bundles[PROSTATE], bundles[SKIN], bundles[LIVER]], python) as server:
        timings["server_start_s"] = server.start_s
        client = LabelClient(python, server.url, tmp_path / "client")
        try:
            info = client.call("info")
            assert set(info["models"]) == {PROSTATE, SKIN, LIVER}
            store = client.call("datastore")
            assert set(store["objects"]) == set(ids["mr"]) | set(ids["rgb"])

            t = time.perf_counter()
            default = client.call("infer", PROSTATE, mr.name[: -len(".nii.gz")], {})
            timings["first_infer_s"] = time.perf_counter() - t
            named = client.call("infer", PROSTATE, mr.name[: -len(".nii.gz")], {"model_filename": "last.pt"})
            served_model, served_affine = _nifti(Path(default["file"]))
            served_last, _ = _nifti(Path(named["file"]))
            refs = {}
            for key, proc in offline.items():
                assert proc.wait(timeout=300) == 0, (tmp_path / f"offline_{key}" / "offline.log").read_text()[-3000:]
                refs[key], ref_affine = _nifti(tmp_path / f"offline_{key}" / f"{mr.name[:-7]}_seg.nii.gz")
            assert served_model.shape == served_last.shape == refs["model"].shape == mr_phantom(2)[0].shape
            assert np.allclose(served_affine, ref_affine, atol=1e-4), (served_affine, ref_affine)
            assert np.allclose(served_affine, MR_AFFINE, atol=1e-4), served_affine
            assert 0.05 < (refs["model"] > 0).mean() < 0.95, "a one-class label cannot show a checkpoint mix-up"
            differ = int((refs["model"] != refs["last"]).sum())
            assert differ > 0.05 * refs["model"].size, "model.pt and last.pt must give clearly different labels"
            mismatch = {k: int((s != refs[k]).sum()) for k, s in (("model", served_model), ("last", served_last))}
            print(f"voxels differing from the offline run: {mismatch} of {served_model.size}; "
                  f"offline model.pt vs last.pt differ in {differ}")
            assert mismatch == {"model": 0, "last": 0}, mismatch
            # only what it can serve, the best checkpoint first (notes.pt is no checkpoint)
            assert info["models"][PROSTATE]["config"]["model_filename"] == ["model.pt", "last.pt"]
            assert info["models"][SKIN]["config"]["model_filename"] == ["model.pt"]

            skin = client.call("infer", SKIN, rgb.stem, {})
            from PIL import Image

            assert np.asarray(Image.open(skin["file"])).shape == (72, 96)
            liver = client.call("infer", LIVER, mr.name[:-7], {})
            assert _nifti(Path(liver["file"]))[0].shape == served_model.shape

            # a training round: the next /infer serves the new best weights without a restart
            weights = bundles[PROSTATE] / "models" / "model.pt"
            before = weights.read_bytes()
            t = time.perf_counter()
            client.call("train_start", PROSTATE, {"max_epochs": 1, "val_split": 0.5, "multi_gpu": False})
            status = _wait_training(client)
            timings["one_epoch_train_s"] = time.perf_counter() - t
            assert status["status"] == "DONE", json.dumps(status)[-3000:]
            assert weights.read_bytes() != before, "training did not write a new models/model.pt"
            stats = client.call("info")["train_stats"][PROSTATE]
            assert stats["epoch"] == 1 and stats["completed"] is True and stats["best_metric_epoch"] == 1, stats
            after = _nifti(Path(client.call("infer", PROSTATE, mr.name[:-7], {})["file"]))[0]
            retrained = tmp_path / "retrained" / PROSTATE
            shutil.copytree(bundles[PROSTATE], retrained)
            proc = offline_run(python, retrained, mr, tmp_path / "offline_retrained")
            assert proc.wait(timeout=300) == 0
            ref_after = _nifti(tmp_path / "offline_retrained" / f"{mr.name[:-7]}_seg.nii.gz")[0]
            assert int((after != ref_after).sum()) == 0, "the served label after training is not the new model.pt's"
            assert int((after != served_model).sum()) > 0, "the served label did not change after training"

            # a long training stopped from the client
            client.call("train_start", PROSTATE, {"max_epochs": 200, "val_split": 0.5, "multi_gpu": False})
            t0 = time.perf_counter()
            while client.call("train_status").get("status") != "RUNNING" and time.perf_counter() - t0 < 60:
                time.sleep(0.5)
            time.sleep(3.0)
            client.call("train_stop")
            assert client.call("train_status")["status"] == "STOPPED"
            assert client.call("train_status", True) is False, "a training is still running after the stop"
        finally:
            client.close()
            print("MONAI Label client timings (s):", json.dumps({k: round(v, 2) for k, v in timings.items()}))
