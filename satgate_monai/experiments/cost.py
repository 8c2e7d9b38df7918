"""Cost estimate for ``--dry-run``: parameters and a measured training-step time per variant."""

from __future__ import annotations

import time
from typing import Any

import torch

__all__ = ["build_network", "count_params", "time_steps"]


def build_network(network_def: dict[str, Any]) -> torch.nn.Module:
    """Instantiate a ``network_def`` (``_target_`` + kwargs) the way the bundle does."""
    from monai.bundle import ConfigParser

    return ConfigParser({"net": dict(network_def)}).get_parsed_content("net")


def count_params(net: torch.nn.Module) -> int:
    """Number of parameters."""
    return int(sum(p.numel() for p in net.parameters()))


def time_steps(net: torch.nn.Module, input_shape: tuple[int, ...], device: str = "cpu",
               repeats: int = 3) -> tuple[list[float], list[float]]:
    """Seconds of ``repeats`` training steps (forward + backward + Adadelta update) on a batch of ``input_shape``,
    and of ``repeats`` single-sample forward passes, each series after one warm-up.

    Args:
        net: the network.
        input_shape: ``(N, C, *S)`` training batch shape.
        device: torch device string.
        repeats: timed repetitions of each (at least 1).
    """
    dev = torch.device(device)
    net = net.to(dev).train()
    opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
    x = torch.rand(input_shape, device=dev)
    repeats = max(int(repeats), 1)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    steps: list[float] = []
    for i in range(repeats + 1):
        sync()
        t = time.perf_counter()
        opt.zero_grad()
        out = net(x)  # a deep-supervision network returns [main, side outputs...] in training mode
        (sum(o.float().mean() for o in out) if isinstance(out, (list, tuple)) else out.float().mean()).backward()
        opt.step()
        sync()
        if i:
            steps.append(time.perf_counter() - t)
    net.eval()
    forwards: list[float] = []
    with torch.no_grad():
        for i in range(repeats + 1):
            sync()
            t = time.perf_counter()
            net(x[:1])
            sync()
            if i:
                forwards.append(time.perf_counter() - t)
    return steps, forwards
