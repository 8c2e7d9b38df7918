"""Resampling: grid rule, agreement with SimpleITK, labels, physical-space checks, real-data round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from data_prep.resample import (
    Grid,
    check_same_physical_space,
    isotropic_grid,
    resample_image,
    resample_label,
    resample_to_grid_sitk,
)
from tests.sample_data import pyradiomics_samples  # noqa: F401 - pytest fixture


def _image(shape_zyx, spacing, *, direction=None, origin=(12.5, -30.0, 7.0), dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.normal(0, 300, size=shape_zyx).astype(dtype) if dtype == np.float32 else \
        rng.integers(-1024, 2000, size=shape_zyx).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def _oblique(seed: int = 3) -> tuple[float, ...]:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return tuple(q.ravel())


@pytest.mark.parametrize(
    "n, sp, s, expected",
    [(512, 0.7, 2.0, 180), (48, 5.0, 2.0, 119), (10, 2.0, 2.0, 10), (24, 3.6, 2.0, 42), (1, 5.0, 2.0, 1)],
)
def test_grid_size_rule(n: int, sp: float, s: float, expected: int) -> None:
    img = sitk.Image([n, 4, 4], sitk.sitkInt16)
    img.SetSpacing((sp, 1.0, 1.0))
    g = isotropic_grid(img, s)
    assert g.size[0] == expected
    # every source centre is inside the output buffer: continuous index < size - 0.5
    assert (n - 1) * sp / s < g.size[0] - 0.5
    # and the grid is the smallest such
    assert g.size[0] == 1 or (n - 1) * sp / s >= g.size[0] - 1.5
    assert g.origin == img.GetOrigin() and g.direction == img.GetDirection()


@pytest.mark.parametrize("oblique", [False, True])
@pytest.mark.parametrize(
    "shape, spacing, threads",
    [
        ((24, 40, 36), (0.6, 0.6, 3.6), None),  # upsampling along z: every input slice is read
        ((30, 20, 25), (1.3, 0.7, 0.9), 1),
        ((70, 20, 25), (1.3, 0.7, 1.0), 2),  # output slices on every other input slice: only those are read
        ((90, 18, 16), (0.9, 1.1, 0.5), 3),  # every 4th slice, many blocks in 3 threads
    ],
)
def test_linear_matches_simpleitk(oblique: bool, shape, spacing, threads) -> None:
    img = _image(shape, spacing, direction=_oblique() if oblique else None)
    ours = resample_image(img, 2.0, threads=threads)
    g = isotropic_grid(img, 2.0)
    ref = resample_to_grid_sitk(img, g, sitk.sitkLinear, sitk.sitkFloat32)
    assert ours.GetSize() == ref.GetSize()
    np.testing.assert_allclose(ours.GetOrigin(), img.GetOrigin())
    np.testing.assert_allclose(ours.GetDirection(), img.GetDirection())
    a, b = sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref)
    # identical wherever the output centre lies inside the source buffer (ITK's extrapolator switches to nearest
    # neighbour in every axis outside it; we stay linear in the other axes)
    inside = [int(np.sum(np.arange(n) * 2.0 / sp < m - 0.5)) for n, sp, m in zip(g.size, spacing, img.GetSize())]
    sl = tuple(slice(0, k) for k in reversed(inside))
    np.testing.assert_allclose(a[sl], b[sl], atol=1e-3)


@pytest.mark.parametrize("oblique", [False, True])
def test_label_nearest_matches_simpleitk(oblique: bool) -> None:
    # spacings chosen so that no output centre falls exactly halfway between two source centres (see the tie test)
    img = _image((20, 33, 27), (0.7, 0.9, 3.0), direction=_oblique() if oblique else None)
    lab = sitk.GetImageFromArray((np.abs(sitk.GetArrayFromImage(img)) // 200).astype(np.uint8))
    lab.CopyInformation(img)
    ours = resample_label(lab, 2.0)
    ref = resample_to_grid_sitk(lab, isotropic_grid(lab, 2.0), sitk.sitkNearestNeighbor)
    a, b = sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref)
    assert a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= set(np.unique(sitk.GetArrayFromImage(lab)))


def test_label_tie_rounds_half_up() -> None:
    # 0.8 mm -> 2 mm: output centre 1 sits at source index 2.5 exactly; ITK's rule (RoundHalfIntegerUp) gives 3
    lab = sitk.GetImageFromArray(np.arange(10, dtype=np.uint8)[None, None, :])
    lab.SetSpacing((0.8, 1.0, 1.0))
    out = sitk.GetArrayFromImage(resample_label(lab, (2.0, 1.0, 1.0))).ravel()
    np.testing.assert_array_equal(out, [0, 3, 5, 8, 9])  # the last centre (index 10) clamps to 9


def test_integer_image_keeps_type_and_range() -> None:
    img = _image((12, 30, 30), (0.7, 0.7, 5.0), dtype=np.int16)
    out = resample_image(img, 2.0)
    src = sitk.GetArrayFromImage(img)
    arr = sitk.GetArrayFromImage(out)
    assert arr.dtype == np.int16
    assert src.min() <= arr.min() and arr.max() <= src.max()
    # where grids coincide (first voxel) the value is the source value: intensities are not rescaled
    assert arr[0, 0, 0] == src[0, 0, 0]


def test_bspline_option_close_to_linear_on_smooth_data() -> None:
    z, y, x = np.mgrid[0:16, 0:32, 0:32].astype(np.float32)
    arr = (100 * np.sin(x / 6) * np.cos(y / 7) + 3 * z).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.9, 0.9, 2.5))
    lin = sitk.GetArrayFromImage(resample_image(img, 2.0, "linear"))
    bsp = sitk.GetArrayFromImage(resample_image(img, 2.0, "bspline"))
    assert lin.shape == bsp.shape
    assert np.abs(lin - bsp)[:-1, :-1, :-1].max() < 5.0
    with pytest.raises(ValueError, match="interpolation"):
        resample_image(img, 2.0, "cubic")


def test_physical_space_check() -> None:
    img = _image((5, 10, 10), (1.0, 1.0, 3.0), direction=_oblique())
    lab = sitk.Image(img.GetSize(), sitk.sitkUInt8)
    lab.CopyInformation(img)
    check_same_physical_space(img, lab)
    lab.SetOrigin(tuple(np.array(img.GetOrigin()) + 1e-6))  # float rounding: accepted
    check_same_physical_space(img, lab)
    for change, word in [("origin", "origin"), ("spacing", "spacing"), ("direction", "direction")]:
        bad = sitk.Image(img.GetSize(), sitk.sitkUInt8)
        bad.CopyInformation(img)
        if change == "origin":
            bad.SetOrigin(tuple(np.array(img.GetOrigin()) + (0, 0.5, 0)))
        elif change == "spacing":
            bad.SetSpacing((1.0, 1.0, 3.3))
        else:
            bad.SetDirection(np.eye(3).ravel().tolist())
        with pytest.raises(ValueError, match=word):
            check_same_physical_space(img, bad, image_name="ct.nii.gz", label_name="seg.nii.gz")
    with pytest.raises(ValueError, match="size"):
        check_same_physical_space(img, sitk.Image([10, 10, 6], sitk.sitkUInt8))


def _world_centroid(lab: sitk.Image) -> np.ndarray:
    idx = np.argwhere(sitk.GetArrayViewFromImage(lab) > 0)[:, ::-1].astype(float)  # (x, y, z)
    d = np.array(lab.GetDirection()).reshape(3, 3)
    pts = np.array(lab.GetOrigin()) + (idx * np.array(lab.GetSpacing())) @ d.T
    return pts.mean(axis=0)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("oblique", [False, True])
def test_synthetic_sphere_round_trip(oblique: bool) -> None:
    # anisotropic 0.6 x 0.6 x 5 mm source with a 12 mm sphere
    size = (80, 70, 16)
    img = sitk.Image(size, sitk.sitkInt16)
    img.SetSpacing((0.6, 0.6, 5.0))
    img.SetOrigin((-20.0, 15.0, -40.0))
    if oblique:
        img.SetDirection(_oblique(7))
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in size], indexing="ij"), -1).reshape(-1, 3).astype(float)
    d = np.array(img.GetDirection()).reshape(3, 3)
    pts = np.array(img.GetOrigin()) + (idx * img.GetSpacing()) @ d.T
    centre = np.array(img.GetOrigin()) + d @ (np.array(size) / 2 * img.GetSpacing())
    inside = (np.linalg.norm(pts - centre, axis=1) < 12.0).reshape(size).transpose(2, 1, 0)
    lab = sitk.GetImageFromArray(inside.astype(np.uint8))
    lab.CopyInformation(img)
    down = resample_label(lab, 2.0)
    back = resample_to_grid_sitk(down, Grid.of(lab), sitk.sitkNearestNeighbor)
    assert _dice(sitk.GetArrayFromImage(back) > 0, inside) > 0.85
    assert np.linalg.norm(_world_centroid(down) - _world_centroid(lab)) < 1.0
    assert np.linalg.norm(_world_centroid(back) - _world_centroid(lab)) < 1.0


def test_real_lung2_round_trip(pyradiomics_samples: Path) -> None:  # noqa: F811 - fixture
    image = sitk.ReadImage(str(pyradiomics_samples / "lung2_image.nrrd"))
    label = sitk.ReadImage(str(pyradiomics_samples / "lung2_label.nrrd"))
    check_same_physical_space(image, label)
    grid = isotropic_grid(image, 2.0)
    img2 = resample_image(image, grid=grid)
    lab2 = resample_label(label, grid=grid)
    np.testing.assert_allclose(img2.GetSpacing(), (2.0, 2.0, 2.0))
    np.testing.assert_allclose(img2.GetOrigin(), image.GetOrigin())
    # HU preserved: the resampled lung parenchyma / soft tissue statistics stay in the source's range
    src, out = sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(img2)
    assert out.dtype == src.dtype and src.min() <= out.min() and out.max() <= src.max()
    assert abs(float(np.median(out)) - float(np.median(src))) < 50
    back = resample_to_grid_sitk(lab2, Grid.of(label), sitk.sitkNearestNeighbor)
    a = sitk.GetArrayFromImage(label) > 0
    b = sitk.GetArrayFromImage(back) > 0
    assert a.sum() > 100
    assert _dice(a, b) >= 0.9
    assert np.linalg.norm(_world_centroid(back) - _world_centroid(label)) <= 1.0
    assert np.linalg.norm(_world_centroid(lab2) - _world_centroid(label)) <= 1.0
