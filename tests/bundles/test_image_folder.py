"""``inference.json --dataset_dir DIR`` with DIR a plain folder of images (the model zoo's habit) or data_prep's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from satgate_monai.bundle import DatasetNotFoundError, inference_datalist
from satgate_monai.bundle.image_folder import image_folder_datalist
from tests.bundles.helpers import TINY, bundle_run
from tests.bundles.test_workflows import _network


def _nifti(path, shape=(20, 22, 9), seed=0):
    import nibabel as nib

    rng = np.random.default_rng(seed)
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    nib.save(nib.Nifti1Image(rng.integers(-200, 200, shape).astype(np.int16), affine), path)
    return affine


def test_plain_folder_lists_its_images(tmp_path):
    for i, name in enumerate(("b.nii.gz", "a.mha.nii.gz")):
        _nifti(tmp_path / name, seed=i)
    (tmp_path / "notes.txt").write_text("not an image")
    items = inference_datalist(tmp_path, "test", task="liver", spacing=[2.0, 2.0, 2.0])
    assert [sorted(i) for i in items] == [["image"], ["image"]]
    assert sorted(p["image"] for p in items) == sorted(str((tmp_path / n).resolve()) for n in ("a.mha.nii.gz",
                                                                                              "b.nii.gz"))


def test_data_prep_folder_still_reads_its_split(tmp_path):
    _nifti(tmp_path / "c.nii.gz")
    (tmp_path / "datalist.json").write_text(json.dumps({"test": [{"image": "c.nii.gz"}], "training": []}))
    assert inference_datalist(tmp_path, "test") == [{"image": str(tmp_path / "c.nii.gz")}]


def test_folder_that_is_neither_gets_one_line(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError) as e:
        inference_datalist(tmp_path, "test")
    message = str(e.value)
    assert "\n" not in message and str(tmp_path) in message and "datalist.json" in message and ".nii.gz" in message
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        image_folder_datalist(tmp_path / "readme.txt")


@pytest.mark.slow
def test_inference_json_segments_a_plain_folder_of_nifti(tmp_path):
    """``python -m monai.bundle run --config_file inference.json --dataset_dir FOLDER`` with two NIfTI files and
    no datalist.json: one mask per image, on the image's own grid."""
    import nibabel as nib

    bundle = "liver_ct_sat"
    root = tmp_path / "bundle"
    (root / "models").mkdir(parents=True)
    torch.save(_network(bundle).state_dict(), root / "models" / "model.pt")
    images = tmp_path / "images"
    images.mkdir()
    affine = _nifti(images / "ct1.nii.gz", seed=1)
    _nifti(images / "ct2.nii.gz", shape=(18, 16, 7), seed=2)
    bundle_run(bundle, ["inference"], {**TINY[bundle], "bundle_root": str(root), "dataset_dir": str(images),
                                       "output_dir": str(tmp_path / "out")})
    out1, out2 = (nib.load(tmp_path / "out" / f"ct{i}_seg.nii.gz") for i in (1, 2))
    assert out1.shape == (20, 22, 9) and np.allclose(out1.affine, affine) and out2.shape == (18, 16, 7)
    assert sorted(json.loads((tmp_path / "out" / "run.json").read_text())) and not (images / "datalist.json").exists()


@pytest.mark.slow
def test_inference_json_refuses_a_folder_that_is_neither(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "models").mkdir()
    torch.save(_network("liver_ct_sat").state_dict(), tmp_path / "models" / "model.pt")
    proc = bundle_run("liver_ct_sat", ["inference"], {**TINY["liver_ct_sat"], "bundle_root": str(tmp_path),
                                                      "dataset_dir": str(tmp_path / "empty")}, check=False)
    assert proc.returncode != 0
    assert "expected a data_prep output folder (datalist.json) or a folder of images" in proc.stdout + proc.stderr
