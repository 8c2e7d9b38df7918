"""Write phantom datasets in the public datasets' own on-disk layouts, so the dataset importers read them unchanged.

- ``write_msd_liver``: ``Task03_Liver/{imagesTr,labelsTr,imagesTs}/liver_N.nii.gz`` + ``dataset.json`` (MSD)
- ``write_msd_prostate``: ``Task05_Prostate/...prostate_NN.nii.gz`` (4D, T2 + ADC) + ``dataset.json`` (MSD)
- ``write_isic2017``: ``ISIC-2017_Training_Data/ISIC_XXXXXXX.jpg`` (+ ``_superpixels.png``, metadata csv) and
  ``ISIC-2017_Training_Part1_GroundTruth/ISIC_XXXXXXX_segmentation.png`` (0/255)

Every dataset says it is a phantom: ``PHANTOM_README.txt`` in the output root, the NIfTI ``descrip`` field, and the
``description``/``reference``/``licence`` fields of ``dataset.json``. Case ``i`` of a task is drawn from
``numpy.random.default_rng([seed, task, i])``, so it does not depend on how many cases are written nor on the number
of worker processes, and the files are byte-identical for a given seed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from data_prep.atomic import atomic_path, atomic_write_text, remove_stale_temporaries
from data_prep.phantoms.ct_liver import LIVER_SHAPE, LIVER_SPACING, liver_ct_phantom
from data_prep.phantoms.mr_prostate import PROSTATE_SHAPE, PROSTATE_SPACING, prostate_mr_phantom
from data_prep.phantoms.skin import SKIN_SIZE, skin_phantom
from data_prep.phantoms.volume import PHANTOM_NOTICE, write_nifti
from data_prep.progress import case_progress
from data_prep.tasks import TASKS as DATA_TASKS
from data_prep.tasks import get_task

__all__ = [
    "TASKS",
    "DEFAULT_CASES",
    "README_NAME",
    "case_rng",
    "write_msd_liver",
    "write_msd_prostate",
    "write_isic2017",
    "write_phantom_dataset",
]

logger = logging.getLogger(__name__)

README_NAME = "PHANTOM_README.txt"
TASKS = tuple(DATA_TASKS)  # the tasks whose phantoms `python -m data_prep demo --task` writes
# default labelled cases and case-seed component of each phantom writer (the writer's own dataset, not a task)
DEFAULT_CASES = {"liver": 12, "prostate": 12, "skin": 24}
_TASK_SEED = {"liver": 3, "prostate": 5, "skin": 2017}

LIVER_DIR = "Task03_Liver"
PROSTATE_DIR = "Task05_Prostate"
ISIC_IMAGES_DIR = "ISIC-2017_Training_Data"
ISIC_MASKS_DIR = "ISIC-2017_Training_Part1_GroundTruth"


def case_rng(task: str, seed: int, index: int) -> np.random.Generator:
    """The generator of case ``index`` of ``task``: independent of the other cases."""
    return np.random.default_rng([int(seed), _TASK_SEED[task], int(index)])


@dataclass(frozen=True)
class _Job:
    task: str
    seed: int
    index: int
    paths: tuple[str, ...]  # image[, label]
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    vary_size: bool = True


def _run_job(job: _Job) -> float:
    """Generate and write one case; return seconds spent (runs in a worker process when workers > 1)."""
    t0 = time.perf_counter()
    rng = case_rng(job.task, job.seed, job.index)
    if job.task == "liver":
        v = liver_ct_phantom(rng, job.shape, job.spacing)
    elif job.task == "prostate":
        v = prostate_mr_phantom(rng, job.shape, job.spacing)
    else:
        v = skin_phantom(rng, job.shape, vary_size=job.vary_size)
        _write_isic_case(v.image, v.label, [Path(p) for p in job.paths])
        return time.perf_counter() - t0
    write_nifti(job.paths[0], v.image, v.spacing)
    if len(job.paths) > 1:
        write_nifti(job.paths[1], v.label, v.spacing)
    return time.perf_counter() - t0


def _write_isic_case(image: np.ndarray, mask: np.ndarray, paths: Sequence[Path]) -> None:
    from PIL import Image

    jpg, superpixels, seg = paths
    with atomic_path(jpg) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=92)
    # ISIC superpixel files encode a superpixel index i as RGB (i & 255, (i >> 8) & 255, i >> 16); a 16-px grid here
    h, w = mask.shape
    idx = (np.arange(h)[:, None] // 16) * ((w + 15) // 16) + (np.arange(w)[None, :] // 16)
    rgb = np.stack([idx & 255, (idx >> 8) & 255, idx >> 16], axis=-1).astype(np.uint8)
    with atomic_path(superpixels) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    with atomic_path(seg) as tmp:
        Image.fromarray(mask).save(tmp, format="PNG")


def _readme(task: str, dataset_dir: str, params: dict) -> str:
    return f"""\
SYNTHETIC PHANTOM DATA - NOT PATIENT DATA

This folder was written by `python -m data_prep demo --task {task}` (satgate-monai). Every image in it is a
{PHANTOM_NOTICE}: computer-generated anatomy-like shapes with random intensities, noise and artefacts, laid out
exactly like the public dataset ({dataset_dir}) so that `python -m data_prep import` reads it unchanged.
It is meant for demos, tests and quick CPU training runs of the satgate-monai bundles. Results obtained on it say
nothing about clinical performance. Do not mix it with real data.

The NIfTI files carry "satgate-monai phantom" in their header "descrip" field, and dataset.json says the same in its
description, reference and licence fields.

parameters: {json.dumps(params, sort_keys=True)}
"""


def _check_previous(root: Path, params: dict, overwrite: bool) -> None:
    """Refuse to mix datasets of different parameters (seed, sizes, case counts) in one folder unless ``overwrite``."""
    readme = root / README_NAME
    if overwrite or not readme.is_file():
        return
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("parameters: "):
            try:
                old = json.loads(line[len("parameters: ") :])
            except json.JSONDecodeError:
                return
            if old != params:
                raise ValueError(
                    f"{root} already holds a phantom dataset written with other parameters ({old}); use --overwrite "
                    "or another --out folder"
                )


def _remove_extra(folder: Path, pattern: str, keep: set[str]) -> None:
    """Delete phantom files of an earlier run (names matching ``pattern``) that the new run does not write."""
    regex = re.compile(pattern)
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if p.is_file() and regex.match(p.name) and p.name not in keep:
            p.unlink()
            logger.info("removed %s (an earlier phantom run's case)", p)


def _run_jobs(jobs: Sequence[_Job], workers: int, overwrite: bool, desc: str,
              progress: bool = True) -> tuple[int, float]:
    """Run the jobs whose outputs are missing (all with ``overwrite``), with a progress bar unless not ``progress``;
    return (number generated, seconds)."""
    todo = [j for j in jobs if overwrite or not all(Path(p).is_file() for p in j.paths)]
    t0 = time.perf_counter()
    bar = case_progress(len(todo), desc, enabled=progress)
    try:
        if workers <= 1 or len(todo) <= 1:
            for j in todo:
                _run_job(j)
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=get_context("spawn")) as pool:
                for _ in pool.map(_run_job, todo):
                    bar.update(1)
    finally:
        bar.close()
    return len(todo), time.perf_counter() - t0


def _check_common(cases: int, test_cases: int, workers: int) -> None:
    if not isinstance(cases, int) or cases < 1:
        raise ValueError(f"cases must be an integer >= 1, got {cases!r}")
    if not isinstance(test_cases, int) or test_cases < 0:
        raise ValueError(f"test_cases must be an integer >= 0, got {test_cases!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")


def _write_msd(
    task: str,
    out_root: str | os.PathLike,
    cases: int,
    seed: int,
    test_cases: int,
    shape: Sequence[int],
    spacing: Sequence[float],
    workers: int,
    overwrite: bool,
    dataset: dict,
    prefix: str,
    digits: int,
    progress: bool = True,
) -> Path:
    _check_common(cases, test_cases, workers)
    root = Path(out_root)
    folder = LIVER_DIR if task == "liver" else PROSTATE_DIR
    params = {"task": task, "seed": int(seed), "cases": cases, "test_cases": test_cases,
              "shape": [int(v) for v in shape], "spacing": [float(v) for v in spacing]}
    _check_previous(root, params, overwrite)
    task_dir = root / folder
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (task_dir / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(task_dir / sub)
    names = [f"{prefix}_{i:0{digits}d}" for i in range(cases + test_cases)]
    jobs = []
    for i, name in enumerate(names):
        if i < cases:
            paths = (str(task_dir / "imagesTr" / f"{name}.nii.gz"), str(task_dir / "labelsTr" / f"{name}.nii.gz"))
        else:
            paths = (str(task_dir / "imagesTs" / f"{name}.nii.gz"),)
        jobs.append(_Job(task, int(seed), i, paths, tuple(int(v) for v in shape), tuple(float(v) for v in spacing)))
    if overwrite and (root / README_NAME).is_file():
        written = {Path(p).name for j in jobs for p in j.paths}
        for sub in ("imagesTr", "labelsTr", "imagesTs"):
            _remove_extra(task_dir / sub, rf"^{prefix}_\d+\.nii\.gz$", written)
    n, seconds = _run_jobs(jobs, workers, overwrite, f"demo {task}", progress)
    doc = dict(dataset)
    doc.update(
        {
            "numTraining": cases,
            "numTest": test_cases,
            "training": [
                {"image": f"./imagesTr/{nm}.nii.gz", "label": f"./labelsTr/{nm}.nii.gz"} for nm in names[:cases]
            ],
            "test": [f"./imagesTs/{nm}.nii.gz" for nm in names[cases:]],
        }
    )
    atomic_write_text(task_dir / "dataset.json", json.dumps(doc, indent=4) + "\n")
    atomic_write_text(root / README_NAME, _readme(task, f"Medical Segmentation Decathlon {folder}", params))
    logger.info("wrote %d phantom case(s) to %s in %.1f s (%d already present)", n, task_dir, seconds,
                len(jobs) - n)
    return task_dir


def write_msd_liver(
    out_root: str | os.PathLike,
    cases: int = DEFAULT_CASES["liver"],
    seed: int = 0,
    *,
    test_cases: int = 2,
    shape: Sequence[int] = LIVER_SHAPE,
    spacing: Sequence[float] = LIVER_SPACING,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a CT liver phantom dataset as MSD ``Task03_Liver`` under ``out_root``; return the task folder.

    Args:
        out_root: output root; ``out_root/Task03_Liver`` and ``out_root/PHANTOM_README.txt`` are written.
        cases: labelled training cases (``imagesTr``/``labelsTr``, names ``liver_0``...).
        seed: dataset seed.
        test_cases: unlabelled cases in ``imagesTs`` (numbered after the training cases, as the MSD does).
        shape: volume size ``(x, y, z)`` (default 200 x 200 x 52).
        spacing: voxel size in mm (default 0.8 x 0.8 x 2.5).
        workers: worker processes.
        overwrite: regenerate existing files (default: keep them, a resumable run).
        progress: a progress bar over the cases on stderr.

    Raises:
        ValueError: bad arguments, or the folder holds a phantom dataset of other parameters (without overwrite).
    """
    dataset = {
        "name": "Liver",
        "description": f"Liver and liver tumour segmentation: {PHANTOM_NOTICE}",
        "reference": PHANTOM_NOTICE,
        "licence": f"{PHANTOM_NOTICE}; Apache-2.0 like satgate-monai",
        "relase": "phantom 1.0",  # sic: the MSD files spell it so
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {"0": "background", "1": "liver", "2": "cancer"},
    }
    return _write_msd("liver", out_root, cases, seed, test_cases, shape, spacing, workers, overwrite, dataset,
                      "liver", 0, progress)


def write_msd_prostate(
    out_root: str | os.PathLike,
    cases: int = DEFAULT_CASES["prostate"],
    seed: int = 0,
    *,
    test_cases: int = 2,
    shape: Sequence[int] = PROSTATE_SHAPE,
    spacing: Sequence[float] = PROSTATE_SPACING,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a two-channel (T2, ADC) prostate MR phantom dataset as MSD ``Task05_Prostate``; return the task folder.

    Images are 4D ``(x, y, z, 2)`` int16, labels ``(x, y, z)`` uint8 with 1 = PZ, 2 = TZ; names ``prostate_00``...
    Arguments as :func:`write_msd_liver` (default shape 192 x 192 x 18, spacing 0.625 x 0.625 x 3.6 mm).
    """
    dataset = {
        "name": "PROSTATE",
        "description": f"Prostate transitional zone and peripheral zone segmentation: {PHANTOM_NOTICE}",
        "reference": PHANTOM_NOTICE,
        "licence": f"{PHANTOM_NOTICE}; Apache-2.0 like satgate-monai",
        "relase": "phantom 1.0",  # sic: the MSD files spell it so
        "tensorImageSize": "4D",
        "modality": {"0": "T2", "1": "ADC"},
        "labels": {"0": "background", "1": "PZ", "2": "TZ"},
    }
    return _write_msd("prostate", out_root, cases, seed, test_cases, shape, spacing, workers, overwrite, dataset,
                      "prostate", 2, progress)


def write_isic2017(
    out_root: str | os.PathLike,
    cases: int = DEFAULT_CASES["skin"],
    seed: int = 0,
    *,
    size: Sequence[int] = SKIN_SIZE,
    vary_size: bool = True,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a dermoscopy phantom dataset in the ISIC 2017 Part 1 training layout under ``out_root``; return it.

    Writes ``ISIC-2017_Training_Data/ISIC_XXXXXXX.jpg`` (+ ``ISIC_XXXXXXX_superpixels.png`` and
    ``ISIC-2017_Training_Data_metadata.csv`` as the real download has them) and
    ``ISIC-2017_Training_Part1_GroundTruth/ISIC_XXXXXXX_segmentation.png`` (uint8 0/255). Phantom ids start at
    ``ISIC_9000000``, outside the real archive's range.

    Args:
        out_root: output root.
        cases: number of images.
        seed: dataset seed.
        size: base ``(height, width)`` (default 192 x 256); each image varies around it unless ``vary_size=False``.
        vary_size: see :func:`data_prep.phantoms.skin.skin_phantom`.
        workers: worker processes.
        overwrite: regenerate existing files.
        progress: a progress bar over the cases on stderr.
    """
    _check_common(cases, 0, workers)
    root = Path(out_root)
    params = {"task": "skin", "seed": int(seed), "cases": cases, "size": [int(v) for v in size],
              "vary_size": bool(vary_size)}
    _check_previous(root, params, overwrite)
    img_dir, gt_dir = root / ISIC_IMAGES_DIR, root / ISIC_MASKS_DIR
    for d in (img_dir, gt_dir):
        d.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(d)
    ids = [f"ISIC_{9000000 + i:07d}" for i in range(cases)]
    jobs = [
        _Job("skin", int(seed), i, (str(img_dir / f"{cid}.jpg"), str(img_dir / f"{cid}_superpixels.png"),
                                    str(gt_dir / f"{cid}_segmentation.png")), tuple(int(v) for v in size), (1.0, 1.0),
             bool(vary_size))
        for i, cid in enumerate(ids)
    ]
    if overwrite and (root / README_NAME).is_file():
        written = {Path(p).name for j in jobs for p in j.paths}
        _remove_extra(img_dir, r"^ISIC_9\d{6}(_superpixels\.png|\.jpg)$", written)
        _remove_extra(gt_dir, r"^ISIC_9\d{6}_segmentation\.png$", written)
    n, seconds = _run_jobs(jobs, workers, overwrite, "demo skin", progress)
    csv_text = "image_id,age_approximate,sex\n" + "".join(f"{cid},unknown,unknown\n" for cid in ids)
    atomic_write_text(img_dir / "ISIC-2017_Training_Data_metadata.csv", csv_text)
    atomic_write_text(root / README_NAME, _readme("skin", "ISIC 2017 Part 1 training data", params))
    logger.info("wrote %d phantom image(s) to %s in %.1f s (%d already present)", n, root, seconds, len(jobs) - n)
    return root


def write_phantom_dataset(task: str, out_root: str | os.PathLike, cases: int | None = None, seed: int = 0,
                          **kwargs) -> Path:
    """Write the phantom dataset of ``task`` (a :data:`data_prep.tasks.TASKS` name) with the task's writer above.

    ``cases=None`` takes the writer's default. Raises ``ValueError`` for an unknown task.
    """
    writer: Callable[..., Path] = get_task(task).phantom_writer()
    return writer(out_root, *(() if cases is None else (cases,)), seed=seed, **kwargs)
