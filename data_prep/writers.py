"""NIfTI writing with a chosen gzip level, atomically.

ITK's NIfTI writer ignores ``SetCompressionLevel`` (measured: the same size and time for levels 0-9), and gzip
dominates the writing time of a case. So :func:`write_nifti` lets SimpleITK write the uncompressed ``.nii`` (header
and geometry exactly as ITK writes them) to a hidden temporary file, then gzips it with Python's ``gzip`` at
``compression_level`` into another temporary file that is renamed to the final ``.nii.gz`` only when complete (the
uncompressed file is read back first: ITK may write a short file on a full disk without raising).

Levels 1-3 are compressed with ISA-L's ``igzip`` (the ``isal`` package, in the ``io`` extra) when it is installed:
about 3x (level 1) to 6x (level 3) faster than zlib at the same level for files of the same size
(``benchmarks/prep.py`` prints both); levels 4-9, and any level without ``isal``, use zlib (Python's ``gzip``).
Either way the output is a standard single-member gzip file. Level 1 (the default) is the fast choice; higher levels
save a few percent of size for much more time; level 0 stores without compression (still a valid ``.nii.gz``).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import SimpleITK as sitk

from data_prep.atomic import atomic_path, temporary_path
from data_prep.file_checks import check_file

try:  # ISA-L: faster deflate for levels 1-3
    from isal import igzip
except ImportError:  # pragma: no cover - the io extra installs it
    igzip = None

__all__ = ["write_nifti", "gzip_open", "DEFAULT_COMPRESSION_LEVEL", "ISAL_LEVELS"]

DEFAULT_COMPRESSION_LEVEL = 1
ISAL_LEVELS = (1, 2, 3)


@contextlib.contextmanager
def gzip_open(path: str | os.PathLike, compression_level: int, *, use_isal: bool = True) -> Iterator[gzip.GzipFile]:
    """Open ``path`` for gzip writing at ``compression_level`` (ISA-L for levels 1-3 if available).

    The gzip header stores no file name and a zero time stamp, so the same image always gives the same bytes (and a
    temporary file name never leaks into the output).

    Args:
        path: file to create.
        compression_level: 0 (store) to 9.
        use_isal: allow ISA-L (False: always zlib).

    Yields:
        A writable binary gzip file object.
    """
    cls = igzip.IGzipFile if use_isal and igzip is not None and compression_level in ISAL_LEVELS else gzip.GzipFile
    with open(path, "wb") as raw, cls(filename="", mode="wb", compresslevel=compression_level, fileobj=raw,
                                      mtime=0) as gz:
        yield gz


def write_nifti(
    image: sitk.Image,
    path: str | os.PathLike,
    compression_level: int = DEFAULT_COMPRESSION_LEVEL,
    *,
    use_isal: bool = True,
) -> Path:
    """Write ``image`` to ``path`` (``.nii.gz``: gzip at ``compression_level``; ``.nii``: uncompressed), atomically.

    Args:
        image: any SimpleITK image NIfTI can hold (2D-4D, scalar or vector).
        path: destination ending in ``.nii.gz`` or ``.nii``.
        compression_level: gzip level 0 (store) to 9 (smallest, slowest); default 1.
        use_isal: compress levels 1-3 with ISA-L when installed (False: zlib, e.g. to compare them).

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: bad suffix or level.
    """
    final = Path(path)
    if not isinstance(compression_level, int) or not 0 <= compression_level <= 9:
        raise ValueError(f"compression_level must be an integer 0-9, got {compression_level!r}")
    name = final.name.lower()
    if name.endswith(".nii"):
        with atomic_path(final, verify=check_file) as tmp:
            sitk.WriteImage(image, str(tmp), useCompression=False)
        return final
    if not name.endswith(".nii.gz"):
        raise ValueError(f"NIfTI output must end in .nii.gz or .nii, got {final}")
    final.parent.mkdir(parents=True, exist_ok=True)
    raw_tmp = temporary_path(final, ".nii")
    try:
        sitk.WriteImage(image, str(raw_tmp), useCompression=False)
        check_file(raw_tmp)  # ITK may write a short file on a full disk without raising
        with atomic_path(final) as gz_tmp:
            with open(raw_tmp, "rb") as src, gzip_open(gz_tmp, compression_level, use_isal=use_isal) as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
    finally:
        with contextlib.suppress(OSError):
            raw_tmp.unlink()
    return final
