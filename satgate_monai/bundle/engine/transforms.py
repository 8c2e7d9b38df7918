"""``WorkingGridd``: the case engine's working grid as a MONAI dictionary transform, for the bundles' train and
validation preprocessing (the engine's own inference path computes the same grid and values, slab by slab)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import ensure_tuple_rep

from satgate_monai.bundle.engine.grid import snap_affine, to_working_grid, working_grid

__all__ = ["WorkingGridd"]


class WorkingGridd(MapTransform):
    """Resample ``(C, X, Y, Z)`` MetaTensors onto the working grid of their geometry
    (:func:`~satgate_monai.bundle.engine.grid.working_grid`), replacing ``Spacingd``.

    Args:
        keys: the keys to resample (all share the first key's grid).
        pixdim: working voxel size (mm).
        mode: ``"bilinear"`` (images) or ``"nearest"`` (labels), one or one per key.
        axcodes: orientation of the working grid.

    Raises:
        ValueError: a value that is not a 4D MetaTensor, or an unknown mode.
    """

    def __init__(self, keys: KeysCollection, pixdim: Sequence[float], mode: str | Sequence[str] = "bilinear",
                 axcodes: str = "RAS", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.pixdim = tuple(float(p) for p in pixdim)
        self.mode = ensure_tuple_rep(mode, len(self.keys))
        bad = [m for m in self.mode if m not in ("bilinear", "nearest")]
        if bad:
            raise ValueError(f"mode must be 'bilinear' or 'nearest', got {bad}")
        self.axcodes = axcodes

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, mode in self.key_iterator(d, self.mode):
            img = d[key]
            if not isinstance(img, MetaTensor) or img.ndim != 4:
                raise ValueError(f"{key!r} must be a (C, X, Y, Z) MetaTensor, got {type(img).__name__} "
                                 f"{tuple(getattr(img, 'shape', ()))}")
            src = snap_affine(img.affine.numpy())
            affine, shape = working_grid(src, img.shape[1:], self.pixdim, self.axcodes)
            arr = img.as_tensor().numpy()
            out = np.stack([to_working_grid(arr[c], src, affine, shape, mode=mode) for c in range(arr.shape[0])])
            if mode == "nearest":
                out = out.astype(arr.dtype, copy=False)
            d[key] = MetaTensor(torch.from_numpy(out), affine=torch.as_tensor(affine, dtype=torch.float64),
                                meta=dict(img.meta))
        return d
