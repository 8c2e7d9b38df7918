"""The end of a multi-process (DDP) bundle run: every rank leaves the process group cleanly.

``dist.destroy_process_group()`` alone is not enough with the gloo backend: a ``DistributedDataParallel`` wrapper
still referenced by the bundle's parsed config keeps the process group alive through its C++ reducer and logger until
interpreter shutdown, when gloo's worker threads may be torn down while they still hold tensors, and a rank dies with
``terminate called without an active exception`` (SIGABRT) after a complete run. :func:`finish_distributed` drops
those references first, so the process group is destroyed while Python is fully alive.
"""

from __future__ import annotations

import gc
import logging

import torch.distributed as dist
from torch import nn

__all__ = ["finish_distributed"]

logger = logging.getLogger(__name__)

# attributes of torch.nn.parallel.DistributedDataParallel that hold the process group (directly or through C++)
_PROCESS_GROUP_HOLDERS = ("logger", "reducer", "process_group")


def finish_distributed(network: nn.Module | None = None) -> bool:
    """Wait for every rank, release ``network``'s hold on the process group, and destroy the group.

    Args:
        network: the (possibly ``DistributedDataParallel``-wrapped) network of the run; a DDP wrapper cannot run
            another distributed step afterwards, its wrapped module stays usable.

    Returns:
        True when a process group was destroyed, False when none was initialised (a single-process run).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    dist.barrier()
    if isinstance(network, nn.parallel.DistributedDataParallel):
        for name in _PROCESS_GROUP_HOLDERS:
            network.__dict__.pop(name, None)
    gc.collect()
    dist.destroy_process_group()
    logger.debug("process group destroyed")
    return True
