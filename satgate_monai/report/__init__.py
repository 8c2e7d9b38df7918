"""Reports about the networks: ``python -m satgate_monai.report params`` (parameters and FLOPs per gate, and the paper's
Table 3 beside them: :mod:`~.paper` holds the paper's figures, :mod:`~.compare` the comparison)."""

from __future__ import annotations

from satgate_monai.report.params import CONFIGS, ReportConfig, count_row, parameter_table, predicted_saving

__all__ = ["CONFIGS", "ReportConfig", "count_row", "parameter_table", "predicted_saving"]
