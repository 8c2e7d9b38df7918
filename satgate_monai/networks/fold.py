"""Deployment: fold every foldable gate (``sat``) into its cheaper equivalent, a plain 1x1 convolution with weight
``K ⊙ trelu(w)``."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

from torch import nn

from satgate_monai.networks.inspection import gate_modules

__all__ = ["FoldReport", "fold_gates"]

logger = logging.getLogger(__name__)


@dataclass
class FoldReport:
    """What :func:`fold_gates` did.

    Attributes:
        gates: names of the folded gates.
        channels: skip channels of the folded gates.
        dropped: of those, channels switched off (``w <= 0``) whose kernel weight was set to exactly zero.
        frozen: channels frozen fully on (``w >= 1``), folded with ``trelu(w) = 1``.
        per_gate: ``{gate: {"channels", "dropped", "frozen"}}``.
    """

    gates: list[str] = field(default_factory=list)
    channels: int = 0
    dropped: int = 0
    frozen: int = 0
    per_gate: dict[str, dict[str, int]] = field(default_factory=dict)

    def __str__(self) -> str:
        return (f"folded {len(self.gates)} gate(s): {self.dropped} of {self.channels} skip channels switched off "
                f"(kernel weights dropped to exactly 0), {self.frozen} frozen fully on")


def fold_gates(net: nn.Module, inplace: bool = False,
               return_report: bool = False) -> nn.Module | tuple[nn.Module, FoldReport]:
    """Replace every gate whose class is ``foldable`` (``sat``) by its :meth:`fold` (an :class:`ATGate` with weight
    ``K ⊙ trelu(w)``).

    Switched-off channels (``w <= 0``) are dropped explicitly: their folded kernel weight is set to exactly 0 (it
    already is ``K * 0``; this makes it exact, ``-0.0`` included). The folded network computes the same outputs (to
    float rounding) with fewer parameters and no selection vector. Other gates are left as they are. The count of
    dropped channels is logged (INFO) and returned with ``return_report=True``.

    Args:
        net: a trained network.
        inplace: modify ``net`` itself instead of a deep copy. Defaults to False.
        return_report: also return a :class:`FoldReport`. Defaults to False.

    Returns:
        the folded network, in the same training/eval mode as ``net`` (and the report when asked).
    """
    target = net if inplace else copy.deepcopy(net)
    report = FoldReport()
    gates = {id(m): name for name, m in gate_modules(target).items() if m.foldable}
    for parent in list(target.modules()):
        for child_name, child in list(parent.named_children()):
            if id(child) not in gates:
                continue
            name = gates[id(child)]
            folded = child.fold()
            folded.train(child.training)
            entry = {"channels": int(child.in_channels), "dropped": 0, "frozen": 0}
            if child.has_selection:
                off = child.selection.switched_off()
                entry.update(dropped=int(off.sum()), frozen=int(child.selection.frozen_on().sum()))
                conv = getattr(folded, "attention", None)
                if conv is not None and off.any():
                    conv.weight.data[:, off.to(conv.weight.device)] = 0.0
            setattr(parent, child_name, folded)
            report.gates.append(name)
            report.per_gate[name] = entry
            report.channels += entry["channels"]
            report.dropped += entry["dropped"]
            report.frozen += entry["frozen"]
    if report.gates:
        logger.info("%s", report)
    return (target, report) if return_report else target
