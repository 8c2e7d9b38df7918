"""The one post-processing of a 3D bundle's prediction, shared by the inference CLI and the MONAI Label app.

A bundle's ``postprocessing`` (``Activationsd``, ``Invertd``, ``AsDiscreted``, the chosen keep-largest-component /
fill-holes, ``SaveImaged``) runs here without ``Invertd`` and ``SaveImage(d)``
(:func:`network_space_postprocessing`): activation, argmax and the label steps run in network space, then the label
map returns to the source grid in one SimpleITK nearest-neighbour resampling
(:func:`~satgate_monai.infer.geometry.resample_to_source`, what ``Invertd(nearest_interp=True)`` computes for a label
map, many times faster). The CLI calls these two functions on its SimpleITK source image; the MONAI Label app
(:mod:`satgate_monai.label.app.infer`) runs the same steps as transforms, ending with :class:`ToSourceGridd`, whose
source grid is the loaded image's ``original_affine`` and ``spatial_shape``. Writing is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, MapTransform, SaveImage, SaveImaged

from satgate_monai.infer.geometry import affine_to_sitk_geometry, array_to_sitk, resample_to_source

__all__ = ["DROPPED_POSTPROCESSING", "ToSourceGridd", "network_space_postprocessing", "source_grid",
           "to_label_map"]

#: the bundle postprocessing steps that are not run: the inversion (replaced by the return to the source grid) and
#: the writers (the caller writes)
DROPPED_POSTPROCESSING = (Invertd, SaveImaged, SaveImage)


def network_space_postprocessing(post: Callable | Sequence[Callable] | None) -> tuple[Callable | None, list[str]]:
    """The bundle's postprocessing without ``Invertd``/``SaveImage(d)``, and the names of the steps left out.

    Args:
        post: the bundle's ``postprocessing`` (a ``Compose``, a list of transforms, one transform or None).

    Returns:
        ``(steps, dropped)``: a ``Compose`` of the remaining steps (a single transform and None are returned as they
        are) and the dropped steps' class names.
    """
    if post is None:
        return None, []
    if isinstance(post, Compose):
        steps = list(post.flatten().transforms)
    elif isinstance(post, Sequence):
        steps = list(post)
    else:
        return post, []
    kept = [t for t in steps if not isinstance(t, DROPPED_POSTPROCESSING)]
    dropped = [type(t).__name__ for t in steps if isinstance(t, DROPPED_POSTPROCESSING)]
    return Compose(kept), dropped


def to_label_map(pred: torch.Tensor) -> np.ndarray:
    """A postprocessed prediction ``(C, *S)`` -> integer label map ``(*S)``.

    ``C > 1``: argmax over channels (probabilities or one-hot). ``C == 1``: the values themselves when they are
    already integers (e.g. after ``AsDiscreted(argmax=True)``), else a 0.5 threshold (a sigmoid output).
    Returns ``uint8`` when every label fits, else ``uint16``.
    """
    p = pred.detach()
    if p.ndim < 2:
        raise ValueError(f"expected a prediction (C, *S), got shape {tuple(p.shape)}")
    if p.shape[0] > 1:
        lab = torch.argmax(p, dim=0)
    else:
        q = p[0]
        if q.is_floating_point() and not torch.equal(q, torch.round(q)):
            lab = (q > 0.5).to(torch.int64)
        else:
            lab = torch.round(q.float()).to(torch.int64) if q.is_floating_point() else q.to(torch.int64)
    lab = lab.cpu().numpy()
    if lab.size and lab.min() < 0:
        raise ValueError(f"negative label {lab.min()} in the prediction")
    return lab.astype(np.uint8 if (lab.size == 0 or lab.max() <= 255) else np.uint16)


def source_grid(meta: Mapping[str, Any]) -> sitk.Image:
    """The source image's grid (an empty uint8 SimpleITK image) from a loaded MetaTensor's meta data.

    Args:
        meta: ``original_affine`` (index -> world, in ``space``, default RAS) and ``spatial_shape`` ``(X, Y, Z)``, as
            MONAI's ``LoadImage`` records them (the bundle's spatial transforms leave both alone).

    Raises:
        ValueError: meta data without them, or not 3D.
    """
    affine, shape = meta.get("original_affine"), meta.get("spatial_shape")
    if affine is None or shape is None:
        raise ValueError("the image's meta data lack original_affine/spatial_shape: the source grid is unknown")
    size = [int(s) for s in np.asarray(shape).ravel()]
    if len(size) != 3:
        raise ValueError(f"expected a 3D source grid, got spatial_shape {size}")
    spacing, origin, direction = affine_to_sitk_geometry(affine, str(meta.get("space", "RAS")))
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing(spacing)
    grid.SetOrigin(origin)
    grid.SetDirection(direction)
    return grid


class ToSourceGridd(MapTransform):
    """The network-space prediction as a label map on the source grid: :func:`to_label_map`, then
    :func:`~satgate_monai.infer.geometry.resample_to_source` (nearest neighbour, as the CLI).

    Args:
        keys: the prediction keys (``(C, X, Y, Z)`` MetaTensors with the network-space affine).
        ref_key: the preprocessed image, whose meta data hold the source grid (:func:`source_grid`).

    Returns (per key):
        A ``(1, X, Y, Z)`` MetaTensor of labels (uint8/uint16) on the source grid, its affine the source's.
    """

    def __init__(self, keys: KeysCollection = "pred", ref_key: Hashable = "image",
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ref_key = ref_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref = d[self.ref_key]
        if not isinstance(ref, MetaTensor):
            raise ValueError(f"{self.ref_key!r} is not a MetaTensor: the source grid is unknown")
        grid = source_grid(ref.meta)
        for key in self.key_iterator(d):
            pred = d[key]
            if not isinstance(pred, MetaTensor) or pred.ndim != 4:
                raise ValueError(f"{key!r} must be a (C, X, Y, Z) MetaTensor, got {type(pred).__name__} "
                                 f"{tuple(getattr(pred, 'shape', ()))}")
            net = array_to_sitk(to_label_map(pred), pred.affine, str(pred.meta.get("space", "RAS")))
            back = resample_to_source(net, grid, interpolation="nearest")
            arr = np.ascontiguousarray(sitk.GetArrayViewFromImage(back).transpose(2, 1, 0))[None]
            meta = {k: v for k, v in ref.meta.items() if k not in ("affine",)}
            d[key] = MetaTensor(torch.from_numpy(arr), affine=torch.as_tensor(np.asarray(ref.meta["original_affine"],
                                                                                         dtype=np.float64)),
                                meta=meta)
        return d
