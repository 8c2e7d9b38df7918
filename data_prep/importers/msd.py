"""Medical Segmentation Decathlon importers: Task03_Liver and Task05_Prostate.

Layout read (as downloaded from the MSD and extracted)::

    Task03_Liver/                       Task05_Prostate/
      dataset.json                        dataset.json
      imagesTr/liver_N.nii.gz             imagesTr/prostate_NN.nii.gz   4D (x, y, z, 2): channel 0 T2, 1 ADC
      labelsTr/liver_N.nii.gz             labelsTr/prostate_NN.nii.gz   0 background, 1 PZ, 2 TZ
      imagesTs/liver_N.nii.gz             imagesTs/...                  (no labels)

``--src`` may be the task folder itself or a folder holding it. macOS ``._*`` files (present in the official tar
files) and other hidden files are ignored. Training images are paired with ``labelsTr`` by file name; an image whose
label is missing becomes a failed case in ``report.csv`` (the others are prepared). ``imagesTs`` holds no labels and
is ignored unless ``include_unlabelled`` (then listed under ``"test"`` only).

Label handling (what the SAT paper segments): liver 0/1/2 -> tumour merged into liver, binary ``{0, 1}`` (keep 0/1/2
with ``keep_tumour``); prostate PZ + TZ -> one gland label 1 (keep 1/2 with ``keep_zones``) and channel T2 only
(both with ``channels="all"``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.importers.common import LayoutError, check_source, describe, is_phantom_source, visible_files
from data_prep.pipeline import CaseSpec, prepare_cases

__all__ = ["MsdLayout", "find_msd", "msd_liver_cases", "msd_prostate_cases", "import_msd_liver",
           "import_msd_prostate", "MSD_TASKS"]

logger = logging.getLogger(__name__)

#: dataset key -> (task folder name, file prefix)
MSD_TASKS = {"liver": ("Task03_Liver", "liver"), "prostate": ("Task05_Prostate", "prostate")}


@dataclass
class MsdLayout:
    """What was found in an MSD task folder.

    Attributes:
        task_dir: the task folder (holding ``imagesTr``).
        training: ``(case, image, label)`` for each training image; ``label`` may not exist (a failed case).
        unlabelled: ``(case, image)`` for each ``imagesTs`` image.
        dataset_json: the parsed ``dataset.json`` (empty if absent).
    """

    task_dir: Path
    training: list[tuple[str, Path, Path]] = field(default_factory=list)
    unlabelled: list[tuple[str, Path]] = field(default_factory=list)
    dataset_json: dict = field(default_factory=dict)

    def declared_labels(self, default: tuple[int, ...] = (0, 1, 2)) -> tuple[int, ...]:
        """The label values ``dataset.json`` declares (its ``labels`` keys), else the task's ``default``.

        A training label holding any other value is refused (it would be merged silently into the foreground).
        """
        labels = self.dataset_json.get("labels")
        if isinstance(labels, dict) and labels:
            try:
                return tuple(sorted(int(k) for k in labels))
            except (TypeError, ValueError):
                logger.warning("%s: label keys %s are not integers: using the task's %s",
                               self.task_dir / "dataset.json", list(labels), default)
        return default


def _nifti_cases(folder: Path, prefix: str) -> dict[str, Path]:
    pattern = re.compile(rf"^({re.escape(prefix)}_\d+)\.nii(\.gz)?$")
    out: dict[str, Path] = {}
    for p in visible_files(folder):
        m = pattern.match(p.name)
        if m:
            if m.group(1) in out:
                raise LayoutError(f"{folder} holds both {out[m.group(1)].name} and {p.name} for case {m.group(1)}")
            out[m.group(1)] = p
    return out


def find_msd(src: str | os.PathLike, task: str) -> MsdLayout:
    """Locate and list an MSD task folder.

    Args:
        src: the task folder (``.../Task03_Liver``) or a folder containing it.
        task: ``"liver"`` or ``"prostate"``.

    Returns:
        The :class:`MsdLayout`.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        LayoutError: ``src`` is empty or does not hold the task's layout; the message says what was expected.
    """
    if task not in MSD_TASKS:
        raise ValueError(f"unknown MSD task {task!r}: expected one of {sorted(MSD_TASKS)}")
    folder, prefix = MSD_TASKS[task]
    root = check_source(src)
    expected = (
        f"expected the MSD {folder} layout: {root}/imagesTr/{prefix}_N.nii.gz with {root}/labelsTr/{prefix}_N.nii.gz "
        f"(or the same inside {root}/{folder}/)"
    )
    candidates = [root, root / folder]
    task_dir = next((c for c in candidates if (c / "imagesTr").is_dir()), None)
    if task_dir is None:
        found = ", ".join(sorted(p.name for p in root.iterdir())[:8])
        raise LayoutError(f"no imagesTr folder in {root} (found: {found}); {expected}")
    images = _nifti_cases(task_dir / "imagesTr", prefix)
    if not images:
        others = [p.name for p in visible_files(task_dir / "imagesTr")][:5]
        raise LayoutError(
            f"{task_dir / 'imagesTr'} holds no {prefix}_N.nii.gz image"
            + (f" (found e.g. {', '.join(others)}: another dataset?)" if others else " (it is empty)")
            + f"; {expected}"
        )
    if not (task_dir / "labelsTr").is_dir():
        raise LayoutError(f"no labelsTr folder beside {task_dir / 'imagesTr'}; {expected}")
    labels = _nifti_cases(task_dir / "labelsTr", prefix)
    layout = MsdLayout(task_dir=task_dir)
    for name, img in images.items():
        lab = labels.get(name, task_dir / "labelsTr" / f"{name}.nii.gz")
        if name not in labels:
            logger.warning("%s has no label in %s: it will be reported as a failed case", img, task_dir / "labelsTr")
        layout.training.append((name, img, lab))
    extra = sorted(set(labels) - set(images))
    if extra:
        logger.warning("%d label(s) in %s without an image, ignored: %s", len(extra), task_dir / "labelsTr",
                       ", ".join(extra[:10]))
    layout.unlabelled = sorted(_nifti_cases(task_dir / "imagesTs", prefix).items())
    ds = task_dir / "dataset.json"
    if ds.is_file():
        try:
            layout.dataset_json = json.loads(ds.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            logger.warning("cannot read %s (%s): continuing from the folder contents", ds, e)
    return layout


def _with_unlabelled(layout: MsdLayout, specs: list[CaseSpec], include_unlabelled: bool, **kw) -> list[CaseSpec]:
    if include_unlabelled:
        specs += [CaseSpec(name, img, None, **kw) for name, img in layout.unlabelled]
    elif layout.unlabelled:
        logger.info("ignoring %d unlabelled image(s) in %s (use --include-unlabelled to prepare them)",
                    len(layout.unlabelled), layout.task_dir / "imagesTs")
    return specs


def msd_liver_cases(
    layout: MsdLayout, *, keep_tumour: bool = False, include_unlabelled: bool = False
) -> tuple[list[CaseSpec], dict[str, str]]:
    """Case specs and datalist label names for Task03_Liver (tumour merged into liver unless ``keep_tumour``)."""
    label_map = None if keep_tumour else {2: 1}
    declared = layout.declared_labels()
    specs = [CaseSpec(name, img, lab, label_map=label_map, label_values=declared) for name, img, lab in layout.training]
    names = {"0": "background", "1": "liver"}
    if keep_tumour:
        names["2"] = "tumour"
    return _with_unlabelled(layout, specs, include_unlabelled), names


def msd_prostate_cases(
    layout: MsdLayout, *, channels: str = "t2", keep_zones: bool = False, include_unlabelled: bool = False
) -> tuple[list[CaseSpec], dict[str, str], dict[str, str]]:
    """Case specs, label names and modality for Task05_Prostate.

    Args:
        layout: the found layout.
        channels: ``"t2"`` (channel 0 only, default) or ``"all"`` (T2 and ADC, written 4D channel last).
        keep_zones: keep PZ (1) and TZ (2); default merges them into one prostate label 1.
        include_unlabelled: also prepare ``imagesTs`` (unlabelled, listed under test).
    """
    if channels not in ("t2", "all"):
        raise ValueError(f"channels must be 't2' or 'all', got {channels!r}")
    channel = 0 if channels == "t2" else None
    modality = {"0": "T2"} if channels == "t2" else {"0": "T2", "1": "ADC"}
    src_modality = layout.dataset_json.get("modality")
    if isinstance(src_modality, dict) and str(src_modality.get("0", "T2")).upper() != "T2":
        logger.warning("%s says channel 0 is %r, not T2", layout.task_dir / "dataset.json", src_modality.get("0"))
    label_map = None if keep_zones else {2: 1}
    declared = layout.declared_labels()
    specs = [CaseSpec(name, img, lab, image_channel=channel, label_map=label_map, label_values=declared)
             for name, img, lab in layout.training]
    names = {"0": "background", "1": "PZ", "2": "TZ"} if keep_zones else {"0": "background", "1": "prostate"}
    return _with_unlabelled(layout, specs, include_unlabelled, image_channel=channel), names, modality


def import_msd_liver(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    keep_tumour: bool = False,
    include_unlabelled: bool = False,
    **prepare_kwargs,
) -> int:
    """Import MSD Task03_Liver from ``src`` into ``out`` (see :func:`data_prep.pipeline.prepare_cases`).

    Returns:
        The exit code: 0 if every case was prepared or skipped, 1 if any failed.

    Raises:
        FileNotFoundError, LayoutError: missing source or unrecognised layout.
    """
    layout = find_msd(src, "liver")
    specs, names = msd_liver_cases(layout, keep_tumour=keep_tumour, include_unlabelled=include_unlabelled)
    details = "labels 0 background, 1 liver, 2 tumour" if keep_tumour else "tumour (2) merged into liver (1)"
    phantom = is_phantom_source(layout.task_dir, layout.task_dir.parent)
    return prepare_cases(
        specs,
        out,
        labels=names,
        modality={"0": "CT"},
        name="msd-liver",
        description=describe("MSD Task03_Liver", layout.task_dir, details, phantom),
        inputs=[Path(src)],
        **prepare_kwargs,
    )


def import_msd_prostate(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    channels: str = "t2",
    keep_zones: bool = False,
    include_unlabelled: bool = False,
    **prepare_kwargs,
) -> int:
    """Import MSD Task05_Prostate from ``src`` into ``out`` (T2 and whole gland by default); returns the exit code."""
    layout = find_msd(src, "prostate")
    specs, names, modality = msd_prostate_cases(
        layout, channels=channels, keep_zones=keep_zones, include_unlabelled=include_unlabelled
    )
    details = ("channels T2 + ADC" if channels == "all" else "channel 0 (T2) only") + (
        "; labels 1 PZ, 2 TZ" if keep_zones else "; PZ (1) and TZ (2) merged into prostate (1)"
    )
    phantom = is_phantom_source(layout.task_dir, layout.task_dir.parent)
    return prepare_cases(
        specs,
        out,
        labels=names,
        modality=modality,
        name="msd-prostate",
        description=describe("MSD Task05_Prostate", layout.task_dir, details, phantom),
        inputs=[Path(src)],
        **prepare_kwargs,
    )
