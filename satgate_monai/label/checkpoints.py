"""Which checkpoint file of a bundle the MONAI Label server serves: ``models/model.pt`` unless a request names another.

A bundle's ``models/`` folder holds the best checkpoint ``model.pt`` (written by the validation's ``CheckpointSaver``)
and usually ``last.pt`` (the resume checkpoint of the last epoch, written by every training, MONAI Label's included).
MONAI Label 0.8.5 lists every ``*.pt`` file sorted by name length and serves the first, which is ``last.pt`` whenever
it exists. Here ``model.pt`` is the default, the list holds only files whose weights fit the bundle's network, and a
request may name one of them (``model_filename``) explicitly; anything else is refused with the reason.

Checkpoints are read by the project's one loader (:mod:`satgate_monai.bundle.checkpoint`: ``weights_only``, NaN
refused, one-line mismatch); no MONAI Label import, so it is tested in the project's environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from satgate_monai.bundle.checkpoint import CheckpointError, load_state_dict, mismatch

__all__ = [
    "DEFAULT_CHECKPOINT",
    "CheckpointError",
    "choose_checkpoint",
    "file_signature",
    "servable_checkpoints",
]

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "model.pt"


def file_signature(path: str | os.PathLike) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of a file, or None when it is missing: changes whenever the file is replaced."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def servable_checkpoints(models_dir: str | os.PathLike, reference: Mapping[str, Any]) -> list[str]:
    """The ``*.pt`` files of ``models_dir`` whose weights fit the network, ``model.pt`` first, the others by name.

    Args:
        models_dir: the bundle's ``models`` folder.
        reference: the network's ``state_dict()`` (names and shapes are compared).
    """
    names = sorted(n for n in os.listdir(models_dir) if n.endswith(".pt") and not n.startswith("."))
    names.sort(key=lambda n: n != DEFAULT_CHECKPOINT)
    served = []
    for name in names:
        try:
            fault = mismatch(load_state_dict(os.path.join(models_dir, name)), reference)
        except CheckpointError as e:
            fault = str(e)
        if fault:
            logger.warning("%s is not offered for inference: %s", os.path.join(models_dir, name), fault)
        else:
            served.append(name)
    return served


def choose_checkpoint(requested: Any, served: list[str]) -> str:
    """The checkpoint file to serve for a request's ``model_filename``.

    Args:
        requested: the request's value: absent/None/'' or a list of several (a client echoing the offered list)
            mean the default; a file name (or a one-element list) names a file explicitly.
        served: the servable files (:func:`servable_checkpoints`).

    Returns:
        the file name.

    Raises:
        CheckpointError: nothing servable, or the named file is not one of ``served``.
    """
    if not served:
        raise CheckpointError(f"no checkpoint to serve: models/{DEFAULT_CHECKPOINT} is missing or does not fit")
    if isinstance(requested, (list, tuple)):  # clients echo the offered list back unless one file was picked
        requested = requested[0] if len(requested) == 1 else None
    if requested in (None, ""):
        if DEFAULT_CHECKPOINT not in served:
            raise CheckpointError(
                f"models/{DEFAULT_CHECKPOINT} is missing or does not fit the network; name one of {list(served)} "
                "as model_filename"
            )
        return DEFAULT_CHECKPOINT
    if not isinstance(requested, str) or os.path.basename(requested) != requested or requested not in served:
        raise CheckpointError(f"model_filename {requested!r} is not a servable checkpoint of this model: {served}")
    return requested
