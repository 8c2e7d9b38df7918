"""Support code for the satgate-monai MONAI bundles (``bundles/*``): the configs call it by dotted path.

* :mod:`~satgate_monai.bundle.data`: loud loading of a ``data_prep`` output (``load_datalist``);
* :mod:`~satgate_monai.bundle.metrics`: Dice, FPR, FNR and volumes per case;
* :mod:`~satgate_monai.bundle.handlers`: gate sparsity / learning rate / attention-map TensorBoard handlers and a
  progress bar;
* :mod:`~satgate_monai.bundle.resume`: resume training from the last completed epoch;
* :mod:`~satgate_monai.bundle.evaluation`: per-case CSV and the paper's Table 1 summary;
* :mod:`~satgate_monai.bundle.crossval`: per-fold and pooled cross-validation summaries;
* :mod:`~satgate_monai.bundle.postprocess`: keep-largest-component / fill-holes chosen on validation data;
* ``write_bundle_run`` (:mod:`satgate_monai.infer.provenance`): ``run.json`` beside ``monai.bundle run`` predictions.

Needs pytorch-ignite and tensorboard (the ``train`` extra); ``import satgate_monai`` does not import this package.
"""

from __future__ import annotations

from satgate_monai.bundle.crossval import write_crossval
from satgate_monai.bundle.data import DatasetNotFoundError, load_datalist, require_data, require_file
from satgate_monai.bundle.evaluation import CaseMetricsWriter, format_table1, summarise
from satgate_monai.bundle.handlers import AttentionImageHandler, GateStatsHandler, TrainProgressBar
from satgate_monai.bundle.metrics import case_metrics, confusion_counts
from satgate_monai.bundle.postprocess import PostprocessingSelector, read_choice
from satgate_monai.bundle.resume import ResumeHandler, unwrap
from satgate_monai.infer.provenance import write_bundle_run

__all__ = [
    "AttentionImageHandler",
    "CaseMetricsWriter",
    "DatasetNotFoundError",
    "GateStatsHandler",
    "PostprocessingSelector",
    "ResumeHandler",
    "TrainProgressBar",
    "case_metrics",
    "confusion_counts",
    "format_table1",
    "load_datalist",
    "read_choice",
    "require_data",
    "require_file",
    "summarise",
    "unwrap",
    "write_bundle_run",
    "write_crossval",
]
