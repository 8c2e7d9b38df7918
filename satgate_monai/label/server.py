"""``python -m satgate_monai.label.server start_server ...``: MONAI Label's own ``monailabel.main``, leaving nothing
private behind.

``serve`` runs the server through this module (in the MONAI Label environment). Before MONAI Label starts, the
process gets a private temporary folder (:func:`data_prep.scratch.private_tmpdir`: 0700, an owner marker, the
folders of dead servers swept first), so every upload, every image sent to ``/infer`` and every result file MONAI
Label writes with ``tempfile`` lands there, in server workers too (they inherit ``$TMPDIR``). The folder is removed
when the server ends:

- Ctrl-C or SIGTERM: uvicorn shuts down gracefully (running requests finish), then raises the signal again; it then
  meets :class:`~data_prep.scratch.Terminated` (SIGTERM) or ``KeyboardInterrupt`` (SIGINT), so Python exits normally
  and removes the folder (exit 143 or 130).
- SIGHUP (uvicorn ignores it): passed on as SIGTERM, the same graceful path.
- SIGKILL or a power loss: the next start of the server, of the inference CLI or of ``data_prep`` sweeps the folder.
"""

from __future__ import annotations

import os
import signal

from data_prep.scratch import exit_on_signals, private_tmpdir

__all__ = ["main"]


def _hangup(signum: int, frame) -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    """Start MONAI Label's ``monailabel.main`` with this process's arguments in a private temporary folder."""
    private_tmpdir("label")
    from monailabel.main import Main

    with exit_on_signals():
        signal.signal(signal.SIGHUP, _hangup)
        Main().run()


if __name__ == "__main__":
    main()
