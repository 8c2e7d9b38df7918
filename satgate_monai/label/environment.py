"""Find (or build) the separate MONAI Label environment's python. Standard library only.

The environment is built by ``.ci/monailabel_env.sh`` from ``requirements-monailabel.txt`` into
``${SATGATE_MONAILABEL_CACHE:-${XDG_CACHE_HOME:-~/.cache}/satgate-monai}/monailabel-<hash>``, where ``<hash>`` is the
first 16 hex digits of the SHA-256 of the requirements file followed by ``python=<major>.<minor>\\n``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "REQUIREMENTS",
    "build_script",
    "cache_dir",
    "expected_env_dir",
    "find_monailabel_python",
]

logger = logging.getLogger(__name__)

ENV_VAR = "SATGATE_MONAILABEL_PYTHON"
REQUIREMENTS = Path(__file__).resolve().with_name("requirements-monailabel.txt")
COMPLETE_MARKER = ".satgate-complete"


def cache_dir() -> Path:
    """The folder holding the cached environments (and, by default, the server's app folders)."""
    explicit = os.environ.get("SATGATE_MONAILABEL_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "satgate-monai"


def expected_env_dir(python_version: tuple[int, int] | None = None) -> Path:
    """Where ``.ci/monailabel_env.sh`` puts the environment for the current requirements file.

    Args:
        python_version: (major, minor) of the base python the environment was made with; default this interpreter's.
    """
    major, minor = python_version or sys.version_info[:2]
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + f"python={major}.{minor}\n".encode()).hexdigest()
    return cache_dir() / f"monailabel-{digest[:16]}"


def build_script() -> Path | None:
    """``.ci/monailabel_env.sh`` of the checkout this package runs from, or None for an installed package."""
    script = Path(__file__).resolve().parents[2] / ".ci" / "monailabel_env.sh"
    return script if script.is_file() else None


def _check_python(path: Path, origin: str) -> Path:
    if not path.is_file() or not os.access(path, os.X_OK):
        raise FileNotFoundError(f"MONAI Label python {path} (from {origin}) does not exist or is not executable")
    return path


def find_monailabel_python(explicit: str | os.PathLike | None = None, build: bool = True) -> Path:
    """The MONAI Label environment's python.

    Looked up in this order: ``explicit`` (the ``--python`` option), the ``SATGATE_MONAILABEL_PYTHON`` environment
    variable, the cached environment of the current requirements file, and finally (when ``build`` is True and this
    package runs from a checkout) ``bash .ci/monailabel_env.sh``, which builds it once (a few minutes).

    Raises:
        FileNotFoundError: none was found, with the command that builds it.
    """
    if explicit:
        return _check_python(Path(explicit), "--python")
    if os.environ.get(ENV_VAR):
        return _check_python(Path(os.environ[ENV_VAR]), ENV_VAR)
    try:
        env_dir = expected_env_dir()
    except OSError:  # an installed package without its requirements file: no cache key
        env_dir = cache_dir() / "monailabel-<hash of requirements-monailabel.txt>"
    if (env_dir / COMPLETE_MARKER).is_file() and (env_dir / "bin" / "python").is_file():
        return env_dir / "bin" / "python"
    script = build_script()
    if script is None or not build:
        raise FileNotFoundError(
            f"the MONAI Label environment was not found at {env_dir}: build it with "
            "`bash .ci/monailabel_env.sh` in a satgate-monai checkout (see docs/label.md), then pass its python "
            f"with --python or {ENV_VAR}"
        )
    logger.warning("building the MONAI Label environment with %s (once; a few minutes)", script)
    proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # the build's output (pip's lines) goes to the log; its last line is the python
        logger.info("%s", line.rstrip())
        lines = [*lines[-40:], line.strip()]
    code = proc.wait()
    lines = [line for line in lines if line]
    if code != 0 or not lines:
        raise FileNotFoundError(f"{script} failed (exit {code}): {lines[-1] if lines else 'no output'} (the full "
                                "log: -v, or the command's log file)")
    return _check_python(Path(lines[-1]), str(script))
