"""Per-case evaluation CSV and a mean ± std summary in the format of the paper's Table 1.

:class:`CaseMetricsWriter` is attached to the evaluator of ``configs/evaluate.json``. For every case it computes
Dice, FPR, FNR and the predicted/true foreground volumes (mL in 3D, pixels in 2D) on the case's original grid (the
config inverts the preprocessing first), and at the end writes, atomically:

* ``metrics.csv``: ``case, dice, fpr, fnr, pred_volume, label_volume, volume_unit, tp, fp, tn, fn``;
* ``summary.md``: ``| Method | Dice | FPR | FNR | Cases |`` with ``mean ± std`` cells (the paper's Table 1);
* ``summary.json``: the same numbers for scripts (``{"method", "network", "skip_gate", "n_cases", "dice": {"mean",
  "std", "n"}, "fpr": ..., "fnr": ...}``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from data_prep.atomic import atomic_write_text
from satgate_monai.bundle.metrics import case_metrics, mean_std, voxel_volume
from satgate_monai.bundle.resume import unwrap

__all__ = ["CaseMetricsWriter", "case_name", "format_table1", "summarise"]

logger = logging.getLogger(__name__)

CSV_COLUMNS = ["case", "dice", "fpr", "fnr", "pred_volume", "label_volume", "volume_unit", "tp", "fp", "tn", "fn"]
TABLE_METRICS = ("dice", "fpr", "fnr")


def case_name(path: str | Path) -> str:
    """A case name from an image path: file name without ``.nii.gz``/``.nii``/``.png``/... extensions."""
    name = Path(str(path)).name
    return re.sub(r"(\.nii\.gz|\.nii|\.nrrd|\.mha|\.mhd|\.png|\.jpe?g|\.tiff?)$", "", name, flags=re.IGNORECASE)


def _foreground(x: torch.Tensor) -> torch.Tensor:
    """``(C, *S)`` one-hot/probabilities or ``(1, *S)`` labels -> boolean foreground ``(*S)``."""
    x = torch.as_tensor(x).detach().cpu()
    if x.shape[0] > 1:
        return x.argmax(0) > 0
    return x[0] > 0.5 if x.is_floating_point() else x[0] > 0


def summarise(rows: Sequence[dict[str, Any]], method: str = "", network: str = "", skip_gate: str = "") -> dict:
    """Mean, sample std (``ddof=1``, nan for one case) and count of Dice, FPR and FNR over ``rows`` (nan values are
    left out)."""
    out: dict[str, Any] = {"method": method, "network": network, "skip_gate": skip_gate, "n_cases": len(rows)}
    for m in TABLE_METRICS:
        mean, std, n = mean_std([float(r[m]) for r in rows])
        out[m] = {"mean": mean, "std": std, "n": n}
    return out


def _cell(stats: dict[str, float], digits: int) -> str:
    if stats["n"] == 0 or math.isnan(stats["mean"]):
        return "n/a"
    if math.isnan(stats["std"]):  # one case: the sample std is undefined
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def format_table1(summaries: Sequence[dict], digits: int = 3) -> str:
    """Markdown table in the paper's Table 1 format: one row per method, ``mean ± std`` of Dice, FPR and FNR."""
    lines = ["| Method | Dice | FPR | FNR | Cases |", "|---|---|---|---|---|"]
    for s in summaries:
        fpr_digits = digits + 1 if s["fpr"]["n"] and abs(s["fpr"]["mean"]) < 0.01 else digits
        lines.append(
            f"| {s['method']} | {_cell(s['dice'], digits)} | {_cell(s['fpr'], fpr_digits)} | "
            f"{_cell(s['fnr'], digits)} | {s['n_cases']} |"
        )
    return "\n".join(lines) + "\n"


class CaseMetricsWriter:
    """Collect per-case metrics from an evaluator and write ``metrics.csv``, ``summary.md`` and ``summary.json``.

    Args:
        output_dir: destination folder.
        network: the evaluated network, used to name the method (class and ``skip_gate_name``). Optional.
        method: explicit method name for the summary (overrides the one derived from ``network``).
        pred_key: output key of the prediction (one-hot or probabilities, channel first). Defaults to ``"pred"``.
        label_key: output key of the ground truth. Defaults to ``"label"``.
        prefix: file name prefix, e.g. ``"test_"``. Defaults to ``""``.
    """

    def __init__(
        self,
        output_dir: str | Path,
        network: nn.Module | None = None,
        method: str | None = None,
        pred_key: str = "pred",
        label_key: str = "label",
        prefix: str = "",
    ) -> None:
        self.output_dir = Path(str(output_dir))
        self.network = network
        self.method = method
        self.pred_key = pred_key
        self.label_key = label_key
        self.prefix = prefix
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] | None = None

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def _reset(self, _engine: Any) -> None:
        self.rows = []

    def _names(self) -> tuple[str, str, str]:
        net = unwrap(self.network) if self.network is not None else None
        network = type(net).__name__ if net is not None else ""
        gate = str(getattr(net, "skip_gate_name", "")) if net is not None else ""
        method = self.method or (f"{network} ({gate})" if gate else network)
        return method, network, gate

    def add_case(self, pred: torch.Tensor, label: torch.Tensor, name: str | None = None) -> dict[str, Any]:
        """Add one case: ``pred``/``label`` channel-first tensors (MetaTensors give the affine and file name)."""
        p, g = _foreground(pred), _foreground(label)
        meta = getattr(pred, "meta", None) or getattr(label, "meta", None) or {}
        if name is None:
            src = meta.get("filename_or_obj") or getattr(label, "meta", {}).get("filename_or_obj")
            name = case_name(src) if src else f"case{len(self.rows):04d}"
        dims = p.ndim
        affine = meta.get("affine")
        unit, scale = ("mL", 1e-3) if dims == 3 else ("px", 1.0)
        size = voxel_volume(affine, dims) if dims == 3 else 1.0
        row: dict[str, Any] = {"case": name, **case_metrics(p, g, voxel_size=size, unit_scale=scale)}
        row["volume_unit"] = unit
        self.rows.append(row)
        return row

    def collect(self, engine: Any) -> None:
        outputs = engine.state.output
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for item in outputs:
            self.add_case(item[self.pred_key], item[self.label_key])

    def write(self, _engine: Any = None) -> dict[str, Any]:
        """Write the CSV and the summaries; returns the summary dict."""
        method, network, gate = self._names()
        self.summary = summarise(self.rows, method=method, network=network, skip_gate=gate)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in sorted(self.rows, key=lambda r: r["case"]):
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        atomic_write_text(self.output_dir / f"{self.prefix}metrics.csv", buf.getvalue())
        table = format_table1([self.summary])
        atomic_write_text(self.output_dir / f"{self.prefix}summary.md", table)
        atomic_write_text(self.output_dir / f"{self.prefix}summary.json", json.dumps(self.summary, indent=2) + "\n")
        logger.info("evaluation of %d case(s) written to %s\n%s", len(self.rows), self.output_dir, table)
        return self.summary
