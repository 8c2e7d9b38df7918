"""ISIC 2017 (Part 1, lesion segmentation) importer: dermoscopy JPEGs + binary masks -> fixed-size PNG pairs.

Layout read (``--src`` is the folder holding the extracted archives; folders are found by their contents, up to
three levels deep)::

    ISIC-2017_Training_Data/ISIC_0000000.jpg                 images (also Validation/Test folders, any name)
    ISIC-2017_Training_Data/ISIC_0000000_superpixels.png     ignored
    ISIC-2017_Training_Data/ISIC-2017_Training_Data_metadata.csv   ignored
    ISIC-2017_Training_Part1_GroundTruth/ISIC_0000000_segmentation.png   masks, 0/255

Images and masks pair by ISIC id wherever they are. Every case is resized to ``size x size`` keeping the aspect
ratio. Default ``resize="pad"``: the longer side is scaled to ``size`` and the shorter one padded symmetrically with
zeros (black for the image, background for the mask), so no lesion pixel is ever cut off (lesions often touch the
image border in ISIC). ``resize="crop"`` scales the shorter side to ``size`` and centre-crops instead (more pixels on
the lesion, but a lesion at the border can lose a part). Images use PIL bilinear (anti-aliased when shrinking),
masks nearest neighbour, then ``> 127 -> 1`` (a 0/1 mask is accepted as is).

Outputs: ``OUT/images/<id>.png`` (RGB uint8), ``OUT/labels/<id>.png`` (uint8 0/1), ``OUT/datalist.json``
(``tensorImageSize`` 2D, spacing null) and ``OUT/report.csv``, with the robustness rules of ``prepare``: worker
processes and a progress bar, atomic writes, a failing case (e.g. an image without a mask) reported while the others
finish (exit status 1), re-runs skip finished cases unless ``overwrite``, output inside the source refused.
"""

from __future__ import annotations

import logging
import os
import re
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from data_prep.atomic import atomic_path, check_output_not_inside_input, remove_stale_temporaries
from data_prep.datalist import write_datalist
from data_prep.errors import describe as describe_error
from data_prep.errors import one_line
from data_prep.folds import check_folds
from data_prep.importers.common import LayoutError, check_source, describe, is_phantom_source
from data_prep.progress import case_progress
from data_prep.report import CaseResult, finish_run, format_tuple, read_report

__all__ = ["IsicCase", "find_isic2017", "letterbox", "import_isic2017", "DEFAULT_SIZE", "RESIZE_MODES"]

logger = logging.getLogger(__name__)

DEFAULT_SIZE = 192
RESIZE_MODES = ("pad", "crop")
_IMAGE = re.compile(r"^(ISIC_\d{7})\.(jpe?g|png)$", re.IGNORECASE)
_MASK = re.compile(r"^(ISIC_\d{7})_segmentation\.png$", re.IGNORECASE)
_MAX_DEPTH = 3


@dataclass(frozen=True)
class IsicCase:
    """One image and its mask (``mask`` None when no mask was found: the case fails with a clear error)."""

    name: str
    image: Path
    mask: Path | None
    mask_dirs: tuple[str, ...] = ()


def find_isic2017(src: str | os.PathLike) -> list[IsicCase]:
    """Find ISIC images and masks below ``src`` and pair them by id (sorted by id).

    Raises:
        FileNotFoundError: ``src`` does not exist.
        LayoutError: no ``ISIC_XXXXXXX.jpg``, no ``*_segmentation.png`` at all, or an id found twice.
    """
    root = check_source(src)
    images: dict[str, Path] = {}
    masks: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < _MAX_DEPTH else []
        for f in sorted(filenames):
            if f.startswith("."):
                continue
            for pattern, found in ((_IMAGE, images), (_MASK, masks)):
                m = pattern.match(f)
                if m:
                    key = m.group(1).upper()
                    if key in found:
                        raise LayoutError(f"ISIC id {key} found twice: {found[key]} and {Path(dirpath) / f}")
                    found[key] = Path(dirpath) / f
    expected = (
        "expected ISIC 2017 folders: images ISIC_XXXXXXX.jpg (e.g. in ISIC-2017_Training_Data/) and masks "
        "ISIC_XXXXXXX_segmentation.png (e.g. in ISIC-2017_Training_Part1_GroundTruth/), both below --src"
    )
    if not images:
        raise LayoutError(f"no ISIC_XXXXXXX.jpg image found below {root} ({_MAX_DEPTH} levels deep); {expected}")
    if not masks:
        raise LayoutError(f"no ISIC_XXXXXXX_segmentation.png mask found below {root}; {expected}")
    mask_dirs = tuple(sorted({str(p.parent) for p in masks.values()}))
    extra = sorted(set(masks) - set(images))
    if extra:
        logger.warning("%d mask(s) without an image, ignored: %s", len(extra), ", ".join(extra[:10]))
    missing = sorted(set(images) - set(masks))
    if missing:
        logger.warning("%d image(s) without a mask (reported as failed): %s", len(missing), ", ".join(missing[:10]))
    return [IsicCase(k, images[k], masks.get(k), mask_dirs) for k in sorted(images)]


def letterbox(image, size: int, mode: str, resample) -> tuple:
    """Resize a PIL image to ``size x size`` keeping its aspect ratio (``"pad"`` or ``"crop"``; see module doc).

    Returns:
        ``(PIL image of size x size, (new_w, new_h), (offset_x, offset_y))`` where the offsets locate the resized
        source in the output (pad, >= 0) or the output in the resized source (crop, >= 0).
    """
    from PIL import Image

    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    w, h = image.size
    scale = size / (max(w, h) if mode == "pad" else min(w, h))
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    if mode == "pad":
        nw, nh = min(nw, size), min(nh, size)
    else:
        nw, nh = max(nw, size), max(nh, size)
    resized = image.resize((nw, nh), resample=resample)
    if mode == "pad":
        ox, oy = (size - nw) // 2, (size - nh) // 2
        canvas = Image.new(image.mode, (size, size), 0)
        canvas.paste(resized, (ox, oy))
        return canvas, (nw, nh), (ox, oy)
    ox, oy = (nw - size) // 2, (nh - size) // 2
    return resized.crop((ox, oy, ox + size, oy + size)), (nw, nh), (ox, oy)


def _complete(path: Path, size: int) -> bool:
    from PIL import Image

    if not path.is_file():
        return False
    try:
        with Image.open(path) as im:
            return im.size == (size, size)
    except (OSError, ValueError):
        return False


def process_isic_case(case: IsicCase, out_dir: str | os.PathLike, size: int, mode: str, overwrite: bool) -> CaseResult:
    """Resize one image/mask pair and write the two PNGs; never raises for a bad case (error in the row)."""
    from PIL import Image

    t0 = time.perf_counter()
    out = Path(out_dir)
    img_rel, lab_rel = f"images/{case.name}.png", f"labels/{case.name}.png"
    row = CaseResult(case=case.name, status="failed", image=img_rel, label=lab_rel, source_orientation="2D")
    try:
        if not overwrite and _complete(out / img_rel, size) and _complete(out / lab_rel, size):
            row.status, row.output_size = "skipped", format_tuple((size, size))
            row.seconds = time.perf_counter() - t0
            return row
        if case.mask is None:
            raise FileNotFoundError(
                f"no mask {case.name}_segmentation.png for image {case.image} (looked in: {', '.join(case.mask_dirs)})"
            )
        with Image.open(case.image) as im:
            im.load()
            image = im.convert("RGB")
        with Image.open(case.mask) as mk:
            mk.load()
            mask = mk.convert("L")
        row.source_size = format_tuple(image.size)
        if mask.size != image.size:
            raise ValueError(f"mask {case.mask} is {format_tuple(mask.size)} pixels but image {case.image} is "
                             f"{format_tuple(image.size)}")
        m = np.asarray(mask)
        if m.max(initial=0) <= 1 and m.any():  # a 0/1 mask rather than ISIC's 0/255
            mask = Image.fromarray((m * 255).astype(np.uint8))
        img_out, _, _ = letterbox(image, size, mode, Image.Resampling.BILINEAR)
        mask_out, _, _ = letterbox(mask, size, mode, Image.Resampling.NEAREST)
        binary = (np.asarray(mask_out) > 127).astype(np.uint8)
        if not binary.any():
            logger.warning("case %s: the mask is empty after resizing", case.name)
        with atomic_path(out / lab_rel) as tmp:
            Image.fromarray(binary).save(tmp, format="PNG")
        with atomic_path(out / img_rel) as tmp:
            img_out.save(tmp, format="PNG")
        row.output_size = format_tuple((size, size))
        row.status = "ok"
    except Exception as e:
        logger.debug("case %s failed:\n%s", case.name, traceback.format_exc())
        row.error = one_line(describe_error(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}")
        logger.error("case %s failed: %s", case.name, row.error)
    row.seconds = time.perf_counter() - t0
    return row


def _run(args: tuple) -> CaseResult:
    return process_isic_case(*args)


def import_isic2017(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    size: int = DEFAULT_SIZE,
    resize: str = "pad",
    workers: int = 1,
    overwrite: bool = False,
    seed: int = 0,
    folds: int | None = None,
    progress: bool = True,
) -> int:
    """Import ISIC 2017 Part 1 from ``src`` into ``out``; return the exit code (1 if any case failed, else 0).

    Args:
        src: folder holding the image and ground-truth folders.
        out: output folder (must not be inside ``src``).
        size: output side in pixels (default 192).
        resize: ``"pad"`` (default) or ``"crop"`` (see module doc).
        workers: worker processes.
        overwrite: redo cases whose outputs exist.
        seed: train/validation/test split seed.
        folds: ``None`` (one split) or ``k >= 2`` seeded cross-validation folds in the datalist.
        progress: tqdm progress bar on stderr.

    Raises:
        FileNotFoundError, LayoutError: missing source, unrecognised layout. ValueError: bad options or output
        folder inside the source.
    """
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8 pixels, got {size!r}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    cases = find_isic2017(src)
    if folds is not None:
        check_folds(folds, len(cases))
    out_p = Path(out)
    check_output_not_inside_input(out_p, [src], protected_subdirs=("images", "labels"))
    for sub in ("images", "labels"):
        (out_p / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out_p / sub)
    remove_stale_temporaries(out_p)
    previous = {r.case: r for r in read_report(out_p / "report.csv")}
    jobs = [(c, out_p, size, resize, overwrite) for c in cases]
    rows: list[CaseResult] = []
    bar = case_progress(len(jobs), "import isic2017", progress)
    try:
        if workers == 1 or len(jobs) == 1:
            for j in jobs:
                rows.append(_run(j))
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
                for r in pool.map(_run, jobs, chunksize=max(1, len(jobs) // (8 * workers))):
                    rows.append(r)
                    bar.update(1)
    finally:
        bar.close()
    for i, r in enumerate(rows):
        prev = previous.get(r.case)
        if r.status == "skipped" and prev is not None and prev.status in ("ok", "skipped"):
            rows[i] = replace(r, source_size=prev.source_size)
    good = [r for r in rows if r.status in ("ok", "skipped")]
    if good:
        details = f"RGB resized to {size}x{size} ({resize}), masks binarised 0/1"
        write_datalist(
            out_p,
            [{"image": r.image, "label": r.label} for r in good],
            seed,
            name="isic2017",
            description=describe("ISIC 2017 Part 1", Path(src), details, is_phantom_source(Path(src))),
            labels={"0": "background", "1": "lesion"},
            modality={"0": "R", "1": "G", "2": "B"},
            spacing=None,
            tensor_image_size="2D",
            folds=folds,
        )
    return finish_run(out_p, rows, "imported ISIC 2017")


