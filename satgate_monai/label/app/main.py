"""The MONAI Label app: serves local satgate-monai bundles, nothing from the model zoo, no SAM2.

The server is started by ``python -m satgate_monai.label serve``, which writes an app folder whose ``main.py`` imports
:class:`SATGateLabelApp` and whose ``model/<name>`` entries link to the bundle folders. ``--conf models a,b,c`` names
the bundles to serve; each must exist locally (no download is ever attempted).

``--studies`` is a folder or a DICOMweb URL (``http://host:port/dicom-web``, e.g. Orthanc); see
:mod:`satgate_monai.label.app.datastore`. Bad requests are answered with their reason: an unknown model or image
with HTTP 404, a checkpoint that cannot be served or an upload that fails the checks with HTTP 422; a training that
cannot start with the labelled studies at hand says why (HTTP 422 for ``run_sync``, else in ``GET /train/``).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from fastapi import HTTPException
from monailabel.config import settings
from monailabel.datastore.dicom import DICOMwebClientX
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.utils.others.generic import strtobool

import satgate_monai
from satgate_monai.label.app.datastore import CheckedLocalDatastore, PACSDatastore
from satgate_monai.label.app.infer import CheckpointError, SATBundleInferTask
from satgate_monai.label.app.train import SATBundleTrainTask, TrainingDataError

__all__ = ["SATGateLabelApp", "local_bundles"]

logger = logging.getLogger(__name__)


def local_bundles(app_dir: str, conf: dict[str, str]) -> dict[str, str]:
    """The bundles named by ``--conf models a,b,c``, each a folder (or link) at ``<app_dir>/model/<name>``.

    Args:
        app_dir: the MONAI Label app folder.
        conf: the server's ``--conf`` dictionary.

    Returns:
        ``{name: bundle folder}`` in the given order.

    Raises:
        ValueError: no model named, or a named bundle folder is missing (MONAI Label would try to download it).
    """
    names = [m.strip() for m in conf.get("models", "").split(",") if m.strip()]
    if not names:
        raise ValueError("no bundle to serve: pass --conf models NAME[,NAME...]")
    bundles: dict[str, str] = {}
    for name in names:
        path = os.path.join(app_dir, "model", name)
        if not os.path.isdir(path):
            raise ValueError(f"bundle {name!r} not found at {path} (this app never downloads bundles)")
        bundles[name] = os.path.realpath(path)
    return bundles


class SATGateLabelApp(MONAILabelApp):
    """MONAI Label app for satgate-monai bundles (SAT skip connections; liver CT, prostate MRI, skin lesion).

    Args:
        app_dir: the app folder (``model/<name>`` links to the bundles; MONAI Label writes ``logs/`` there).
        studies: the studies folder (images; MONAI Label keeps labels in ``labels/final`` inside it).
        conf: ``--conf`` pairs: ``models`` (required), ``skip_trainers`` (``false``), ``preload`` (``false``),
            for a DICOMweb ``studies``: ``dicomweb_cache`` (folder for fetched series) and ``modalities`` (comma list
            of the series to list; default: every image series).
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.models = local_bundles(app_dir, conf)
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name=f"satgate-monai ({satgate_monai.__version__})",
            description="Select-Attend-Transfer (SAT) segmentation bundles: liver CT, prostate MRI, skin lesion",
            version=satgate_monai.__version__,
        )

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {}
        for name, path in self.models.items():
            try:
                task = SATBundleInferTask(path, self.conf)
            except Exception as e:
                raise RuntimeError(f"bundle {name!r} ({path}) cannot be served: {type(e).__name__}: {e}") from e
            if not task.is_valid():
                raise RuntimeError(
                    f"bundle {name!r} ({path}) cannot be served: it needs configs/inference.json (or .yaml), "
                    "configs/metadata.json and models/model.pt"
                )
            logger.info("+++ satgate-monai infer task: %s => %s", name, path)
            infers[name] = task
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:
        trainers: dict[str, TrainTask] = {}
        if strtobool(self.conf.get("skip_trainers", "false")):
            return trainers
        for name, path in self.models.items():
            task = SATBundleTrainTask(path, self.conf)
            if not task.is_valid():
                logger.warning("bundle %r has no configs/train.json: it can be used but not retrained", name)
                continue
            logger.info("+++ satgate-monai train task: %s => %s", name, path)
            trainers[name] = task
        return trainers

    def init_strategies(self) -> dict[str, Strategy]:
        return {"random": Random(), "first": First()}

    # --- datastores -------------------------------------------------------------------------------------------------

    def _label_values(self) -> set[int]:
        return {int(v) for task in self._infers.values() for v in (task.labels or {}).values()}

    def _label_names(self) -> dict[int, str]:
        return {int(v): k for task in self._infers.values() for k, v in (task.labels or {}).items()}

    def init_datastore(self) -> Datastore:
        """A checked studies folder, or for an ``http(s)://`` studies URL a checked DICOMweb PACS datastore."""
        if self.studies.startswith(("http://", "https://")):
            self.studies = self.studies.rstrip("/").strip()
            store: Datastore = self._pacs_datastore()
        else:
            store = CheckedLocalDatastore(
                self.studies,
                extensions=settings.MONAI_LABEL_DATASTORE_FILE_EXT,
                auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
                read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
            )
        store.label_values = self._label_values  # the infers are set up after the datastore: looked up per call
        return store

    def _pacs_datastore(self) -> PACSDatastore:
        session = None
        if settings.MONAI_LABEL_DICOMWEB_USERNAME and settings.MONAI_LABEL_DICOMWEB_PASSWORD:
            from dicomweb_client.session_utils import create_session_from_user_pass

            session = create_session_from_user_pass(
                settings.MONAI_LABEL_DICOMWEB_USERNAME, settings.MONAI_LABEL_DICOMWEB_PASSWORD
            )
        client = DICOMwebClientX(
            url=self.studies,
            session=session,
            qido_url_prefix=settings.MONAI_LABEL_QIDO_PREFIX,
            wado_url_prefix=settings.MONAI_LABEL_WADO_PREFIX,
            stow_url_prefix=settings.MONAI_LABEL_STOW_PREFIX,
        )
        cache = self.conf.get("dicomweb_cache") or settings.MONAI_LABEL_DICOMWEB_CACHE_PATH.strip()
        cache = cache or os.path.join(self.app_dir, "dicomweb-cache")
        modalities = [m for m in self.conf.get("modalities", "").split(",") if m.strip()]
        logger.info("PACS datastore %s (modalities %s), cache %s", self.studies, modalities or "all", cache)
        return PACSDatastore(client, modalities, cache, label_names=self._label_names)

    def _download_dcmqi_tools(self) -> None:
        """Nothing to download: DICOM-SEG files are written with pydicom-seg (this app never downloads)."""

    # --- requests ---------------------------------------------------------------------------------------------------

    def bundle_path(self, model: str | None) -> str | None:
        """The bundle of a model; HTTP 404 for a model this server does not serve (checked before a training starts)."""
        if model and model not in self._trainers and model not in self._infers:
            raise HTTPException(status_code=404, detail=self._unknown_model(model))
        return super().bundle_path(model)

    def _unknown_model(self, model: Any) -> str:
        return f"model {model!r} is not served here (served models: {', '.join(self._infers) or 'none'})"

    def infer(self, request: dict[str, Any], datastore: Datastore | None = None) -> dict[str, Any]:
        """Run inference, answering an unknown model or image with 404 and an unservable checkpoint with 422."""
        model = request.get("model")
        task = self._infers.get(model)
        if task is None:
            raise HTTPException(status_code=404, detail=self._unknown_model(model))
        image = request.get("image")
        if isinstance(image, str) and not os.path.exists(image):
            store = datastore or self.datastore()
            if image not in store.list_images():
                raise HTTPException(
                    status_code=404,
                    detail=f"image {image!r} is not in the datastore (GET /datastore/?output=all lists the images)",
                )
        if isinstance(task, SATBundleInferTask):
            try:
                task.checkpoint_for(request)
            except CheckpointError as e:
                raise HTTPException(status_code=422, detail=f"model {model!r}: {e}") from None
        return super().infer(request, datastore)

    def train(self, request: dict[str, Any]) -> dict[str, Any]:
        """Train one model; too few labelled studies is answered with what to do, not a bundle traceback.

        A synchronous request (``run_sync=true``) gets HTTP 422 with the message. A background training (a separate
        process started by MONAI Label, whose request carries ``local_rank``) logs the message as its last line, which
        ``GET /train/`` shows under ``details`` with status ``ERROR``.
        """
        model = request.get("model")
        if model not in self._trainers:
            detail = self._unknown_model(model)
            if model in self._infers:
                detail = f"model {model!r} has no configs/train.json: it can be used but not retrained here"
            raise HTTPException(status_code=404, detail=detail)
        try:
            return super().train(request)
        except TrainingDataError as e:
            if "local_rank" in request:  # the background training process: one clear last line, exit status 1
                logger.error("training cannot start: %s", e)
                logging.shutdown()
                sys.exit(1)
            raise HTTPException(status_code=422, detail=f"training cannot start: {e}") from None
