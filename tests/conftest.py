"""Shared pytest fixtures and helpers for satgate-monai's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


def cached_env_python(env_var: str, script: str, what: str) -> Path:
    """The python of one of the project's own cached environments: ``$env_var`` when set, else the last line printed
    by ``bash .ci/<script>`` (which builds the environment once and reuses it). Skips (fails under CI) when neither
    gives one."""
    import subprocess

    if os.environ.get(env_var):
        python = Path(os.environ[env_var])
        if not python.is_file():
            skip_or_fail(f"{env_var}={python} does not exist")
        return python
    proc = subprocess.run(["bash", str(REPO_ROOT / ".ci" / script)], capture_output=True, text=True)
    if proc.returncode != 0:
        skip_or_fail(f"the {what} environment could not be built: {proc.stderr[-2000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def skip_or_fail(reason: str) -> None:
    """Skip the calling test with ``reason``; under CI (``CI=true``) fail instead, because CI must not skip it."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's ``../shared`` folder (offline data notes and the bundle metadata schema)."""
    if not SHARED_DIR.is_dir():
        skip_or_fail(f"{SHARED_DIR} is absent: it sits beside the checkout on the developers' machines and in CI")
    return SHARED_DIR


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A private Orthanc PACS with DICOMweb on a free port of 127.0.0.1 for the test session (see tests/orthanc.py).

    Skips with the install command when Orthanc is not installed; fails instead under CI.
    """
    from tests.orthanc import find_orthanc, running_orthanc

    binary, plugin, reason = find_orthanc()
    if binary is None or plugin is None:
        skip_or_fail(reason)
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server
