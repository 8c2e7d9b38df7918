"""Benchmark: return of a network-space label map to the source grid (satgate_monai.infer vs SimpleITK vs Invertd).

Run:  python benchmarks/infer.py [--size 512 512 300] [--spacing 0.7 0.7 0.8] [--repeats 3] [--bundle DIR]

A synthetic CT of the given size (int16 HU, a body with organs) is written as NIfTI and run through the bundle's own
preprocessing (default: bundles/liver_ct_sat, i.e. LoadImaged, Orientationd RAS, Spacingd 2 mm...). A label map in
network space (a threshold of the preprocessed image, standing in for a prediction) is then brought back to the source
grid three ways, each timed (best of ``--repeats``):

- ``sitk_nn``: one ``SimpleITK.Resample`` nearest neighbour of the network-space label image onto the source grid
  (the reference cost of any resampling; wrapping the tensor as an image is not counted);
- ``ours``: what the CLI does, from the MetaTensor: wrap with its affine, edge pad, nearest-neighbour resample;
- ``invertd``: MONAI ``Invertd(nearest_interp=True)`` on the same one-channel label map (its most favourable case);
- ``invertd_bundle`` (one run): what the bundle's postprocessing does, ``Invertd`` of the two-channel softmax
  probabilities with bilinear interpolation, then argmax.

Targets: ours <= 2x sitk_nn and invertd >= 5x ours. The agreement of ours with Invertd(nearest) is printed.
The default spacing avoids source voxel centres exactly half-way between two 2 mm centres, where nearest neighbour
tie-breaking (ITK rounds half up, torch to even) legitimately differs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

REPO = Path(__file__).resolve().parents[1]


def synthetic_ct(size: tuple[int, int, int], spacing: tuple[float, float, float]) -> sitk.Image:
    """An int16 CT-like volume (x, y, z) = ``size``: air, a body ellipse, a liver-like and two smaller organs."""
    nx, ny, nz = size
    z = np.linspace(-1, 1, nz, dtype=np.float32)[:, None, None]
    y = np.linspace(-1, 1, ny, dtype=np.float32)[None, :, None]
    x = np.linspace(-1, 1, nx, dtype=np.float32)[None, None, :]
    vol = np.full((nz, ny, nx), -1000, np.int16)
    shapes = [((x / 0.85) ** 2 + (y / 0.65) ** 2, -80),  # body (fat)
              (((x + 0.3) / 0.35) ** 2 + ((y - 0.05) / 0.3) ** 2 + (z / 0.6) ** 2, 60),  # liver
              (((x - 0.45) / 0.12) ** 2 + ((y - 0.2) / 0.12) ** 2 + ((z - 0.1) / 0.3) ** 2, 45),  # spleen
              (((x - 0.1) / 0.08) ** 2 + ((y + 0.3) / 0.1) ** 2, 300)]  # spine
    for r2, hu in shapes:
        np.copyto(vol, np.int16(hu), where=np.broadcast_to(r2 < 1.0, vol.shape))
    vol += np.random.default_rng(0).normal(0, 15, vol.shape).astype(np.int16)
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing(spacing)
    img.SetOrigin((-nx * spacing[0] / 2, -ny * spacing[1] / 2, -nz * spacing[2] / 2))
    return img


def bundle_preprocessing(bundle: Path | None):
    """The bundle's own ``preprocessing`` (or a standard CT chain when the bundle is absent)."""
    if bundle is not None and (bundle / "configs" / "inference.json").is_file():
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config(str(bundle / "configs" / "inference.json"))
        parser["bundle_root"] = str(bundle)
        return parser.get_parsed_content("preprocessing"), str(bundle)
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd, ScaleIntensityRanged, Spacingd

    chain = Compose([LoadImaged("image", image_only=True), EnsureChannelFirstd("image"), Orientationd("image", "RAS"),
                     Spacingd("image", (2.0, 2.0, 2.0)), ScaleIntensityRanged("image", -100, 250, 0, 1, clip=True)])
    return chain, "built-in CT chain (Orientationd RAS, Spacingd 2 mm)"


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _report(rows: list[tuple[str, float]], agree: float) -> int:
    """Print the timings and the ratios against their targets; 0 when both targets are met.

    ``rows``: (method, seconds) of sitk_nn, ours, invertd and, optionally, invertd_bundle, in that order.
    """
    (_, t_sitk), (_, t_ours), (_, t_inv) = rows[:3]
    print(f"\n{'method':<70} {'seconds':>8}")
    for name, sec in rows:
        print(f"{name:<70} {sec:8.3f}")
    r1, r2 = t_ours / t_sitk, t_inv / t_ours
    ok1, ok2 = r1 <= 2.0, r2 >= 5.0
    print(f"\nours / sitk_nn    = {r1:5.2f}  (target <= 2)  {'PASS' if ok1 else 'FAIL'}")
    print(f"invertd / ours    = {r2:5.2f}  (target >= 5)  {'PASS' if ok2 else 'FAIL'}")
    if len(rows) > 3:
        print(f"invertd_bundle / ours = {rows[3][1] / t_ours:5.2f}")
    print(f"voxel agreement ours vs Invertd(nearest): {agree:.6f}")
    return 0 if ok1 and ok2 else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs=3, default=(512, 512, 300))
    p.add_argument("--spacing", type=float, nargs=3, default=(0.7, 0.7, 0.8))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bundle", type=Path, default=REPO / "bundles" / "liver_ct_sat")
    p.add_argument("--skip-bundle-invertd", action="store_true", help="skip the slow two-channel Invertd run")
    args = p.parse_args(argv)

    from monai.data import MetaTensor
    from monai.transforms import Invertd

    from satgate_monai.infer.geometry import array_to_sitk, resample_to_source

    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"threads: torch {torch.get_num_threads()}, SimpleITK {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}")
    src = synthetic_ct(tuple(args.size), tuple(args.spacing))
    pre, pre_name = bundle_preprocessing(args.bundle)
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "ct.nii"
        sitk.WriteImage(src, str(path))
        t = time.perf_counter()
        data = pre({"image": str(path)})
        t_pre = time.perf_counter() - t
    img = data["image"]
    print(f"source {tuple(args.size)} at {tuple(args.spacing)} mm; preprocessing: {pre_name} -> network grid "
          f"{tuple(img.shape[1:])} in {t_pre:.2f} s")
    label = (img[0] > 0.45).to(torch.uint8)  # liver + spleen + spine: a stand-in prediction
    pred = MetaTensor(label[None], affine=img.affine, meta=dict(img.meta))
    space = str(img.meta.get("space", "RAS"))
    net_img = array_to_sitk(label, img.affine, space)

    t_sitk, _ = best_of(lambda: sitk.Resample(net_img, src, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                              net_img.GetPixelID()), args.repeats)
    t_ours, ours = best_of(lambda: resample_to_source(array_to_sitk(pred[0], pred.affine, space), src), args.repeats)
    inv = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=True)
    t_inv, theirs = best_of(lambda: inv({"image": img, "pred": pred})["pred"], max(1, min(args.repeats, 2)))
    ours_arr = sitk.GetArrayViewFromImage(ours).transpose(2, 1, 0)
    theirs_arr = theirs[0].numpy().astype(np.uint8)
    agree = float((ours_arr == theirs_arr).mean())

    rows = [("sitk_nn (SimpleITK nearest neighbour, reference)", t_sitk), ("ours (satgate_monai.infer)", t_ours),
            ("invertd (MONAI Invertd, nearest, 1-channel label)", t_inv)]
    if not args.skip_bundle_invertd:
        logits = torch.stack([1.0 - img[0], img[0]])[None]
        probs = MetaTensor(torch.softmax(logits * 10, 1)[0], affine=img.affine, meta=dict(img.meta))
        inv2 = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)
        t = time.perf_counter()
        out = inv2({"image": img, "pred": probs})["pred"]
        torch.argmax(out, 0)
        rows.append(("invertd_bundle (Invertd bilinear 2-channel probs + argmax, 1 run)", time.perf_counter() - t))
    return _report(rows, agree)


if __name__ == "__main__":
    sys.exit(main())
