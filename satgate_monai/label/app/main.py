"""The MONAI Label app: serves local satgate-monai bundles, nothing from the model zoo, no SAM2.

The server is started by ``python -m satgate_monai.label serve``, which writes an app folder whose ``main.py`` imports
:class:`SATGateLabelApp` and whose ``model/<name>`` entries link to the bundle folders. ``--conf models a,b,c`` names
the bundles to serve; each must exist locally (no download is ever attempted).
"""

from __future__ import annotations

import logging
import os

from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.utils.others.generic import strtobool

import satgate_monai
from satgate_monai.label.app.infer import SATBundleInferTask
from satgate_monai.label.app.train import SATBundleTrainTask

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
        conf: ``--conf`` pairs: ``models`` (required), ``skip_trainers`` (``false``), ``preload`` (``false``).
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
