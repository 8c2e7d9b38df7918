"""``run.json`` beside the outputs: exactly what produced them (nnU-Net copies its plans and arguments the same way).

:func:`run_record` describes the run: the bundle (folder name, ``metadata.json`` name and version, the config file
and its sha256), every checkpoint with its sha256, the command line and every ``--set`` override, the ensemble /
mirroring / overlap / output options, the device (and GPU name) and precision, and the versions of the packages
that compute the result. :func:`case_record` describes one case's input: its files with their sha256 (a DICOM
series: SeriesInstanceUID, file count and one digest over the sorted ``(relative name, sha256)`` pairs), the status
and the outputs. :class:`RunLog` writes ``run.json`` atomically after every case; cases of earlier runs into the same
folder are kept, each with the ``started`` time of the run that wrote it (``run_started``), and the earlier runs'
descriptions are kept in ``previous_runs``.

The DICOM-SEG's algorithm identification (:func:`algorithm_identity`) is taken from the same record.

``monai.bundle run`` of a bundle's ``inference.json`` writes the same kind of ``run.json`` into its ``output_dir``
(:func:`write_bundle_run`, the last step of the config's ``run``).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import logging
import os
import platform
import re
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata as _md
from pathlib import Path
from typing import Any

from data_prep.atomic import atomic_write_text

__all__ = ["RUN_NAME", "RunLog", "algorithm_identity", "case_record", "file_sha256", "run_record", "weights_id",
           "write_bundle_run"]

logger = logging.getLogger(__name__)

RUN_NAME = "run.json"
PACKAGES = ("satgate-monai", "monai", "torch", "numpy", "SimpleITK", "pydicom", "highdicom", "nibabel")
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _version(pkg: str) -> str | None:
    try:
        return _md.version(pkg)
    except _md.PackageNotFoundError:
        return None


def _bundle_meta(bundle_dir: Path) -> dict[str, Any]:
    meta = bundle_dir / "configs" / "metadata.json"
    if not meta.is_file():
        return {}
    try:
        return json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


@functools.lru_cache(maxsize=32)
def _weights_id(checkpoints: tuple[tuple[str, int, int], ...]) -> str:
    """12 hex digits of the sha256 over the checkpoints' sha256s (cached by path, size and modification time)."""
    digests = "\n".join(file_sha256(path) for path, _, _ in checkpoints)
    return hashlib.sha256(digests.encode()).hexdigest()[:12]


def weights_id(checkpoints: Sequence[str | os.PathLike]) -> str:
    """The checkpoints' short identity (12 hex digits; the same files give the same id), "" without a file."""
    files = [Path(c) for c in checkpoints if c and Path(c).is_file()]
    if not files:
        return ""
    return _weights_id(tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


def algorithm_identity(runner: Any) -> tuple[str, str]:
    """``(name, version)`` of the algorithm for a DICOM-SEG: the bundle's folder name and
    ``"<bundle version> satgate-monai <version> weights <12 hex>"`` (each at most 64 characters, DICOM LO); the
    weights id (:func:`weights_id`) tells apart two SEGs of the same bundle with other checkpoints."""
    from satgate_monai import __version__

    bundle_version = _bundle_meta(Path(runner.bundle_dir)).get("version", "unversioned")
    weights = weights_id(getattr(runner, "checkpoints", None) or [getattr(runner, "ckpt", None)])
    version = f"{bundle_version} satgate-monai {__version__}" + (f" weights {weights}" if weights else "")
    return str(runner.name)[:64], version[:64]


def run_record(runner: Any, *, command: Sequence[str] | None = None, options: Mapping[str, Any] | None = None
               ) -> dict[str, Any]:
    """The description of an inference run (see the module docstring).

    Args:
        runner: the loaded :class:`~satgate_monai.infer.bundle.BundleRunner`.
        command: the command line (default ``sys.argv``).
        options: output and inference options to record (formats, overlap, ...).
    """
    ensemble = getattr(runner, "ensemble", None)
    checkpoints = getattr(runner, "checkpoints", [runner.ckpt])
    return _record("python -m satgate_monai.infer", command, Path(runner.bundle_dir), runner.config_file,
                   checkpoints, list(getattr(ensemble, "mirror_axes", ())), getattr(runner, "device", None),
                   precision=str(getattr(runner, "precision", "float32")),
                   overrides=dict(getattr(runner, "overrides", {}) or {}), options=dict(options or {}))


def _record(tool: str, command: Sequence[str] | None, bundle_dir: Path, config_file: str | os.PathLike | None,
            checkpoints: Sequence[str | os.PathLike], mirror_axes: Sequence[int], device: Any, *, precision: str,
            overrides: Mapping[str, Any], options: Mapping[str, Any], meta: Mapping[str, Any] | None = None
            ) -> dict[str, Any]:
    import torch

    meta = dict(meta) if meta else _bundle_meta(bundle_dir)
    dev: dict[str, Any] = {"device": str(device)}
    if device is not None and getattr(device, "type", "") == "cuda" and torch.cuda.is_available():
        dev["gpu"] = torch.cuda.get_device_name(device)
    bundle = {"name": bundle_dir.name, "path": str(bundle_dir), "title": meta.get("name"),
              "version": meta.get("version")}
    if config_file is not None and Path(config_file).is_file():
        bundle.update(config=str(config_file), config_sha256=file_sha256(config_file))
    return {
        "tool": tool,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command if command is not None else sys.argv),
        "cwd": os.getcwd(),
        "bundle": bundle,
        "checkpoints": [{"path": str(Path(c).resolve()), "sha256": file_sha256(c)} for c in checkpoints],
        "overrides": dict(overrides),
        "ensemble": {"checkpoints": len(checkpoints), "mirror_axes": list(mirror_axes),
                     "passes_per_case": max(1, len(checkpoints)) * 2 ** len(mirror_axes)},
        "options": dict(options),
        **dev,
        "precision": precision,
        "threads": torch.get_num_threads(),
        "packages": {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}},
        "platform": platform.platform(),
    }


def write_bundle_run(output_dir: str | os.PathLike, bundle_root: str | os.PathLike, ckpt_path: str | os.PathLike,
                     checkpoints: Sequence[str | os.PathLike], mirror_axes: Sequence[int], device: Any,
                     data: Sequence[Mapping[str, Any]], meta: Mapping[str, Any] | None = None,
                     precision: str = "float32", series_uids: Mapping[str, str | None] | None = None) -> Path:
    """``run.json`` for ``monai.bundle run`` of ``inference.json``: called from the config's ``run`` with its
    ``output_dir``, ``bundle_root``, ``ckpt_path``, ``checkpoints``, ``mirror_axes``, ``device``, ``dataset#data``
    and ``_meta_`` (the parsed ``metadata.json``: name and version); the command line (with its overrides) is
    ``sys.argv``. ``series_uids``: ``{dataset image: SeriesInstanceUID}`` from the case engine
    (``@engine.series_uids``), so that no DICOM file is parsed again here. Returns the written path."""
    from satgate_monai.bundle.evaluation import case_name

    bundle_dir = Path(str(bundle_root)).resolve()
    ckpts = list(checkpoints) or [ckpt_path]
    log = RunLog(output_dir, _record("python -m monai.bundle run", None, bundle_dir,
                                     bundle_dir / "configs" / "inference.json", ckpts, list(mirror_axes), device,
                                     precision=precision, overrides={}, options={"output_dir": str(output_dir)},
                                     meta=meta),
                 write=False)
    for item in data:
        image = Path(str(item["image"]))
        name = case_name(image)
        uid = (series_uids or {}).get(str(item["image"]))
        log.cases[name] = {**case_record(image, is_dicom=image.is_dir(), series_uid=uid),
                           "run_started": log.record["started"]}
    log.write()
    return log.path


def _companion(path: Path) -> Path | None:
    """The data file named by a ``.mhd`` (``ElementDataFile``) or ``.nhdr`` (``data file``) header."""
    if path.suffix.lower() not in (".mhd", ".nhdr"):
        return None
    try:
        text = path.read_text(encoding="latin-1", errors="replace")[:65536]
    except OSError:
        return None
    m = re.search(r"^\s*(?:ElementDataFile\s*=|data\s*file\s*:|datafile\s*:)\s*(\S+)\s*$", text,
                  flags=re.IGNORECASE | re.MULTILINE)
    if not m or m.group(1).upper() == "LOCAL":
        return None
    p = path.parent / m.group(1)
    return p if p.is_file() else None


def case_record(path: str | os.PathLike, is_dicom: bool, series_uid: str | None = None) -> dict[str, Any]:
    """The input of one case: files and digests (DICOM series: SeriesInstanceUID, count and one combined digest).

    ``series_uid``: the series the case was read from, when the reader chose one in a folder of several; otherwise
    the first file's SeriesInstanceUID is recorded.
    """
    p = Path(path)
    if is_dicom:
        from data_prep.readers import is_dicom_file

        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and is_dicom_file(f))
        pairs = [(str(f.relative_to(p)) if p.is_dir() else f.name, file_sha256(f)) for f in files]
        digest = hashlib.sha256("\n".join(f"{n} {h}" for n, h in pairs).encode()).hexdigest()
        uid = series_uid
        try:
            if uid is None:
                import pydicom

                uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).get("SeriesInstanceUID", "")) or None
        except Exception:  # the case itself reports unreadable files
            logger.debug("no SeriesInstanceUID from %s", files[:1], exc_info=True)
        return {"input": str(p), "series_uid": uid, "n_files": len(files), "digest": digest,
                "digest_of": "sha256 over sorted '<relative file> <file sha256>' lines"}
    files = [p] + ([c] if (c := _companion(p)) is not None else [])
    return {"input": str(p), "files": [{"path": str(f), "sha256": file_sha256(f)} for f in files]}


class RunLog:
    """``run.json`` in ``out_dir``: this run's record, kept up to date after every case (written atomically)."""

    def __init__(self, out_dir: str | os.PathLike, record: Mapping[str, Any], *, write: bool = True) -> None:
        self.path = Path(out_dir) / RUN_NAME
        self.record = dict(record)
        self.cases: dict[str, Any] = {}
        self.previous: list[dict[str, Any]] = []
        if self.path.is_file():
            try:
                old = json.loads(self.path.read_text(encoding="utf-8"))
                self.cases = dict(old.get("cases", {}))
                self.previous = list(old.get("previous_runs", []))
                old_run = {k: v for k, v in old.items() if k not in ("cases", "previous_runs")}
                if old_run:
                    self.previous.append(old_run)
            except (OSError, json.JSONDecodeError, AttributeError):
                logger.warning("unreadable %s is replaced", self.path)
        if write:
            self.write()

    def add(self, case: str, info: Mapping[str, Any]) -> None:
        """Record one case (input description, status, outputs) and rewrite ``run.json``."""
        self.cases[case] = {**info, "run_started": self.record["started"]}
        self.write()

    def write(self) -> None:
        """Write ``run.json`` (atomically)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        doc = {**self.record, "cases": dict(sorted(self.cases.items()))}
        if self.previous:
            doc["previous_runs"] = self.previous
        atomic_write_text(self.path, json.dumps(doc, indent=2, default=str) + "\n")
