"""LiTS (Liver Tumor Segmentation Challenge) importer.

Layout read: ``volume-N.nii`` and ``segmentation-N.nii`` (``.nii.gz`` accepted), anywhere below ``--src`` (the
official download splits them over ``Training Batch 1/`` and ``Training Batch 2/``, sometimes with the volumes and
segmentations in separate folders). Pairs are made by ``N``; cases are named ``lits_N``. ``test-volume-N.nii`` files
(the challenge's test set, without segmentations) are ignored. A volume without a segmentation becomes a failed case
in ``report.csv``. Labels as MSD Task03 (0 background, 1 liver, 2 tumour): tumour merged into liver by default.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from data_prep.importers.common import LayoutError, check_source, describe, is_phantom_source
from data_prep.pipeline import CaseSpec, prepare_cases

__all__ = ["find_lits", "lits_cases", "import_lits"]

logger = logging.getLogger(__name__)

_VOLUME = re.compile(r"^volume-(\d+)\.nii(\.gz)?$")
_SEGMENTATION = re.compile(r"^segmentation-(\d+)\.nii(\.gz)?$")
_MAX_DEPTH = 4


def _walk(root: Path):
    """Files below ``root`` up to a few levels deep, skipping hidden files/folders (and macOS ``._*``)."""
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < _MAX_DEPTH else []
        for f in sorted(filenames):
            if not f.startswith("."):
                yield Path(dirpath) / f


def find_lits(src: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """List LiTS cases below ``src`` as ``(case, volume, segmentation)`` sorted by ``N``.

    A missing segmentation is returned as the path it should have had (beside the volume), so the case fails with
    a clear error while the others are prepared.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        LayoutError: no ``volume-N.nii`` found, or the same ``N`` twice.
    """
    root = check_source(src)
    volumes: dict[int, Path] = {}
    segs: dict[int, Path] = {}
    for p in _walk(root):
        for pattern, found in ((_VOLUME, volumes), (_SEGMENTATION, segs)):
            m = pattern.match(p.name)
            if m:
                n = int(m.group(1))
                if n in found:
                    raise LayoutError(f"LiTS case {n} appears twice: {found[n]} and {p}")
                found[n] = p
    if not volumes:
        raise LayoutError(
            f"no LiTS volume found below {root}: expected volume-N.nii with segmentation-N.nii files (e.g. in "
            f"'Training Batch 1/', 'Training Batch 2/'), up to {_MAX_DEPTH} folder levels deep"
        )
    extra = sorted(set(segs) - set(volumes))
    if extra:
        logger.warning("%d segmentation(s) without a volume, ignored: %s", len(extra), extra[:10])
    out = []
    for n in sorted(volumes):
        vol = volumes[n]
        seg = segs.get(n)
        if seg is None:
            seg = vol.with_name(f"segmentation-{n}.nii")
            logger.warning("%s has no segmentation-%d.nii: it will be reported as a failed case", vol, n)
        out.append((f"lits_{n}", vol, seg))
    return out


def lits_cases(found: list[tuple[str, Path, Path]], *, keep_tumour: bool = False) -> tuple[list[CaseSpec], dict]:
    """Case specs and label names (tumour merged into liver unless ``keep_tumour``)."""
    label_map = None if keep_tumour else {2: 1}
    names = {"0": "background", "1": "liver"}
    if keep_tumour:
        names["2"] = "tumour"
    declared = (0, 1, 2)  # LiTS: background, liver, tumour
    return [CaseSpec(name, vol, seg, label_map=label_map, label_values=declared) for name, vol, seg in found], names


def import_lits(src: str | os.PathLike, out: str | os.PathLike, *, keep_tumour: bool = False, **prepare_kwargs) -> int:
    """Import LiTS from ``src`` into ``out`` (see :func:`data_prep.pipeline.prepare_cases`); returns the exit code."""
    found = find_lits(src)
    specs, names = lits_cases(found, keep_tumour=keep_tumour)
    details = "labels 0 background, 1 liver, 2 tumour" if keep_tumour else "tumour (2) merged into liver (1)"
    root = Path(src)
    return prepare_cases(
        specs,
        out,
        labels=names,
        modality={"0": "CT"},
        name="lits",
        description=describe("LiTS", root, details, is_phantom_source(root)),
        inputs=[root],
        **prepare_kwargs,
    )
