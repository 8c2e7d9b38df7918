"""MONAI Label train task for satgate-monai bundles: trains only on studies of the bundle's dimension.

One studies folder may hold 3D volumes (NIfTI, NRRD) and 2D pictures (PNG, JPEG) side by side; MONAI Label's stock
``BundleTrainTask`` would hand every labelled study to every bundle, so a 2D skin bundle would be fed MR volumes.
This task keeps the studies whose file type matches the bundle's input dimension (from ``metadata.json``), and
refuses to start, with a message a 3D Slicer user can act on (:class:`TrainingDataError`), when too few labelled
studies are left for a training and a validation part. It fine-tunes from ``models/model.pt`` (the best checkpoint)
unless the request names another file, and loads the weights strictly.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from monailabel.interfaces.datastore import Datastore
from monailabel.tasks.train.bundle import BundleTrainTask

from satgate_monai.label.checkpoints import DEFAULT_CHECKPOINT, file_signature
from satgate_monai.label.validation import VOLUME_SUFFIXES

__all__ = [
    "DIMENSION_EXTENSIONS",
    "SATBundleTrainTask",
    "TrainingDataError",
    "bundle_dimension",
    "matches_dimension",
]

logger = logging.getLogger(__name__)

DIMENSION_EXTENSIONS: dict[int, tuple[str, ...]] = {
    2: (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"),
    3: VOLUME_SUFFIXES,
}


SUBMIT_HINT = (
    "open a study in 3D Slicer's MONAI Label module, run the model, correct the segmentation and press "
    "'Submit Label' (or PUT /datastore/label), then train again"
)


class TrainingDataError(ValueError):
    """Training cannot start with the labelled studies at hand; the message says what to do."""


def _training_stats(last: str, best: str) -> dict[str, Any]:
    import time

    from satgate_monai.bundle.checkpoint import read_checkpoint

    stats: dict[str, Any] = {}
    if os.path.isfile(last):
        try:
            state = read_checkpoint(last)
            evaluator = state.get("evaluator") or {}
            stats.update(
                epoch=int(state.get("epoch", 0)),
                completed=bool(state.get("completed", False)),
                best_metric=float(evaluator["best_metric"]) if "best_metric" in evaluator else None,
                best_metric_epoch=int(evaluator.get("best_metric_epoch", -1)),
            )
        except Exception as e:  # a half-written or foreign file: say so rather than fail /info/
            stats["error"] = f"{os.path.basename(last)} cannot be read: {type(e).__name__}"
    if os.path.isfile(best):
        stats["model_pt_written"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(best)))
    return stats


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

    def stats(self) -> dict[str, Any]:
        """``/info/``'s ``train_stats`` of this model: the last training's epoch and best validation metric (from
        ``models/last.pt``) and when ``models/model.pt`` was last written; empty before any training."""
        models = os.path.join(self.bundle_path, "models") if self.valid else ""
        last, best = os.path.join(models, "last.pt"), os.path.join(models, DEFAULT_CHECKPOINT)
        key = (file_signature(last), file_signature(best))
        if key != getattr(self, "_stats_key", None):
            self._stats_key, self._stats = key, _training_stats(last, best)
        return dict(self._stats)

    def config(self) -> dict[str, Any]:
        """MONAI Label's training options, with ``model.pt`` first among the checkpoints to start from."""
        options = super().config()
        options["model_filename"] = sorted(options.get("model_filename") or [], key=lambda n: n != DEFAULT_CHECKPOINT)
        return options

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        """Train; start from ``model.pt`` unless ``model_filename`` names one file (MONAI Label takes the first)."""
        request = dict(request)
        chosen = request.get("model_filename")
        if isinstance(chosen, (list, tuple)):
            chosen = chosen[0] if len(chosen) == 1 else None
        request["model_filename"] = chosen or DEFAULT_CHECKPOINT
        return super().__call__(request, datastore)

    def _partition_datalist(self, datalist: list[dict[str, Any]], request: dict[str, Any], shuffle: bool = False):
        """MONAI Label's split, refused with an actionable message when the training or validation part is empty."""
        val_split = float(request.get("val_split", 0.2))
        train, val = super()._partition_datalist(datalist, request, shuffle)
        if not train or (val is not None and not val):
            model = request.get("model")
            if len(datalist) < 2:
                raise TrainingDataError(
                    f"model {model!r} needs at least 2 labelled {self.dimension}D studies (one to train on, one to "
                    f"validate with), it has {len(datalist)}: label more studies: {SUBMIT_HINT}"
                )
            raise TrainingDataError(
                f"model {model!r}: with val_split {val_split:g} the {'training' if not train else 'validation'} part "
                f"of its {len(datalist)} labelled {self.dimension}D studies is empty: set val_split so that both parts "
                f"get a study (e.g. 0.5), or label more studies"
            )
        return train, val

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
            others = f" ({len(datalist)} labelled studies are of other types)" if datalist else ""
            raise TrainingDataError(
                f"model {request.get('model')!r} has no labelled {self.dimension}D study "
                f"({', '.join(DIMENSION_EXTENSIONS[self.dimension])}) to train on{others}: {SUBMIT_HINT}"
            )
        return kept
