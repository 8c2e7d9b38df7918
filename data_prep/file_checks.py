"""Whole-file checks: every input file is read once to its end before any library reads it.

Part of the input-validation layer (:mod:`data_prep.validation` holds the geometry, voxel and label checks and
:class:`~data_prep.validation.InputError`). :func:`check_file` reads the whole compressed stream (CRC and length
checked by Python's ``gzip``/``zlib``) and compares the decompressed size with what the header announces
(``.nii.gz``, ``.nii``, ``.mha``/``.mhd`` with ``.raw``/``.zraw``, ``.nrrd``/``.nhdr`` raw or gzip); PNG/JPEG are fully
decoded by Pillow; the header's spacing must be positive and its direction (NIfTI sform, MetaImage
``TransformMatrix``, NRRD ``space directions``) orthonormal; NaN/Inf in a float NIfTI are counted in the raw data
(ITK turns them into 0 while reading).
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
import zlib
from pathlib import Path

import numpy as np

from data_prep.files import PICTURE_SUFFIXES
from data_prep.validation import InputError, check_affine, check_direction, check_spacing

__all__ = ["check_file"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 22


def _stream_size(path: Path, opener) -> int:
    n = 0
    with opener(path) as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                return n
            n += len(chunk)


def _gunzip_size(path: Path, what: str) -> int:
    """Decompressed size of a whole gzip file (every member); CRC and length checked by the gzip module."""
    try:
        from isal import igzip as gz  # the same checks, faster
    except ImportError:  # pragma: no cover - the io extra installs isal
        gz = gzip
    try:
        return _stream_size(path, lambda p: gz.open(p, "rb"))
    except EOFError:
        raise InputError(f"{path}: truncated {what}: the compressed stream ends before its end marker") from None
    except (OSError, zlib.error, gzip.BadGzipFile) as e:
        raise InputError(f"{path}: corrupt {what}: {e}") from None


def _zlib_size(data_file: Path, offset: int, what: str, wbits: int = zlib.MAX_WBITS) -> int:
    """Decompressed size of a compressed stream from ``offset`` to the end of ``data_file`` (must reach its end).

    ``wbits`` as in ``zlib.decompressobj``: the default reads a zlib stream, 31 a gzip stream (attached NRRD data).
    """
    d = zlib.decompressobj(wbits=wbits)
    n = 0
    try:
        with open(data_file, "rb") as f:
            f.seek(offset)
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                n += len(d.decompress(chunk))
            n += len(d.flush())
    except zlib.error as e:
        raise InputError(f"{data_file}: corrupt {what}: {e}") from None
    if not d.eof:
        raise InputError(f"{data_file}: truncated {what}: the compressed stream ends before its end marker")
    return n


def _require_bytes(path: Path, have: int, need: int, what: str) -> None:
    if have < need:
        raise InputError(f"{path}: truncated {what}: {have} bytes of voxel data, the header announces {need}")


def _nifti_stream(path: Path, offset: int, dtype: np.dtype) -> tuple[int, int]:
    """Read the whole NIfTI file once: (voxel bytes after ``offset``, non-finite voxels among them)."""
    if path.name.lower().endswith(".gz"):
        try:
            from isal import igzip as gz  # the same CRC and length checks as gzip, faster
        except ImportError:  # pragma: no cover - the io extra installs isal
            gz = gzip
        opener = gz.open
    else:
        opener = open
    floating = np.issubdtype(dtype, np.floating)
    have = bad = 0
    carry = b""
    try:
        with opener(path, "rb") as f:
            skipped = 0
            while skipped < offset:
                chunk = f.read(min(_CHUNK, offset - skipped))
                if not chunk:
                    return 0, 0
                skipped += len(chunk)
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                have += len(chunk)
                if floating:
                    buf = carry + chunk
                    n = len(buf) // dtype.itemsize * dtype.itemsize
                    bad += int((~np.isfinite(np.frombuffer(buf[:n], dtype=dtype))).sum())
                    carry = buf[n:]
    except EOFError:
        raise InputError(f"{path}: truncated NIfTI (.nii.gz): the compressed stream ends before its end marker"
                         ) from None
    except (OSError, zlib.error, gzip.BadGzipFile) as e:
        raise InputError(f"{path}: corrupt NIfTI file: {e}") from None
    return have, bad


def _check_nifti(path: Path) -> int:
    """Check a NIfTI file's raw header (nibabel's checks that "fix" pixdim are off) and data; return #non-finite."""
    import nibabel as nib

    try:
        with nib.openers.ImageOpener(str(path)) as f:
            hdr = nib.Nifti1Header.from_fileobj(f, check=False)
        if hdr.sizeof_hdr != 348:  # NIfTI-2
            with nib.openers.ImageOpener(str(path)) as f:
                hdr = nib.Nifti2Header.from_fileobj(f, check=False)
        shape = hdr.get_data_shape()
        dtype = hdr.get_data_dtype()
    except EOFError:
        raise InputError(f"{path}: truncated NIfTI: the file ends inside its header") from None
    except Exception as e:  # nibabel raises many types for a broken header
        raise InputError(f"{path}: unreadable NIfTI header: {' '.join(str(e).split())[:150]}") from None
    sdim = min(len(shape), 3)
    pixdim = [float(v) for v in hdr["pixdim"][1 : sdim + 1]]
    if not all(math.isfinite(v) and v > 0 for v in pixdim):
        raise InputError(f"{path}: invalid voxel spacing {tuple(pixdim)} in the NIfTI header (pixdim): every "
                         "spacing must be a positive number of mm (ITK reads a zero spacing as 1 mm and a negative "
                         "one as a flipped axis)")
    if int(hdr["sform_code"]) > 0 and sdim == 3:
        check_affine(hdr.get_sform(), f"{path} (NIfTI sform)")
    offset = int(hdr.get_data_offset())
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have, bad = _nifti_stream(path, offset, dtype)
    _require_bytes(path, have, need, "NIfTI file")
    return bad


_MET_SIZES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_FLOAT": 4, "MET_DOUBLE": 8, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8}


def _check_metaimage(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    fields: dict[str, str] = {}
    offset = None
    pos = 0
    for raw in head.splitlines(keepends=True):
        pos += len(raw)
        key, sep, value = raw.decode("latin-1").partition("=")
        if not sep:
            continue
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            offset = pos
            break
    if offset is None or "DimSize" not in fields:
        raise InputError(f"{path}: not a MetaImage header (no DimSize/ElementDataFile)")
    try:
        dims = [int(v) for v in fields["DimSize"].split()]
        spacing = [float(v) for v in (fields.get("ElementSpacing") or fields.get("ElementSize") or "1 " * len(dims))
                   .split()]
        matrix = fields.get("TransformMatrix") or fields.get("Rotation") or fields.get("Orientation")
        direction = [float(v) for v in matrix.split()] if matrix else None
        channels = int(fields.get("ElementNumberOfChannels", "1"))
    except ValueError as e:
        raise InputError(f"{path}: malformed MetaImage header: {e}") from None
    check_spacing(spacing[: len(dims)], f"{path} (ElementSpacing)")
    if direction is not None:
        check_direction(direction, f"{path} (TransformMatrix)")
    item = _MET_SIZES.get(fields.get("ElementType", ""))
    data_name = fields["ElementDataFile"]
    if item is None or data_name.upper().startswith("LIST") or "%" in data_name:
        return  # unusual element type or a file list: ITK's own checks apply
    need = int(np.prod(dims, dtype=np.int64)) * channels * item
    compressed = fields.get("CompressedData", "False").lower() == "true"
    data_file, start = (path, offset) if data_name.upper() == "LOCAL" else (path.parent / data_name, 0)
    if not data_file.is_file():
        raise InputError(f"{path}: its data file {data_file} does not exist")
    if compressed:
        have = _zlib_size(data_file, start, "MetaImage data")
    else:
        have = data_file.stat().st_size - start
    _require_bytes(data_file, have, need, "MetaImage data")


_NRRD_SIZES = {"int8": 1, "uint8": 1, "signed char": 1, "uchar": 1, "unsigned char": 1, "int16": 2, "uint16": 2,
               "short": 2, "ushort": 2, "unsigned short": 2, "int32": 4, "uint32": 4, "int": 4, "uint": 4,
               "unsigned int": 4, "float": 4, "double": 8, "int64": 8, "uint64": 8, "longlong": 8, "ulonglong": 8}


def _check_nrrd(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.startswith(b"NRRD"):
        raise InputError(f"{path}: not a NRRD file (no NRRD magic)")
    fields: dict[str, str] = {}
    offset = None
    pos = 0
    for i, raw in enumerate(head.splitlines(keepends=True)):
        pos += len(raw)
        line = raw.decode("latin-1").rstrip("\r\n")
        if i == 0 or line.startswith("#"):
            continue
        if not line.strip():
            offset = pos
            break
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.lstrip("=").strip()
    try:
        sizes = [int(v) for v in fields.get("sizes", "").split()]
        dirs = re.findall(r"\(([^)]*)\)", fields.get("space directions", ""))
        vectors = [[float(x) for x in d.split(",")] for d in dirs]
        spacings = [float(v) for v in fields.get("spacings", "").split() if v.lower() != "nan"]
    except ValueError as e:
        raise InputError(f"{path}: malformed NRRD header: {e}") from None
    if vectors:
        m = np.asarray(vectors, dtype=float).T  # columns: one per spatial axis
        check_affine(np.block([[m, np.zeros((m.shape[0], 1))], [np.zeros((1, m.shape[1])), np.ones((1, 1))]])
                     if m.shape[0] == m.shape[1] else np.eye(2), f"{path} (space directions)")
    if spacings:
        check_spacing(spacings, f"{path} (spacings)")
    item = _NRRD_SIZES.get(fields.get("type", "").lower())
    encoding = fields.get("encoding", "raw").lower()
    if item is None or not sizes or encoding not in ("raw", "gzip", "gz"):
        return
    need = int(np.prod(sizes, dtype=np.int64)) * item
    data_name = fields.get("data file") or fields.get("datafile")
    if data_name:
        if data_name.upper().startswith("LIST") or "%" in data_name or " " in data_name:
            return
        data_file, start = path.parent / data_name, 0
    elif offset is None:
        raise InputError(f"{path}: NRRD header without the blank line that starts the data")
    else:
        data_file, start = path, offset
    if not data_file.is_file():
        raise InputError(f"{path}: its data file {data_file} does not exist")
    skip = int(fields.get("byte skip", "0") or 0)
    if encoding == "raw":
        have = data_file.stat().st_size - start - max(skip, 0)
    elif start == 0:
        have = _gunzip_size(data_file, "NRRD data (gzip)")
    else:
        have = _zlib_size(data_file, start, "NRRD data (gzip)", wbits=31)
    _require_bytes(data_file, have, need, "NRRD data")


def _check_picture(path: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: unreadable or truncated picture: {' '.join(str(e).split())[:150]}") from None


def check_file(path: str | os.PathLike, *, nonfinite: str = "refuse", what: str = "image") -> list[str]:
    """Read the whole file once and check its header against its data (see the module docstring).

    Files of other types (DICOM, folders) pass unchecked here: :mod:`data_prep.dicom` validates DICOM series.
    NaN/Inf in a float NIfTI are counted here because ITK turns them into 0 when it reads the file.

    Args:
        path: the file.
        nonfinite: ``"refuse"`` or ``"zero"`` (see :func:`check_array`).
        what: ``"image"`` or ``"label"`` (non-finite labels are always refused).

    Returns:
        Notes for the report (non-finite NIfTI voxels that the reader replaces by 0).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InputError: truncated or corrupt data, an invalid spacing or a non-orthonormal direction in the header,
            non-finite voxels under ``"refuse"``.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    if not p.is_file():
        return
    low = p.name.lower()
    if p.stat().st_size == 0:
        raise InputError(f"{p}: empty file (0 bytes)")
    if low.endswith((".nii", ".nii.gz")):
        bad = _check_nifti(p)
        if bad:
            if what == "label" or nonfinite == "refuse":
                hint = "" if what == "label" else " (--nonfinite zero replaces them, and the report says so)"
                raise InputError(f"{p}: {what} has {bad} non-finite (NaN/Inf) voxel(s){hint}")
            note = f"replaced {bad} non-finite voxel(s) by 0"
            logger.warning("%s: %s", p, note)
            return [note]
    elif low.endswith((".mha", ".mhd")):
        _check_metaimage(p)
    elif low.endswith((".nrrd", ".nhdr")):
        _check_nrrd(p)
    elif low.endswith(PICTURE_SUFFIXES):
        _check_picture(p)
    return []
