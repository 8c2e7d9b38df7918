"""Ignite handlers the bundles attach: gate sparsity and learning rate to TensorBoard, attention-map images of a
validation case, and a progress bar.

Every handler only writes on rank 0 under ``torch.distributed`` and creates its ``SummaryWriter`` lazily, so the
multi-GPU overlay can keep the same handler lists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from satgate_monai.bundle.resume import _rank, unwrap
from satgate_monai.networks.inspection import attention_maps, selection_state

__all__ = ["GateStatsHandler", "AttentionImageHandler", "TrainProgressBar", "center_crop_on_label"]

logger = logging.getLogger(__name__)


class _WriterMixin:
    log_dir: str
    _writer: Any = None

    def writer(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(log_dir=self.log_dir)
        return self._writer

    def close(self, _engine: Any = None) -> None:
        if self._writer is not None:
            self._writer.flush()


class GateStatsHandler(_WriterMixin):
    """Log the learning rate and where every gate's selection weights lie after each training epoch.

    TensorBoard tags: ``lr`` (first parameter group; ``lr/group<i>`` for the others), and per ``sat``/``st`` gate and
    pooled over them (``all``) the shares of skip channels ``gates/switched_off/<gate>`` (``w <= 0``, the paper
    reports 55-67 %), ``gates/between/<gate>`` (``0 < w < 1``, the channels that select) and ``gates/frozen/<gate>``
    (``w >= 1``, passed whole for good). The pooled shares are also logged (INFO), with a warning-worded note when no
    weight lies between 0 and 1 (the gate then no longer selects). Networks without selecting gates (``org``,
    ``at``) log the learning rate only.

    Args:
        network: the trained network (DDP is unwrapped).
        optimizer: its optimizer.
        log_dir: TensorBoard folder.
    """

    def __init__(self, network: nn.Module, optimizer: torch.optim.Optimizer, log_dir: str | Path) -> None:
        self.network = network
        self.optimizer = optimizer
        self.log_dir = str(log_dir)

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.close)

    def __call__(self, engine: Any) -> None:
        if _rank() != 0:
            return
        step = int(engine.state.epoch)
        w = self.writer()
        for i, group in enumerate(self.optimizer.param_groups):
            w.add_scalar("lr" if i == 0 else f"lr/group{i}", float(group["lr"]), step)
        net = unwrap(self.network)
        state = selection_state(net)
        for name, shares in state.items():
            for key, tag in (("off", "switched_off"), ("between", "between"), ("frozen", "frozen")):
                w.add_scalar(f"gates/{tag}/{name}", shares[key], step)
        pooled = state.get("all")
        if pooled is not None:
            logger.info("epoch %d: skip channels %.1f %% switched off, %.1f %% between 0 and 1, %.1f %% frozen on%s",
                        step, 100 * pooled["off"], 100 * pooled["between"], 100 * pooled["frozen"],
                        "" if pooled["between"] > 0 else " (no selection weight between 0 and 1: the gates no longer "
                        "select)")
        w.flush()


def center_crop_on_label(image: torch.Tensor, label: torch.Tensor | None, roi_size: Sequence[int]) -> torch.Tensor:
    """Crop (and zero-pad) ``image (C, *S)`` to ``roi_size`` around the label's foreground centre (else the centre).

    Returns:
        ``(C, *roi_size)``.
    """
    spatial = image.shape[1:]
    if len(roi_size) != len(spatial):
        raise ValueError(f"roi_size {tuple(roi_size)} does not match the image's spatial shape {tuple(spatial)}")
    if label is not None and bool((label > 0).any()):
        centre = torch.nonzero(label[0] > 0).float().mean(0).round().long().tolist()
    else:
        centre = [s // 2 for s in spatial]
    slices, pads = [], []
    for c, s, r in zip(centre, spatial, roi_size):
        start = min(max(c - r // 2, 0), max(s - r, 0))
        slices.append(slice(start, start + r))
        pads.append(max(r - s, 0))
    out = image[(slice(None), *slices)]
    pad = []
    for p in reversed(pads):
        pad += [p // 2, p - p // 2]
    return F.pad(out, pad) if any(pads) else out


def _to_display(x: torch.Tensor) -> torch.Tensor:
    """Min-max scale to ``[0, 1]`` for ``add_image``."""
    x = x.float()
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)


class AttentionImageHandler(_WriterMixin):
    """After each validation run, log the first validation case and every ``sat``/``at`` gate's attention map.

    The case is cropped to ``roi_size`` around its label (a valid network input size), run through
    :func:`~satgate_monai.networks.inspection.attention_maps`, and each map is resized to the crop. For 3D inputs the
    middle slice of the crop along the last axis is logged. Tags: ``attention/image``, ``attention/label``,
    ``attention/<gate name>``; the step is the trainer's epoch.

    Args:
        network: the network (DDP is unwrapped).
        log_dir: TensorBoard folder.
        roi_size: crop size, a valid network input (e.g. the sliding-window ``roi_size``).
        image_key: batch key of the input. Defaults to ``"image"``.
        label_key: batch key of the label (optional). Defaults to ``"label"``.
    """

    def __init__(
        self,
        network: nn.Module,
        log_dir: str | Path,
        roi_size: Sequence[int],
        image_key: str = "image",
        label_key: str = "label",
    ) -> None:
        self.network = network
        self.log_dir = str(log_dir)
        self.roi_size = [int(r) for r in roi_size]
        self.image_key = image_key
        self.label_key = label_key
        self._logged = False

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _reset(self, _engine: Any) -> None:
        self._logged = False

    def __call__(self, engine: Any) -> None:
        if self._logged or _rank() != 0:
            return
        self._logged = True
        batch = engine.state.batch
        if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], dict):
            first = batch[0]  # MONAI decollates the batch at ITERATION_COMPLETED: items are (C, *S)
        elif isinstance(batch, dict) and self.image_key in batch:
            first = {k: v[0] for k, v in batch.items() if k in (self.image_key, self.label_key)}
        else:
            logger.warning("AttentionImageHandler: no %r in the evaluator's batch, nothing logged", self.image_key)
            return
        if self.image_key not in first:
            logger.warning("AttentionImageHandler: no %r in the evaluator's batch, nothing logged", self.image_key)
            return
        image = torch.as_tensor(first[self.image_key]).float()
        label = first.get(self.label_key)
        label = torch.as_tensor(label) if label is not None else None
        crop = center_crop_on_label(image, label, self.roi_size)
        lab = center_crop_on_label(label.float(), label, self.roi_size) if label is not None else None
        net = unwrap(self.network)
        was_training = net.training
        device = next(net.parameters()).device
        net.eval()
        try:
            maps = attention_maps(net, crop[None].to(device))
        finally:
            net.train(was_training)
        step = int(engine.state.epoch)
        spatial = crop.shape[1:]

        def plane(x: torch.Tensor) -> torch.Tensor:  # (C, *S) -> (C, H, W)
            return x[..., x.shape[-1] // 2] if x.ndim == 4 else x

        w = self.writer()
        img = plane(crop)
        w.add_image("attention/image", _to_display(img if img.shape[0] == 3 else img[:1]), step)
        if lab is not None:
            w.add_image("attention/label", plane(lab)[:1].clamp(0, 1), step)
        for name, amap in maps.items():
            up = F.interpolate(amap.float().cpu(), size=tuple(spatial), mode="nearest")[0]
            w.add_image(f"attention/{name}", plane(up).clamp(0, 1), step)
        w.flush()


class TrainProgressBar:
    """A tqdm progress bar over each epoch's iterations showing the loss (ignite's ``ProgressBar``).

    Args:
        loss_key: key of the loss in the trainer's output. Defaults to ``"loss"``.
        disable: ``None`` hides the bar when stderr is not a terminal (logs stay clean), ``False`` always shows it.
        persist: keep the finished bar of each epoch on screen. Defaults to False.
    """

    def __init__(self, loss_key: str = "loss", disable: bool | None = None, persist: bool = False) -> None:
        self.loss_key = loss_key
        self.disable = disable
        self.persist = persist

    def _loss(self, output: Any) -> dict[str, float]:
        item = output[0] if isinstance(output, (list, tuple)) and output else output
        if isinstance(item, dict) and self.loss_key in item:
            return {self.loss_key: float(item[self.loss_key])}
        return {}

    def attach(self, engine: Any) -> None:
        if _rank() != 0:
            return
        from ignite.handlers import ProgressBar

        ProgressBar(persist=self.persist, disable=self.disable).attach(engine, output_transform=self._loss)
