"""MONAI Label train task for satgate-monai bundles: trains only on studies of the bundle's dimension.

One studies folder may hold 3D volumes (NIfTI, NRRD) and 2D pictures (PNG, JPEG) side by side; MONAI Label's stock
``BundleTrainTask`` would hand every labelled study to every bundle, so a 2D skin bundle would be fed MR volumes.
This task keeps the studies whose file type matches the bundle's input dimension (from ``metadata.json``), fails
with a clear message when none is left, and loads the existing weights strictly before fine-tuning.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from monailabel.interfaces.datastore import Datastore
from monailabel.tasks.train.bundle import BundleTrainTask

__all__ = ["DIMENSION_EXTENSIONS", "SATBundleTrainTask", "bundle_dimension", "matches_dimension"]

logger = logging.getLogger(__name__)

DIMENSION_EXTENSIONS: dict[int, tuple[str, ...]] = {
    2: (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"),
    3: (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".seg.nrrd"),
}


def bundle_dimension(bundle_dir: str) -> int:
    """Spatial dimension of a bundle's input: the length of ``spatial_shape`` in ``configs/metadata.json``.

    Args:
        bundle_dir: the bundle folder.

    Returns:
        2 or 3 (3 when ``spatial_shape`` is absent, as MONAI Label assumes).
    """
    with open(os.path.join(bundle_dir, "configs", "metadata.json")) as f:
        meta = json.load(f)
    image = next(iter(meta["network_data_format"]["inputs"].values()))
    shape = image.get("spatial_shape")
    return len(shape) if shape else 3


def matches_dimension(path: str, dimension: int) -> bool:
    """Whether a study file has a file type of that dimension (e.g. ``.png`` for 2, ``.nii.gz`` for 3)."""
    return str(path).lower().endswith(DIMENSION_EXTENSIONS.get(dimension, ()))


class SATBundleTrainTask(BundleTrainTask):
    """``BundleTrainTask`` restricted to studies of the bundle's dimension, loading weights strictly.

    Args:
        path: the bundle folder (``configs/train.json``, ``configs/metadata.json``).
        conf: the server's ``--conf`` dictionary.
        **kwargs: passed to ``BundleTrainTask`` (``load_strict`` defaults to True here).
    """

    def __init__(self, path: str, conf: dict[str, str], **kwargs: Any) -> None:
        kwargs.setdefault("load_strict", True)
        super().__init__(path, conf, **kwargs)
        self.dimension = bundle_dimension(path) if self.valid else 3

    def _fetch_datalist(self, request: dict[str, Any], datastore: Datastore) -> list[dict[str, Any]]:
        datalist = super()._fetch_datalist(request, datastore)
        kept = [d for d in datalist if matches_dimension(d["image"], self.dimension)]
        logger.info(
            "%s: %d of %d labelled studies are %dD (%s)",
            request.get("model"),
            len(kept),
            len(datalist),
            self.dimension,
            ", ".join(DIMENSION_EXTENSIONS[self.dimension]),
        )
        if not kept:
            raise ValueError(
                f"model {request.get('model')!r} ({self.dimension}D) has no labelled study to train on: save labels "
                f"for studies of type {', '.join(DIMENSION_EXTENSIONS[self.dimension])} first "
                f"({len(datalist)} labelled studies of other types)"
            )
        return kept
