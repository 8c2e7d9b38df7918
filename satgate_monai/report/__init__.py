"""Reports about the networks: ``python -m satgate_monai.report params`` (the Table-3 comparison)."""

from __future__ import annotations

from satgate_monai.report.params import CONFIGS, ReportConfig, count_row, parameter_table, predicted_saving

__all__ = ["CONFIGS", "ReportConfig", "count_row", "parameter_table", "predicted_saving"]
