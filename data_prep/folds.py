"""Seeded k-fold cross-validation assignment of case names (nnU-Net's five folds, MONAI datalist keys).

:func:`assign_folds` sorts the names, shuffles them with ``random.Random(seed)`` and deals them round-robin into
``k`` folds, so fold sizes differ by at most one and the assignment depends only on the set of names, ``k`` and the
seed. :func:`data_prep.datalist.write_datalist` stores the fold of every training/validation case as ``"fold"`` in
its entry and ``"folds": k`` at the top of ``datalist.json``; ``satgate_monai.bundle.load_datalist(..., fold=f)``
then trains on the other folds and validates on fold ``f``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["assign_folds", "check_folds"]


def check_folds(folds: int, n_cases: int) -> int:
    """Return ``folds`` when it is an integer with ``2 <= folds <= n_cases``.

    Raises:
        ValueError: naming the value and the number of cases.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if folds > n_cases:
        raise ValueError(f"folds={folds} needs at least {folds} training/validation cases, got {n_cases}")
    return folds


def assign_folds(names: Sequence[str], folds: int, seed: int) -> dict[str, int]:
    """Fold index ``0..folds-1`` of every case name, deterministic in ``(set(names), folds, seed)``.

    Args:
        names: unique case names (e.g. image paths).
        folds: number of folds ``k >= 2``, at most ``len(names)``.
        seed: the shuffle seed.

    Returns:
        ``{name: fold}``; fold sizes differ by at most one.

    Raises:
        ValueError: duplicated names, or a ``folds`` value out of range.
    """
    ordered = sorted(names)
    if len(set(ordered)) != len(ordered):
        raise ValueError(f"duplicated case names: {sorted({n for n in ordered if ordered.count(n) > 1})}")
    check_folds(folds, len(ordered))
    random.Random(seed).shuffle(ordered)
    return {name: i % folds for i, name in enumerate(ordered)}
