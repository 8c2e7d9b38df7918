"""One-line errors for ``python -m monai.bundle run`` on the satgate-monai bundles.

MONAI's runner lets every exception escape, so Python prints a traceback, and MONAI wraps the real cause into
``RuntimeError: applying transform ...`` or a config-evaluation error, so the line a user needs comes only after
several screens. Importing :mod:`satgate_monai.bundle.entry` (every bundle config does) installs :func:`excepthook`:
when the uncaught exception is, or was caused by, one of the project's own user errors (:data:`USER_ERROR_NAMES`: an
invalid input, a refused checkpoint, a missing dataset or file), it prints exactly that error's message on one line
(``error: <file>: <fault>``, at most 300 characters; a missing dataset adds the commands that create it on the
following lines); the exit status stays 1 (Python's for an uncaught exception).
Any other exception keeps Python's full traceback, and so does every exception when ``SATGATE_TRACEBACK=1`` is set
or the root logger is at DEBUG. Ctrl-C prints ``interrupted`` (exit status 130 from the shell's SIGINT convention).
Errors raised in DataLoader worker processes reach the main process as text; the hook finds the project's error in
that text too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from types import TracebackType

from data_prep.errors import MAX_ERROR_CHARS, describe, one_line

__all__ = ["USER_ERROR_NAMES", "excepthook", "find_user_error", "install_excepthook"]

#: class names of the project's user errors (by name, so no import cycle and worker tracebacks match as text)
USER_ERROR_NAMES = ("InputError", "CheckpointError", "DatasetNotFoundError")
_previous_hook = sys.excepthook
_LIMIT = MAX_ERROR_CHARS - len("error: ")
_IN_TEXT = re.compile(r"^(?:[\w.]+\.)?(" + "|".join(USER_ERROR_NAMES) + r"): (.+)$", re.MULTILINE)


def _is_user_error(exc: BaseException) -> bool:
    if any(cls.__name__ in USER_ERROR_NAMES for cls in type(exc).__mro__):
        return True
    # a missing file named by satgate_monai.bundle.require_file / load_datalist
    return isinstance(exc, FileNotFoundError) and "does not exist" in str(exc) and exc.filename is None


def find_user_error(exc: BaseException | None) -> str | None:
    """The one-line message of the project's user error behind ``exc`` (its causes and contexts), or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if _is_user_error(exc):
            return one_line(describe(exc).split("\n")[0] if "\n" in str(exc) else describe(exc), _LIMIT)
        match = _IN_TEXT.findall(str(exc))  # a worker process's traceback, as text
        if match:
            return one_line(match[0][1], _LIMIT)
        exc = exc.__cause__ or exc.__context__
    return None


def _hint(exc: BaseException | None) -> str:
    """The lines after the first of a missing-dataset error: the commands that create the data."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ == "DatasetNotFoundError":
            return "\n".join(str(exc).splitlines()[1:])
        exc = exc.__cause__ or exc.__context__
    return ""


def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """``sys.excepthook``: one line for the project's user errors and Ctrl-C, Python's traceback otherwise."""
    debug = os.environ.get("SATGATE_TRACEBACK", "") not in ("", "0") or logging.getLogger().level == logging.DEBUG
    if not debug:
        if issubclass(exc_type, KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
            return
        message = find_user_error(exc)
        if message is not None:
            print(f"error: {message}", file=sys.stderr)
            hint = _hint(exc)
            if hint:
                print(hint, file=sys.stderr)
            return
    _previous_hook(exc_type, exc, tb)


def install_excepthook() -> None:
    """Make :func:`excepthook` the process's ``sys.excepthook`` (idempotent)."""
    if sys.excepthook is not excepthook:
        global _previous_hook
        _previous_hook = sys.excepthook
        sys.excepthook = excepthook
