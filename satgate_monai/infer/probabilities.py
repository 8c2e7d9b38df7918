"""Class probabilities on the source grid (``--save-probabilities``), consistent with the written label map.

The bundle's network-space postprocessing is split at its first ``AsDiscrete(d)`` (:func:`run_postprocessing`):
the part before it (``Activationsd(softmax=True)``) gives the probabilities ``(C, X, Y, Z)``, the rest the label
map. On the source grid (:func:`probabilities_on_source`) every class channel is resampled linearly (voxels outside
the network grid: background probability 1), rounded to float16 (what is saved), and the label map is their argmax
(ties: the lower label, as ``numpy.argmax``), so the saved probabilities and label agree exactly; the bundle's label
post-processing steps (e.g. ``KeepLargestConnectedComponentd``, ``FillHolesd``) then run on that source-grid label,
as they run after ``Invertd`` under ``monai.bundle run``. This is the bundle's own ``Invertd(bilinear)`` + argmax
route. Like nnU-Net's ``--save_probabilities``, the probabilities are the model's, before label post-processing.

``<case>_probabilities.npz`` (:func:`write_probabilities`) holds ``probabilities`` float16 ``(C, Z, Y, X)`` (the
SimpleITK/numpy order of the source image's voxels, ``C`` = label value 0..C-1), ``labels`` (names by value),
``spacing``, ``origin`` (mm, LPS, ``x, y, z``) and ``direction`` (3x3 row-major), so
``np.argmax(np.load(f)["probabilities"], 0)`` equals ``sitk.GetArrayFromImage(sitk.ReadImage(<case>_seg.nii.gz))``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from monai.transforms import Activations, Activationsd, AsDiscrete, AsDiscreted, Compose

from satgate_monai.infer.geometry import array_to_sitk, resample_to_source

__all__ = ["run_postprocessing", "label_steps", "probability_images", "probabilities_on_source",
           "write_probabilities", "PROBABILITY_DTYPE"]

PROBABILITY_DTYPE = np.float16
_DISCRETE = (AsDiscrete, AsDiscreted)


def _split(post: Callable | None) -> tuple[list[Callable], list[Callable]]:
    if post is None:
        return [], []
    steps = post.flatten().transforms if isinstance(post, Compose) else [post]
    cut = next((i for i, t in enumerate(steps) if isinstance(t, _DISCRETE)), len(steps))
    return list(steps[:cut]), list(steps[cut:])


def label_steps(post: Callable | None) -> list[Callable]:
    """The postprocessing steps after the first ``AsDiscrete(d)``, without the ``AsDiscrete(d)`` steps themselves:
    the label-level post-processing (connected components, hole filling...)."""
    return [t for t in _split(post)[1] if not isinstance(t, _DISCRETE)]


def run_postprocessing(post: Callable | None, data: dict[str, Any], *, keep_probabilities: bool = False
                       ) -> tuple[dict[str, Any], torch.Tensor | None]:
    """Run ``post`` on ``data``; with ``keep_probabilities`` also return ``data["pred"]`` as it was just before the
    first ``AsDiscrete(d)`` (float32 ``(C, *S)`` on the CPU), softmaxed over ``C`` when no ``Activations(d)`` step
    came before it (a bundle whose postprocessing starts from logits).

    Raises:
        ValueError: probabilities requested but the prediction before the argmax has fewer than 2 channels.
    """
    if not keep_probabilities:
        return (post(data) if post is not None else data), None
    before, after = _split(post)
    for t in before:
        data = t(data)
    probs = torch.as_tensor(data["pred"]).detach().float().cpu().clone()
    if probs.ndim < 2 or probs.shape[0] < 2:
        raise ValueError(f"--save-probabilities needs a multi-class softmax output (C >= 2), got shape "
                         f"{tuple(probs.shape)}")
    if not any(isinstance(t, (Activations, Activationsd)) for t in before):
        probs = torch.softmax(probs, dim=0)
    for t in after:
        data = t(data)
    return data, probs


def probability_images(probs: torch.Tensor | np.ndarray, affine, space: str = "RAS") -> list[sitk.Image]:
    """``(C, X, Y, Z)`` network-space probabilities -> one float32 SimpleITK image per class, with the affine."""
    arr = probs.numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    return [array_to_sitk(arr[c].astype(np.float32), affine, space) for c in range(arr.shape[0])]


def probabilities_on_source(channels: Sequence[sitk.Image], reference: sitk.Image,
                            steps: Sequence[Callable] = ()) -> tuple[np.ndarray, sitk.Image]:
    """Resample the class channels linearly onto ``reference``'s grid; return (float16 ``(C, Z, Y, X)``, label).

    Args:
        channels: one network-space probability image per class (:func:`probability_images`).
        reference: the source image.
        steps: label post-processing transforms (:func:`label_steps`), applied to ``{"pred": (1, Z, Y, X)}``.

    Returns:
        The saved probabilities and the label map (uint8/uint16, ``reference``'s geometry): the argmax of the
        float16 probabilities, then ``steps``.
    """
    arrays = []
    for c, img in enumerate(channels):
        back = resample_to_source(img, reference, interpolation="linear", default_value=1.0 if c == 0 else 0.0)
        arrays.append(sitk.GetArrayViewFromImage(back).astype(PROBABILITY_DTYPE))
    probs = np.stack(arrays)
    label = np.argmax(probs, axis=0)
    if steps:
        data = {"pred": torch.as_tensor(label[None].astype(np.int64))}
        for t in steps:
            data = t(data)
        label = torch.as_tensor(data["pred"])[0].cpu().numpy()
    label = label.astype(np.uint8 if label.max(initial=0) <= 255 else np.uint16)
    out = sitk.GetImageFromArray(label)
    out.CopyInformation(reference)
    return probs, out


def write_probabilities(probs: np.ndarray, reference: sitk.Image, labels: Mapping[int, str],
                        path: str | os.PathLike) -> None:
    """Write ``probs`` (float16 ``(C, Z, Y, X)``) and the source geometry to ``path`` (``.npz``, compressed).

    The caller makes the write atomic (it passes a temporary name).
    """
    names = [labels.get(c, "background" if c == 0 else f"label{c}") for c in range(probs.shape[0])]
    with open(path, "wb") as f:
        np.savez_compressed(f, probabilities=probs.astype(PROBABILITY_DTYPE), labels=np.asarray(names),
                            spacing=np.asarray(reference.GetSpacing()), origin=np.asarray(reference.GetOrigin()),
                            direction=np.asarray(reference.GetDirection()).reshape(3, 3))
