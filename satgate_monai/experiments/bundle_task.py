"""One grid cell through the task's MONAI bundle: train (``configs/train.json``), evaluate on the test split
(``configs/train.json`` + ``configs/evaluate.json``), then inspect the trained network on the test cases.

The bundle configs run in-process through :class:`monai.bundle.ConfigWorkflow` with the overrides that make a cell:
``network_def`` (network and ``skip_gate``), ``seed``, ``epochs``, ``device``, ``dataset_dir`` and
``bundle_root``/``ckpt_dir``/``output_dir`` inside the cell's folder. The bundle's own recipe (transforms, loss,
optimizer, split, validation, best-checkpoint selection, resume) is used as it is; an interrupted training resumes
from the bundle's ``last.pt``.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from data_prep.atomic import atomic_path
from satgate_monai.bundle.deep_supervision import DEEP_SUPERVISION_OVERRIDES, returns_deep_supervision
from satgate_monai.experiments.attention import (
    collect_attention_maps,
    gate_inputs,
    outside_mass,
    padded_input,
    resize_map,
    uniform_outside_share,
)
from satgate_monai.experiments.grid import Cell
from satgate_monai.experiments.io import atomic_write_json, read_json

__all__ = ["BundleTask", "CurveRecorder", "describe_network", "read_case_csv"]

logger = logging.getLogger(__name__)

EVAL_CSV = "metrics.csv"


def _float_or_none(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def read_case_csv(path: Path) -> list[dict]:
    """The bundle evaluation's per-case CSV (``case, dice, fpr, fnr, ...``) as ``[{"case", "dice", "fpr", "fnr"}]``.

    Raises:
        ValueError: the file is missing, empty, or lacks a required column.
    """
    if not path.is_file():
        raise ValueError(f"the bundle evaluation wrote no per-case CSV at {path}.")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} lists no case.")
    missing = {"case", "dice", "fpr", "fnr"} - set(rows[0])
    if missing:
        raise ValueError(f"{path} lacks the columns {sorted(missing)} (has {sorted(rows[0])}).")
    return [{"case": r["case"], **{m: _float_or_none(r[m]) for m in ("dice", "fpr", "fnr")}} for r in rows]


def describe_network(net: nn.Module) -> dict:
    """Parameters, skip channels in/out (shallow -> deep) and selection statistics of a network.

    Per skip with selection weights: ``selected`` (channels with ``trelu(w) > 0``) and the shares ``switched_off``
    (``w <= 0``), ``between`` (``0 < w < 1``) and ``frozen`` (``w >= 1``); pooled over the skips:
    ``switched_off_fraction`` and ``selection`` (``{"off", "between", "frozen", "n"}``, ``None`` without selection).
    """
    from monai.networks.nets.attentionunet import AttentionBlock

    from satgate_monai.networks.blocks.skip_gates import selection_shares
    from satgate_monai.networks.inspection import selection_state, switched_off_fraction

    skips = []
    gates = getattr(net, "gates", None)
    if gates is not None:
        for gate in gates:
            entry = {"in_channels": int(gate.in_channels), "out_channels": int(gate.out_channels),
                     "selected": None, "switched_off": None, "between": None, "frozen": None}
            if getattr(gate, "has_selection", False):
                shares = selection_shares(gate.selection.weight)
                entry.update(selected=int((gate.selection_weights > 0).sum()), switched_off=shares["off"],
                             between=shares["between"], frozen=shares["frozen"])
            skips.append(entry)
    else:  # MONAI AttentionUnet: attention blocks, outermost (shallowest) first; they pass C gated channels
        for module in net.modules():
            if isinstance(module, AttentionBlock):
                conv = next(m for m in module.W_x.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)))
                skips.append({"in_channels": int(conv.in_channels), "out_channels": int(conv.in_channels),
                              "selected": None, "switched_off": None, "between": None, "frozen": None})
    off = switched_off_fraction(net)
    return {
        "params": int(sum(p.numel() for p in net.parameters())),
        "skips": skips,
        "switched_off_fraction": None if math.isnan(off) else off,
        "selection": selection_state(net).get("all"),
    }


class CurveRecorder:
    """Records the mean training loss and the validation metrics of every epoch into ``path`` (JSON, atomic).

    On a resumed training, epochs after the resumed one are dropped first, so the curve never has duplicates.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.points: list[dict] = read_json(self.path) if self.path.is_file() else []
        self._losses: list[float] = []
        self._val: dict[str, float] = {}

    def attach(self, trainer: Any, evaluator: Any | None) -> None:
        from ignite.engine import Events

        trainer.add_event_handler(Events.STARTED, self._started)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._epoch)
        if evaluator is not None:
            evaluator.add_event_handler(Events.COMPLETED, self._validated)

    def _started(self, engine: Any) -> None:
        start = int(engine.state.epoch or 0)
        self.points = [p for p in self.points if p["epoch"] <= start]

    def _iteration(self, engine: Any) -> None:
        out = engine.state.output
        item = out[0] if isinstance(out, (list, tuple)) and out else out
        loss = item.get("loss") if isinstance(item, dict) else None
        if loss is not None:
            self._losses.append(float(loss.item() if isinstance(loss, torch.Tensor) else loss))

    def _validated(self, engine: Any) -> None:
        self._val = {k: _float_or_none(v) for k, v in engine.state.metrics.items()
                     if isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)}

    def _epoch(self, engine: Any) -> None:
        point = {"epoch": int(engine.state.epoch),
                 "loss": float(np.mean(self._losses)) if self._losses else None,
                 "val_dice": self._val.get("val_mean_dice"),
                 "val": self._val}
        self.points.append(point)
        self._losses, self._val = [], {}
        atomic_write_json(self.path, self.points)


class BundleTask:
    """Runs cells through one task bundle.

    Args:
        bundle_dir: the bundle folder (``configs/train.json``, ``configs/evaluate.json``).
        data_dir: a ``data_prep`` output folder (its ``datalist.json``).
        device: torch device string, e.g. ``"cpu"`` or ``"cuda:0"``.
        epochs: training epochs (``None``: the bundle's default).
        overrides: extra bundle overrides applied to every cell (e.g. ``{"batch_size": 16}``).
        dilation: margin (pixels/voxels) of the attention-outside measure.
        figure_cases: how many test cases to keep images/maps of, for the figures.
        quiet_level: if set, every logger outside this package is raised to at least this level once a bundle
            workflow is built (the bundles log each epoch at INFO; the grid's progress bar stays readable).
        use_folds: replicate ``i`` trains on cross-validation fold ``i`` (``--fold i``, seed ``i``) of a datalist
            written with ``--folds`` instead of repeating one split with another seed.
        keep_epochs: epochs whose weights are kept and evaluated on the test split during training
            (:mod:`~satgate_monai.experiments.checkpoints`); not part of the cells' fingerprint, since keeping does
            not change the training.
    """

    def __init__(self, bundle_dir: str | Path, data_dir: str | Path, device: str = "cpu", epochs: int | None = None,
                 overrides: dict[str, Any] | None = None, dilation: float = 5.0, figure_cases: int = 2,
                 quiet_level: int | None = None, use_folds: bool = False,
                 keep_epochs: Sequence[int] = ()) -> None:
        self.quiet_level = quiet_level
        self.keep_epochs = sorted({int(e) for e in keep_epochs})
        self.use_folds = bool(use_folds)
        self.bundle_dir = Path(bundle_dir).resolve()
        self.data_dir = Path(data_dir).resolve()
        self.device = str(device)
        self.epochs = epochs
        self.overrides = dict(overrides or {})
        self.dilation = float(dilation)
        self.figure_cases = int(figure_cases)
        configs = self.bundle_dir / "configs"
        self.train_config = configs / "train.json"
        self.eval_config = configs / "evaluate.json"
        for f in (self.train_config, self.eval_config):
            if not f.is_file():
                raise ValueError(f"bundle {self.bundle_dir} has no {f.relative_to(self.bundle_dir)}.")
        if not (self.data_dir / "datalist.json").is_file():
            raise ValueError(
                f"{self.data_dir} has no datalist.json: pass a data_prep output folder as --data (e.g. "
                "python -m data_prep demo --task TASK --out RAW && python -m data_prep import ... --out DATA)."
            )
        meta = configs / "metadata.json"
        self.meta_file = str(meta) if meta.is_file() else None

    # ------------------------------------------------------------------ configuration
    def _parser(self, config_files: Sequence[Path], overrides: dict[str, Any]):
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config([str(f) for f in config_files])
        parser.update(overrides)
        return parser

    def common_overrides(self) -> dict[str, Any]:
        """Overrides shared by every cell: data, device, epochs and the user's extra overrides."""
        out: dict[str, Any] = {"dataset_dir": str(self.data_dir),
                               "device": f"$torch.device({self.device!r})"}
        if self.epochs is not None:
            out["epochs"] = int(self.epochs)
        out.update(self.overrides)
        return out

    def bundle_network_def(self) -> dict[str, Any]:
        """The bundle's ``network_def`` with every reference/expression resolved to plain values."""
        parser = self._parser([self.train_config], self.common_overrides())
        raw = parser["network_def"]
        if not isinstance(raw, dict) or "_target_" not in raw:
            raise ValueError(f"{self.train_config}: network_def must be a dict with a _target_, got {raw!r}.")
        return {k: (raw[k] if k == "_target_" else parser.get_parsed_content(f"network_def#{k}")) for k in raw}

    def settings(self) -> dict[str, Any]:
        """Everything besides the cell that decides its result (for the cache fingerprint): the bundle configs'
        content, the data list, epochs, overrides and the attention margin."""
        import hashlib

        digest = hashlib.sha256()
        for f in (self.train_config, self.eval_config, self.data_dir / "datalist.json"):
            digest.update(f.read_bytes())
        return {"bundle": str(self.bundle_dir), "data": str(self.data_dir), "epochs": self.epochs,
                "overrides": self.overrides, "dilation": self.dilation, "configs_sha256": digest.hexdigest()[:16],
                **({"folds": True} if self.use_folds else {})}

    def cell_overrides(self, cell: Cell, cell_dir: Path) -> dict[str, Any]:
        out = self.common_overrides()
        out.update({
            "bundle_root": str(cell_dir),
            "ckpt_dir": str(cell_dir / "models"),
            "output_dir": str(cell_dir / "train"),
            "network_def": dict(cell.network_def),
            "seed": int(cell.seed),
        })
        if returns_deep_supervision(cell.network_def):  # e.g. SATDI2IN: its side outputs train through the loss
            out.update(DEEP_SUPERVISION_OVERRIDES)
        if self.use_folds:
            out["fold"] = int(cell.seed)
        return out

    def _workflow(self, config_files: Sequence[Path], overrides: dict[str, Any], workflow_type: str | None):
        from monai.bundle import ConfigWorkflow

        wf = ConfigWorkflow(config_file=[str(f) for f in config_files], meta_file=self.meta_file,
                            logging_file=False, workflow_type=workflow_type, **overrides)
        self._quiet()
        return wf

    def _quiet(self) -> None:
        if self.quiet_level is None:
            return
        for name, lg in list(logging.Logger.manager.loggerDict.items()):
            if isinstance(lg, logging.Logger) and not name.startswith("satgate_monai.experiments"):
                lg.setLevel(max(lg.level, self.quiet_level))

    # ------------------------------------------------------------------ stages
    def train(self, cell: Cell, cell_dir: Path) -> dict[str, Any]:
        """Train one cell (resuming an interrupted one); returns ``{"curve", "train_seconds"}``."""
        from monai.utils import set_determinism

        set_determinism(seed=cell.seed)
        start = time.perf_counter()
        wf = self._workflow([self.train_config], self.cell_overrides(cell, cell_dir), "train")
        wf.initialize()
        recorder = CurveRecorder(cell_dir / "curve.json")
        trainer = wf.parser.get_parsed_content("train#trainer")
        recorder.attach(trainer, wf.parser.get_parsed_content("validate#evaluator"))
        if self.keep_epochs:
            from satgate_monai.experiments.checkpoints import KeptCheckpoints

            KeptCheckpoints(cell_dir, self.keep_epochs, wf.parser.get_parsed_content("network"),
                            lambda ckpt, out: self._evaluate_cases(cell, cell_dir, out, ckpt)[1]).attach(trainer)
        self._quiet()  # after the handlers exist: MONAI's get_logger sets their loggers to INFO
        wf.run()
        wf.finalize()
        if not (cell_dir / "models" / "model.pt").is_file():
            raise RuntimeError(f"training of {cell.key} wrote no best checkpoint {cell_dir / 'models' / 'model.pt'}.")
        return {"curve": recorder.points, "train_seconds": time.perf_counter() - start}

    def evaluate(self, cell: Cell, cell_dir: Path, keep_figure_data: bool) -> dict[str, Any]:
        """Evaluate the best checkpoint on the test split (the bundle's evaluate config), then inspect the network.

        Returns:
            ``{"cases": [...], "eval_seconds", **describe_network(net), "figure_data": file name or None}``.
        """
        start = time.perf_counter()
        wf, cases = self._evaluate_cases(cell, cell_dir, cell_dir / "eval")
        net = wf.parser.get_parsed_content("network")
        net.eval()
        info = describe_network(net)
        dataset = wf.parser.get_parsed_content("validate#dataset")
        from satgate_monai.networks.factories import gate_names

        extra, figure = self.inspect(net, dataset, want_figures=keep_figure_data,
                                     want_features=cell.gate in gate_names(has_selection=True, produces_attention=True))
        missing = [c["case"] for c in cases if c["case"] not in extra]
        if missing:
            logger.warning("%s: no attention inspection for test case(s) %s (names differ from the evaluation CSV)",
                           cell.key, missing)
        for case in cases:
            case.update(extra.get(case["case"], {}))
        info["figure_data"] = None
        if figure is not None:
            with atomic_path(cell_dir / "figure_data.npz") as tmp, open(tmp, "wb") as f:
                np.savez_compressed(f, **figure)
            info["figure_data"] = "figure_data.npz"
        info.update(cases=cases, eval_seconds=time.perf_counter() - start)
        return info

    def _evaluate_cases(self, cell: Cell, cell_dir: Path, output_dir: Path,
                        ckpt_path: Path | None = None) -> tuple[Any, list[dict]]:
        """Run the bundle's evaluate config on the test split with the cell's best checkpoint (or ``ckpt_path``),
        writing into ``output_dir``; returns the workflow and the per-case metrics."""
        from monai.utils import set_determinism

        set_determinism(seed=cell.seed)
        overrides = self.cell_overrides(cell, cell_dir)
        overrides["output_dir"] = str(output_dir)
        if ckpt_path is not None:
            overrides["ckpt_path"] = str(ckpt_path)
        wf = self._workflow([self.train_config, self.eval_config], overrides, None)
        wf.initialize()
        wf.parser.get_parsed_content("validate#evaluator")  # instantiated (and cached) now, so it can be quietened
        self._quiet()
        wf.run()
        wf.finalize()
        split = str(self.overrides.get("eval_split", "test"))
        return wf, read_case_csv(Path(output_dir) / (f"{split}_{EVAL_CSV}" if self.use_folds else EVAL_CSV))

    # ------------------------------------------------------------------ inspection
    @torch.no_grad()
    def inspect(self, net: nn.Module, dataset: Any, want_figures: bool,
                want_features: bool) -> tuple[dict[str, dict], dict | None]:
        """Attention-outside shares per test case and, optionally, the figure data of the first cases.

        Every test case runs through the network whole (padded at the end to the network's size divisor), so
        the maps cover the full image/volume.
        """
        from satgate_monai.bundle.evaluation import case_name

        names = [case_name(d["image"]) for d in dataset.data]
        chosen_order = sorted(range(len(names)), key=lambda i: names[i])
        device = torch.device(self.device)
        divisor = int(getattr(net, "size_divisor", 0) or 32)
        per_case: dict[str, dict] = {}
        figure: dict[str, list] = {"cases": [], "images": [], "labels": [], "attn": []}
        features = None
        for i in chosen_order:
            item = dataset[i]
            item = item[0] if isinstance(item, list) else item
            image, label = torch.as_tensor(item["image"]), torch.as_tensor(item["label"])
            lab = label[0].cpu().numpy() > 0
            x, size, padded = padded_input(image, divisor)
            x = x.to(device)
            maps = collect_attention_maps(net, x)
            crop = (slice(None), slice(None)) + tuple(slice(0, s) for s in size)
            full = [resize_map(m, tuple(padded))[crop][0, 0].numpy() for m in maps.values()]
            record: dict[str, Any] = {"uniform_outside": uniform_outside_share(lab, self.dilation)}
            if full:
                shares = [outside_mass(m, lab, self.dilation) for m in full]
                record["attention_outside"] = float(np.nanmean(shares)) if not all(map(math.isnan, shares)) else None
                record["attention_outside_finest"] = shares[0]
            per_case[names[i]] = record
            if want_figures and lab.any() and len(figure["cases"]) < self.figure_cases:
                z = self._display_slice(lab)
                figure["cases"].append(names[i])
                figure["images"].append(self._display_image(image.cpu().numpy(), z))
                figure["labels"].append(self._plane(lab, z).astype(np.uint8))
                if full:
                    figure["attn"].append(self._plane(full[0], z).astype(np.float16))
                if want_features and features is None:
                    feats = gate_inputs(net, x)
                    features = self._features(net, feats, size, z)
        if not want_figures or not figure["cases"]:
            return per_case, None
        out = {"cases": np.array(figure["cases"]), "images": np.stack(figure["images"]),
               "labels": np.stack(figure["labels"])}
        if figure["attn"]:
            out["attn"] = np.stack(figure["attn"])
        if features is not None:
            out.update(features)
        return per_case, out

    @staticmethod
    def _display_slice(label: np.ndarray) -> int | None:
        """For 3D, the middle slice (last axis) of the ground truth's extent; ``None`` for 2D."""
        if label.ndim == 2:
            return None
        z = np.nonzero(label.any(axis=(0, 1)))[0]
        return int((z[0] + z[-1]) // 2) if z.size else label.shape[-1] // 2

    @staticmethod
    def _plane(x: np.ndarray, z: int | None) -> np.ndarray:
        """A displayable plane: the slice ``z`` of the last axis (3D), or the 2D image transposed back to the file's
        row/column order (MONAI's PIL reader loads PNGs as ``(W, H)``)."""
        return np.swapaxes(x, -1, -2) if z is None else x[..., z]

    def _display_image(self, image: np.ndarray, z: int | None) -> np.ndarray:
        """``(C, *S)`` -> ``(C, H, W)`` float16 in [0, 1] (1-99 percentile window)."""
        plane = self._plane(image, z).astype(np.float32)
        lo, hi = np.percentile(plane, [1, 99])
        return np.clip((plane - lo) / (hi - lo if hi > lo else 1.0), 0, 1).astype(np.float16)

    def _features(self, net: nn.Module, feats: dict[str, torch.Tensor], size: tuple[int, ...],
                  z: int | None) -> dict[str, np.ndarray] | None:
        """The finest sat gate's input features ``(C, H, W)`` and every gate's weights (finest first)."""
        if not feats:
            return None
        modules = dict(net.named_modules())
        out: dict[str, np.ndarray] = {}
        for g, name in enumerate(feats):
            out[f"weights_{g}"] = modules[name].selection_weights.cpu().numpy().astype(np.float32)
        finest = next(iter(feats.values()))[0]
        crop = (slice(None),) + tuple(slice(0, s) for s in size)
        out["feat"] = self._plane(finest[crop].numpy(), z).astype(np.float16)
        out["n_gates"] = np.array(len(feats))
        return out


RunCell = Callable[[Cell, Path, bool], dict]
