"""The case engine as MONAI dictionary transforms.

* ``WorkingGridd``: the working grid, for the bundles' train and validation preprocessing (the engine's inference path
  computes the same grid and values, slab by slab);
* ``CaseToWorkingGridd`` and ``ToSourceGridd``: the engine's two ends, for the MONAI Label app.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import ensure_tuple_rep

from satgate_monai.bundle.engine.grid import snap_affine, to_working_grid, working_grid

__all__ = ["CaseToWorkingGridd", "ToSourceGridd", "WorkingGridd"]


class WorkingGridd(MapTransform, InvertibleTransform):
    """Resample ``(C, X, Y, Z)`` MetaTensors onto the working grid of their geometry
    (:func:`~satgate_monai.bundle.engine.grid.working_grid`), replacing ``Spacingd``. Invertible (``Invertd``
    resamples back with the recorded mode, or nearest with ``nearest_interp``).

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
            new = MetaTensor(torch.from_numpy(out), affine=torch.as_tensor(affine, dtype=torch.float64),
                             meta=dict(img.meta), applied_operations=list(img.applied_operations))
            self.push_transform(new, orig_size=tuple(img.shape[1:]),
                                extra_info={"src_affine": src, "mode": mode})
            d[key] = new
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Resample each key back onto the grid it had before this transform (border padding)."""
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            info = self.pop_transform(img)
            extra, size = info["extra_info"], tuple(int(s) for s in info["orig_size"])
            mode = "nearest" if str(extra["mode"]) == "nearest" else "bilinear"
            arr = img.as_tensor().detach().float().cpu().numpy()
            work = img.affine.numpy()
            out = np.stack([to_working_grid(arr[c], work, extra["src_affine"], size, mode=mode)
                            for c in range(arr.shape[0])])
            d[key] = MetaTensor(torch.from_numpy(out), affine=torch.as_tensor(np.asarray(extra["src_affine"])),
                                meta=dict(img.meta), applied_operations=list(img.applied_operations))
        return d


class CaseToWorkingGridd(MapTransform):
    """Read ``data[key]`` (an image file or DICOM folder; a picture for a 2D engine) as a case and put the engine's
    network input in its place.

    ``data[key]`` becomes :meth:`CaseEngine.preprocess <satgate_monai.bundle.engine.CaseEngine.preprocess>`'s
    ``(1, X, Y, Z)`` (a picture: ``(C, *image_size)``) MetaTensor (its meta data hold the source grid) and
    ``data[case_key]`` the :class:`~satgate_monai.bundle.engine.Case` or
    :class:`~satgate_monai.bundle.engine.Picture` (:meth:`CaseEngine.read
    <satgate_monai.bundle.engine.CaseEngine.read>`). The MONAI Label app's pre-transforms.
    """

    def __init__(self, keys: KeysCollection, engine: Any, case_key: str = "case") -> None:
        super().__init__(keys)
        self.engine, self.case_key = engine, case_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            case = self.engine.read(d[key])
            d[self.case_key] = case
            d[key] = self.engine.preprocess(case)
        return d


class ToSourceGridd(MapTransform):
    """The network output ``data[key]`` ``(C, X, Y, Z)`` on the working grid -> the label map on the source grid,
    ``(1, X, Y, Z)`` (a picture: ``(1, X, Y)``) uint8 MetaTensor with the source's affine (:meth:`CaseEngine.to_source
    <satgate_monai.bundle.engine.CaseEngine.to_source>`: linear, argmax, the bundle's label steps). The MONAI Label
    app's post-transform.

    Args:
        keys: the prediction keys.
        engine: the case engine.
        ref_key: the network input (its affine is the working grid, its meta data the source grid).
        case_key: the :class:`~satgate_monai.bundle.engine.Case` put there by :class:`CaseToWorkingGridd`.
    """

    def __init__(self, keys: KeysCollection, engine: Any, ref_key: Hashable = "image", case_key: str = "case") -> None:
        super().__init__(keys)
        self.engine, self.ref_key, self.case_key = engine, ref_key, case_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref, case = d[self.ref_key], d[self.case_key]
        meta = {k: v for k, v in ref.meta.items() if k != "affine"}
        for key in self.key_iterator(d):
            labels = self.engine.to_source(torch.as_tensor(d[key]), case, ref.affine.numpy())
            d[key] = MetaTensor(torch.from_numpy(labels)[None], affine=torch.as_tensor(case.affine), meta=meta)
        return d
