"""Real sample volumes for any test area: the pyradiomics 3.0.1 CT/MRI files with tumour labels, cached.

Use the session fixture (import it into your test module or conftest)::

    from tests.sample_data import pyradiomics_samples  # noqa: F401  (pytest fixture)

    def test_something(pyradiomics_samples):
        image = pyradiomics_samples / "lung2_image.nrrd"

The cache folder is ``$SATGATE_SAMPLES_DIR`` (default ``~/.cache/satgate-monai/samples``). Missing files are fetched
once with ``python -m data_prep samples`` logic (``pip download`` of the pyradiomics sdist, about 35 MB); an
exclusive file lock serialises pytest-xdist workers and each file is renamed into place only when complete. If the
fetch fails the test is skipped locally and fails under CI (``skip_or_fail``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

__all__ = ["samples_dir", "ensure_samples", "pyradiomics_samples"]


def samples_dir() -> Path:
    """The cache folder (``$SATGATE_SAMPLES_DIR`` or ``~/.cache/satgate-monai/samples``)."""
    return Path(os.environ.get("SATGATE_SAMPLES_DIR", "~/.cache/satgate-monai/samples")).expanduser()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: atomic renames alone keep files whole
            yield
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def ensure_samples() -> Path:
    """Return the cache folder with all sample files, fetching missing ones; raise RuntimeError on failure."""
    from data_prep.commands.samples import SAMPLE_FILES, fetch_samples

    out = samples_dir()
    if all((out / f).is_file() for f in SAMPLE_FILES):
        return out
    with _locked(out.parent / ".samples.lock"):
        return fetch_samples(out)


@pytest.fixture(scope="session")
def pyradiomics_samples() -> Path:
    """Folder holding ``{lung1,lung2,brain1,brain2,breast1}_{image,label}.nrrd`` (real data, LPS)."""
    try:
        return ensure_samples()
    except Exception as e:
        skip_or_fail(f"pyradiomics sample data unavailable: {e}")
        raise  # unreachable: skip_or_fail raises
