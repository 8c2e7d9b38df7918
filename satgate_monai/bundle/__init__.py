"""Support code for the satgate-monai MONAI bundles (``bundles/*``): the configs call it by dotted path.

* :mod:`~satgate_monai.bundle.data`: loud loading of a ``data_prep`` output (``load_datalist``);
* :mod:`~satgate_monai.bundle.image_folder`: ``inference_datalist``, a data_prep folder or a plain folder of images;
* :mod:`~satgate_monai.bundle.metrics`: Dice, FPR, FNR and volumes per case;
* :mod:`~satgate_monai.bundle.handlers`: gate sparsity / learning rate / attention-map TensorBoard handlers and a
  progress bar;
* :mod:`~satgate_monai.bundle.resume`: resume training from the last completed epoch;
* :mod:`~satgate_monai.bundle.evaluation`: per-case CSV and the paper's Table 1 summary;
* :mod:`~satgate_monai.bundle.transforms`: ``ValidateImaged``, data_prep's input validation as a loading step;
* :mod:`~satgate_monai.bundle.errors`: one-line errors for ``python -m monai.bundle run`` (installed by
  :mod:`~satgate_monai.bundle.entry`, which only the bundle configs import; importing this package installs nothing).
* :mod:`~satgate_monai.bundle.deep_supervision`: the training ids of a network with deep-supervision outputs.
* :mod:`~satgate_monai.bundle.crossval`: per-fold and pooled cross-validation summaries;
* :mod:`~satgate_monai.bundle.postprocess`: keep-largest-component / fill-holes chosen on validation data;
* :mod:`~satgate_monai.bundle.distributed`: ``finish_distributed`` ends a multi-process run cleanly on every rank;
* :mod:`~satgate_monai.bundle.engine`: the one case engine (``CaseEngine``: working grid, network, linear return to
  the source grid, label steps) behind ``monai.bundle run``, the CLI, MONAI Label and Deploy; ``WorkingGridd``;
* ``write_bundle_run`` (:mod:`satgate_monai.bundle.provenance`): ``run.json`` beside ``monai.bundle run`` predictions.

Needs pytorch-ignite and tensorboard (the ``train`` extra); ``import satgate_monai`` does not import this package.
"""

from __future__ import annotations

from satgate_monai.bundle.crossval import write_crossval
from satgate_monai.bundle.data import DatasetNotFoundError, load_datalist, require_data, require_file
from satgate_monai.bundle.deep_supervision import DEEP_SUPERVISION_OVERRIDES, first_output
from satgate_monai.bundle.distributed import finish_distributed
from satgate_monai.bundle.engine import Case, CaseEngine, WorkingGridd, read_case
from satgate_monai.bundle.evaluation import CaseMetricsWriter, format_table1, summarise
from satgate_monai.bundle.handlers import AttentionImageHandler, GateStatsHandler, TrainProgressBar
from satgate_monai.bundle.image_folder import inference_datalist
from satgate_monai.bundle.metrics import case_metrics, confusion_counts
from satgate_monai.bundle.postprocess import PostprocessingSelector, read_choice
from satgate_monai.bundle.provenance import write_bundle_run
from satgate_monai.bundle.resume import ResumeHandler, unwrap
from satgate_monai.bundle.transforms import ValidateImaged, ValidatingReader, declared_labels

__all__ = [
    "AttentionImageHandler",
    "Case",
    "CaseEngine",
    "WorkingGridd",
    "read_case",
    "DEEP_SUPERVISION_OVERRIDES",
    "first_output",
    "finish_distributed",
    "CaseMetricsWriter",
    "DatasetNotFoundError",
    "GateStatsHandler",
    "PostprocessingSelector",
    "ResumeHandler",
    "TrainProgressBar",
    "ValidateImaged",
    "ValidatingReader",
    "case_metrics",
    "confusion_counts",
    "declared_labels",
    "format_table1",
    "inference_datalist",
    "load_datalist",
    "read_choice",
    "require_data",
    "require_file",
    "summarise",
    "unwrap",
    "write_bundle_run",
    "write_crossval",
]
