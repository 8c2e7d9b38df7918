"""``ValidateImaged``: the bundles' loading step runs data_prep's input validation on every image and label.

MONAI's ``LoadImaged`` reads what nibabel/ITK read: a ``.nii.gz`` cut short (ITK zero-fills it), NaN voxels, a zero
or negative header spacing, a sheared direction, a label holding a value the task does not declare (merged silently
into the foreground by ``AsDiscreted(threshold=0.5)``). In every bundle config that loads images (train, evaluate,
inference, multi_gpu_train) two pieces refuse all of that with :class:`data_prep.validation.InputError`, one line
naming the file and the fault: ``LoadImaged`` reads through :class:`ValidatingReader` (the files), and
:class:`ValidateImaged` follows ``EnsureChannelFirstd`` (the arrays):

- the source file (``meta["filename_or_obj"]``) is read once in full by :func:`data_prep.file_checks.check_file`
  (remembered per file path, size and modification time, so a cached or re-read case costs nothing more);
- the array: finite voxels (NaN/Inf refused; ``nonfinite="zero"`` replaces them by 0 and logs a warning), the
  MetaTensor affine (positive spacing, orthonormal direction), dimensionality and channel count of the network;
- label keys: values among the declared labels (:func:`declared_labels` reads the bundle's metadata ``channel_def``).

Given ``bundle_root``, the expected dimensionality, channel count and label values come from the bundle's
``configs/metadata.json`` (``network_data_format``), the one place they are declared.

The MONAI Label app runs the same bundle configs, so it validates with the same step.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import ImageReader, MetaTensor
from monai.transforms import MapTransform
from monai.utils import ensure_tuple

from data_prep.file_checks import check_file
from data_prep.validation import (
    NONFINITE_POLICIES,
    InputError,
    check_affine,
    check_array,
    check_label_values,
)

__all__ = ["ValidateImaged", "ValidatingReader", "declared_input", "declared_labels", "validate_file"]

logger = logging.getLogger(__name__)

_CHECKED: dict[tuple[str, int, int, str, str], list[str]] = {}


def validate_file(path: str | os.PathLike, *, nonfinite: str = "refuse", what: str = "image") -> list[str]:
    """:func:`data_prep.file_checks.check_file`, remembered per (path, size, mtime): returns the notes.

    The MONAI Label app may call this on an uploaded or studies file before inference.
    """
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, nonfinite, what)
    if key not in _CHECKED:
        _CHECKED[key] = check_file(p, nonfinite=nonfinite, what=what)
    return _CHECKED[key]


def _metadata(bundle: str | os.PathLike | Mapping) -> Mapping:
    if isinstance(bundle, Mapping):
        return bundle
    with open(Path(str(bundle)) / "configs" / "metadata.json", encoding="utf-8") as f:
        return json.load(f)


def declared_labels(bundle: str | os.PathLike | Mapping, output: str = "pred") -> list[int]:
    """Label values the bundle declares: the keys of ``network_data_format.outputs.<output>.channel_def`` (e.g.
    ``[0, 1]``) in ``bundle`` (the bundle folder, or its parsed metadata such as a config's ``@_meta_``).

    Raises:
        FileNotFoundError: no metadata file; ValueError: no channel_def.
    """
    outputs = _metadata(bundle).get("network_data_format", {}).get("outputs", {})
    channel_def = (outputs.get(output) or next(iter(outputs.values()), {})).get("channel_def")
    if not channel_def:
        raise ValueError(f"the metadata of {bundle if not isinstance(bundle, Mapping) else 'the bundle'} declares no "
                         "output channel_def: the bundle's label values are unknown")
    return sorted(int(k) for k in channel_def)


def declared_input(bundle: str | os.PathLike | Mapping, name: str = "image") -> tuple[int | None, int | None]:
    """(spatial dims, channels) of the bundle's input ``name`` from its metadata (None: not stated)."""
    inputs = _metadata(bundle).get("network_data_format", {}).get("inputs", {})
    inp = inputs.get(name) or next(iter(inputs.values()), {})
    shape = inp.get("spatial_shape")
    channels = inp.get("num_channels")
    return (len(shape) if isinstance(shape, list) and shape else None,
            int(channels) if isinstance(channels, int) else None)


def _source(x: Any, key: Hashable) -> str:
    meta = getattr(x, "meta", None) or {}
    src = meta.get("filename_or_obj", "")
    if isinstance(src, (list, tuple)):
        src = src[0] if src else ""
    return str(src) if src else f"<{key}>"


class ValidatingReader(ImageReader):
    """A MONAI image reader that reads every file in full first (:func:`validate_file`), then hands it to the reader
    ``LoadImage`` would have chosen (nibabel, ITK, Pillow...), so the loaded data are unchanged.

    Given to ``LoadImaged(reader=...)`` in the bundle configs: a truncated ``.nii.gz`` otherwise fails inside
    nibabel with an error naming no file (or, read by ITK, is zero-filled), a zero NIfTI spacing is read as 1 mm...;
    here each is refused with one line naming the file.

    Args:
        nonfinite: ``"refuse"`` (default) or ``"zero"`` for NaN/Inf voxels.
    """

    def __init__(self, nonfinite: str = "refuse") -> None:
        from monai.transforms import LoadImage

        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
        self.nonfinite = nonfinite
        self._readers = LoadImage(image_only=True).readers[::-1]  # MONAI's own choice order

    def _reader(self, filename) -> ImageReader:
        reader = next((r for r in self._readers if r.verify_suffix(filename)), None)
        if reader is None:
            raise InputError(f"{filename}: no image reader for this file type")
        return reader

    def verify_suffix(self, filename: Sequence[os.PathLike] | os.PathLike) -> bool:
        return any(r.verify_suffix(filename) for r in self._readers)

    def read(self, data: Sequence[os.PathLike] | os.PathLike, **kwargs) -> tuple[Any, Any, Exception | None]:
        # LoadImage tries the next reader when read() raises (hiding the fault): the refusal is raised by get_data
        try:
            for f in ensure_tuple(data):
                if isinstance(f, (str, os.PathLike)) and os.path.isfile(f):
                    validate_file(f, nonfinite=self.nonfinite)
            reader = self._reader(data)
        except InputError as e:
            return None, None, e
        return reader, reader.read(data, **kwargs), None

    def get_data(self, img: tuple[Any, Any, Exception | None]) -> tuple[np.ndarray, dict]:
        reader, obj, error = img
        if error is not None:
            raise error
        return reader.get_data(obj)


class ValidateImaged(MapTransform):
    """Validate loaded images and labels (channel first, as after ``EnsureChannelFirstd``).

    Args:
        keys: the image and label keys to check.
        label_keys: which of ``keys`` are labels (value checks instead of intensity checks).
        spatial_dims: required spatial dimensionality (2 or 3), None: any.
        channels: required channel count of the image keys, None: any.
        labels: the declared label values (e.g. ``declared_labels(@bundle_root)``), None: any integer >= 0.
        nonfinite: ``"refuse"`` (default) or ``"zero"`` for NaN/Inf image voxels.
        check_files: also read every source file in full (:func:`validate_file`).
        check_voxels: scan the image voxels (finite values); False where the reader has scanned them already
            (the inference CLI's in-memory path: data_prep's reader validates the voxels in one pass).
        allow_missing_keys: skip absent keys (e.g. ``label`` in an unlabelled inference item).
        metadata: the bundle's metadata (``"@_meta_"`` in a config): ``spatial_dims``, ``channels`` and ``labels``
            left None are read from its ``network_data_format``.
        bundle_root: where to read ``configs/metadata.json`` when ``metadata`` is empty; with neither, those three
            stay unchecked (logged).

    Raises:
        InputError: one line naming the file and the fault.
    """

    def __init__(self, keys: KeysCollection, label_keys: Sequence[str] | str = ("label",),
                 spatial_dims: int | None = None, channels: int | None = None, labels: Sequence[int] | None = None,
                 nonfinite: str = "refuse", check_files: bool = True, allow_missing_keys: bool = False,
                 metadata: Mapping | None = None, bundle_root: str | os.PathLike | None = None,
                 check_voxels: bool = True) -> None:
        super().__init__(keys, allow_missing_keys)
        meta: Mapping | None = metadata if metadata and "network_data_format" in metadata else None
        if meta is None and bundle_root is not None:
            meta_file = Path(str(bundle_root)) / "configs" / "metadata.json"
            meta = _metadata(bundle_root) if meta_file.is_file() else None
        if meta is not None:
            dims, chans = declared_input(meta)
            spatial_dims = dims if spatial_dims is None else spatial_dims
            channels = chans if channels is None else channels
            labels = declared_labels(meta) if labels is None else labels
        elif bundle_root is not None or metadata is not None:
            logger.warning("no bundle metadata: image dimensionality, channels and label values are not checked")
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
        self.label_keys = {label_keys} if isinstance(label_keys, str) else set(label_keys)
        self.spatial_dims = spatial_dims
        self.channels = channels
        self.labels = None if labels is None else [int(v) for v in labels]
        self.nonfinite = nonfinite
        self.check_files = check_files
        self.check_voxels = check_voxels

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self._check(d[key], key)
        return d

    def _check(self, x: Any, key: Hashable) -> Any:
        src = _source(x, key)
        is_label = key in self.label_keys
        what = "label" if is_label else "image"
        if self.check_files and os.path.isfile(src):
            validate_file(src, nonfinite=self.nonfinite, what=what)
        shape = tuple(x.shape)
        if self.spatial_dims is not None and len(shape) - 1 != self.spatial_dims:
            raise InputError(f"{src}: expected a {self.spatial_dims}D {what} (channel first), got shape {shape}")
        if not is_label and self.channels is not None and shape[0] != self.channels:
            raise InputError(f"{src}: expected {self.channels} channel(s) for the network, got {shape[0]} "
                             f"(shape {shape})")
        if is_label and shape[0] != 1:
            raise InputError(f"{src}: a label must have one channel, got {shape[0]} (shape {shape})")
        if isinstance(x, MetaTensor) and x.affine is not None and len(shape) - 1 >= 2:
            check_affine(np.asarray(x.affine, dtype=float), src)
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if is_label:
            check_label_values(arr, self.labels, src)
            return x
        if not self.check_voxels:
            return x
        _, notes = check_array(arr, src, nonfinite=self.nonfinite, what=what)
        if notes and isinstance(x, torch.Tensor):
            x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        return x
