"""Run-time settings shared by the CLI, the demo and the bundles: torch's thread count and mixed precision.

Threads: torch's default (one thread per visible core of the *machine*) oversubscribes a loaded or containerised
machine, where threads then spin against each other. :func:`set_threads` sets an explicit count, by default the
cores this process may run on (``os.sched_getaffinity``), or ``OMP_NUM_THREADS`` where the caller set it.

Precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` autocast for inference, ``"auto"`` = fp16 on CUDA and fp32 on CPU
(bf16 autocast on CPU is an option; ``benchmarks/networks.py --amp`` measures whether it pays on a given CPU).
The SAT gate's selection (``trelu(w)``) and sigmoid run in float32 under autocast.
"""

from __future__ import annotations

import contextlib
import logging
import os

import torch

__all__ = ["PRECISIONS", "autocast", "default_threads", "resolve_precision", "set_threads"]

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set to a positive int, else the number of cores this process may run on
    (``os.sched_getaffinity``; ``os.cpu_count`` where that is absent)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int | None = None) -> int:
    """``torch.set_num_threads(threads)`` (default :func:`default_threads`) and return the count set.

    Raises:
        ValueError: ``threads`` below 1.
    """
    n = default_threads() if threads is None else int(threads)
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    torch.set_num_threads(n)
    return n


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``"auto"`` -> ``"fp16"`` on CUDA, ``"fp32"`` elsewhere; other values checked and returned.

    Raises:
        ValueError: an unknown precision, or fp16 requested on a CPU.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    kind = torch.device(device).type
    if precision == "auto":
        return "fp16" if kind == "cuda" else "fp32"
    if precision == "fp16" and kind == "cpu":
        raise ValueError("precision fp16 needs a CUDA device: use bf16 (or fp32) on a CPU")
    return precision


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``precision`` on ``device`` (a no-op context for fp32)."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=_DTYPES[precision])
