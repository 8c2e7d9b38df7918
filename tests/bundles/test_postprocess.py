"""Learned post-processing: MONAI's keep-largest-component / fill-holes chosen on validation data, then applied the
same way by ``monai.bundle run`` and the inference CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.bundle import run as bundle_run_inprocess

from satgate_monai.bundle.postprocess import PostprocessingSelector, apply_variant, read_choice
from tests.bundles.helpers import BUNDLE_DIR


def _two_blobs(shape=(24, 24, 16)) -> tuple[np.ndarray, np.ndarray]:
    """(truth with one cube, prediction with the same cube and a planted second component)."""
    truth = np.zeros(shape, np.int64)
    truth[4:14, 4:14, 3:11] = 1
    pred = truth.copy()
    pred[18:21, 18:21, 12:14] = 1
    return truth, pred


def test_keep_largest_removes_a_planted_second_component_and_fill_holes_fills():
    truth, pred = _two_blobs()
    kept = apply_variant(pred, 1, "keep_largest_component")
    np.testing.assert_array_equal(kept, truth)
    holed = truth.copy()
    holed[8, 8, 6] = 0
    np.testing.assert_array_equal(apply_variant(holed, 1, "fill_holes"), truth)
    np.testing.assert_array_equal(apply_variant(pred, 1, "none"), pred)


def test_selector_reports_every_variant_and_writes_the_choice(tmp_path):
    truth, pred = _two_blobs()
    sel = PostprocessingSelector(tmp_path, split="validation", choice_file=tmp_path / "postprocessing.json")
    for i in range(3):
        sel.add_case(torch.as_tensor(pred)[None], torch.as_tensor(truth)[None], name=f"c{i}")
    summary = sel.write()
    means = summary["mean_dice"]["1"]
    assert means["none"] < 1.0 and means["keep_largest_component"] == 1.0 and means["both"] == 1.0
    assert summary["chosen_variant"] == {"1": "keep_largest_component"}  # the simpler of the two ties
    report = json.loads((tmp_path / "validation_postprocessing.json").read_text())
    assert len(report["per_case"]) == 3 and report["split"] == "validation"
    assert read_choice(tmp_path / "postprocessing.json") == {"keep_largest_component": [1], "fill_holes": []}
    assert read_choice(tmp_path / "absent.json") == {"keep_largest_component": [], "fill_holes": []}
    sel2 = PostprocessingSelector(tmp_path / "t", split="test")
    sel2.add_case(torch.as_tensor(truth)[None], torch.as_tensor(truth)[None], name="c")
    assert sel2.write()["chosen_variant"] == {"1": "none"}
    (tmp_path / "bad.json").write_text('{"fill_holes": ["x"]}')
    with pytest.raises(ValueError, match="fill_holes must be a list"):
        read_choice(tmp_path / "bad.json")


@pytest.mark.slow
def test_bundle_run_and_cli_apply_the_chosen_postprocessing(tmp_path):
    """A CT-like volume with a big and a small bright cube; a threshold "network" labels both; with the choice file
    in the bundle, ``monai.bundle run`` and the CLI both keep only the big one."""
    from satgate_monai.infer.cli import main
    from tests.infer.conftest import THRESHOLD_OVERRIDES
    from tests.infer.helpers import set_args

    bundle = tmp_path / "liver_ct_sat"
    shutil.copytree(BUNDLE_DIR / "liver_ct_sat", bundle, ignore=shutil.ignore_patterns("models", "eval"))
    arr = np.full((20, 40, 40), -1000, np.int16)  # (z, y, x)
    arr[4:14, 6:22, 6:22] = 100
    arr[15:18, 30:35, 30:35] = 100
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((2.0, 2.0, 2.0))
    cases = tmp_path / "cases"
    cases.mkdir()
    sitk.WriteImage(img, str(cases / "ct.nii.gz"))
    ckpt = tmp_path / "threshold.pt"
    torch.save({"model": {"level": torch.tensor(0.3)}}, ckpt)
    big = np.zeros(arr.shape, np.uint8)
    big[4:14, 6:22, 6:22] = 1

    def bundle_mask(out: Path) -> np.ndarray:
        bundle_run_inprocess(config_file=str(bundle / "configs" / "inference.json"),
                             meta_file=str(bundle / "configs" / "metadata.json"), bundle_root=str(bundle),
                             device="cpu", num_workers=0, ckpt_path=str(ckpt), output_dir=str(out),
                             network_def={"_target_": "tests.infer.helpers.ThresholdNet"}, roi_size=[32, 32, 32],
                             **{"dataset#data": [{"image": str(cases / "ct.nii.gz")}]})
        return sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ct_seg.nii.gz")))

    def cli_mask(out: Path) -> np.ndarray:
        assert main(["--bundle", str(bundle), "--input", str(cases), "--out", str(out), "--ckpt", str(ckpt),
                     "--device", "cpu", "--no-progress", *set_args(THRESHOLD_OVERRIDES)]) == 0
        return sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ct_seg.nii.gz")))

    before_bundle, before_cli = bundle_mask(tmp_path / "b0"), cli_mask(tmp_path / "c0")
    for m in (before_bundle, before_cli):
        assert m[15:18, 30:35, 30:35].all() and m[big == 1].all()  # both cubes labelled without post-processing
    (bundle / "eval").mkdir()
    (bundle / "eval" / "postprocessing.json").write_text(json.dumps({"keep_largest_component": [1],
                                                                      "fill_holes": []}))
    for m in (bundle_mask(tmp_path / "b1"), cli_mask(tmp_path / "c1")):
        np.testing.assert_array_equal(m, big)


_LABEL_SCRIPT = """
import json, sys
import torch
from monai.bundle import ConfigParser
from satgate_monai.label.app.infer import SATBundleInferTask
bundle = sys.argv[1]
p = ConfigParser()
p.read_config(bundle + "/configs/inference.json")
torch.save(p.get_parsed_content("network_def").state_dict(), bundle + "/models/model.pt")
post = SATBundleInferTask(bundle, {}).post_transforms({})
print(json.dumps([type(t).__name__ for t in post] + [type(t).__name__ for t in post[0].engine.label_steps]))
"""


@pytest.mark.slow
def test_monai_label_runs_the_chosen_postprocessing(tmp_path):
    """MONAI Label's bundle infer task takes the same transforms from the same config and choice file."""
    import subprocess

    from tests.bundles.helpers import python_env
    from tests.label.client import label_python

    python = label_python()
    bundle = tmp_path / "liver_ct_sat"
    shutil.copytree(BUNDLE_DIR / "liver_ct_sat", bundle, ignore=shutil.ignore_patterns("models", "eval"))
    (bundle / "models").mkdir()

    def names() -> list[str]:
        proc = subprocess.run([str(python), "-c", _LABEL_SCRIPT, str(bundle)], capture_output=True, text=True,
                              env=python_env(), timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    assert "KeepLargestConnectedComponentd" not in names()
    (bundle / "eval").mkdir()
    (bundle / "eval" / "postprocessing.json").write_text(json.dumps({"keep_largest_component": [1],
                                                                      "fill_holes": [1]}))
    steps = names()
    # 3D: the case engine's return to the source grid instead of Invertd, then the chosen label steps there
    assert "Invertd" not in steps and steps[0] == "ToSourceGridd"
    assert steps.index("KeepLargestConnectedComponentd") < steps.index("FillHolesd")
