"""Private scratch folders for patient data: created 0700, removed on every exit, swept after a kill.

Every temporary copy of patient data the project makes (a study retrieved from a PACS, an upload to the MONAI Label
server, a converted input, a partial output) lives in a scratch folder made here:

- :func:`private_folder` (a ``with`` block) makes ``$TMPDIR/satgate-<kind>-<pid>-<random>/`` with mode 0700 and a
  marker file :data:`MARKER` (``<pid> <process start time>``, mode 0600), and removes the folder when the block ends:
  normally, on an error, on Ctrl-C, and on SIGTERM or SIGHUP once :func:`exit_on_signals` turned those into an
  exception.
- :func:`private_tmpdir` does the same for a whole process (a server): the folder becomes ``tempfile``'s folder and
  ``$TMPDIR`` (so the libraries' own temporaries and child processes land in it too) and is removed at exit.
- :func:`sweep` removes the scratch folders whose owner is dead: a SIGKILL or a power loss leaves a folder behind,
  and the next start of any entry point removes it. A folder whose owner still runs is never touched, nor is one of
  another user.
- :func:`exit_on_signals` (entry points only) turns SIGTERM and SIGHUP (what ``timeout``, SLURM, systemd and a closed
  terminal send) into :class:`Terminated`, a ``SystemExit`` with status 128 + signal number, so ``with`` and
  ``finally`` blocks run as on Ctrl-C instead of the process vanishing with its temporaries.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MARKER", "PREFIX", "Terminated", "exit_on_signals", "private_folder", "private_tmpdir", "sweep"]

logger = logging.getLogger(__name__)

PREFIX = "satgate-"
MARKER = ".satgate-owner"
EXIT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(SystemExit):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C, then exit with status 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"terminated by {signal.Signals(self.signum).name}"


def _raise_terminated(signum: int, frame) -> None:
    for s in EXIT_SIGNALS:  # a second signal must not cut the clean-up short
        signal.signal(s, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (previous handlers come
    back afterwards). Outside the main thread, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_terminated) for s in EXIT_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _owner_alive(pid: int, started: str) -> bool:
    """Does process ``pid`` (started at ``started``, "" when unknown) still run? Another user's process counts as
    alive; a reused pid (another start time) as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or not Path("/proc").is_dir() or _start_time(pid) == started


def _owner(folder: Path) -> tuple[int, str] | None:
    """``(pid, start time)`` from the folder's marker, else from its name ``satgate-<kind>-<pid>-<random>``."""
    try:
        pid, _, started = (folder / MARKER).read_text().strip().partition(" ")
        return int(pid), started
    except (OSError, ValueError):
        pass
    parts = folder.name.split("-")
    return (int(parts[-2]), "") if len(parts) >= 4 and parts[-2].isdigit() else None


def sweep(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove the scratch folders under ``root`` (default: the temporary folder) whose owner process is dead.

    Returns:
        The folders removed.
    """
    base = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX) or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        owner = _owner(entry)
        if owner is None or _owner_alive(*owner):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            logger.warning("removed %s, left by process %d that ended without cleaning up", entry, owner[0])
            removed.append(entry)
    return removed


def _make(kind: str, root: str | os.PathLike | None) -> Path:
    sweep(root)
    pid = os.getpid()
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{pid}-", dir=root))  # mode 0700
    fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{pid} {_start_time(pid)}\n")
    return folder


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        logger.warning("could not remove the scratch folder %s", folder)


@contextlib.contextmanager
def private_folder(kind: str, root: str | os.PathLike | None = None) -> Iterator[Path]:
    """A fresh private scratch folder (0700, owner marker) for the block; removed with everything in it afterwards.
    Dead owners' folders are swept first.

    Args:
        kind: a word naming the use (``dicomweb``, ``upload``...), part of the folder name.
        root: where to make it (default: the temporary folder, ``$TMPDIR``).
    """
    folder = _make(kind, root)
    try:
        yield folder
    finally:
        _remove(folder)


def private_tmpdir(kind: str) -> Path:
    """Make a private scratch folder this process's temporary folder (``tempfile.tempdir`` and ``$TMPDIR``) until it
    exits; removed at exit by this process (not by forked children). Dead owners' folders are swept first.

    Returns:
        The folder.
    """
    folder = _make(kind, None)
    owner = os.getpid()
    tempfile.tempdir = str(folder)
    os.environ["TMPDIR"] = str(folder)

    def remove() -> None:
        if os.getpid() == owner:
            _remove(folder)

    atexit.register(remove)
    return folder
