"""One skin picture through every entry point that runs 2D bundles, with one trained checkpoint: ``python -m
monai.bundle run``, the inference CLI and the MONAI Label app's infer task (MONAI Label's own python) give
pixel-equal masks, all the case engine's (probabilities bilinear back to the picture's own size, then argmax)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from satgate_monai.infer.cli import main
from tests.conftest import REPO_ROOT
from tests.label.client import label_python, project_env

SMALL_NET = {"channels": [4, 8, 16], "strides": [2, 2]}


def _picture(path: Path) -> Path:
    """A 150 x 230 (H x W) RGB picture, smaller and larger than the 192 x 192 working size, with a dark oval lesion
    on noisy skin."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:150, :230]
    lesion = ((yy - 70) / 40.0) ** 2 + ((xx - 120) / 60.0) ** 2 < 1
    rgb = np.stack([200 - 120 * lesion, 160 - 100 * lesion, 140 - 90 * lesion], -1) + rng.normal(0, 12, (150, 230, 1))
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


def _trained_bundle(root: Path, picture: Path) -> Path:
    """The skin bundle with a tiny SATUNet trained for 60 steps to find the dark lesion in ``picture``."""
    from monai.bundle import ConfigParser

    bundle = root / "skin_lesion_sat"
    shutil.copytree(REPO_ROOT / "bundles" / "skin_lesion_sat", bundle, ignore=shutil.ignore_patterns("models", "eval"))
    cfg = json.loads((bundle / "configs" / "inference.json").read_text())
    cfg["network_def"].update(SMALL_NET)
    (bundle / "configs" / "inference.json").write_text(json.dumps(cfg, indent=1))
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser["_meta_"] = json.loads((bundle / "configs" / "metadata.json").read_text())
    parser["bundle_root"] = str(bundle)
    torch.manual_seed(0)  # the network's initial weights too
    engine, net = parser.get_parsed_content("engine"), parser.get_parsed_content("network_def")
    x = engine.preprocess(engine.read(picture)).as_tensor()[None].float()
    target = (x[:, 0] < 0.55).long()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    net.train()
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), target).backward()
        opt.step()
    (bundle / "models").mkdir()
    torch.save(net.state_dict(), bundle / "models" / "model.pt")
    return bundle


@pytest.mark.slow
def test_every_entry_point_gives_the_same_picture_mask(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    picture = _picture(src / "lesion.png")
    bundle = _trained_bundle(tmp_path / "bundle", picture)
    masks: dict[str, np.ndarray] = {}
    run = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file",
                          str(bundle / "configs" / "inference.json"), "--meta_file",
                          str(bundle / "configs" / "metadata.json"), "--bundle_root", str(bundle), "--dataset#data",
                          f"$[{{'image': {str(picture)!r}}}]", "--output_dir", str(tmp_path / "bundle_run"),
                          "--device", "$torch.device('cpu')"], capture_output=True, text=True, env=project_env(),
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    written = np.asarray(Image.open(tmp_path / "bundle_run" / "lesion_seg.png"))
    assert set(np.unique(written)) <= {0, 255}  # png_scale 255, uint8
    masks["bundle run"] = written // 255
    assert main(["--bundle", str(bundle), "--input", str(src), "--out", str(tmp_path / "cli"), "--device", "cpu",
                 "--no-progress", "--threads", "1"]) == 0
    masks["cli"] = np.asarray(Image.open(tmp_path / "cli" / "lesion_seg.png")) // 255
    served = tmp_path / "served"
    served.mkdir()
    proc = subprocess.run([str(label_python()), str(REPO_ROOT / "tests" / "label" / "infer_driver.py"), str(bundle),
                           str(served), str(picture)], capture_output=True, text=True, env=project_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    masks["label"] = np.asarray(Image.open(served / "lesion.png.png"))
    ref = masks["bundle run"]
    assert ref.shape == (150, 230)  # H x W, the picture's own size
    assert 0.05 < ref.mean() < 0.95  # a trained network, both labels present: a real comparison
    differing = {k: int((m != ref).sum()) for k, m in masks.items()}
    assert all(v == 0 for v in differing.values()), differing


def test_a_picture_case_returns_to_its_own_size(tmp_path):
    from monai.transforms import EnsureChannelFirstd, LoadImaged

    from satgate_monai.bundle.engine import CaseEngine

    loading = [LoadImaged("image", image_only=True), EnsureChannelFirstd("image")]
    engine = CaseEngine(image_size=(192, 192), loading=loading)
    case = engine.read(_picture(tmp_path / "p.png"))
    assert case.shape == (230, 150)  # (X, Y): width, height
    assert engine.preprocess(case).shape == (3, 192, 192)
    pred = torch.zeros(2, 192, 192)
    pred[1, :, 96:] = 5.0  # foreground in the lower half of the working grid
    labels = engine.to_source(pred, case)
    assert labels.shape == (230, 150) and labels.dtype == np.uint8
    assert labels[:, :74].max() == 0 and labels[:, 76:].min() == 1  # bilinear: the edge at half the picture's height
    with pytest.raises(ValueError, match="pixdim"):
        CaseEngine(image_size=(192, 192))  # 2D without its loading transforms
