"""The MONAI Label app serving satgate-monai bundles (import only inside the MONAI Label environment)."""

from __future__ import annotations

__all__ = ["DIMENSION_EXTENSIONS", "SATBundleInferTask", "SATBundleTrainTask", "SATGateLabelApp"]


def __getattr__(name: str):  # lazy: importing the package must not import monailabel
    if name in ("SATBundleInferTask",):
        from satgate_monai.label.app.infer import SATBundleInferTask

        return SATBundleInferTask
    if name in ("SATBundleTrainTask", "DIMENSION_EXTENSIONS"):
        from satgate_monai.label.app import train

        return getattr(train, name)
    if name == "SATGateLabelApp":
        from satgate_monai.label.app.main import SATGateLabelApp

        return SATGateLabelApp
    raise AttributeError(name)
