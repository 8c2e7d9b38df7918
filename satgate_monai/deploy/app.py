"""The MONAI Deploy application of a satgate-monai bundle: DICOM study folder in, NIfTI mask + DICOM-SEG out.

Operators (:mod:`satgate_monai.deploy.operators`)::

    DICOMDataLoaderOperator (SDK) -> StudySeriesSelectorOperator (SDK selector, project rule)
                                  -> SATSegmentationOperator (project pipeline: reader, bundle, source grid, SEG)

Run as the SDK documents, from an application folder ``deploy/<bundle>/``::

    python deploy/liver_ct_sat -i DICOM_STUDY_DIR -o OUT -m bundles/liver_ct_sat

``-m`` is the bundle folder (``configs/``, ``models/model.pt``) or a folder holding it under the bundle's name (the
MAP layout, ``/opt/holoscan/models/<bundle>``); without ``-m``, ``$SATGATE_BUNDLE``. ``$SATGATE_SERIES_UID`` forces a
series, ``$SATGATE_DEVICE`` the device. Holoscan wants ``ulimit -s 32768``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from monai.deploy.conditions import CountCondition
from monai.deploy.core import AppContext, Application
from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator

from data_prep.series_selection import load_rules
from satgate_monai.deploy import BUNDLE_ENV, DEVICE_ENV, SERIES_ENV
from satgate_monai.deploy.operators import SATSegmentationOperator, StudySeriesSelectorOperator

__all__ = ["SATSegApp", "make_app", "resolve_bundle"]

logger = logging.getLogger(__name__)


def resolve_bundle(model_path: str | os.PathLike | None, bundle_name: str) -> Path:
    """The bundle folder from the application's model path (the bundle itself, or a folder holding
    ``<bundle_name>/``), else ``$SATGATE_BUNDLE``.

    Raises:
        FileNotFoundError: no ``configs/inference.json`` there, naming the places looked at.
    """
    looked = []
    for base in (model_path, os.environ.get(BUNDLE_ENV)):
        if not base:
            continue
        for cand in (Path(base), Path(base) / bundle_name):
            looked.append(str(cand))
            if (cand / "configs" / "inference.json").is_file():
                return cand
    where = ", ".join(looked) if looked else f"(no -m given and ${BUNDLE_ENV} unset)"
    raise FileNotFoundError(f"bundle {bundle_name}: no configs/inference.json in {where}")


class SATSegApp(Application):
    """A satgate-monai bundle as a MONAI Deploy application; subclasses set :attr:`bundle_name`."""

    bundle_name = ""

    def compose(self) -> None:
        """Build the operator graph from the application context (``-i``, ``-o``, ``-m``)."""
        ctx: AppContext = Application.init_app_context(self.argv)
        bundle = resolve_bundle(ctx.model_path, self.bundle_name)
        rules = load_rules(bundle)
        logger.info("bundle %s, input %s, output %s", bundle, ctx.input_path, ctx.output_path)
        loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=Path(ctx.input_path),
                                         name="study_loader_op")
        selector = StudySeriesSelectorOperator(self, selection_rules=rules, series_uid=os.environ.get(SERIES_ENV),
                                               name="series_selector_op")
        segment = SATSegmentationOperator(self, bundle_dir=bundle, input_folder=Path(ctx.input_path),
                                          output_folder=Path(ctx.output_path),
                                          device=os.environ.get(DEVICE_ENV, "auto"), name="sat_seg_op")
        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, segment, {("study_selected_series_list", "study_selected_series_list")})


def make_app(bundle_name: str) -> type[SATSegApp]:
    """The application class of one bundle (``deploy/<bundle_name>/app.py`` calls this)."""
    return type(f"SAT_{bundle_name}_App", (SATSegApp,), {"bundle_name": bundle_name})
