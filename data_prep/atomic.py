"""Atomic file output and input/output folder safety checks.

Every file ``data_prep`` writes goes through :func:`atomic_path`: the writer fills a temporary file in the destination
folder, and only a complete file is renamed (``os.replace``, atomic on POSIX and Windows within one file system) to
its final name. A crash or a kill therefore leaves either the previous file or the new one, never a partial file under
the final name; at worst a hidden ``.<name>.tmp-*`` file remains, which :func:`remove_stale_temporaries` deletes.

Example:
    >>> with atomic_path(out_dir / "images" / "case1.nii.gz") as tmp:   # doctest: +SKIP
    ...     SimpleITK.WriteImage(image, str(tmp))
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "check_output_not_inside_input",
    "is_temporary",
    "remove_stale_temporaries",
    "TMP_MARKER",
]

logger = logging.getLogger(__name__)

TMP_MARKER = ".tmp-"


def _full_suffix(name: str) -> str:
    """``case.nii.gz`` -> ``.nii.gz``; ``a.nrrd`` -> ``.nrrd``; ``x`` -> ``""`` (writers pick formats by suffix)."""
    lower = name.lower()
    for double in (".nii.gz", ".tar.gz"):
        if lower.endswith(double):
            return name[-len(double) :]
    return Path(name).suffix


def is_temporary(path: str | os.PathLike) -> bool:
    """True for a temporary file made by :func:`atomic_path` (hidden name containing ``.tmp-``)."""
    name = Path(path).name
    return name.startswith(".") and TMP_MARKER in name


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike, *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; on success rename it to ``final_path``, on error delete it.

    The temporary name keeps the final suffix (``.nii.gz``, ``.csv``...) so writers that choose the format from the
    extension (SimpleITK, nibabel) behave as for the final name.

    Args:
        final_path: where the complete file must end up. An existing file there is replaced only on success.
        make_parents: create the parent folder if missing (default True).

    Yields:
        The temporary path to write to (it does not exist yet).

    Raises:
        FileNotFoundError: if the writer did not create the temporary file.
    """
    final = Path(final_path)
    if make_parents:
        final.parent.mkdir(parents=True, exist_ok=True)
    suffix = _full_suffix(final.name)
    stem = final.name[: len(final.name) - len(suffix)] if suffix else final.name
    tmp = final.parent / f".{stem}{TMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer did not create {tmp} (destined for {final})")
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(final_path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``final_path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(final_path) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporaries left in ``folder`` by a killed run; return what was removed (missing folder: nothing)."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if p.is_file() and is_temporary(p):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    if removed:
        logger.info("removed %d stale temporary file(s) in %s left by an interrupted run", len(removed), folder)
    return removed


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output_not_inside_input(
    out: str | os.PathLike, inputs: Iterable[str | os.PathLike], *, protected_subdirs: Iterable[str] = ()
) -> None:
    """Refuse an output folder that would write into an input.

    Refused: ``out`` equal to or inside an input folder (or equal to an input file); and, with ``protected_subdirs``
    (e.g. ``("images", "labels")``), an input lying inside ``out/<subdir>`` where outputs are written. Paths are
    compared after resolving symbolic links. ``out`` need not exist yet.

    Args:
        out: the output folder.
        inputs: input files or folders (missing ones are ignored).
        protected_subdirs: sub-folders of ``out`` that receive outputs.

    Raises:
        ValueError: naming the output folder and the input it collides with.
    """
    out_r = Path(out).expanduser().resolve()
    for item in inputs:
        p = Path(item).expanduser()
        if not p.exists():
            continue
        p_r = p.resolve()
        if p_r.is_dir() and _is_within(out_r, p_r):
            raise ValueError(
                f"output folder {out} is inside the input folder {item}: choose an output folder outside the inputs "
                "(inputs are never modified)"
            )
        if p_r == out_r:
            raise ValueError(f"output folder {out} is the input {item}")
        for sub in protected_subdirs:
            if _is_within(p_r, out_r / sub):
                raise ValueError(
                    f"input {item} lies inside {out_r / sub}, where outputs are written: it could be overwritten; "
                    "choose another output folder"
                )
