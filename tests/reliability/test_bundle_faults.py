"""Fault catalogue of ``python -m monai.bundle run`` on the bundles' own configs: one line, never a mask.

Each test runs the real command in a subprocess on a tiny synthetic ``data_prep``-style dataset, with one fault, and
checks: a non-zero exit, no traceback, exactly one ``error:`` line (at most 300 characters) naming the file and the
fault, and no prediction or checkpoint written from the bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from tests.bundles.helpers import TINY, bundle_run, config_path
from tests.bundles.synthetic import make_dataset
from tests.reliability.faults import one_error_line, snapshot, truncate

pytestmark = pytest.mark.slow
BUNDLE = "liver_ct_sat"


def _weights(path: Path, poison: bool = False) -> Path:
    parser = ConfigParser()
    parser.read_config(str(config_path(BUNDLE, "inference")))
    for k, v in TINY[BUNDLE].items():
        parser[k] = v
    torch.manual_seed(0)
    state = parser.get_parsed_content("network_def").state_dict()
    if poison:
        key = next(k for k, v in state.items() if v.is_floating_point())
        state[key][...] = float("nan")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _infer(tmp_path: Path, data: Path, root: Path):
    return bundle_run(BUNDLE, ["inference"], {"bundle_root": str(root), "dataset_dir": str(data),
                                               "output_dir": str(tmp_path / "pred"), **TINY[BUNDLE]}, check=False)


def test_empty_dataset(tmp_path):
    data = make_dataset(tmp_path / "data", "liver", n_train=1, n_val=1, n_test=1, size=8)
    d = json.loads((data / "datalist.json").read_text())
    d.update(training=[], validation=[], test=[])
    (data / "datalist.json").write_text(json.dumps(d))
    proc = bundle_run(BUNDLE, ["train"], {"bundle_root": str(tmp_path / "b"), "dataset_dir": str(data), "epochs": 1,
                                           **TINY[BUNDLE]}, check=False)
    assert proc.returncode != 0
    line = one_error_line(proc.stderr)
    assert "datalist.json" in line and "no 'training' case" in line, line
    assert "python -m data_prep demo" in proc.stderr  # the commands that create data follow the line


def test_missing_dataset_folder(tmp_path):
    proc = bundle_run(BUNDLE, ["train"], {"bundle_root": str(tmp_path / "b"), "dataset_dir": str(tmp_path / "none"),
                                           "epochs": 1, **TINY[BUNDLE]}, check=False)
    assert proc.returncode != 0
    assert "none" in one_error_line(proc.stderr)


def test_undeclared_label_value_in_training(tmp_path):
    data = make_dataset(tmp_path / "data", "liver", n_train=1, n_val=1, n_test=1, size=16)
    lab = sorted((data / "labels").glob("*.nii.gz"))[0]
    img = nib.load(lab)
    arr = np.asarray(img.dataobj).copy()
    arr[0, 0, 0] = 7  # merged into the foreground by AsDiscreted(threshold=0.5) if it got through
    nib.save(nib.Nifti1Image(arr, img.affine), lab)
    before = snapshot(data)
    proc = bundle_run(BUNDLE, ["train"], {"bundle_root": str(tmp_path / "b"), "dataset_dir": str(data), "epochs": 1,
                                           **TINY[BUNDLE]}, check=False)
    assert proc.returncode != 0
    line = one_error_line(proc.stderr)
    assert lab.name in line and "{7}" in line and "declared: 0, 1" in line, line
    assert not (tmp_path / "b" / "models" / "model.pt").exists()
    assert snapshot(data) == before


@pytest.mark.parametrize("fault", ["truncated", "nan"])
def test_bad_image_at_inference(fault, tmp_path):
    data = make_dataset(tmp_path / "data", "liver", n_train=1, n_val=1, n_test=1, size=16)
    test_item = json.loads((data / "datalist.json").read_text())["test"][0]["image"]
    image = data / test_item
    if fault == "truncated":
        truncate(image)
    else:
        img = nib.load(image)
        arr = np.asarray(img.dataobj).astype(np.float32)
        arr[1, 1, 1] = np.nan
        nib.save(nib.Nifti1Image(arr, img.affine), image)
    root = tmp_path / "b"
    _weights(root / "models" / "model.pt")
    proc = _infer(tmp_path, data, root)
    assert proc.returncode != 0
    line = one_error_line(proc.stderr)
    assert image.name in line and ("truncated" in line if fault == "truncated" else "non-finite" in line), line
    assert not (tmp_path / "pred").exists() or not any((tmp_path / "pred").rglob("*.nii.gz"))


def test_nan_checkpoint_at_inference(tmp_path):
    data = make_dataset(tmp_path / "data", "liver", n_train=1, n_val=1, n_test=1, size=16)
    root = tmp_path / "b"
    _weights(root / "models" / "model.pt", poison=True)
    proc = _infer(tmp_path, data, root)
    assert proc.returncode != 0
    line = one_error_line(proc.stderr)
    assert "model.pt" in line and "NaN or infinite weights" in line, line  # the CLI's wording
    assert not (tmp_path / "pred").exists() or not any((tmp_path / "pred").rglob("*.nii.gz"))


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_checkpoint_at_inference(tmp_path):
    data = make_dataset(tmp_path / "data", "liver", n_train=1, n_val=1, n_test=1, size=16)
    root = tmp_path / "b"
    state = torch.load(_weights(root / "models" / "model.pt"), weights_only=True)
    marker = tmp_path / "pwned"
    torch.save({"model": state, "extra": _Payload(marker)}, root / "models" / "model.pt")
    proc = _infer(tmp_path, data, root)
    assert proc.returncode != 0
    line = one_error_line(proc.stderr)
    assert "model.pt" in line and "refused checkpoint" in line, line
    assert not marker.exists()


def test_checkpoint_of_another_network_at_evaluation(tmp_path):
    data = make_dataset(tmp_path / "data", "liver", n_train=1, n_val=1, n_test=1, size=16)
    root = tmp_path / "b"
    (root / "models").mkdir(parents=True)
    torch.save({"conv.weight": torch.zeros(4, 1, 3, 3, 3)}, root / "models" / "model.pt")
    proc = bundle_run(BUNDLE, ["train", "evaluate"], {"bundle_root": str(root), "dataset_dir": str(data),
                                                       "output_dir": str(tmp_path / "eval"), **TINY[BUNDLE]},
                      check=False)
    assert proc.returncode != 0
    line = one_error_line(proc.stderr)
    assert "model.pt" in line and "missing key" in line and "1 unexpected key(s) (conv.weight)" in line, line
