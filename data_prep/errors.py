"""One-line user errors for every command line: the wording, the length limit and the exit codes.

A command ends a user error (bad input, unusable output folder, refused checkpoint...) with exactly one line on
stderr, ``error: <file>: <fault>``, at most :data:`MAX_ERROR_CHARS` characters, and a non-zero exit; the traceback is
shown only at debug logging. Ctrl-C ends with exit :data:`EXIT_INTERRUPTED` (130, the shell convention) and the one
line ``interrupted``; SIGTERM and SIGHUP unwind the same way (temporaries removed) and end with ``terminated by
SIGTERM`` (``SIGHUP``) and exit 143 (129), see :mod:`data_prep.scratch`. ``satgate_monai``'s command lines and
bundle entry points use the same helpers.
"""

from __future__ import annotations

import errno
import logging
import sys
import traceback
from collections.abc import Callable

from data_prep.scratch import Terminated, exit_on_signals, sweep

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "MAX_ERROR_CHARS",
    "USER_ERRORS",
    "describe",
    "one_line",
    "run_command",
]

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: exception types that are the user's to fix (the message says what): no traceback for them
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError)


def one_line(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``message`` on one line (whitespace collapsed), cut to ``limit`` characters with `` ...`` when longer."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 4].rstrip() + " ..."


def describe(exc: BaseException) -> str:
    """A short description of ``exc`` naming the file where Python knows it (``OSError.filename``)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        what = exc.strerror
        if exc.errno == errno.ENOSPC:
            what = "no space left on the device"
        target = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else f"{exc.filename}"
        return f"{target}: {what}"
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}" if exc.args else "missing key"
    text = str(exc).strip()
    if isinstance(exc, USER_ERRORS) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_command(
    fn: Callable[[], int], *, debug: bool = False, debug_hint: str = "--log-level DEBUG", command: str = "this command"
) -> int:
    """Run a command body and turn its failure into one stderr line and an exit code.

    Args:
        fn: the command; returns its exit code.
        debug: show tracebacks (and let nothing be shortened).
        debug_hint: the option that shows the traceback, named in the line of an unexpected error.
        command: how the user called it (``"python -m data_prep"``), named when a module of an extra is missing.

    Returns:
        ``fn()``'s code; 2 for a user error (:data:`USER_ERRORS`) or a missing extra (the line names the extra to
        install, :mod:`data_prep.extras`), 1 for an unexpected one, 130 on Ctrl-C, 128 + the signal number on SIGTERM
        or SIGHUP.
    """
    from data_prep.extras import missing_extra

    try:
        with exit_on_signals():
            sweep()  # scratch folders that a killed run left behind
            return int(fn())
    except Terminated as e:
        print(str(e), file=sys.stderr)
        return int(e.code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as e:
        if debug:
            traceback.print_exc()
        print(f"error: {one_line(describe(e), MAX_ERROR_CHARS - 7)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # a missing extra, else a bug: still one line unless debugging
        if debug:
            traceback.print_exc()
        hint = missing_extra(e, command)
        if hint:
            print(f"error: {hint}", file=sys.stderr)
            return EXIT_USAGE
        hint = f" (traceback: {debug_hint})"
        print(f"error: {one_line(describe(e), MAX_ERROR_CHARS - 7 - len(hint))}{hint}", file=sys.stderr)
        return 1
