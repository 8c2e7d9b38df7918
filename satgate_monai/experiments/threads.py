"""How many torch threads each training process of the grid uses.

On a CPU, one thread per process is the fast setting: the grid's networks are small, so torch's intra-op threads
spend more time synchronising than computing, and on a loaded machine they wait for each other's cores (the same
network trained 7x faster with one thread per process on a loaded 2-core machine). So the default is one thread per
process, and cells that run in parallel run as one process per core, each with one thread.
"""

from __future__ import annotations

import logging
import os

__all__ = ["available_cores", "plan_threads", "apply_threads"]

logger = logging.getLogger(__name__)

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def plan_threads(threads: int | None = None, jobs: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """``(jobs, threads)``: how many cells run at once and the torch threads of each.

    Args:
        threads: threads per process (``None``: 1).
        jobs: cells at once (``None``: 1, sequential; ``0``: one process per available core).
        cores: available cores (default: :func:`available_cores`).

    Returns:
        ``(jobs, threads)``; a warning is logged when ``jobs * threads`` exceeds the cores (oversubscription).

    Raises:
        ValueError: for a threads or jobs count below its minimum.
    """
    cores = available_cores() if cores is None else int(cores)
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}.")
    if jobs is not None and int(jobs) < 0:
        raise ValueError(f"jobs must be 0 (one per core) or a positive int, got {jobs!r}.")
    n_jobs = 1 if jobs is None else (cores if int(jobs) == 0 else int(jobs))
    n_threads = 1 if threads is None else int(threads)
    if n_jobs * n_threads > cores:
        logger.warning("%d job(s) x %d thread(s) exceed the %d available core(s): processes will wait for each "
                       "other's cores; one thread per process is usually fastest on a CPU", n_jobs, n_threads, cores)
    return n_jobs, n_threads


def apply_threads(threads: int) -> None:
    """Use ``threads`` torch intra-op threads in this process, and the same for any child process it starts
    (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``). Call it first thing in a worker."""
    import torch

    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}.")
    for var in THREAD_ENV:
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)
