"""Atomic file output (the one implementation the whole project uses) and input/output folder safety checks.

Every file the project writes goes through :func:`atomic_path` (or its helpers :func:`atomic_write`,
:func:`atomic_write_text`, :func:`atomic_write_bytes`, :func:`atomic_copy`): the writer fills a temporary file in
the destination folder; only when the writer returned, the optional ``verify`` accepted the file, and the data were
flushed to disk (``fsync``) is it renamed (``os.replace``, atomic within one file system) to its final name, and the
folder entry is flushed too. A crash, a kill or a full disk therefore leaves either the previous file or the new
one, never a partial file under the final name; at worst a hidden temporary remains, which
:func:`remove_stale_temporaries` deletes (every run that writes into a folder calls it first).

One temporary-name scheme: ``.<stem>.tmp-<pid>-<8 hex><suffix>`` (the final suffix is kept, so writers that pick
the format from the extension behave as for the final name). Permissions: those of the file being replaced, or
``0666 & ~umask`` for a new file (what ``open`` gives), never ``mkstemp``'s 0600.

Example:
    >>> with atomic_path(out_dir / "images" / "case1.nii.gz") as tmp:   # doctest: +SKIP
    ...     SimpleITK.WriteImage(image, str(tmp))
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = [
    "atomic_copy",
    "atomic_path",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_not_inside_input",
    "fsync_dir",
    "is_temporary",
    "naming_the_file",
    "remove_stale_temporaries",
    "temporary_path",
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
    """True for a temporary file made by :func:`temporary_path` (hidden name containing ``.tmp-``)."""
    name = Path(path).name
    return name.startswith(".") and TMP_MARKER in name


def temporary_path(final_path: str | os.PathLike, suffix: str | None = None) -> Path:
    """A fresh temporary name beside ``final_path``: ``.<stem>.tmp-<pid>-<hex><suffix>`` (suffix: the final one)."""
    final = Path(final_path)
    full = _full_suffix(final.name)
    stem = final.name[: len(final.name) - len(full)] if full else final.name
    return final.parent / f".{stem}{TMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}{full if suffix is None else suffix}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def naming_the_file(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise an ``OSError`` that names no file (a full disk met by ``write``, ``flush`` or a library's writer:
    ``[Errno 28] No space left on device``) as the same error naming ``path``."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise


@contextlib.contextmanager
def atomic_path(
    final_path: str | os.PathLike,
    *,
    make_parents: bool = True,
    verify: Callable[[Path], object] | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; on success rename it to ``final_path``, on error delete it.

    Args:
        final_path: where the complete file must end up. An existing file there is replaced only on success.
        make_parents: create the parent folder if missing (default True).
        verify: called with the temporary path after the writer returned; it raises (e.g. ``ValueError``) when the
            file is incomplete or unreadable, which aborts the rename (a library that ignores a full disk is caught
            here).

    Yields:
        The temporary path to write to (it does not exist yet).

    Raises:
        FileNotFoundError: if the writer did not create the temporary file.
        Whatever the writer or ``verify`` raised (the temporary file is deleted first).
    """
    final = Path(final_path)
    if make_parents:
        final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(final)
    try:
        with naming_the_file(final):
            yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"the writer did not create {tmp} (destined for {final})")
        if verify is not None:
            verify(tmp)
        with naming_the_file(final):
            _fsync_file(tmp)
        try:
            mode = stat.S_IMODE(final.stat().st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(final.parent)


def atomic_write(
    final_path: str | os.PathLike, write: Callable[[Path], object], *, verify: Callable[[Path], object] | None = None
) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``final_path``, then publish it (see :func:`atomic_path`)."""
    with atomic_path(final_path, verify=verify) as tmp:
        write(tmp)
    return Path(final_path)


def atomic_write_bytes(final_path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``final_path`` atomically."""
    with atomic_path(final_path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
    return Path(final_path)


def atomic_write_text(final_path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``final_path`` atomically (no newline translation)."""
    with atomic_path(final_path) as tmp, open(tmp, "w", encoding=encoding, newline="") as f:
        f.write(text)
        f.flush()
    return Path(final_path)


def atomic_copy(src: str | os.PathLike, final_path: str | os.PathLike) -> Path:
    """Copy ``src`` to ``final_path`` atomically (contents only)."""
    with atomic_path(final_path) as tmp:
        shutil.copyfile(src, tmp)
    return Path(final_path)


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
