"""Where the package's own files are: the MONAI bundles it ships.

The bundles live once, in the repository's top-level ``bundles/`` folder; ``satgate_monai/bundles`` links to it and
the wheel packages it as data (``setup.cfg``: ``package_data``), so a checkout, an editable install and a
non-editable ``pip install`` all find them at ``<package>/bundles``. From a shell::

    python -m satgate_monai bundle-path liver_ct_sat      # prints the bundle's folder
    python -m satgate_monai bundle-path                   # prints the folder holding every bundle

Standard library only, so the launchers that must start fast (``python -m satgate_monai.label``) can use it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundle_names", "bundle_path", "bundles_dir"]

_BUNDLES = Path(__file__).resolve().parent / "bundles"


def bundles_dir() -> Path:
    """The folder holding every shipped bundle (resolved: the repository's ``bundles/`` in a checkout)."""
    return _BUNDLES.resolve()


def bundle_names() -> list[str]:
    """Names of the shipped bundles (folders of :func:`bundles_dir` with ``configs/metadata.json``), sorted."""
    root = bundles_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "configs" / "metadata.json").is_file())


def bundle_path(name: str) -> Path:
    """The folder of the shipped bundle ``name`` (e.g. ``"liver_ct_sat"``): ``configs/``, ``docs/``, ``LICENSE``.

    Raises:
        ValueError: no shipped bundle has that name (the message lists the names).
    """
    path = bundles_dir() / str(name)
    if not (path / "configs" / "metadata.json").is_file():
        raise ValueError(f"no bundle named {name!r} in {str(bundles_dir())!r}: expected one of {bundle_names()}")
    return path
