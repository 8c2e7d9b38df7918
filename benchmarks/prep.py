"""Benchmark data_prep against SimpleITK and MONAI, side by side in one run; prints a table of ratios.

(a) resampling onto the same grid: ``data_prep.resample`` (separable, NumPy) vs SimpleITK's ResampleImageFilter
    (linear for the image, nearest for a label), both on all the CPUs this process may use; for the CT also with
    0.8 mm slices, where no output slice falls on an input slice (1 mm -> 2 mm reads only every other slice);
(b) a whole case, image + label (read .nii.gz, check, resample to 2 mm, write .nii.gz) with
    ``data_prep.pipeline.process_case`` vs the MONAI pipeline LoadImaged -> EnsureChannelFirstd -> Spacingd ->
    SaveImaged, in the same process, on a synthetic CT 512x512x300 (0.7x0.7x1 mm) and MR 320x320x24 (0.6x0.6x3.6 mm);
(c) writing the 2 mm CT as .nii.gz per gzip level: our writer with zlib vs with ISA-L (levels 1-3, the default),
    next to SimpleITK's own .nii.gz writer.

Usage::

    python benchmarks/prep.py            # full sizes, best of 3
    python benchmarks/prep.py --quick    # CT 256x256x150, best of 2

Times are the best of the repeats (wall clock); ratios > 1 mean data_prep is faster.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from data_prep.pipeline import CaseSpec, PrepareOptions, process_case
from data_prep.resample import isotropic_grid, resample_image, resample_label, resample_to_grid_sitk
from data_prep.writers import ISAL_LEVELS, write_nifti


def best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def synthetic(shape_zyx: tuple[int, int, int], spacing: tuple[float, float, float], seed: int = 0):
    """A CT-like int16 volume (body ellipse, organs, noise) and a uint8 lesion label."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[: shape_zyx[0], : shape_zyx[1], : shape_zyx[2]]
    cy, cx = shape_zyx[1] / 2, shape_zyx[2] / 2
    body = ((y - cy) / (0.42 * shape_zyx[1])) ** 2 + ((x - cx) / (0.48 * shape_zyx[2])) ** 2 < 1
    arr = np.broadcast_to(np.where(body, 40, -1000).astype(np.int16), shape_zyx).copy()
    organ = ((y - cy * 0.8) / (0.15 * shape_zyx[1])) ** 2 + ((x - cx * 0.7) / (0.2 * shape_zyx[2])) ** 2 + \
        ((z - shape_zyx[0] / 2) / (0.3 * shape_zyx[0])) ** 2 < 1
    arr[organ] = 60
    arr = (arr + rng.normal(0, 15, size=shape_zyx)).astype(np.int16)
    lesion = ((y - cy * 0.8) / (0.05 * shape_zyx[1])) ** 2 + ((x - cx * 0.7) / (0.05 * shape_zyx[2])) ** 2 + \
        ((z - shape_zyx[0] / 2) / (0.1 * shape_zyx[0])) ** 2 < 1
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin((-180.0, -180.0, -100.0))
    lab = sitk.GetImageFromArray(lesion.astype(np.uint8))
    lab.CopyInformation(img)
    return img, lab


def monai_pipeline(out_dir: Path):
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, SaveImaged, Spacingd

    return Compose([
        LoadImaged(keys=["image", "label"], image_only=False),
        EnsureChannelFirstd(keys=["image", "label"]),
        Spacingd(keys=["image", "label"], pixdim=(2.0, 2.0, 2.0), mode=("bilinear", "nearest")),
        SaveImaged(keys=["image"], output_dir=str(out_dir), output_postfix="img", separate_folder=False,
                   print_log=False),
        SaveImaged(keys=["label"], output_dir=str(out_dir), output_postfix="seg", separate_folder=False,
                   print_log=False, output_dtype=np.uint8),
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller CT (256x256x150) and 2 repeats")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per measurement (best is kept)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    repeats = args.repeats or (2 if args.quick else 3)
    ct_shape = (150, 256, 256) if args.quick else (300, 512, 512)
    cases = {"CT": (ct_shape, (0.7, 0.7, 1.0)), "MR": ((24, 320, 320), (0.6, 0.6, 3.6))}
    rows: list[tuple[str, float, float]] = []
    tmp = Path(tempfile.mkdtemp(prefix="prep-bench-"))
    try:
        for name, (shape, spacing) in cases.items():
            img, lab = synthetic(shape, spacing)
            grid = isotropic_grid(img, 2.0)
            label = f"{name} {shape[2]}x{shape[1]}x{shape[0]}"
            # (a) resampling
            ours = best(lambda: resample_image(img, grid=grid), repeats)  # noqa: B023
            ref = best(lambda: resample_to_grid_sitk(img, grid, sitk.sitkLinear), repeats)  # noqa: B023
            rows.append((f"(a) {label} image linear: SimpleITK / data_prep", ref, ours))
            ours = best(lambda: resample_label(lab, grid=grid), repeats)  # noqa: B023
            ref = best(lambda: resample_to_grid_sitk(lab, grid, sitk.sitkNearestNeighbor), repeats)  # noqa: B023
            rows.append((f"(a) {label} label nearest: SimpleITK / data_prep", ref, ours))
            if name == "CT":
                thin = sitk.Image(img)
                thin.SetSpacing((spacing[0], spacing[1], 0.8))
                thin_grid = isotropic_grid(thin, 2.0)
                ours = best(lambda: resample_image(thin, grid=thin_grid), repeats)  # noqa: B023
                ref = best(lambda: resample_to_grid_sitk(thin, thin_grid, sitk.sitkLinear), repeats)  # noqa: B023
                rows.append((f"(a) {label} (0.8 mm slices) image linear: SimpleITK / data_prep", ref, ours))
            # (b) whole case
            src = tmp / name
            src.mkdir()
            sitk.WriteImage(img, str(src / f"{name}.nii.gz"))
            sitk.WriteImage(lab, str(src / f"{name}_seg.nii.gz"))
            spec = CaseSpec(name, src / f"{name}.nii.gz", src / f"{name}_seg.nii.gz")
            opts = PrepareOptions(overwrite=True)
            res = process_case(spec, tmp / "ours", opts)
            assert res.status == "ok", res.error
            ours = best(lambda: process_case(spec, tmp / "ours", opts), repeats)  # noqa: B023
            pipe = monai_pipeline(tmp / "monai")
            data = {"image": str(spec.image), "label": str(spec.label)}
            pipe(dict(data))  # warm-up (imports, caches)
            ref = best(lambda: pipe(dict(data)), repeats)  # noqa: B023
            rows.append((f"(b) {label} whole case: MONAI / data_prep", ref, ours))
            # (c) gzip levels on the 2 mm output
            if name == "CT":
                out_img = resample_image(img, grid=grid)
                raw_n = out_img.GetNumberOfPixels() * 2
                for level in (0, 1, 2, 3, 6, 9):
                    path = tmp / f"w{level}.nii.gz"
                    zlib_s = best(lambda: write_nifti(out_img, path, level, use_isal=False), repeats)  # noqa: B023
                    zlib_size = path.stat().st_size / raw_n
                    if level in ISAL_LEVELS:
                        isal_s = best(lambda: write_nifti(out_img, path, level), repeats)  # noqa: B023
                        rows.append((f"(c) write 2 mm CT, gzip level {level}: zlib ({zlib_size:.0%} of raw) / ISA-L "
                                     f"({path.stat().st_size / raw_n:.0%})", zlib_s, isal_s))
                    else:
                        rows.append((f"(c) write 2 mm CT, gzip level {level}: zlib ({zlib_size:.0%} of raw)",
                                     float("nan"), zlib_s))
                t = best(lambda: sitk.WriteImage(out_img, str(tmp / "itk.nii.gz")), repeats)  # noqa: B023
                rows.append((f"(c) write 2 mm CT, SimpleITK .nii.gz writer "
                             f"({(tmp / 'itk.nii.gz').stat().st_size / raw_n:.0%} of raw)", float("nan"), t))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'reference s':>11}  {'data_prep s':>11}  {'ratio':>6}")
    for what, ref, ours in rows:
        ratio = ref / ours if np.isfinite(ref) else float("nan")
        ref_s = f"{ref:11.3f}" if np.isfinite(ref) else f"{'':>11}"
        ratio_s = f"{ratio:6.2f}" if np.isfinite(ratio) else f"{'':>6}"
        print(f"{what:<{width}}  {ref_s}  {ours:11.3f}  {ratio_s}")


if __name__ == "__main__":
    main()
