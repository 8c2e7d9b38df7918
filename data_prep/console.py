"""What a command line shows a person, and where the full log goes: one set-up for every entry point.

By default the terminal shows the command's own progress bars and summary, our own warnings, and errors; the whole
log (every library's INFO lines, Python warnings) goes to a file in the output folder. ``-v`` streams that log to
the terminal as well. Known third-party noise that says nothing to the user (MONAI's "nvImageCodec is not
available" on every DICOM import) is dropped, and a message repeated word for word is shown once.

Only entry points call :func:`configure_output`: it adds handlers and filters to the *root* logger of the process the
user started, and never changes another library's own loggers, levels or handlers. Library code only logs.

Standard library only; ``data_prep`` stands alone and ``satgate_monai``'s command lines use it too.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

__all__ = ["NOISE", "OUR_LOGGERS", "NoiseFilter", "configure_output", "is_noise", "reset_output"]

#: (logger name prefix, message start) of third-party records that say nothing to the user: dropped everywhere
NOISE: tuple[tuple[str, str], ...] = (
    ("monai.data.nvimgcodec_pydicom_plugin", "nvImageCodec is not available"),
    ("py.warnings", "NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register"),
)
#: loggers whose warnings reach the terminal without -v (other libraries' warnings go to the log file only)
OUR_LOGGERS = ("satgate_monai", "data_prep", "__main__")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_satgate_output"  # set on the handlers configure_output adds, so reset_output removes exactly those


def is_noise(line: str) -> bool:
    """True for a line of another process's output that holds a :data:`NOISE` message."""
    return any(message in line for _, message in NOISE)


class NoiseFilter(logging.Filter):
    """Drop :data:`NOISE` and any message already passed once (same logger, level and text)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(record.name.startswith(n) and m in message for n, m in NOISE):
            return False
        key = (record.name, record.levelno, message)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


class _TerminalFilter(logging.Filter):
    """Without -v: our own records from ``our_level`` up and anyone's errors."""

    def __init__(self, our_level: int) -> None:
        super().__init__()
        self.our_level = our_level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return record.levelno >= self.our_level and record.name.split(".")[0] in OUR_LOGGERS


class _LogFileHandler(logging.Handler):
    """Append records to ``path`` once its folder exists; records before that are kept and written then.

    A command creates its output folder only after checking it (e.g. not inside an input), so the log never creates
    a folder or writes where the command would refuse to; a run refused before that leaves no log file.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._pending: list[str] = []
        self._stream = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            if self._stream is None and self.path.parent.is_dir():
                self._stream = open(self.path, "a", encoding="utf-8")  # closed in close()
                self._stream.writelines(self._pending)
                self._pending = []
            if self._stream is None:
                self._pending.append(line)
            else:
                self._stream.write(line)
                self._stream.flush()
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        super().close()


def reset_output() -> None:
    """Remove (and close) the handlers :func:`configure_output` added to the root logger; warnings are no longer
    logged. Entry points call it when the command ends, so a caller in the same process (a test) gets its logging
    back as it was."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    logging.captureWarnings(False)


def configure_output(
    log_file: str | Path | None,
    verbose: bool = False,
    level: int = logging.INFO,
    our_level: int = logging.WARNING,
) -> Path | None:
    """Route the process's log: everything at ``level`` and above to ``log_file`` (appended, from when its folder
    exists),
    to the terminal (stderr) too with ``verbose``, else only our own records at ``our_level`` and above and anyone's
    errors there. Python warnings are logged (``logging.captureWarnings``), so they follow the same routes.

    Calling it again replaces what an earlier call set up (the handlers of other code are left alone).

    Returns:
        ``log_file`` as a ``Path`` (``None`` when not given).
    """
    reset_output()
    root = logging.getLogger()
    root.setLevel(level)
    noise = NoiseFilter()
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setFormatter(logging.Formatter(_FORMAT if verbose else "%(levelname)s %(name)s: %(message)s"))
    terminal.addFilter(noise)
    if not verbose:
        terminal.addFilter(_TerminalFilter(our_level))
    handlers: list[logging.Handler] = [terminal]
    path = None
    if log_file is not None:
        path = Path(log_file)
        file_handler = _LogFileHandler(path)
        file_handler.setFormatter(logging.Formatter(_FORMAT))
        file_handler.addFilter(NoiseFilter())
        handlers.append(file_handler)
    for handler in handlers:
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    logging.captureWarnings(True)
    return path
