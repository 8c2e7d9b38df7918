"""The case reaches the case engine in memory, and attention maps come from the prediction's own passes.

Reference: the file route (the validated image written to an uncompressed NIfTI, float32 geometry, and read back).
Labels are compared voxel for voxel on real anatomy (pyradiomics lung2, the whole volume) and on an oblique and an
axis-flipped (LPS) volume: the working grid does not move with the stored precision of the geometry.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from satgate_monai.infer.bundle import BundleRunner
from satgate_monai.infer.cli import parse_overrides
from tests.infer.conftest import TINY_UNET_OVERRIDES
from tests.infer.helpers import rotation


def _runner(bundle: Path, ckpt: Path) -> BundleRunner:
    return BundleRunner(bundle, device="cpu", ckpt=ckpt, overrides=parse_overrides(TINY_UNET_OVERRIDES))


def _file_route(runner: BundleRunner, image: sitk.Image, tmp: Path, **kw):
    """The former route: a temporary uncompressed NIfTI given to the whole preprocessing, loader included."""
    path = tmp / "image.nii"
    sitk.WriteImage(image, str(path), useCompression=False)
    return runner.predict(path, **kw)


@pytest.fixture(scope="module")
def lung2(pyradiomics_samples: Path) -> sitk.Image:
    return sitk.ReadImage(str(pyradiomics_samples / "lung2_image.nrrd"))


def _flipped(image: sitk.Image) -> sitk.Image:
    """The same voxels stored with x and z reversed (direction diag(-1, 1, -1)), origin moved to keep the anatomy."""
    flipped = sitk.Flip(image, [True, False, True])  # SimpleITK keeps the world positions: a flipped direction
    assert np.allclose(np.asarray(flipped.GetDirection()).reshape(3, 3), np.diag([-1.0, 1.0, -1.0]))
    return flipped


def _oblique(image: sitk.Image) -> sitk.Image:
    img = sitk.Image(image)
    img.SetDirection(rotation(25.0, 15.0).flatten().tolist())
    img.SetOrigin((-31.5, 12.25, -140.0))
    return img


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["lung2", "lung2_flipped", "oblique"])
def test_in_memory_gives_the_labels_of_the_file_route(variant, liver_bundle, tiny_unet_ckpt, lung2, lung_crop,
                                                      tmp_path):
    image = {"lung2": lambda: lung2, "lung2_flipped": lambda: _flipped(lung2),
             "oblique": lambda: _oblique(lung_crop)}[variant]()
    runner = _runner(liver_bundle, tiny_unet_ckpt)
    old = _file_route(runner, image, tmp_path)
    new = runner.predict(image, source="case")
    assert new.network_shape == old.network_shape
    a, b = sitk.GetArrayFromImage(old.label), sitk.GetArrayFromImage(new.label)
    assert 0.01 < a.mean() < 0.99  # a random tiny network: both labels present, a real comparison
    # the file route's geometry went through a NIfTI header (float32); the working grid does not move
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(old.label.GetOrigin(), new.label.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(old.label.GetDirection(), new.label.GetDirection(), atol=1e-6)


@pytest.mark.slow
def test_a_case_writes_no_temporary_image(liver_bundle, tiny_unet_ckpt, lung_crop, tmp_path, monkeypatch):
    """No temporary file, no image written outside the output folder during a whole CLI run."""
    from satgate_monai.infer.cases import find_cases
    from satgate_monai.infer.pipeline import InferenceOptions, run_inference

    src = tmp_path / "in" / "ct.nrrd"
    src.parent.mkdir()
    sitk.WriteImage(lung_crop, str(src))
    out = tmp_path / "out"
    real_write = sitk.WriteImage

    def guarded_write(image, path, *a, **k):
        if Path(str(path)).resolve().parent != out.resolve():
            raise AssertionError(f"an image was written outside the output folder: {path}")
        return real_write(image, path, *a, **k)

    def no_temporary(*a, **k):
        raise AssertionError("a temporary file or folder was created")

    monkeypatch.setattr(sitk, "WriteImage", guarded_write)
    for name in ("TemporaryDirectory", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, no_temporary)
    assert len(find_cases(src)) == 1
    reports = run_inference(_runner(liver_bundle, tiny_unet_ckpt), src, out, InferenceOptions(formats=("nifti",)),
                            progress=False)
    assert [r.status for r in reports] == ["ok"], reports[0].error
    assert (out / "ct_seg.nii.gz").is_file()


@pytest.mark.slow
def test_attention_from_the_prediction_passes(liver_bundle, tiny_unet_ckpt, lung_crop):
    """--save-attention: one network call per window, as without it; maps equal the former second pass's."""
    runner = _runner(liver_bundle, tiny_unet_ckpt)
    calls = []
    runner.network.register_forward_pre_hook(lambda _m, args: calls.append(tuple(args[0].shape)))
    plain = runner.predict(lung_crop)
    n_plain = len(calls)
    calls.clear()
    with_maps = runner.predict(lung_crop, save_attention=True)
    assert n_plain > 1 and len(calls) == n_plain  # several windows, each run once
    np.testing.assert_array_equal(sitk.GetArrayFromImage(plain.label), sitk.GetArrayFromImage(with_maps.label))
    assert len(with_maps.attention) >= 1
    # the former route: a second sliding window over the hooks-only callable
    x = runner.preprocess(lung_crop)["image"].unsqueeze(0)
    names: list[str] = []
    with torch.no_grad():
        ref = runner.inferer(x, runner._attention_fn(names))[0]
    assert names == list(with_maps.attention)
    for i, n in enumerate(names):
        got = sitk.GetArrayFromImage(with_maps.attention[n]).transpose(2, 1, 0)
        np.testing.assert_allclose(got, ref[i].numpy(), atol=1e-5)
        assert 0.0 < float(ref[i].min()) < float(ref[i].max()) < 1.0


@pytest.mark.slow
def test_attention_with_mirroring_is_the_first_pass(liver_bundle, tiny_unet_ckpt, lung_crop):
    """With test-time mirroring the maps are those of the unflipped pass, as a separate pass would give them."""
    runner = BundleRunner(liver_bundle, device="cpu", ckpt=tiny_unet_ckpt, mirror_axes=[1],
                          overrides=parse_overrides(TINY_UNET_OVERRIDES))
    out = runner.predict(lung_crop, save_attention=True)
    x = runner.preprocess(lung_crop)["image"].unsqueeze(0)
    names: list[str] = []
    with torch.no_grad():
        ref = runner.inferer(x, runner._attention_fn(names))[0]
    assert names == list(out.attention) and names
    for i, n in enumerate(names):
        np.testing.assert_allclose(sitk.GetArrayFromImage(out.attention[n]).transpose(2, 1, 0), ref[i].numpy(),
                                   atol=1e-5)
    plain = runner.predict(lung_crop)  # the label is the mirrored ensemble's, with or without the maps
    np.testing.assert_array_equal(sitk.GetArrayFromImage(plain.label), sitk.GetArrayFromImage(out.label))
