"""``<case>_probabilities.npz`` (``--save-probabilities``): the class probabilities on the source grid.

The case engine computes them while it returns the network output to the source grid
(:func:`satgate_monai.bundle.engine.grid.labels_on_source`: each class linearly, rounded to float16, the label map
their argmax, then the bundle's label steps), so the saved probabilities and the label agree exactly (before the label
steps; like nnU-Net's ``--save_probabilities``, the probabilities are the model's).

``<case>_probabilities.npz`` (:func:`write_probabilities`) holds ``probabilities`` float16 ``(C, Z, Y, X)`` (the
SimpleITK/numpy order of the source image's voxels, ``C`` = label value 0..C-1), ``labels`` (names by value),
``spacing``, ``origin`` (mm, LPS, ``x, y, z``) and ``direction`` (3x3 row-major), so
``np.argmax(np.load(f)["probabilities"], 0)`` equals ``sitk.GetArrayFromImage(sitk.ReadImage(<case>_seg.nii.gz))``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk

__all__ = ["write_probabilities", "PROBABILITY_DTYPE"]

PROBABILITY_DTYPE = np.float16


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
