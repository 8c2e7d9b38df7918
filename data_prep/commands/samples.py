"""``python -m data_prep samples --out DIR``: real CT and MRI volumes with tumour labels from the pyradiomics sdist.

The pyradiomics 3.0.1 source distribution (BSD-3-Clause) ships ``data/{lung1,lung2}_{image,label}.nrrd`` (real chest
CT, 512x512x~50 at about 0.7x0.7x5 mm, int16 HU, with a tumour label) and ``data/{brain1,brain2,breast1}_*``
(real MRI with tumour labels). The installed wheel does not contain them, so this command runs::

    python -m pip download --no-deps --no-build-isolation pyradiomics==3.0.1 -d TMP

(``pip download`` of an sdist prepares its metadata, which needs ``numpy versioneer setuptools wheel`` importable
in this interpreter because of ``--no-build-isolation``; missing ones are installed into the current environment with
``pip install`` first unless ``--no-install-build-deps``), then extracts the ten ``.nrrd`` files into DIR.

Idempotent (files already in DIR are kept) and atomic (each file is written to a temporary name, then renamed).
Needs access to a package index (about 35 MB); nothing else is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from data_prep.atomic import atomic_path
from data_prep.commands import command_parser

__all__ = ["add_parser", "run", "fetch_samples", "SAMPLE_FILES", "PYRADIOMICS_VERSION", "BUILD_DEPS"]

logger = logging.getLogger(__name__)

PYRADIOMICS_VERSION = "3.0.1"
SAMPLE_NAMES = ("lung1", "lung2", "brain1", "brain2", "breast1")
SAMPLE_FILES = tuple(f"{n}_{k}.nrrd" for n in SAMPLE_NAMES for k in ("image", "label"))
BUILD_DEPS = {"numpy": "numpy", "versioneer": "versioneer", "setuptools": "setuptools", "wheel": "wheel"}


def _missing_build_deps() -> list[str]:
    return [pkg for mod, pkg in BUILD_DEPS.items() if importlib.util.find_spec(mod) is None]


def _pip(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", *args]
    logger.info("running %s", " ".join(cmd))
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def fetch_samples(out_dir: str | Path, *, install_build_deps: bool = True) -> Path:
    """Make sure ``out_dir`` holds :data:`SAMPLE_FILES`; download and extract what is missing.

    Args:
        out_dir: destination folder (created).
        install_build_deps: ``pip install`` numpy/versioneer/setuptools/wheel into this environment if missing.

    Returns:
        ``out_dir``.

    Raises:
        RuntimeError: pip failed (its output is included) or the archive lacks a file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    missing = [f for f in SAMPLE_FILES if not (out / f).is_file()]
    if not missing:
        logger.info("all %d sample files already in %s", len(SAMPLE_FILES), out)
        return out
    deps = _missing_build_deps()
    if deps:
        if not install_build_deps:
            raise RuntimeError(f"pip download of the pyradiomics sdist needs {', '.join(deps)} installed "
                               "(--no-build-isolation); install them or drop --no-install-build-deps")
        r = _pip(["install", *deps])
        if r.returncode != 0:
            raise RuntimeError(f"pip install {' '.join(deps)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    tmp = Path(tempfile.mkdtemp(prefix=".samples-", dir=out))
    try:
        r = _pip(["download", "--no-deps", "--no-build-isolation", f"pyradiomics=={PYRADIOMICS_VERSION}",
                  "--no-binary", "pyradiomics", "-d", str(tmp)])
        archives = sorted(tmp.glob(f"pyradiomics-{PYRADIOMICS_VERSION}.tar.gz"))
        if r.returncode != 0 or not archives:
            raise RuntimeError(f"pip download pyradiomics=={PYRADIOMICS_VERSION} failed (exit {r.returncode}):\n"
                               f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        prefix = f"pyradiomics-{PYRADIOMICS_VERSION}/data/"
        with tarfile.open(archives[0], "r:gz") as tar:
            for fname in missing:
                try:
                    member = tar.getmember(prefix + fname)
                except KeyError:
                    raise RuntimeError(f"{archives[0].name} has no {prefix + fname}") from None
                src = tar.extractfile(member)
                if src is None:
                    raise RuntimeError(f"{prefix + fname} in {archives[0].name} is not a regular file")
                with atomic_path(out / fname) as dst_path, open(dst_path, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                logger.info("extracted %s", out / fname)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


HELP = "fetch real CT/MRI sample volumes with tumour labels (pyradiomics 3.0.1 sdist, via pip)"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(subparsers, "samples", HELP, __doc__)
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="destination folder")
    p.add_argument("--no-install-build-deps", action="store_true",
                   help="do not pip-install numpy/versioneer/setuptools/wheel when missing (then fail instead)")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        out = fetch_samples(args.out, install_build_deps=not args.no_install_build_deps)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for f in SAMPLE_FILES:
        print(out / f)
    return 0
