"""Run a MONAI bundle's inference on one image through the case engine, with the CLI's network stage.

:class:`BundleRunner` parses ``<bundle>/configs/inference.json`` (or ``.yaml``) with
:class:`monai.bundle.ConfigParser` and builds the bundle layer's
:class:`~satgate_monai.bundle.engine.CaseEngine` from its ``pixdim``, ``axcodes``, ``intensity`` and
``postprocessing``: the case goes onto the deterministic working grid (slab by slab, from the source dtype), and the
network's output returns to the source grid linearly, then argmax, then the bundle's label steps. This is the same
engine ``python -m monai.bundle run``, the MONAI Label app and the Deploy application call, so all give the same mask.
What the CLI adds is its network stage: the config's ``network`` and ``inferer`` run through its ``ensemble_inferer``
(checkpoint ensembles, mirroring), with a precision, an ONNX Runtime backend and attention maps; the inferer's
``overlap`` is set from the CLI (when the inferer has one).

With ``save_attention`` the attention maps come from the same forward passes as the prediction: every window's
network call also returns each ``sat``/``at`` gate's map (captured by forward hooks, upsampled to the window), and
the sliding-window inferer stitches them as a second output beside the logits.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from torch import nn

from satgate_monai.bundle.checkpoint import load_weights
from satgate_monai.bundle.engine import Case, CaseEngine, read_case
from satgate_monai.bundle.ensemble import EnsembleInferer, ensemble_from_config
from satgate_monai.infer.geometry import array_to_sitk
from satgate_monai.networks.inspection import attention_maps, gate_modules
from satgate_monai.runtime import autocast, resolve_precision

__all__ = [
    "BACKENDS", "BundleRunner", "NetworkOutput", "resolve_device", "find_config", "read_channel_def",
    "Inferred", "input_spatial_dims",
]

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; anything else is passed to :class:`torch.device`.

    Raises:
        ValueError: an unknown device string, or ``cuda`` requested without CUDA.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here: use --device cpu or auto")
    return dev


def find_config(bundle_dir: str | os.PathLike, name: str = "inference") -> Path:
    """``<bundle>/configs/<name>.json`` or ``.yaml`` (MONAI Label reads these two; ``.yml`` is not accepted).

    Raises:
        FileNotFoundError: naming the bundle folder when neither exists.
    """
    root = Path(bundle_dir)
    for suffix in (".json", ".yaml"):
        p = root / "configs" / f"{name}{suffix}"
        if p.is_file():
            return p
    raise FileNotFoundError(f"{root} is not a bundle with an inference config: no configs/{name}.json or .yaml")


def input_spatial_dims(bundle_dir: str | os.PathLike) -> int | None:
    """Length of the input ``spatial_shape`` in ``configs/metadata.json`` (2 or 3), or None when not stated."""
    meta = Path(bundle_dir) / "configs" / "metadata.json"
    if not meta.is_file():
        return None
    with open(meta, encoding="utf-8") as f:
        inputs = json.load(f).get("network_data_format", {}).get("inputs", {})
    shape = (inputs.get("image") or next(iter(inputs.values()), {})).get("spatial_shape")
    return len(shape) if isinstance(shape, list) and shape else None


def read_channel_def(bundle_dir: str | os.PathLike) -> dict[int, str]:
    """Label value -> name from ``configs/metadata.json`` (``network_data_format.outputs.pred.channel_def``),
    background (0) excluded; ``{1: "foreground"}`` when the metadata has none."""
    meta = Path(bundle_dir) / "configs" / "metadata.json"
    channel_def: Mapping[str, Any] = {}
    if meta.is_file():
        with open(meta, encoding="utf-8") as f:
            md = json.load(f)
        outputs = md.get("network_data_format", {}).get("outputs", {})
        out = outputs.get("pred") or next(iter(outputs.values()), {})
        channel_def = out.get("channel_def", {}) or {}
    labels = {int(k): str(v) for k, v in channel_def.items() if int(k) != 0}
    return labels or {1: "foreground"}


@dataclass
class NetworkOutput:
    """What the bundle produced for one image.

    Attributes:
        label: uint8 label map on the source grid (SimpleITK, the source's geometry).
        attention: gate name -> attention map (float32) on the network input grid, when requested.
        network_shape: spatial shape of the network input ``(X, Y, Z)``.
        probabilities: float16 class probabilities on the source grid ``(C, Z, Y, X)`` (SimpleITK/numpy order),
            whose argmax is the label map before the label steps, when requested.
    """

    label: sitk.Image
    attention: dict[str, sitk.Image] = field(default_factory=dict)
    network_shape: tuple[int, ...] = ()
    probabilities: np.ndarray | None = None


@dataclass
class Inferred:
    """:meth:`BundleRunner.infer`'s output: the preprocessed data (``data["case"]`` the source case) with
    ``data["pred"]`` (network output, ``(C, *S)`` MetaTensor), and the stitched attention maps ``(G, *S)`` (CPU
    float32, ``names`` order) when requested."""

    data: dict[str, Any]
    maps: torch.Tensor | None = None
    names: list[str] = field(default_factory=list)


class BundleRunner:
    """A bundle's inference pipeline, ready to run on image files.

    Args:
        bundle_dir: the bundle folder (``configs/inference.json``, ``configs/metadata.json``, ``models/model.pt``).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a :class:`torch.device`.
        ckpt: checkpoint file, or several (an ensemble averaging their softmax probabilities, see
            :mod:`~satgate_monai.bundle.ensemble`); defaults to the config's ``checkpoints`` or
            ``<bundle>/models/model.pt``. Loaded with ``weights_only=True``.
        mirror_axes: test-time mirroring axes (``[]`` off); ``None`` keeps the config's ``mirror_axes``.
        overlap: sliding-window overlap in ``[0, 1)``; ``None`` keeps the bundle's value.
        sw_batch_size: windows per network call (sliding-window inferers); ``None`` keeps the bundle's value.
        precision: ``"fp32"`` (default), ``"bf16"``, ``"fp16"`` or ``"auto"`` (fp16 on CUDA, else fp32): autocast
            around the network (:mod:`satgate_monai.runtime`); the prediction is returned in float32.
        backend: ``"torch"`` (default) or ``"onnxruntime"`` (CPU, float32, sliding-window inferers; the network is
            exported to ONNX once and cached, :mod:`satgate_monai.infer.onnx_backend`).
        overrides: config overrides ``{"network_def#channels": [8, 16], ...}`` applied after reading the config.
        config: config name under ``configs/`` (default ``"inference"``).

    Raises:
        FileNotFoundError: no inference config or no checkpoint.
        CheckpointError: unsafe, unreadable or non-matching checkpoint.
        ValueError: an invalid device or overlap, a config without the required ids.
    """

    REQUIRED_IDS = ("preprocessing", "inferer")

    def __init__(self, bundle_dir: str | os.PathLike, *, device: str | torch.device = "auto",
                 ckpt: str | os.PathLike | Sequence[str | os.PathLike] | None = None, overlap: float | None = None,
                 overrides: Mapping[str, Any] | None = None, config: str = "inference",
                 mirror_axes: Sequence[int] | None = None, sw_batch_size: int | None = None,
                 precision: str = "fp32", backend: str = "torch") -> None:
        self.bundle_dir = Path(bundle_dir).resolve()
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "onnxruntime" and (self.device.type != "cpu" or self.precision != "fp32"):
            raise ValueError(f"--backend onnxruntime runs float32 on the CPU, got device {self.device} and "
                             f"precision {self.precision}: use --device cpu (and --precision fp32/auto)")
        self.backend = backend
        self._onnx: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.config_file = find_config(self.bundle_dir, config)
        self.labels = read_channel_def(self.bundle_dir)
        dims = input_spatial_dims(self.bundle_dir)
        if dims is not None and dims != 3:
            raise ValueError(f"{self.bundle_dir.name} is a {dims}D bundle (metadata input spatial_shape): the clinical "
                             "CLI runs 3D bundles on volumes (CT/MR); use `python -m monai.bundle run` for it")
        parser = ConfigParser()
        parser.read_config(str(self.config_file))
        meta = self.bundle_dir / "configs" / "metadata.json"
        if meta.is_file():
            parser.read_meta(str(meta))
        parser["bundle_root"] = str(self.bundle_dir)
        parser["device"] = f"$torch.device('{self.device}')"
        if overrides:
            parser.update(dict(overrides))
        self.overrides = dict(overrides or {})
        ckpts = [ckpt] if ckpt is None or isinstance(ckpt, (str, os.PathLike)) else list(ckpt)
        if ckpts[0] is not None:  # an explicit --ckpt list replaces the config's ensemble (one file: no ensemble)
            parser["checkpoints"] = [str(c) for c in ckpts] if len(ckpts) > 1 else []
        if mirror_axes is not None:
            parser["mirror_axes"] = list(mirror_axes)
        missing = [k for k in self.REQUIRED_IDS if k not in parser]
        if "network" not in parser and "network_def" not in parser:
            missing.append("network_def")
        if missing:
            raise ValueError(f"{self.config_file} lacks the ids {missing} needed for inference")
        if overlap is not None:
            if not 0.0 <= float(overlap) < 1.0:
                raise ValueError(f"overlap must be in [0, 1), got {overlap}")
            if "inferer#overlap" in parser or "SlidingWindow" in str(parser["inferer"].get("_target_", "")):
                parser["inferer#overlap"] = float(overlap)
            else:
                logger.warning("the bundle's inferer %s has no overlap: --overlap ignored",
                               parser["inferer"].get("_target_"))
        if sw_batch_size is not None:
            if isinstance(sw_batch_size, bool) or not isinstance(sw_batch_size, int) or sw_batch_size < 1:
                raise ValueError(f"sw_batch_size must be a positive int, got {sw_batch_size!r}")
            parser["inferer#sw_batch_size"] = sw_batch_size
        self.parser = parser
        if "pixdim" not in parser or "intensity" not in parser:
            raise ValueError(f"{self.config_file} lacks the ids pixdim/intensity the case engine needs")
        self.inferer: Callable = parser.get_parsed_content("inferer")
        net_id = "network" if "network" in parser else "network_def"
        network: nn.Module = parser.get_parsed_content(net_id)
        self.network = network.to(self.device)
        self.ensemble: EnsembleInferer = ensemble_from_config(parser, self.inferer)
        self.checkpoints = [Path(c) for c in self.ensemble.checkpoints]
        if self.backend == "onnxruntime" and len(self.checkpoints) > 1:
            raise ValueError("--backend onnxruntime exports one network: give one --ckpt (an ensemble of "
                             f"{len(self.checkpoints)} checkpoints runs with --backend torch)")
        default = self.checkpoints[0] if self.checkpoints else self.bundle_dir / "models" / "model.pt"
        self.ckpt = Path(ckpts[0]) if ckpts[0] is not None else default
        if not self.ckpt.is_file():
            raise FileNotFoundError(
                f"no checkpoint at {self.ckpt}: train the bundle first (its README) or pass --ckpt FILE"
            )
        load_weights(self.network, self.ckpt, map_location=self.device)
        self.ensemble.check(self.network)
        self.checkpoints = self.checkpoints or [self.ckpt]
        self.network.eval()
        post = parser.get_parsed_content("postprocessing") if "postprocessing" in parser else None
        self.engine = CaseEngine(parser.get_parsed_content("pixdim"), parser.get_parsed_content("intensity"), post,
                                 axcodes=parser.get_parsed_content("axcodes") if "axcodes" in parser else "RAS")

    @property
    def name(self) -> str:
        """The bundle's folder name."""
        return self.bundle_dir.name

    def _attention_fn(self, names: list[str]) -> Callable[[torch.Tensor], torch.Tensor]:
        """A network-like callable for the inferer: every gate's attention map upsampled to the input window (a
        separate pass; used with the ONNX Runtime backend, whose exported network has no gate outputs)."""

        def fn(x: torch.Tensor) -> torch.Tensor:
            maps = attention_maps(self.network, x)
            if not names:
                names.extend(maps)
            return _upsampled(maps, names, x)

        return fn

    def _with_attention(self, names: list[str]) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """The network as the inferer calls it, returning ``(logits, maps)`` from one forward pass per window.

        ``maps`` ``(N, G, *S_window)``: every ``sat``/``at`` gate's attention map (captured by a forward hook during
        the same call) upsampled to the window, in ``names`` order (filled on the first call). The sliding-window
        inferer stitches both outputs.
        """
        gates = {n: g for n, g in gate_modules(self.network).items() if g.produces_attention}

        def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            maps: dict[str, torch.Tensor] = {}
            handles = [g.register_forward_hook(lambda _m, _i, out, n=n: maps.__setitem__(n, out.detach()))
                       for n, g in gates.items()]
            try:
                logits = self.network(x)
            finally:
                for h in handles:
                    h.remove()
            if not names:
                names.extend(maps)
            return logits, _upsampled(maps, names, x)

        return fn

    def _network_for(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The network the inferer calls: the torch module, or its ONNX Runtime session (exported on first use)."""
        if self.backend == "torch":
            return self.network
        if self._onnx is None:
            from satgate_monai.infer.onnx_backend import onnx_network

            roi = getattr(self.inferer, "roi_size", None)
            if roi is None:
                raise ValueError("--backend onnxruntime needs a sliding-window inferer (fixed window shape)")
            batch = int(getattr(self.inferer, "sw_batch_size", 1))
            self._onnx, self.onnx_path = onnx_network(self.network, (batch, x.shape[1], *roi))
        return self._onnx

    def preprocess(self, image: sitk.Image | str | os.PathLike, source: object = None,
                   headers: list | None = None) -> dict[str, Any]:
        """The case engine's preprocessing of one image (:meth:`CaseEngine.preprocess
        <satgate_monai.bundle.engine.CaseEngine.preprocess>`).

        Args:
            image: a validated 3D SimpleITK image (LPS), or a file read with data_prep's validated reader.
            source: the input the image came from (named by later checks' messages).
            headers: the DICOM series' headers, kept with the case.

        Returns:
            ``{"image": MetaTensor (1, X, Y, Z) on the working grid, "case": Case}``.
        """
        case = (Case.from_sitk(image, source if source is not None else "<image>", headers)
                if isinstance(image, sitk.Image) else read_case(image))
        return {"image": self.engine.preprocess(case), "case": case}

    @torch.no_grad()
    def predict(self, image: sitk.Image | str | os.PathLike, *, save_attention: bool = False,
                save_probabilities: bool = False, source: object = None) -> NetworkOutput:
        """Run preprocessing -> inferer(network) -> postprocessing on one image (:meth:`preprocess`, :meth:`infer`,
        :meth:`finish` in turn; the batch loop runs them in separate threads for consecutive cases).

        Args:
            image: a validated 3D SimpleITK image (the CLI's case, preprocessed in memory) or an image file.
            save_attention: also return every ``sat``/``at`` gate's attention map on the network input grid (from
                the prediction's own forward passes with the torch backend).
            save_probabilities: also return the class probabilities (before the argmax) on the network grid.
            source: the input ``image`` came from, for messages.

        Returns:
            :class:`NetworkOutput` in network space.

        Raises:
            ValueError: a preprocessed image that is not 3D ``(C, X, Y, Z)`` or without a MetaTensor affine, or a
                prediction whose spatial shape differs from the input's.
        """
        inferred = self.infer(self.preprocess(image, source), save_attention=save_attention)
        return self.finish(inferred, save_probabilities=save_probabilities)

    @torch.no_grad()
    def infer(self, data: dict[str, Any] | list, *, save_attention: bool = False) -> Inferred:
        """The network stage: the inferer (sliding window, ensemble) on a preprocessed image.

        Args:
            data: :meth:`preprocess`'s output.
            save_attention: also stitch every ``sat``/``at`` gate's attention map (same passes with the torch
                backend, a second pass with ONNX Runtime).

        Raises:
            ValueError: see :meth:`predict`.
        """
        if isinstance(data, list):  # a cropping/sampling transform returned several items
            raise ValueError("the bundle's inference preprocessing returned several samples per image")
        img = data["image"]
        if not isinstance(img, MetaTensor):
            raise ValueError("the bundle's preprocessing lost the image geometry (no MetaTensor affine)")
        if img.ndim != 4:
            raise ValueError(
                f"the clinical CLI runs 3D bundles; this bundle's preprocessed image has shape {tuple(img.shape)}"
            )
        x = img.unsqueeze(0).to(self.device)
        has_attention = any(g.produces_attention for g in gate_modules(self.network).values())
        if save_attention and not has_attention:
            logger.warning("the network has no sat/at gate: no attention maps to save")
        names: list[str] = []
        one_pass = save_attention and has_attention and self.backend == "torch"
        network = self._with_attention(names) if one_pass else self._network_for(x)
        maps = None
        with autocast(self.device, self.precision):
            pred = self.ensemble(x, network)
        if isinstance(pred, (tuple, list)):
            pred, maps = pred[0], (pred[1] if one_pass else None)
        elif isinstance(pred, Mapping):
            pred = pred.get("pred", next(iter(pred.values())))
        pred = pred[0]
        if pred.is_floating_point() and pred.dtype != torch.float32:
            pred = pred.float()
        if tuple(pred.shape[1:]) != tuple(img.shape[1:]):
            raise ValueError(f"prediction shape {tuple(pred.shape)} does not match the input {tuple(img.shape)}")
        if not isinstance(pred, MetaTensor):
            pred = MetaTensor(pred, affine=img.affine, meta=img.meta)
        if save_attention and has_attention and maps is None:  # ONNX Runtime: logits only, a second (torch) pass
            with autocast(self.device, self.precision):
                maps = self.inferer(x, self._attention_fn(names))
            if isinstance(maps, (tuple, list)):
                maps = maps[0]
        del x
        data["pred"] = pred
        return Inferred(data=data, maps=None if maps is None else maps[0].float().cpu(), names=names)

    @torch.no_grad()
    def finish(self, inferred: Inferred, *, save_probabilities: bool = False) -> NetworkOutput:
        """The network output back on the source grid (:meth:`CaseEngine.to_source
        <satgate_monai.bundle.engine.CaseEngine.to_source>`), as SimpleITK images."""
        data, img = inferred.data, inferred.data["image"]
        case: Case = data["case"]
        probs = None
        if save_probabilities:
            if data["pred"].shape[0] < 2:
                raise ValueError(f"--save-probabilities needs a multi-class softmax output (C >= 2), got shape "
                                 f"{tuple(data['pred'].shape)}")
            probs = np.empty((data["pred"].shape[0], *case.shape[::-1]), dtype=np.float16)
        label = self.engine.to_source(data.pop("pred"), case, img.affine.numpy(), probabilities_out=probs)
        result = NetworkOutput(label=case.label_image(label), network_shape=tuple(img.shape[1:]),
                               probabilities=probs)
        if inferred.maps is not None:
            img_space = str(img.meta.get("space", "RAS"))
            for i, n in enumerate(inferred.names):
                result.attention[n] = array_to_sitk(inferred.maps[i].numpy(), img.affine, img_space)
        return result


def _upsampled(maps: Mapping[str, torch.Tensor], names: Sequence[str], x: torch.Tensor) -> torch.Tensor:
    """The maps ``{name: (N, 1, *S_gate)}`` in ``names`` order, (tri)linearly upsampled to ``x``'s spatial shape and
    concatenated: ``(N, len(names), *S_x)`` float32."""
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[x.ndim - 2]
    return torch.cat([F.interpolate(maps[n].float(), size=tuple(x.shape[2:]), mode=mode, align_corners=False)
                      for n in names], dim=1)
