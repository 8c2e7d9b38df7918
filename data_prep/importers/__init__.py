"""Importers for the public datasets' own layouts: MSD Task03_Liver, MSD Task05_Prostate, LiTS, ISIC 2017.

Each importer finds the dataset's files by their documented names, builds the cases (label merging, channel choice)
and hands the 3D ones to :func:`data_prep.pipeline.prepare_cases` (validation, isotropic resampling, atomic
NIfTI output, ``datalist.json``, ``report.csv``); ISIC 2017 (2D RGB) is resized to a fixed square size by
:mod:`data_prep.importers.isic` with the same robustness rules. Command line: ``python -m data_prep import``.
"""

from __future__ import annotations

from data_prep.importers.common import LayoutError
from data_prep.importers.isic import find_isic2017, import_isic2017
from data_prep.importers.lits import find_lits, import_lits
from data_prep.importers.msd import find_msd, import_msd_liver, import_msd_prostate

__all__ = [
    "DATASETS",
    "LayoutError",
    "find_isic2017",
    "find_lits",
    "find_msd",
    "import_isic2017",
    "import_lits",
    "import_msd_liver",
    "import_msd_prostate",
]

#: dataset name on the command line -> importer function ``(src, out, **options) -> exit code``
DATASETS = {
    "msd-liver": import_msd_liver,
    "msd-prostate": import_msd_prostate,
    "lits": import_lits,
    "isic2017": import_isic2017,
}
