"""The entry point of ``python -m monai.bundle run`` on the satgate-monai bundles: importing it installs the hook.

Every bundle config lists ``"$import satgate_monai.bundle.entry"`` in its ``imports`` (MONAI evaluates those before
anything else), so a user error of a bundle run prints one line (:func:`satgate_monai.bundle.errors.excepthook`).
Only the configs import this module: importing :mod:`satgate_monai.bundle` itself changes no global state, so a
process that merely uses the bundle layer (the MONAI Label server, the tools, the tests) keeps its own
``sys.excepthook``.
"""

from __future__ import annotations

from satgate_monai.bundle.errors import install_excepthook

__all__: list[str] = []

install_excepthook()
