"""Deep supervision in the bundles: a network that returns ``[main, side_1, ...]`` in training mode (``SATDI2IN``).

The bundles' ``train.json`` wires one loss to one output. :data:`DEEP_SUPERVISION_OVERRIDES` are the config ids that
make such a network train: MONAI's :class:`~monai.losses.DeepSupervisionLoss` around the bundle's own ``loss``
(weights 1, 1/2, 1/4, ... from the main output on), and :func:`first_output` before the training post-processing, so
the training metric reads the main output. Validation, evaluation and inference run the network in eval mode, where
it returns one tensor, and need nothing. The liver bundle ships these ids as ``configs/deep_supervision.json``; the
experiment runner applies the same dictionary to cells of such a network.
"""

from __future__ import annotations

from pydoc import locate
from typing import Any

import torch

__all__ = ["DEEP_SUPERVISION_OVERRIDES", "first_output", "returns_deep_supervision"]

DEEP_SUPERVISION_OVERRIDES: dict[str, Any] = {
    "deep_supervision_loss": {"_target_": "DeepSupervisionLoss", "loss": "@loss", "weight_mode": "exp"},
    "train#trainer#loss_function": "@deep_supervision_loss",
    "train#trainer#postprocessing": "$monai.transforms.Compose([monai.transforms.Lambdad('pred', "
                                    "satgate_monai.bundle.first_output), @train#postprocessing])",
}
"""Bundle config ids (``train.json`` layout) for a network with deep-supervision outputs."""


def first_output(pred: torch.Tensor | list | tuple) -> torch.Tensor:
    """The main output: ``pred[0]`` of a list/tuple of outputs, ``pred`` itself otherwise."""
    return pred[0] if isinstance(pred, (list, tuple)) else pred


def returns_deep_supervision(network_def: dict[str, Any]) -> bool:
    """Whether the network a ``network_def`` builds returns deep-supervision outputs in training mode.

    True for a class with a ``deep_supervision`` constructor argument that is not switched off in ``network_def``
    (its class default applies when absent).

    Raises:
        ValueError: when ``_target_`` names nothing importable.
    """
    target = network_def.get("_target_")
    cls = locate(target) if isinstance(target, str) else target
    if cls is None:
        raise ValueError(f"network_def _target_ {target!r} cannot be imported.")
    import inspect

    try:
        param = inspect.signature(cls).parameters.get("deep_supervision")
    except (TypeError, ValueError):
        return False
    if param is None:
        return False
    return bool(network_def.get("deep_supervision", param.default))
