"""Tiny deterministic phantom studies and temporary bundle copies for the MONAI Label tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

__all__ = ["MR_AFFINE", "copy_bundle", "make_studies", "mr_phantom", "rgb_phantom", "write_random_weights"]

# Anisotropic voxels (0.9 x 0.9 x 3.0 mm) stored L->R flipped and P->A flipped (LPS-like, as scanners write):
# the bundles' Orientationd(RAS) and Spacingd(2 mm) really resample, so a label returned without the inverse
# transforms differs in content, not only in geometry.
MR_AFFINE = np.array(
    [[-0.9, 0.0, 0.0, 30.0], [0.0, -0.9, 0.0, 25.0], [0.0, 0.0, 3.0, -18.0], [0.0, 0.0, 0.0, 1.0]], dtype=np.float64
)


def mr_phantom(seed: int, shape: tuple[int, int, int] = (56, 48, 14)) -> tuple[np.ndarray, np.ndarray]:
    """A T2-like volume with a brighter off-centre ellipsoid ("prostate") and its binary label.

    Returns:
        (image float32 (X, Y, Z), label uint8 (X, Y, Z) in {0, 1}).
    """
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    cx, cy, cz = shape[0] * (0.40 + 0.05 * (seed % 3)), shape[1] * 0.55, shape[2] * 0.5
    ellipsoid = ((x - cx) / 11.0) ** 2 + ((y - cy) / 8.0) ** 2 + ((z - cz) / 3.5) ** 2 <= 1.0
    body = ((x - shape[0] / 2) / (shape[0] * 0.48)) ** 2 + ((y - shape[1] / 2) / (shape[1] * 0.48)) ** 2 <= 1.0
    image = np.where(body, 120.0, 0.0) + 160.0 * ellipsoid + 25.0 * np.sin(x / 5.0) * body
    image = (image + rng.normal(0.0, 15.0, shape) * body).astype(np.float32)
    return image, ellipsoid.astype(np.uint8)


def rgb_phantom(seed: int, size: tuple[int, int] = (72, 96)) -> tuple[np.ndarray, np.ndarray]:
    """A skin-like RGB picture (H, W, 3) uint8 with a dark irregular lesion, and its (H, W) uint8 0/1 label."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = np.arctan2(yy - h * 0.5, xx - w * 0.45)
    radius = min(h, w) * (0.28 + 0.05 * np.sin(3 * angle + seed))
    lesion = np.hypot(yy - h * 0.5, xx - w * 0.45) <= radius
    skin = np.array([220, 170, 140], dtype=np.float32)
    image = np.broadcast_to(skin, (h, w, 3)).copy()
    image[lesion] = np.array([110, 60, 45], dtype=np.float32)
    image += rng.normal(0.0, 12.0, image.shape) + 20.0 * np.sin(xx / 7.0)[..., None]
    return np.clip(image, 0, 255).astype(np.uint8), lesion.astype(np.uint8)


def make_studies(folder: Path, n_mr: int = 3, n_rgb: int = 3, labelled: int = 2) -> dict[str, list[str]]:
    """Write MR NIfTI and RGB PNG phantom studies in MONAI Label's layout; label the first ``labelled`` of each.

    Images go to ``folder/<id>.nii.gz`` / ``folder/<id>.png``; labels to ``folder/labels/final/<same name>``.

    Returns:
        ``{"mr": [ids], "rgb": [ids]}``.
    """
    import nibabel as nib
    from PIL import Image

    final = folder / "labels" / "final"
    final.mkdir(parents=True, exist_ok=True)
    ids: dict[str, list[str]] = {"mr": [], "rgb": []}
    for i in range(n_mr):
        image, label = mr_phantom(i)
        nib.save(nib.Nifti1Image(image, MR_AFFINE), folder / f"mr_{i}.nii.gz")
        if i < labelled:
            nib.save(nib.Nifti1Image(label, MR_AFFINE), final / f"mr_{i}.nii.gz")
        ids["mr"].append(f"mr_{i}")
    for i in range(n_rgb):
        image, label = rgb_phantom(100 + i)
        Image.fromarray(image).save(folder / f"skin_{i}.png")
        if i < labelled:
            Image.fromarray(label).save(final / f"skin_{i}.png")
        ids["rgb"].append(f"skin_{i}")
    return ids


def copy_bundle(src: Path, dst: Path) -> Path:
    """Copy a bundle folder without generated outputs (models/, eval/, predictions/, data/)."""
    ignore = shutil.ignore_patterns("models", "eval", "predictions", "data", "__pycache__")
    shutil.copytree(src, dst, ignore=ignore)
    (dst / "models").mkdir(exist_ok=True)
    return dst


def _output_conv(net, x):
    """The convolution whose output is the network's output (the head), found with forward hooks."""
    import torch

    outputs = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, mod_id=id(m): outputs.__setitem__(mod_id, out))
        for m in net.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)) and m.bias is not None
    ]
    try:
        with torch.no_grad():
            y = net(x)
    finally:
        for h in hooks:
            h.remove()
    for m in net.modules():
        if id(m) in outputs and outputs[id(m)].shape == y.shape and torch.equal(outputs[id(m)], y):
            return m
    raise AssertionError("no convolution produces the network's output: cannot balance the random weights")


def write_random_weights(bundle: Path, balance_on: Path | None = None, seed: int = 0) -> Path:
    """Save the bundle's network_def, initialised with ``seed``, as a flat state_dict at ``models/model.pt``.

    Random weights tend to call (almost) every voxel one class, which would make a label comparison blind. With
    ``balance_on`` (an image path), the head's foreground channel is rescaled and shifted so the foreground-minus-
    background logit on that image, preprocessed and inferred by the bundle's own config, has median 0 and standard
    deviation 4: about half the voxels then fall on each side, in a pattern that depends on the image.
    """
    import torch
    from monai.bundle import ConfigParser

    import satgate_monai  # noqa: F401

    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "inference.json")
    parser.config["bundle_root"] = str(bundle)
    parser.config["device"] = "cpu"
    torch.manual_seed(seed)
    net = parser.get_parsed_content("network_def", instantiate=True).eval()
    if balance_on is not None:
        pre = parser.get_parsed_content("preprocessing", instantiate=True)
        inferer = parser.get_parsed_content("inferer", instantiate=True)
        x = torch.as_tensor(pre({"image": str(balance_on)})["image"])[None].float()
        with torch.no_grad():
            logits = inferer(x, net)
        head = _output_conv(net, torch.rand(1, x.shape[1], *inferer.roi_size))
        diff = logits[:, 1] - logits[:, 0]
        gain = 4.0 / float(diff.std().clamp_min(1e-6))  # sharp probabilities: interpolation cannot flip the balance
        with torch.no_grad():  # new foreground-minus-background logit = gain * (diff - median(diff))
            head.weight[1] = head.weight[0] + gain * (head.weight[1] - head.weight[0])
            head.bias[1] = head.bias[0] + gain * (head.bias[1] - head.bias[0] - diff.median())
    path = bundle / "models" / "model.pt"
    torch.save(net.state_dict(), path)
    return path
