"""Clinical inference: NIfTI/NRRD/MHA files or DICOM series in, masks in the source geometry out.

``python -m satgate_monai.infer --bundle DIR --input PATH --out DIR`` runs a bundle's own inference config on every
case and writes ``<case>_seg.nii.gz`` on exactly the source grid, a DICOM-SEG for DICOM input, optional attention maps
and ``report.csv``. Modules: :mod:`~satgate_monai.infer.cases` (discovery, safe names),
:mod:`~satgate_monai.infer.bundle` (the bundle's pipeline),
:mod:`~satgate_monai.infer.geometry` (return to the source grid), :mod:`~satgate_monai.infer.nifti`,
:mod:`~satgate_monai.infer.dicomseg`, :mod:`~satgate_monai.infer.report`, :mod:`~satgate_monai.infer.probabilities`
(``--save-probabilities``), :mod:`~satgate_monai.infer.statistics` (per-label statistics),
:mod:`~satgate_monai.infer.pipeline` (the batch loop), :mod:`~satgate_monai.infer.dicomweb` (a study from a DICOMweb
server, the SEG back), :mod:`~satgate_monai.infer.cli`; ``run.json`` comes from
:mod:`~satgate_monai.bundle.provenance`, checkpoints are read by :mod:`~satgate_monai.bundle.checkpoint` and ensembles
run by :mod:`~satgate_monai.bundle.ensemble` (the bundle layer, which the bundle configs call too). Heavy modules are
imported lazily.
"""

from __future__ import annotations

__all__ = ["BundleRunner", "InferenceOptions", "run_inference", "load_state_dict", "CheckpointError"]


def __getattr__(name: str):
    if name == "BundleRunner":
        from satgate_monai.infer.bundle import BundleRunner

        return BundleRunner
    if name in ("InferenceOptions", "run_inference"):
        from satgate_monai.infer import pipeline

        return getattr(pipeline, name)
    if name in ("load_state_dict", "CheckpointError"):
        from satgate_monai.bundle import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
