"""Cost estimate for ``--dry-run``: parameters and a measured training-step time per variant."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

__all__ = ["build_network", "count_params", "measure_step"]


def build_network(network_def: dict[str, Any]) -> torch.nn.Module:
    """Instantiate a ``network_def`` (``_target_`` + kwargs) the way the bundle does."""
    from monai.bundle import ConfigParser

    return ConfigParser({"net": dict(network_def)}).get_parsed_content("net")


def count_params(net: torch.nn.Module) -> int:
    """Number of parameters."""
    return int(sum(p.numel() for p in net.parameters()))


def measure_step(net: torch.nn.Module, input_shape: tuple[int, ...], device: str = "cpu",
                 repeats: int = 1) -> tuple[float, float]:
    """Seconds of one training step (forward + backward + Adadelta update) on a batch of ``input_shape``, and of
    one single-sample forward pass (best of ``repeats`` after a warm-up).

    Args:
        net: the network.
        input_shape: ``(N, C, *S)`` training batch shape (use ``N = 1`` and scale for a quick estimate).
        device: torch device string.
    """
    dev = torch.device(device)
    net = net.to(dev).train()
    opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
    x = torch.rand(input_shape, device=dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    step = math.inf
    for i in range(repeats + 1):
        sync()
        t = time.perf_counter()
        opt.zero_grad()
        out = net(x)  # a deep-supervision network returns [main, side outputs...] in training mode
        (sum(o.float().mean() for o in out) if isinstance(out, (list, tuple)) else out.float().mean()).backward()
        opt.step()
        sync()
        if i:
            step = min(step, time.perf_counter() - t)
    net.eval()
    fwd = math.inf
    with torch.no_grad():
        for i in range(repeats + 1):
            sync()
            t = time.perf_counter()
            net(x[:1])
            sync()
            if i:
                fwd = min(fwd, time.perf_counter() - t)
    return step, fwd
