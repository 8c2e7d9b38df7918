"""The one case engine behind every entry point (:mod:`~satgate_monai.bundle.engine.engine`), its case
(:mod:`~satgate_monai.bundle.engine.case`) and its working grid (:mod:`~satgate_monai.bundle.engine.grid`)."""

from satgate_monai.bundle.engine.case import Case, Picture, read_case, read_picture
from satgate_monai.bundle.engine.engine import CaseEngine, split_postprocessing
from satgate_monai.bundle.engine.grid import (
                                              labels_on_picture,
                                              labels_on_source,
                                              snap_affine,
                                              to_working_grid,
                                              working_grid,
)
from satgate_monai.bundle.engine.transforms import CaseToWorkingGridd, ToSourceGridd, WorkingGridd

__all__ = ["Case", "CaseEngine", "CaseToWorkingGridd", "Picture", "ToSourceGridd", "WorkingGridd",
           "labels_on_picture", "labels_on_source", "read_case", "read_picture",
           "snap_affine", "split_postprocessing", "to_working_grid", "working_grid"]
