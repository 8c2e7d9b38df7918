"""Which pip extra of the ``satgate-monai`` distribution provides which module, and one line when one is missing.

A plain ``pip install satgate-monai`` (torch, monai, numpy) imports ``satgate_monai`` and ``data_prep``; the commands
need extras. Every entry point states the extras it needs (:func:`require_extras`, before anything heavy is
imported), and the shared error path (:func:`data_prep.errors.run_command`) turns an ``ImportError`` met later
(directly, or wrapped as MONAI wraps its optional imports and config expressions) into the same single line::

    error: python -m satgate_monai.demo needs scikit-image (module skimage): pip install "satgate-monai[train]"

Standard library only, and in ``data_prep`` because ``data_prep`` stands alone while both packages' commands use it.
The table is tested against ``setup.cfg``'s extras.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator

__all__ = [
    "MODULE_EXTRAS",
    "MissingExtraError",
    "extra_hint",
    "missing_extra",
    "missing_extra_in_text",
    "missing_modules",
    "require_extras",
]

#: top-level module -> (distribution to install, the extra of satgate-monai that installs it)
MODULE_EXTRAS: dict[str, tuple[str, str]] = {
    "nibabel": ("nibabel", "io"),
    "isal": ("isal", "io"),
    "SimpleITK": ("SimpleITK", "io"),
    "pydicom": ("pydicom", "io"),
    "itk": ("itk", "io"),
    "scipy": ("scipy", "io"),
    "PIL": ("pillow", "io"),
    "tqdm": ("tqdm", "io"),
    "ignite": ("pytorch-ignite", "train"),
    "tensorboard": ("tensorboard", "train"),
    "yaml": ("pyyaml", "train"),
    "fire": ("fire", "train"),
    "jsonschema": ("jsonschema", "train"),
    "skimage": ("scikit-image", "train"),
    "highdicom": ("highdicom", "dicomseg"),
    "dicomweb_client": ("dicomweb-client", "pacs"),
    "matplotlib": ("matplotlib", "report"),
    "ray": ("ray", "cluster"),
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
}

# Python's and MONAI's wordings of a missing module: "No module named 'skimage.measure'", "required package
# `skimage` ...", "Skimage.measure required."
_MISSING = re.compile(
    r"No module named '([A-Za-z_][\w.]*)'|required package `?([A-Za-z_][\w.]*)|(?:^|\s)([A-Za-z_][\w.]*) required\.",
    re.IGNORECASE | re.MULTILINE,
)


class MissingExtraError(ImportError):
    """A command needs a module that one of satgate-monai's extras installs; the message is the one line to print."""


def extra_hint(module: str, command: str) -> str:
    """``"<command> needs <distribution> (module <module>): pip install "satgate-monai[<extra>]""``.

    Raises:
        KeyError: ``module`` is not in :data:`MODULE_EXTRAS`.
    """
    dist, extra = MODULE_EXTRAS[module]
    return f'{command} needs {dist} (module {module}): pip install "satgate-monai[{extra}]"'


def missing_modules(*extras: str) -> list[str]:
    """The modules of ``extras`` (e.g. ``"io", "train"``) that cannot be imported here, in table order.

    Raises:
        ValueError: an extra that the table does not know.
    """
    known = {e for _, e in MODULE_EXTRAS.values()}
    unknown = [e for e in extras if e not in known]
    if unknown:
        raise ValueError(f"unknown extra(s) {unknown}: expected some of {sorted(known)}")
    return [m for m, (_, e) in MODULE_EXTRAS.items() if e in extras and importlib.util.find_spec(m) is None]


def require_extras(command: str, *extras: str) -> None:
    """Raise :class:`MissingExtraError` (one line naming the extra to install) unless ``extras`` are installed."""
    missing = missing_modules(*extras)
    if missing:
        raise MissingExtraError(extra_hint(missing[0], command))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _known(name: str) -> str | None:
    top = name.split(".")[0].lower()
    return next((m for m in MODULE_EXTRAS if m.lower() == top), None)


def missing_extra_in_text(text: str, command: str) -> str | None:
    """The one-line hint when ``text`` (e.g. a child process's output) reports a missing module of an extra."""
    for match in _MISSING.finditer(text):
        module = _known(next(g for g in match.groups() if g))
        if module:
            return extra_hint(module, command)
    return None


def missing_extra(exc: BaseException, command: str) -> str | None:
    """The one-line hint for ``exc`` (or an exception it was raised from) when it is a missing module of an extra,
    else ``None``."""
    for e in _chain(exc):
        if isinstance(e, MissingExtraError):
            return str(e)
        module = _known(e.name) if isinstance(e, ImportError) and e.name else None
        if module is None and isinstance(e, (ImportError, RuntimeError)):
            hint = missing_extra_in_text(str(e), command)
            if hint:
                return hint
        if module:
            return extra_hint(module, command)
    return None
