"""The CLI's ensembles, mirroring and saved probabilities on a real CT crop, through the liver bundle's config."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from satgate_monai.infer.bundle import BundleRunner
from satgate_monai.infer.cli import main, parse_mirror_axes, parse_overrides
from tests.infer.conftest import THRESHOLD_OVERRIDES, TINY_UNET_OVERRIDES
from tests.infer.helpers import set_args


@pytest.fixture(scope="module")
def ct_file(lung_crop: sitk.Image, tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("prob") / "ct.nii.gz"
    sitk.WriteImage(lung_crop[40:88, 40:88, 4:16], str(p))
    return p


@pytest.fixture(scope="module")
def second_ckpt(liver_bundle, tiny_unet_ckpt, tmp_path_factory):
    """Another random tiny SATUNet; its BatchNorm statistics are shifted so the two models clearly differ."""
    state = torch.load(tiny_unet_ckpt, weights_only=True)
    g = torch.Generator().manual_seed(1)
    other = {k: (v + 0.3 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
             for k, v in state.items()}
    p = tmp_path_factory.mktemp("ckpt2") / "other.pt"
    torch.save(other, p)
    return p


def _bundle_version(name: str) -> str:
    """The version a bundle's metadata.json declares (what run.json must record)."""
    from satgate_monai.resources import bundle_path

    return json.loads((bundle_path(name) / "configs" / "metadata.json").read_text())["version"]


def _runner(bundle, ckpt, **kw) -> BundleRunner:
    return BundleRunner(bundle, device="cpu", ckpt=ckpt, overrides=parse_overrides(TINY_UNET_OVERRIDES), **kw)


def _probs(runner: BundleRunner, image) -> np.ndarray:
    return runner.predict(image, save_probabilities=True).probabilities.astype(np.float32)


@pytest.mark.slow
def test_cli_ensemble_and_mirroring_average_the_single_models(liver_bundle, tiny_unet_ckpt, second_ckpt, ct_file):
    p1 = _probs(_runner(liver_bundle, tiny_unet_ckpt), ct_file)
    p2 = _probs(_runner(liver_bundle, second_ckpt), ct_file)
    both = _runner(liver_bundle, [tiny_unet_ckpt, second_ckpt])
    assert both.ensemble.n_passes == 2 and both.checkpoints == [tiny_unet_ckpt, second_ckpt]
    np.testing.assert_allclose(_probs(both, ct_file), (p1 + p2) / 2, atol=1e-3)  # float16 on the source grid
    assert np.abs(p1 - p2).max() > 1e-2
    mirrored = _probs(_runner(liver_bundle, tiny_unet_ckpt, mirror_axes=[1]), ct_file)
    assert np.abs(mirrored - p1).max() > 1e-3
    # one mirror axis (y of the network grid): the mean of the plain and the flipped-back flipped prediction
    runner = _runner(liver_bundle, tiny_unet_ckpt)
    data = runner.preprocess(ct_file)
    x = data["image"].unsqueeze(0)
    with torch.no_grad():
        plain = torch.softmax(runner.inferer(x, runner.network), 1)
        flip = torch.flip(torch.softmax(runner.inferer(torch.flip(x, [3]), runner.network), 1), [3])
        ens = torch.softmax(_runner(liver_bundle, tiny_unet_ckpt, mirror_axes=[1]).ensemble(x, runner.network), 1)
    torch.testing.assert_close(ens, (plain + flip) / 2, atol=1e-6, rtol=1e-5)
    assert parse_mirror_axes("all") == [0, 1, 2] and parse_mirror_axes("none") == [] and parse_mirror_axes(None) is None
    for bad in ("x", "3", "0,0"):
        with pytest.raises(ValueError, match="--mirror-axes"):
            parse_mirror_axes(bad)


@pytest.mark.slow
def test_saved_probabilities_argmax_equals_the_saved_label(liver_bundle, ct_file, tmp_path):
    """Two threshold "networks" (levels 0.3 and 0.33 on the bundle's HU window): soft, ensembled boundaries."""
    ckpts = []
    for level in (0.3, 0.33):
        ckpts.append(tmp_path / f"level{level}.pt")
        torch.save({"level": torch.tensor(level)}, ckpts[-1])
    out = tmp_path / "out"
    rc = main(["--bundle", str(liver_bundle), "--input", str(ct_file), "--out", str(out), "--device", "cpu",
               "--no-progress", "--ckpt", *map(str, ckpts), "--mirror-axes", "0", "--save-probabilities",
               *set_args(THRESHOLD_OVERRIDES)])
    assert rc == 0
    npz = np.load(out / "ct_probabilities.npz")
    probs, seg_img = npz["probabilities"], sitk.ReadImage(str(out / "ct_seg.nii.gz"))
    src = sitk.ReadImage(str(ct_file))
    seg = sitk.GetArrayFromImage(seg_img)
    assert probs.dtype == np.float16 and probs.shape == (2, *seg.shape) and seg.shape == src.GetSize()[::-1]
    np.testing.assert_array_equal(np.argmax(probs, axis=0), seg)
    assert 0.05 < seg.mean() < 0.95  # both classes present, so the check is not trivial
    p1 = probs[1].astype(np.float32)
    assert ((p1 > 0.05) & (p1 < 0.95)).sum() > 100  # and many soft (resampled, ensembled) voxels
    np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=2e-3)
    assert list(npz["labels"]) == ["background", "liver"]
    np.testing.assert_allclose(npz["spacing"], src.GetSpacing())
    np.testing.assert_allclose(npz["origin"], src.GetOrigin())
    np.testing.assert_allclose(nib.load(out / "ct_seg.nii.gz").affine, nib.load(ct_file).affine, atol=1e-4)


@pytest.mark.slow
def test_bundle_run_with_the_same_ensemble_agrees_with_the_cli(liver_bundle, ct_file, tmp_path):
    """``monai.bundle run`` with ``checkpoints`` and ``mirror_axes`` (Invertd bilinear + argmax) against the CLI's
    ``--save-probabilities`` route (linear resampling + argmax) with the same two checkpoints and mirroring."""
    from monai.bundle import run as bundle_run

    ckpts = []
    for level in (0.3, 0.33):
        ckpts.append(tmp_path / f"level{level}.pt")
        torch.save({"model": {"level": torch.tensor(level)}}, ckpts[-1])
    bundle_run(config_file=str(liver_bundle / "configs" / "inference.json"),
               meta_file=str(liver_bundle / "configs" / "metadata.json"), bundle_root=str(tmp_path / "b"),
               device="cpu", num_workers=0, checkpoints=[str(c) for c in ckpts], mirror_axes=[0],
               output_dir=str(tmp_path / "bundle_out"), network_def={"_target_": "tests.infer.helpers.ThresholdNet"},
               roi_size=[32, 32, 32], **{"dataset#data": [{"image": str(ct_file)}]})
    assert main(["--bundle", str(liver_bundle), "--input", str(ct_file), "--out", str(tmp_path / "cli_out"),
                 "--device", "cpu", "--no-progress", "--ckpt", *map(str, ckpts), "--mirror-axes", "0",
                 "--save-probabilities", *set_args(THRESHOLD_OVERRIDES)]) == 0
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "bundle_out" / "ct_seg.nii.gz")))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "cli_out" / "ct_seg.nii.gz")))
    assert a.shape == b.shape and 0.05 < b.mean() < 0.95
    assert (a == b).mean() > 0.995
    run = json.loads((tmp_path / "bundle_out" / "run.json").read_text())  # provenance of the bundle run too
    assert [c["sha256"] for c in run["checkpoints"]] == [hashlib.sha256(c.read_bytes()).hexdigest() for c in ckpts]
    assert run["ensemble"] == {"checkpoints": 2, "mirror_axes": [0], "passes_per_case": 4}
    assert run["cases"]["ct"]["files"][0]["sha256"] == hashlib.sha256(ct_file.read_bytes()).hexdigest()
    assert run["bundle"]["version"] == _bundle_version("liver_ct_sat") and run["packages"]["monai"]
    # the ensemble really ran in the bundle: a single checkpoint gives another mask
    bundle_run(config_file=str(liver_bundle / "configs" / "inference.json"),
               meta_file=str(liver_bundle / "configs" / "metadata.json"), bundle_root=str(tmp_path / "b"),
               device="cpu", num_workers=0, ckpt_path=str(ckpts[1]), output_dir=str(tmp_path / "single"),
               network_def={"_target_": "tests.infer.helpers.ThresholdNet"}, roi_size=[32, 32, 32],
               **{"dataset#data": [{"image": str(ct_file)}]})
    single = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "single" / "ct_seg.nii.gz")))
    assert (single != a).sum() > 10 * (a != b).sum()


def test_bad_ensemble_options_exit_2_before_any_case(liver_bundle, ct_file, threshold_ckpt, tmp_path, capsys):
    base = ["--bundle", str(liver_bundle), "--input", str(ct_file), "--device", "cpu", "--no-progress",
            *set_args(THRESHOLD_OVERRIDES)]
    assert main([*base, "--out", str(tmp_path / "a"), "--ckpt", str(threshold_ckpt), str(tmp_path / "gone.pt")]) == 2
    assert main([*base, "--out", str(tmp_path / "b"), "--ckpt", str(threshold_ckpt), "--mirror-axes", "5"]) == 2
    err = capsys.readouterr().err
    assert "gone.pt" in err and "--mirror-axes" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
