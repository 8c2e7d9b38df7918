"""Where the package's own files are: the MONAI bundles it ships.

The bundles live once, in the repository's top-level ``bundles/`` folder. ``setup.py`` maps the package
``satgate_monai.bundles`` onto that folder, so a wheel or an sdist installs them at ``<package>/bundles`` (data files
only, ``setup.cfg`` ``package_data``); a checkout and an editable install find them next to the package, at
``<package>/../bundles``. No link is involved. From a shell::

    python -m satgate_monai bundle-path liver_ct_sat      # prints the bundle's folder
    python -m satgate_monai bundle-path                   # prints the folder holding every bundle

Standard library only, so the launchers that must start fast (``python -m satgate_monai.label``) can use it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundle_names", "bundle_path", "bundles_dir"]

_PACKAGE = Path(__file__).resolve().parent
# installed (wheel, sdist): inside the package; checkout and editable install: the repository's top-level folder
_CANDIDATES = (_PACKAGE / "bundles", _PACKAGE.parent / "bundles")


def bundles_dir() -> Path:
    """The folder holding every shipped bundle: ``<package>/bundles`` when installed, the repository's ``bundles/``
    in a checkout or an editable install (the first of the two that exists; the installed one when neither does)."""
    return next((c for c in _CANDIDATES if c.is_dir()), _CANDIDATES[0])


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
