"""MONAI Label infer task for satgate-monai bundles, with the monai 1.6.1 ``Spacingd`` workaround.

MONAI Label 0.8.5 puts the request's image path into the data dictionary as a string under ``image_path``. monai
1.6.1's ``Spacingd`` updates every data key that starts with ``<key>_`` (``image_meta_dict`` and so on) with the
resampled image's metadata when the input is NIfTI, so on ``image_path`` it fails with ``'str' object has no
attribute 'update'`` and every ``/infer`` on a bundle with ``Spacingd`` returns HTTP 500. This task hides such
non-mapping ``<input key>_*`` entries while the pre-transforms run and puts them back afterwards (the writer needs
``image_path`` for the output's file type).

For 2D bundles it drops the label's channel after MONAI Label's ``Restored`` (which assumes a 3D volume when it
squeezes), so a PNG study gets a (H, W) PNG label instead of a (1, H, W) stack ITK cannot write as PNG; and it writes
labels as uint8 (ITK's PNG writer rejects the float32 prediction).

It also loads the weights strictly: a checkpoint that does not fit the bundle's network is an error, not a warning
followed by a randomly initialised model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from monailabel.tasks.infer.bundle import BundleInferTask

__all__ = ["DropChanneld", "SATBundleInferTask", "hidden_string_keys"]

logger = logging.getLogger(__name__)


def hidden_string_keys(data: Mapping[Any, Any], key: str) -> list[str]:
    """Keys of ``data`` that monai 1.6.1's ``Spacingd(keys=key)`` would try to ``.update()`` but are not mappings.

    Args:
        data: the infer request's data dictionary.
        key: the input key of the bundle (``image``).

    Returns:
        the names starting with ``f"{key}_"`` whose values are not mappings (e.g. ``image_path``).
    """
    prefix = f"{key}_"
    return [k for k, v in data.items() if isinstance(k, str) and k.startswith(prefix) and not isinstance(v, Mapping)]


class DropChanneld:
    """Drop a leading channel of size 1 from ``data[key]`` (2D labels; MONAI Label's ``Restored`` keeps it).

    Args:
        key: the prediction key.
    """

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        x = d[self.key]
        if x.ndim == 3 and x.shape[0] == 1:
            d[self.key] = x[0]
        return d


class SATBundleInferTask(BundleInferTask):
    """``BundleInferTask`` that survives monai 1.6.1's ``Spacingd`` and loads weights strictly.

    Args:
        path: the bundle folder (``configs/inference.json``, ``configs/metadata.json``, ``models/model.pt``).
        conf: the server's ``--conf`` dictionary.
        **kwargs: passed to ``BundleInferTask`` (``load_strict`` defaults to True here).
    """

    def __init__(self, path: str, conf: dict[str, str], **kwargs: Any) -> None:
        kwargs.setdefault("load_strict", True)
        super().__init__(path, conf, **kwargs)

    def run_pre_transforms(self, data: dict[str, Any], transforms: Any) -> dict[str, Any]:
        """Run the bundle's pre-transforms with the string ``image_*`` entries hidden, then restore them."""
        names = hidden_string_keys(data, self.input_key)
        hidden = {k: data.pop(k) for k in names}
        if hidden:
            logger.debug("hiding %s from the pre-transforms (monai 1.6.1 Spacingd)", sorted(hidden))
        try:
            out = super().run_pre_transforms(data, transforms)
        finally:
            data.update(hidden)
        out.update(hidden)
        return out

    def post_transforms(self, data: Any = None) -> list[Any]:
        """The bundle's post-transforms (without ``SaveImaged``), ``Restored``, and for 2D bundles ``DropChanneld``."""
        post = list(super().post_transforms(data))
        if self.dimension == 2:
            post.append(DropChanneld(self.key_pred))
        return post

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
        """Write the label as uint8 unless the request asks for another ``result_dtype``.

        MONAI Label writes the float32 prediction as it is, which ITK's PNG writer rejects ("PNG supports unsigned
        char and unsigned short"); our labels are small integers, so uint8 is exact for every output type.
        """
        if dtype is None and not data.get("result_dtype"):
            dtype = np.uint8
        return super().writer(data, extension=extension, dtype=dtype)
