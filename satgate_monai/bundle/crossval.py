"""Cross-validated metrics: per-fold and pooled summaries of the folds' evaluations.

With a k-fold datalist (``python -m data_prep import|prepare ... --folds k``) every fold is trained with
``--fold f`` (checkpoints in ``models/fold<f>/``) and evaluated with ``--fold f --eval_split validation``, which
writes ``eval/fold<f>/validation_metrics.csv``. After each fold's evaluation, :func:`write_crossval` gathers every
fold present so far and writes, atomically:

* ``eval/crossval_<split>.md``: one Table 1 row per fold and a ``pooled`` row over all cases of all folds (the
  cross-validated estimate nnU-Net reports: each case is scored by the model that did not train on it);
* ``eval/crossval_<split>.json``: ``{"split", "folds": [f, ...], "per_fold": {f: summary}, "pooled": summary,
  "mean_of_folds": {"dice": {"mean", "std", "n"}, ...}}`` (``mean_of_folds``: mean and population std over the
  folds' mean values);
* on the validation split, ``eval/postprocessing.json``: the post-processing choice from the pooled per-case Dice
  of every fold's ``validation_postprocessing.json`` (:mod:`~satgate_monai.bundle.postprocess`).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path
from typing import Any

from data_prep.atomic import atomic_write_text
from satgate_monai.bundle.evaluation import TABLE_METRICS, format_table1, summarise
from satgate_monai.bundle.metrics import mean_std
from satgate_monai.bundle.postprocess import choose, write_choice

__all__ = ["fold_metrics", "write_crossval"]

logger = logging.getLogger(__name__)

_FOLD_DIR = re.compile(r"^fold(\d+)$")


def fold_metrics(eval_root: str | Path, split: str = "validation") -> dict[int, list[dict[str, Any]]]:
    """``{fold: rows of eval_root/fold<f>/<split>_metrics.csv}`` for every fold evaluated on ``split``."""
    root = Path(str(eval_root))
    out: dict[int, list[dict[str, Any]]] = {}
    for d in sorted(root.glob("fold*")):
        m = _FOLD_DIR.match(d.name)
        f = d / f"{split}_metrics.csv"
        if m and f.is_file():
            with open(f, newline="", encoding="utf-8") as fh:
                out[int(m.group(1))] = list(csv.DictReader(fh))
    return dict(sorted(out.items()))


def write_crossval(eval_root: str | Path, split: str = "validation") -> dict[str, Any]:
    """Summarise every fold's ``<split>`` evaluation under ``eval_root``; write the files above and return the dict.

    Returns ``{}`` (with a warning) when no ``fold<f>/<split>_metrics.csv`` is there (e.g. ``output_dir`` was moved
    out of ``eval_root`` by an override).
    """
    root = Path(str(eval_root))
    folds = fold_metrics(root, split)
    if not folds:
        logger.warning("no fold<f>/%s_metrics.csv under %s: no cross-validation summary written", split, root)
        return {}
    per_fold = {f: summarise(rows, method=f"fold {f}") for f, rows in folds.items()}
    pooled = summarise([r for rows in folds.values() for r in rows], method=f"pooled ({len(folds)} folds)")
    mean_of_folds = {}
    for m in TABLE_METRICS:
        mean, std, n = mean_std([s[m]["mean"] for s in per_fold.values()])
        mean_of_folds[m] = {"mean": mean, "std": std, "n": n}
    doc = {"split": split, "folds": list(folds), "per_fold": {str(f): s for f, s in per_fold.items()},
           "pooled": pooled, "mean_of_folds": mean_of_folds}
    table = format_table1([*per_fold.values(), pooled])
    atomic_write_text(root / f"crossval_{split}.md", table)
    atomic_write_text(root / f"crossval_{split}.json", json.dumps(doc, indent=2) + "\n")
    logger.info("cross-validation over folds %s (%s) written to %s\n%s", list(folds), split, root, table)
    if split == "validation":
        per_case = []
        for f in folds:
            pp = root / f"fold{f}" / f"{split}_postprocessing.json"
            if pp.is_file():
                per_case += json.loads(pp.read_text(encoding="utf-8")).get("per_case", [])
        if per_case:
            doc["postprocessing"] = choose(per_case)
            write_choice(root / "postprocessing.json", doc["postprocessing"],
                         source=f"pooled validation cases of folds {list(folds)}")
    return doc
