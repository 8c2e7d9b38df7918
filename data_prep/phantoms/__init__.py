"""Demo phantoms: synthetic CT liver, MR prostate (T2 + ADC) and dermoscopy skin-lesion cases, NOT patient data.

Each generator draws one case from a seeded :class:`numpy.random.Generator` and returns a
:class:`~data_prep.phantoms.volume.PhantomVolume`; the layout writers put whole datasets on disk in the exact layouts
of MSD Task03_Liver, MSD Task05_Prostate and ISIC 2017, so ``python -m data_prep import`` reads real and demo data
alike. Command line: ``python -m data_prep demo --task liver|prostate|skin --out DIR``.

:mod:`data_prep.phantoms.lung_lesions` and :mod:`data_prep.phantoms.lesion_dataset` are not phantoms but semi-real
cases (real chest CT and real tumour tissue of the pyradiomics samples, synthetic placement) in the MSD Task03_Liver
layout: ``python -m data_prep lesions --samples DIR --out DIR``.
"""

from __future__ import annotations

from data_prep.phantoms.ct_liver import LIVER_SHAPE, LIVER_SPACING, liver_ct_phantom
from data_prep.phantoms.layouts import (
    DEFAULT_CASES,
    README_NAME,
    TASKS,
    case_rng,
    write_isic2017,
    write_msd_liver,
    write_msd_prostate,
    write_phantom_dataset,
)
from data_prep.phantoms.mr_prostate import PROSTATE_SHAPE, PROSTATE_SPACING, prostate_mr_phantom
from data_prep.phantoms.skin import SKIN_SIZE, skin_phantom
from data_prep.phantoms.volume import PHANTOM_DESCRIP, PHANTOM_NOTICE, PhantomVolume

__all__ = [
    "DEFAULT_CASES",
    "LIVER_SHAPE",
    "LIVER_SPACING",
    "PHANTOM_DESCRIP",
    "PHANTOM_NOTICE",
    "PROSTATE_SHAPE",
    "PROSTATE_SPACING",
    "README_NAME",
    "SKIN_SIZE",
    "TASKS",
    "PhantomVolume",
    "case_rng",
    "liver_ct_phantom",
    "prostate_mr_phantom",
    "skin_phantom",
    "write_isic2017",
    "write_msd_liver",
    "write_msd_prostate",
    "write_phantom_dataset",
]
