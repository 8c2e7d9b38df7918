"""Support code for the satgate-monai MONAI bundles (``bundles/*``): the configs call it by dotted path.

* :mod:`~satgate_monai.bundle.data`: loud loading of a ``data_prep`` output (``load_datalist``);
* :mod:`~satgate_monai.bundle.metrics`: Dice, FPR, FNR and volumes per case;
* :mod:`~satgate_monai.bundle.handlers`: gate sparsity / learning rate / attention-map TensorBoard handlers and a
  progress bar;
* :mod:`~satgate_monai.bundle.resume`: resume training from the last completed epoch;
* :mod:`~satgate_monai.bundle.evaluation`: per-case CSV and the paper's Table 1 summary;
* :mod:`~satgate_monai.bundle.transforms`: ``ValidateImaged``, data_prep's input validation as a loading step;
* :mod:`~satgate_monai.bundle.errors`: one-line errors for ``python -m monai.bundle run`` (installed on import).

Needs pytorch-ignite and tensorboard (the ``train`` extra); ``import satgate_monai`` does not import this package.
"""

from __future__ import annotations

from satgate_monai.bundle.data import DatasetNotFoundError, load_datalist, require_data, require_file
from satgate_monai.bundle.errors import install_excepthook
from satgate_monai.bundle.evaluation import CaseMetricsWriter, format_table1, summarise
from satgate_monai.bundle.handlers import AttentionImageHandler, GateStatsHandler, TrainProgressBar
from satgate_monai.bundle.metrics import case_metrics, confusion_counts
from satgate_monai.bundle.resume import ResumeHandler, unwrap
from satgate_monai.bundle.transforms import ValidateImaged, ValidatingReader, declared_labels

install_excepthook()

__all__ = [
    "AttentionImageHandler",
    "CaseMetricsWriter",
    "DatasetNotFoundError",
    "GateStatsHandler",
    "ResumeHandler",
    "TrainProgressBar",
    "ValidateImaged",
    "ValidatingReader",
    "case_metrics",
    "confusion_counts",
    "declared_labels",
    "format_table1",
    "load_datalist",
    "require_data",
    "require_file",
    "summarise",
    "unwrap",
]
