"""MONAI Label infer task for satgate-monai bundles, with the monai 1.6.1 ``Spacingd`` workaround.

MONAI Label 0.8.5 puts the request's image path into the data dictionary as a string under ``image_path``. monai
1.6.1's ``Spacingd`` updates every data key that starts with ``<key>_`` (``image_meta_dict`` and so on) with the
resampled image's metadata when the input is NIfTI, so on ``image_path`` it fails with ``'str' object has no
attribute 'update'`` and every ``/infer`` on a bundle with ``Spacingd`` returns HTTP 500. This task hides such
non-mapping ``<input key>_*`` entries while the pre-transforms run and puts them back afterwards (the writer needs
``image_path`` for the output's file type).

The request runs through the one case engine (:mod:`satgate_monai.bundle.engine`), as the inference CLI,
``monai.bundle run`` and the Deploy application do: :class:`~satgate_monai.bundle.engine.CaseToWorkingGridd` reads
the image (3D: data_prep's validated reader; 2D: the bundle's ``loading`` transforms) and puts it on the working grid
(3D: ``pixdim``; 2D: resized to ``image_size``) with the bundle's intensity steps, MONAI Label runs the bundle's
inferer, and :class:`~satgate_monai.bundle.engine.ToSourceGridd` returns the probabilities linearly to the source grid
(2D: bilinear to the picture's own size), takes the argmax and runs the bundle's label steps; every entry point gives
the same mask for the same image and checkpoint. Neither the bundle's pre-transforms nor its ``Invertd`` run here.

For 2D bundles it drops the label's channel after MONAI Label's ``Restored`` (which assumes a 3D volume when it
squeezes), so a PNG study gets a (H, W) PNG label instead of a (1, H, W) stack ITK cannot write as PNG; and it writes
labels as uint8 (ITK's PNG writer rejects the float32 prediction).

It serves ``models/model.pt`` (the best checkpoint) unless the request names another servable file as
``model_filename`` (see :mod:`satgate_monai.label.checkpoints`); MONAI Label itself would serve ``last.pt`` whenever
one exists. The loaded network is cached per device and file, and reloaded when the file is replaced (after a
training round the next request uses the new best weights). Weights are loaded strictly: a checkpoint that does not
fit the bundle's network is an error, not a warning followed by a randomly initialised model.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from monailabel.tasks.infer.bundle import BundleInferTask

from satgate_monai.bundle.checkpoint import CheckpointError, load_weights
from satgate_monai.label.checkpoints import choose_checkpoint, file_signature, servable_checkpoints

__all__ = ["CheckpointError", "DropChanneld", "SATBundleInferTask", "hidden_string_keys"]

logger = logging.getLogger(__name__)


def hidden_string_keys(data: Mapping[Any, Any], key: str) -> list[str]:
    """Keys of ``data`` that monai 1.6.1's ``Spacingd(keys=key)`` would try to ``.update()`` but are not mappings.

    Args:
        data: the infer request's data dictionary.
        key: the input key of the bundle (``image``).

    Returns:
        the names starting with ``f"{key}_"`` whose values are not mappings (e.g. ``image_path``).
    """
    prefix = f"{key}_"
    return [k for k, v in data.items() if isinstance(k, str) and k.startswith(prefix) and not isinstance(v, Mapping)]


class DropChanneld:
    """Drop a leading channel of size 1 from ``data[key]`` (2D labels; MONAI Label's ``Restored`` keeps it).

    Args:
        key: the prediction key.
    """

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        x = d[self.key]
        if x.ndim == 3 and x.shape[0] == 1:
            d[self.key] = x[0]
        return d


class SATBundleInferTask(BundleInferTask):
    """``BundleInferTask`` that survives monai 1.6.1's ``Spacingd`` and loads weights strictly.

    Args:
        path: the bundle folder (``configs/inference.json``, ``configs/metadata.json``, ``models/model.pt``).
        conf: the server's ``--conf`` dictionary.
        **kwargs: passed to ``BundleInferTask`` (``load_strict`` defaults to True here).
    """

    def __init__(self, path: str, conf: dict[str, str], **kwargs: Any) -> None:
        kwargs.setdefault("load_strict", True)
        super().__init__(path, conf, **kwargs)
        self.models_dir = os.path.join(path, "models")
        self._offered: tuple[Any, list[str]] = (None, [])
        self._served_networks: dict[tuple[str, str], tuple[torch.nn.Module, Any]] = {}
        if self.valid:
            self.checkpoints()

    def checkpoints(self) -> list[str]:
        """The servable checkpoint files, ``model.pt`` first; re-read when a file in ``models/`` changes."""
        if not self.valid or self.network is None:
            return []
        names = sorted(n for n in os.listdir(self.models_dir) if n.endswith(".pt"))
        key = tuple((n, file_signature(os.path.join(self.models_dir, n))) for n in names)
        if key != self._offered[0]:
            offered = servable_checkpoints(self.models_dir, self.network.state_dict())
            self._offered = (key, offered)
            self._config["model_filename"] = list(self._offered[1])
        return list(self._offered[1])

    def config(self) -> dict[str, Any]:
        """The model's options for clients; ``model_filename`` lists only servable checkpoints, ``model.pt`` first."""
        self.checkpoints()
        return self._config

    def checkpoint_for(self, request: Mapping[str, Any]) -> str:
        """The checkpoint file a request is served with (``model.pt`` unless it names another).

        Raises:
            CheckpointError: the named file is not servable (the message lists what is).
        """
        return choose_checkpoint(request.get("model_filename"), self.checkpoints())

    def _get_network(self, device: Any, data: Any) -> torch.nn.Module:
        """The network with the chosen checkpoint's weights, cached per (device, file) until the file changes."""
        name = self.checkpoint_for(data or {})
        path = os.path.join(self.models_dir, name)
        signature = file_signature(path)
        key = (str(device), name)
        cached = self._served_networks.get(key)
        if cached is not None and cached[1] == signature:
            return cached[0]
        logger.info("serving %s on %s", path, device)
        network = copy.deepcopy(self.network).to(torch.device(device))
        load_weights(network, path)
        network.train() if self.train_mode else network.eval()
        self._served_networks[key] = (network, signature)
        return network

    def clear_cache(self) -> None:
        super().clear_cache()
        self._served_networks.clear()

    def engine(self) -> Any:
        """The case engine of the bundle's config (``intensity``, ``postprocessing``; 3D: ``pixdim``, ``axcodes``;
        2D: ``image_size``, ``loading``)."""
        from satgate_monai.bundle.engine import CaseEngine

        c = self.bundle_config

        def get(name: str, default: Any = None) -> Any:
            return c.get_parsed_content(name, instantiate=True) if c.get(name) is not None else default

        if self.dimension == 2:
            return CaseEngine(None, get("intensity"), get("postprocessing"), image_size=get("image_size"),
                              loading=get("loading"))
        return CaseEngine(get("pixdim"), get("intensity"), get("postprocessing"), axcodes=get("axcodes", "RAS"))

    def pre_transforms(self, data: Any = None) -> list[Any]:
        """The case engine's reading and working grid (:class:`~satgate_monai.bundle.engine.CaseToWorkingGridd`)."""
        from satgate_monai.bundle.engine import CaseToWorkingGridd

        self._update_device(data)
        return [CaseToWorkingGridd(self.input_key, self.engine())]

    def run_pre_transforms(self, data: dict[str, Any], transforms: Any) -> dict[str, Any]:
        """Run the bundle's pre-transforms with the string ``image_*`` entries hidden, then restore them."""
        names = hidden_string_keys(data, self.input_key)
        hidden = {k: data.pop(k) for k in names}
        if hidden:
            logger.debug("hiding %s from the pre-transforms (monai 1.6.1 Spacingd)", sorted(hidden))
        try:
            out = super().run_pre_transforms(data, transforms)
        finally:
            data.update(hidden)
        out.update(hidden)
        return out

    def post_transforms(self, data: Any = None) -> list[Any]:
        """The case engine's return to the source grid (:class:`~satgate_monai.bundle.engine.ToSourceGridd`), then
        ``Restored``; 2D: also ``DropChanneld`` (an ``(H, W)`` label)."""
        from satgate_monai.bundle.engine import ToSourceGridd

        restore = [t for t in super().post_transforms(data) if type(t).__name__ == "Restored"]
        drop = [DropChanneld(self.key_pred)] if self.dimension == 2 else []
        return [ToSourceGridd(self.key_pred, self.engine(), ref_key=self.input_key), *restore, *drop]

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
        """Write the label as uint8 unless the request asks for another ``result_dtype``.

        MONAI Label writes the float32 prediction as it is, which ITK's PNG writer rejects ("PNG supports unsigned
        char and unsigned short"); our labels are small integers, so uint8 is exact for every output type.
        """
        if dtype is None and not data.get("result_dtype"):
            dtype = np.uint8
        return super().writer(data, extension=extension, dtype=dtype)
