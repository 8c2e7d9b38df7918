"""Which series of a DICOM study to segment: documented selection rules, a named choice, and a refusal when unsure.

A study from a PACS holds many series: localizers, several reconstructions of one acquisition, other sequences, and
non-image objects (SR, dose reports, SEG). The rule, applied to the image series of one folder (or one DICOMweb
study), in this order:

1. ``--series UID`` (``series_uid``) given and present: that series, whatever the rules say.
2. Non-image objects (SR, RTDOSE, SEG, KO, PR...) never qualify; series made only of localizer/scout images
   (ImageType ``LOCALIZER``/``SCOUT``) do not qualify while any other image series is present.
3. The selection rules are tried in order; the first selection that at least one series satisfies decides. A series
   satisfies a selection when it has at least ``min_slices`` images and every condition holds.
4. Several series satisfy it: with ``sort_by_sop_instance_count`` the one with the most images wins, if it has
   strictly more than the next; otherwise (a tie, or no sorting) the choice is ambiguous and refused with one line
   listing the tied series, to be settled with ``--series UID``.
5. No series satisfies any selection: refused, each series listed with the condition it fails.

Rules are JSON in the MONAI Deploy App SDK's ``DICOMSeriesSelectorOperator`` format, so the same text drives that
operator; a bundle ships its defaults as ``series_selection`` in ``configs/metadata.json``::

    {"selections": [{"name": "axial CT", "min_slices": 16,
                     "conditions": {"Modality": "(?i)^CT$", "ImageOrientationPatient": "Axial",
                                    "ImageType": ["ORIGINAL", "!LOCALIZER"],
                                    "SeriesDescription": "^(?!.*(?i:lung|bone|mip)).*$"}}],
     "sort_by_sop_instance_count": true}

Conditions, keyed by a DICOM keyword read from the series' first (non-localizer) image header, as the SDK matches
them: a text attribute matches case-insensitively equal or by ``re.search`` (so ``"(?i)^CT$"`` is exact); a
multi-valued attribute (``ImageType``) must hold every listed term and none of the ``!``-prefixed ones (element-wise,
case-insensitive); a number matches a number exactly, ``[min, max]`` inclusively, ``[value, ">"]`` (``>= < <= !=``)
relationally, or a string as a regular expression on its text; ``ImageOrientationPatient`` is ``Axial``, ``Coronal``
or ``Sagittal``: the patient axis closest to the slice normal (row x column cosines). An attribute the header lacks
fails the condition; an empty condition value is ignored. ``min_slices`` (images or frames) and
``sort_by_sop_instance_count`` are this module's additions (the SDK ignores ``min_slices`` and takes the sorting as
an operator argument). Without rules, :data:`DEFAULT_RULES` applies: original (not derived) images first, then any
image series, never sorted, so two original series are ambiguous.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_RULES",
    "METADATA_KEY",
    "Candidate",
    "SeriesChoice",
    "SeriesSelectionError",
    "check_rules",
    "load_rules",
    "orientation_name",
    "select_series",
]

logger = logging.getLogger(__name__)

METADATA_KEY = "series_selection"
DEFAULT_RULES: dict[str, Any] = {
    "selections": [
        {"name": "original images", "conditions": {"ImageType": ["ORIGINAL"]}},
        {"name": "any image series", "conditions": {}},
    ],
    "sort_by_sop_instance_count": False,
}
_OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal, "!=": np.not_equal}
_ORIENTATIONS = ("sagittal", "coronal", "axial")  # the patient axis (x, y, z) closest to the slice normal


class SeriesSelectionError(ValueError):
    """No series, or more than one equally good series, for the rules; or rules that cannot be applied."""


@dataclass(frozen=True)
class Candidate:
    """One series of a study as the selection sees it.

    Attributes:
        uid, number, description, modality: SeriesInstanceUID, SeriesNumber, SeriesDescription, Modality.
        n_images: images (frames) in the series, localizer images excluded.
        n_files: files (instances) of the series.
        header: the first non-localizer image header (any mapping from DICOM keyword to value; pydicom Dataset).
        localizer_only: every image is a localizer/scout.
        image: False for a non-image object (SR, RTDOSE, SEG...), which never qualifies.
    """

    uid: str
    number: str = ""
    description: str = ""
    modality: str = ""
    n_images: int = 0
    n_files: int = 0
    header: Any = None
    localizer_only: bool = False
    image: bool = True

    def describe(self) -> str:
        """``UID (series N, 'description', CT, 40 images, 40 file(s))``."""
        what = f"{self.n_images} images, {self.n_files} file(s)" if self.image else "non-image object"
        return f"{self.uid} (series {self.number or '?'}, '{self.description}', {self.modality or '?'}, {what})"


@dataclass
class SeriesChoice:
    """The outcome: the chosen series, the rule that chose it, and why every other series was skipped."""

    chosen: Candidate
    reason: str
    skipped: list[tuple[Candidate, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line for reports: ``chose UID (...) by ...; skipped UID (...): why; ...``."""
        out = f"chose {self.chosen.describe()}: {self.reason}"
        if self.skipped:
            out += "; skipped " + "; ".join(f"{c.describe()}: {why}" for c, why in self.skipped)
        return out


def check_rules(rules: Mapping[str, Any]) -> dict[str, Any]:
    """Validate selection rules (see the module docstring) and return them as a plain dict.

    Raises:
        SeriesSelectionError: naming the offending part.
    """
    if not isinstance(rules, Mapping) or not isinstance(rules.get("selections"), list) or not rules["selections"]:
        raise SeriesSelectionError(f"series selection rules need a non-empty 'selections' list, got {rules!r}")
    for i, sel in enumerate(rules["selections"]):
        if not isinstance(sel, Mapping) or not isinstance(sel.get("conditions", {}), Mapping):
            raise SeriesSelectionError(f"selection {i + 1} must be an object with a 'conditions' object, got {sel!r}")
        m = sel.get("min_slices", 0)
        if not isinstance(m, int) or isinstance(m, bool) or m < 0:
            raise SeriesSelectionError(f"selection {i + 1}: min_slices must be a non-negative integer, got {m!r}")
        for key, value in sel.get("conditions", {}).items():
            if key == "ImageOrientationPatient" and value and str(value).lower() not in _ORIENTATIONS:
                raise SeriesSelectionError(f"selection {i + 1}: ImageOrientationPatient must be Axial, Coronal or "
                                           f"Sagittal, got {value!r}")
            if isinstance(value, str) and value:
                try:
                    re.compile(value)
                except re.error as e:
                    raise SeriesSelectionError(f"selection {i + 1}: condition {key}: invalid regular expression "
                                               f"{value!r} ({e})") from None
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str) and value[1] in _OPS:
                if not isinstance(value[0], (int, float)):
                    raise SeriesSelectionError(f"selection {i + 1}: condition {key}: {value!r} needs a number first")
    if not isinstance(rules.get("sort_by_sop_instance_count", False), bool):
        raise SeriesSelectionError("sort_by_sop_instance_count must be true or false, got "
                                   f"{rules['sort_by_sop_instance_count']!r}")
    return json.loads(json.dumps(rules))


def load_rules(source: str | os.PathLike | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Rules from a mapping, a rules JSON file, or a bundle's ``metadata.json`` (its ``series_selection`` entry; a
    bundle folder is also accepted). A metadata file without the entry gives None (then :data:`DEFAULT_RULES`).

    Raises:
        SeriesSelectionError: unreadable JSON or invalid rules, naming the file.
    """
    if source is None:
        return None
    if isinstance(source, Mapping):
        return check_rules(source)
    path = Path(source)
    if path.is_dir():
        path = path / "configs" / "metadata.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SeriesSelectionError(f"series selection rules {path}: cannot read JSON ({e})") from None
    if isinstance(data, Mapping) and "selections" not in data:
        if METADATA_KEY not in data:
            return None
        data = data[METADATA_KEY]
    try:
        return check_rules(data)
    except SeriesSelectionError as e:
        raise SeriesSelectionError(f"series selection rules {path}: {e}") from None


def orientation_name(iop: Sequence[float]) -> str:
    """``Axial``/``Coronal``/``Sagittal``: the patient axis closest to the normal of ImageOrientationPatient."""
    v = np.asarray([float(x) for x in iop], float)
    if v.shape != (6,):
        raise ValueError(f"ImageOrientationPatient needs 6 numbers, got {list(iop)!r}")
    normal = np.cross(v[:3], v[3:])
    return _ORIENTATIONS[int(np.argmax(np.abs(normal)))].capitalize()


def _value(c: Candidate, key: str) -> Any:
    h = c.header
    if h is None:
        return None
    if key == "ImageOrientationPatient":
        iop = h.get("ImageOrientationPatient", None) if hasattr(h, "get") else None
        if iop is None and "SharedFunctionalGroupsSequence" in h:  # enhanced multi-frame
            try:
                iop = h.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
            except (AttributeError, IndexError, KeyError):
                iop = None
        try:
            return orientation_name(iop) if iop is not None else None
        except (TypeError, ValueError):
            return None
    v = h.get(key, None) if hasattr(h, "get") else None
    return getattr(v, "value", v)  # a pydicom DataElement (Dataset.get by keyword gives the value already)


def _fails(value: Any, wanted: Any) -> str | None:
    """Why ``value`` fails the condition ``wanted`` (None: it holds)."""
    if value is None or value == "" or (isinstance(value, (list, tuple)) and not value):
        return "absent"
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        x = float(value)
        if isinstance(wanted, list) and len(wanted) == 2 and isinstance(wanted[1], str):
            ok = bool(_OPS[wanted[1]](x, float(wanted[0]))) if wanted[1] in _OPS else False
        elif isinstance(wanted, list) and len(wanted) == 2:
            ok = float(wanted[0]) <= x <= float(wanted[1])
        elif isinstance(wanted, str):
            ok = re.search(wanted, str(value)) is not None
        else:
            ok = x == float(wanted)
        return None if ok else f"{value:g} is not {wanted}" if isinstance(value, float) else f"{value} is not {wanted}"
    if isinstance(value, str):
        w = str(wanted)
        ok = value.casefold() == w.casefold() or re.search(w, value, re.IGNORECASE) is not None
        return None if ok else f"'{value}' does not match {w!r}"
    if isinstance(value, Sequence):
        have = {str(v).strip().lower() for v in value}
        terms = [str(t).lower() for t in (wanted if isinstance(wanted, list) else [wanted])]
        missing = [t for t in terms if not t.startswith("!") and t not in have]
        banned = [t[1:] for t in terms if t.startswith("!") and t[1:] in have]
        if missing or banned:
            got = "\\".join(str(v) for v in value)
            return f"{got} " + ("lacks " + ", ".join(t.upper() for t in missing) if missing else "has "
                                + ", ".join(t.upper() for t in banned))
        return None
    return f"{value!r} cannot be compared with {wanted!r}"


def _why_not(c: Candidate, selection: Mapping[str, Any]) -> str | None:
    """Why series ``c`` does not satisfy ``selection`` (None: it does)."""
    m = int(selection.get("min_slices", 0) or 0)
    if c.n_images < m:
        return f"{c.n_images} images < min_slices {m}"
    for key, wanted in (selection.get("conditions") or {}).items():
        if wanted in (None, "", []):
            continue
        why = _fails(_value(c, key), wanted)
        if why is not None:
            return f"{key} {why}"
    return None


def _among_matched(matched: list[Candidate], name: str, by_count: bool, skipped: list, where: str) -> SeriesChoice:
    """The one series of those satisfying selection ``name`` (the most images when ``by_count``); a tie is refused."""
    if len(matched) == 1:
        return SeriesChoice(matched[0], f"the only series satisfying '{name}'", skipped)
    ranked = sorted(matched, key=lambda c: (-c.n_images, c.uid))
    if by_count and ranked[0].n_images > ranked[1].n_images:
        skipped += [(c, f"satisfies '{name}' with fewer images ({c.n_images} < {ranked[0].n_images})")
                    for c in ranked[1:]]
        return SeriesChoice(ranked[0], f"satisfies '{name}' with the most images", skipped)
    tied = [c for c in ranked if not by_count or c.n_images == ranked[0].n_images]
    raise SeriesSelectionError(
        f"{where}: {len(tied)} image series satisfy '{name}' equally well: {', '.join(c.uid for c in tied)}; "
        "pick one with --series UID (series_uid=...) or move each series into its own folder; the series: "
        + "; ".join(c.describe() for c in tied))


def select_series(candidates: Sequence[Candidate], rules: Mapping[str, Any] | None = None,
                  series_uid: str | None = None, where: str = "study") -> SeriesChoice:
    """Choose one series of ``candidates`` by ``rules`` (module docstring); ``series_uid`` overrides.

    Args:
        candidates: every series of the study, non-image objects included (they are listed as skipped).
        rules: selection rules (None: :data:`DEFAULT_RULES`).
        series_uid: a SeriesInstanceUID to use regardless of the rules.
        where: the folder or study named in messages.

    Returns:
        The :class:`SeriesChoice`.

    Raises:
        SeriesSelectionError: no image series, a ``series_uid`` absent from a study with several image series, no
            series satisfying the rules, or a tie; one line naming ``where`` and listing the series concerned.
    """
    rules = check_rules(rules) if rules is not None else DEFAULT_RULES
    images = [c for c in candidates if c.image]
    non_image = [(c, "non-image object") for c in candidates if not c.image]
    if not images:
        raise SeriesSelectionError(f"{where}: no image series found (only non-image objects or no DICOM)")
    if series_uid is not None:
        chosen = next((c for c in images if c.uid == series_uid), None)
        if chosen is not None:
            return SeriesChoice(chosen, "requested with --series", [(c, "not the requested --series") for c in images
                                                                    if c is not chosen] + non_image)
    usable = [c for c in images if not c.localizer_only] or images
    skipped = [(c, "localizer/scout images only") for c in images if c not in usable] + non_image
    if series_uid is not None:
        if len(usable) != 1:
            raise SeriesSelectionError(f"{where}: series {series_uid} is not in it; it holds {len(usable)} image "
                                       "series: " + "; ".join(c.describe() for c in usable))
        logger.warning("%s: series %s not found; using the only image series %s", where, series_uid, usable[0].uid)
        return SeriesChoice(usable[0], f"the only image series (requested {series_uid} is absent)", skipped)
    if len(usable) == 1:
        return SeriesChoice(usable[0], "the only image series", skipped)
    first_reasons: dict[str, str] = {}
    for i, sel in enumerate(rules["selections"]):
        name = str(sel.get("name", "") or f"selection {i + 1}")
        reasons = {c.uid: _why_not(c, sel) for c in usable}
        for c in usable:
            first_reasons.setdefault(c.uid, f"fails '{name}': {reasons[c.uid]}")
        matched = [c for c in usable if reasons[c.uid] is None]
        if not matched:
            continue
        skipped += [(c, f"fails '{name}': {reasons[c.uid]}") for c in usable if reasons[c.uid] is not None]
        return _among_matched(matched, name, bool(rules.get("sort_by_sop_instance_count")), skipped, where)
    raise SeriesSelectionError(
        f"{where}: none of its {len(usable)} image series satisfies the selection rules; pick one with --series UID: "
        + "; ".join(f"{c.describe()} {first_reasons[c.uid]}" for c in usable))
