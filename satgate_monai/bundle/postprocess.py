"""Learned post-processing: keep the largest connected component and fill holes, per label, when validation says so.

nnU-Net's habit: after cross-validation, each label-level post-processing step is kept only if it raises the mean
validation Dice. Here the two steps are MONAI's own transforms, declared in every bundle's ``inference.json`` after
the argmax::

    {"_target_": "KeepLargestConnectedComponentd", "keys": "pred", "is_onehot": false,
     "applied_labels": "$@postprocessing_choice['keep_largest_component']",
     "_disabled_": "$not @postprocessing_choice['keep_largest_component']"},
    {"_target_": "FillHolesd", "keys": "pred", "applied_labels": "$@postprocessing_choice['fill_holes']",
     "_disabled_": "$not @postprocessing_choice['fill_holes']"}

with ``postprocessing_choice`` read by :func:`read_choice` from ``<bundle_root>/eval/postprocessing.json``. So
``monai.bundle run`` (after ``Invertd``, on the source grid), the inference CLI (network space, or the source grid
with ``--save-probabilities``) and MONAI Label (the bundle's postprocessing) apply the same transforms. No file
(never evaluated on validation data): both are disabled.

The choice comes from ``configs/evaluate.json``: :class:`PostprocessingSelector` scores every case's label map as it
is, with each step and with both (:data:`VARIANTS`) per label and writes ``<output_dir>/<split>_postprocessing.json``.
On the validation split (``--eval_split validation``) it also writes the choice file; with folds, the cross-validation
summary (:mod:`~satgate_monai.bundle.crossval`) pools the folds' cases and writes it. The choice per label is the
variant with the highest mean Dice; a tie keeps the simpler one (none, then one step, then both).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data_prep.atomic import atomic_write_text
from satgate_monai.bundle.evaluation import case_name
from satgate_monai.bundle.metrics import case_metrics

__all__ = ["OPTIONS", "VARIANTS", "PostprocessingSelector", "apply_variant", "choose", "read_choice", "write_choice"]

logger = logging.getLogger(__name__)

OPTIONS = ("keep_largest_component", "fill_holes")
VARIANTS: dict[str, tuple[str, ...]] = {"none": (), "keep_largest_component": ("keep_largest_component",),
                                        "fill_holes": ("fill_holes",), "both": OPTIONS}


def apply_variant(label: np.ndarray | torch.Tensor, value: int, variant: str) -> np.ndarray:
    """The label map ``(*S)`` after the variant's steps for label ``value`` (MONAI's transforms, as in the bundle).

    Raises:
        ValueError: an unknown variant.
    """
    from monai.transforms import FillHoles, KeepLargestConnectedComponent

    if variant not in VARIANTS:
        raise ValueError(f"unknown post-processing variant {variant!r}: choose from {list(VARIANTS)}")
    x = torch.as_tensor(np.asarray(label))[None]
    for step in VARIANTS[variant]:
        if step == "keep_largest_component":
            x = KeepLargestConnectedComponent(applied_labels=[value], is_onehot=False)(x)
        else:
            x = FillHoles(applied_labels=[value])(x)
    return torch.as_tensor(x)[0].cpu().numpy()


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(case_metrics(pred, truth)["dice"])


def choose(per_case: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean Dice per label and variant over ``per_case`` rows ``{"case", "label", <variant>: dice}``, and the choice.

    Returns:
        ``{"mean_dice": {label: {variant: mean}}, "chosen_variant": {label: variant},
        "keep_largest_component": [labels], "fill_holes": [labels], "n_cases": n}``.
    """
    labels = sorted({int(r["label"]) for r in per_case})
    mean: dict[str, dict[str, float]] = {}
    variant_of: dict[str, str] = {}
    chosen: dict[str, list[int]] = {o: [] for o in OPTIONS}
    for lab in labels:
        rows = [r for r in per_case if int(r["label"]) == lab]
        mean[str(lab)] = {v: float(np.mean([float(r[v]) for r in rows])) for v in VARIANTS}
        best = max(VARIANTS, key=lambda v: (round(mean[str(lab)][v], 12), -len(VARIANTS[v])))
        variant_of[str(lab)] = best
        for step in VARIANTS[best]:
            chosen[step].append(lab)
    n = len({r["case"] for r in per_case})
    return {"mean_dice": mean, "chosen_variant": variant_of, **chosen, "n_cases": n}


def write_choice(path: str | Path, summary: Mapping[str, Any], source: str) -> Path:
    """Write the choice file read by the inference configs (atomically)."""
    doc = {o: list(summary[o]) for o in OPTIONS}
    doc.update({"mean_dice": summary["mean_dice"], "chosen_variant": summary["chosen_variant"],
                "n_cases": summary["n_cases"], "source": source})
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    logger.info("post-processing choice written to %s: %s", path, doc["chosen_variant"])
    return Path(str(path))


def read_choice(path: str | Path) -> dict[str, list[int]]:
    """``{"keep_largest_component": [labels], "fill_holes": [labels]}`` from a choice file; both empty when the file
    does not exist.

    Raises:
        ValueError: a file that is not JSON or lists something other than label integers.
    """
    p = Path(str(path))
    if not p.is_file():
        logger.info("no post-processing choice at %s: keep-largest-component and fill-holes are off", p)
        return {o: [] for o in OPTIONS}
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON: {e}") from None
    out = {}
    for o in OPTIONS:
        v = doc.get(o, [])
        if not isinstance(v, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in v):
            raise ValueError(f"{p}: {o} must be a list of label values > 0, got {v!r}")
        out[o] = v
    return out


def _label_map(x: torch.Tensor) -> np.ndarray:
    t = torch.as_tensor(x).detach().cpu()
    if t.shape[0] > 1:
        return t.argmax(0).numpy()
    return (t[0] > 0.5).numpy().astype(np.int64) if t.is_floating_point() else t[0].numpy()


class PostprocessingSelector:
    """Evaluator handler: Dice per case, label and post-processing variant; the report and (optionally) the choice.

    Args:
        output_dir: where ``<split>_postprocessing.json`` is written.
        split: the evaluated split (names the report).
        labels: label values to score (default: every value > 0 seen in the ground truth or prediction).
        choice_file: where to write the choice (``None``: report only, e.g. when evaluating the test split).
        pred_key, label_key: output keys (one-hot or label maps, channel first).
    """

    def __init__(self, output_dir: str | Path, split: str = "validation", labels: Sequence[int] | None = None,
                 choice_file: str | Path | None = None, pred_key: str = "pred", label_key: str = "label") -> None:
        self.output_dir = Path(str(output_dir))
        self.split = str(split)
        self.labels = [int(v) for v in labels] if labels is not None else None
        self.choice_file = Path(str(choice_file)) if choice_file else None
        self.pred_key, self.label_key = pred_key, label_key
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, lambda _e: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def add_case(self, pred: torch.Tensor, label: torch.Tensor, name: str | None = None) -> list[dict[str, Any]]:
        """Score one case (channel-first ``pred``/``label``); returns its rows (one per label)."""
        p, g = _label_map(pred), _label_map(label)
        if name is None:
            meta = getattr(pred, "meta", None) or getattr(label, "meta", None) or {}
            src = meta.get("filename_or_obj")
            name = case_name(src) if src else f"case{len({r['case'] for r in self.rows}):04d}"
        values = self.labels or sorted(int(v) for v in set(np.unique(g)) | set(np.unique(p)) if v > 0)
        rows = []
        for v in values:
            row: dict[str, Any] = {"case": name, "label": v}
            for variant in VARIANTS:
                row[variant] = _dice(apply_variant(p, v, variant) == v, g == v)
            rows.append(row)
        self.rows.extend(rows)
        return rows

    def collect(self, engine: Any) -> None:
        outputs = engine.state.output
        for item in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            self.add_case(item[self.pred_key], item[self.label_key])

    def write(self, _engine: Any = None) -> dict[str, Any]:
        """Write ``<split>_postprocessing.json`` (and the choice file when set); return the summary."""
        summary = choose(self.rows) if self.rows else {"mean_dice": {}, "chosen_variant": {},
                                                       **{o: [] for o in OPTIONS}, "n_cases": 0}
        doc = {"split": self.split, **summary, "per_case": self.rows}
        atomic_write_text(self.output_dir / f"{self.split}_postprocessing.json", json.dumps(doc, indent=2) + "\n")
        lines = [f"  label {lab}: " + ", ".join(f"{v} {d:.4f}" for v, d in m.items())
                 for lab, m in summary["mean_dice"].items()]
        logger.info("post-processing on %s (%d cases), mean Dice per variant:\n%s\nchosen: %s", self.split,
                    summary["n_cases"], "\n".join(lines), summary["chosen_variant"])
        if self.choice_file is not None and self.rows:
            write_choice(self.choice_file, summary, source=f"{self.split} split, {self.output_dir}")
        return summary
