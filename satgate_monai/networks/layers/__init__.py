"""Layers of satgate-monai."""

from __future__ import annotations

from satgate_monai.networks.layers.trelu import TReLU, trelu

__all__ = ["TReLU", "trelu"]
