"""Benchmark: SATUNet with ORG / AT / ST / SAT skips against MONAI's AttentionUnet, at equal widths.

Run::

    python benchmarks/networks.py            # 2D 4x3x256x256 and 3D 1x1x96x96x96
    python benchmarks/networks.py --quick    # 2D 2x3x128x128 and 3D 1x1x48x48x48, fewer repeats

Measures, per model:

* parameters; forward GFLOPs (``torch.utils.flop_counter.FlopCounterMode`` on the meta device, 2 per multiply-add);
* memory kept for backward in a training step: unique storages given to ``torch.autograd.graph.saved_tensors_hooks``
  during the forward pass (parameters and the input batch excluded);
* peak inference memory: peak bytes of live tensors during an ``inference_mode`` forward, tracked by a
  ``TorchDispatchMode`` (:mod:`satgate_monai.report.memory`; kernel-internal scratch buffers are not seen);
* median wall time of a training step (forward, cross-entropy, backward, SGD step) and of an inference forward, with
  the models interleaved in rotating order on every repeat and ``torch.set_num_threads`` fixed.

It prints one table per setting with ratios against ORG, then the issue's targets, met or not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets import AttentionUnet
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from satgate_monai.networks.nets import SATUNet
from satgate_monai.report.memory import peak_live_bytes, saved_tensor_bytes

MODELS = ("ORG", "AT", "ST", "SAT", "AttentionUnet")
MB = 2.0**20


def build(name: str, dims: int, in_channels: int, channels: Sequence[int], device: str | torch.device) -> nn.Module:
    with torch.device(device):
        if name == "AttentionUnet":
            return AttentionUnet(dims, in_channels, 2, channels=channels, strides=(2,) * (len(channels) - 1))
        return SATUNet(dims, in_channels, 2, channels=channels, skip_gate=name.lower())


def gflops(name: str, dims: int, shape: Sequence[int], channels: Sequence[int]) -> float:
    net = build(name, dims, shape[1], channels, "meta").eval()
    with FlopCounterMode(display=False) as counter:
        net(torch.empty(tuple(shape), device="meta"))
    return counter.get_total_flops() / 1e9


def measure(setting: str, dims: int, shape: Sequence[int], channels: Sequence[int], repeats: int, warmup: int,
            device: str) -> dict[str, dict]:
    """All measurements of one setting, ``{model: {metric: value}}``."""
    torch.manual_seed(0)
    x = torch.randn(tuple(shape), device=device)
    target = torch.randint(0, 2, (shape[0], *shape[2:]), device=device)
    nets = {name: build(name, dims, shape[1], channels, device) for name in MODELS}
    optimisers = {name: torch.optim.SGD(net.parameters(), lr=1e-4) for name, net in nets.items()}
    results: dict[str, dict] = {}
    for name, net in nets.items():
        excluded = [*net.parameters(), *net.buffers(), x]
        net.train()
        kept = saved_tensor_bytes(lambda net=net: F.cross_entropy(net(x), target), excluded)
        net.zero_grad(set_to_none=True)
        net.eval()
        with torch.inference_mode():
            peak = peak_live_bytes(lambda net=net: net(x), excluded)
        results[name] = {"params": sum(p.numel() for p in net.parameters()),
                         "gflops": gflops(name, dims, shape, channels), "kept_mb": kept / MB, "peak_mb": peak / MB,
                         "train_s": [], "infer_s": []}
        print(f"  [{setting}] {name}: memory measured", file=sys.stderr, flush=True)

    def train_step(name: str) -> None:
        net, opt = nets[name], optimisers[name]
        net.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), target).backward()
        opt.step()

    def infer(name: str) -> None:
        net = nets[name].eval()
        with torch.inference_mode():
            net(x)

    for kind, step in (("train_s", train_step), ("infer_s", infer)):
        for r in range(warmup + repeats):
            order = MODELS[r % len(MODELS):] + MODELS[: r % len(MODELS)]  # rotate: no model always runs first
            for name in order:
                start = time.perf_counter()
                step(name)
                elapsed = time.perf_counter() - start
                if r >= warmup:
                    results[name][kind].append(elapsed)
            print(f"  [{setting}] {kind} repeat {r + 1}/{warmup + repeats}", file=sys.stderr, flush=True)
    for name in MODELS:
        for kind in ("train_s", "infer_s"):
            results[name][kind] = statistics.median(results[name][kind])
    return results


def table(setting: str, results: dict[str, dict]) -> str:
    org = results["ORG"]
    lines = [f"### {setting}", "",
             "| model | params | GFLOPs fwd | kept for backward (MB) | peak inference (MB) | train step (s) | "
             "inference (s) | params/ORG | FLOPs/ORG | kept/ORG | peak/ORG | train/ORG | infer/ORG |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in MODELS:
        r = results[name]
        ratios = [r[k] / org[k] for k in ("params", "gflops", "kept_mb", "peak_mb", "train_s", "infer_s")]
        lines.append(f"| {name} | {r['params']:,} | {r['gflops']:.2f} | {r['kept_mb']:.1f} | {r['peak_mb']:.1f} | "
                     f"{r['train_s']:.3f} | {r['infer_s']:.3f} | " + " | ".join(f"{v:.3f}" for v in ratios) + " |")
    return "\n".join(lines)


def targets(setting: str, results: dict[str, dict]) -> list[str]:
    sat, org, att = results["SAT"], results["ORG"], results["AttentionUnet"]
    checks = [
        ("SAT/ORG FLOPs <= 0.80", sat["gflops"] / org["gflops"], sat["gflops"] / org["gflops"] <= 0.80),
        ("SAT/ORG peak inference memory <= 0.75", sat["peak_mb"] / org["peak_mb"], sat["peak_mb"] / org["peak_mb"]
         <= 0.75),
        ("SAT/ORG memory kept for backward <= 0.90", sat["kept_mb"] / org["kept_mb"],
         sat["kept_mb"] / org["kept_mb"] <= 0.90),
        ("SAT/AttentionUnet memory kept for backward < 1", sat["kept_mb"] / att["kept_mb"],
         sat["kept_mb"] < att["kept_mb"]),
        ("SAT/AttentionUnet peak inference memory < 1", sat["peak_mb"] / att["peak_mb"],
         sat["peak_mb"] < att["peak_mb"]),
        ("SAT/AttentionUnet train step time < 1", sat["train_s"] / att["train_s"], sat["train_s"] < att["train_s"]),
        ("SAT/AttentionUnet inference time < 1", sat["infer_s"] / att["infer_s"], sat["infer_s"] < att["infer_s"]),
    ]
    return [f"- {setting}: {label}: {value:.3f} -> {'met' if ok else 'NOT met'}" for label, value, ok in checks]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer repeats")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per model (default 5, quick 3)")
    parser.add_argument("--channels-2d", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--channels-3d", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--only", choices=("2d", "3d"), default=None, help="run one setting only")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 5)
    settings = [
        ("2D", 2, (2, 3, 128, 128) if args.quick else (4, 3, 256, 256), args.channels_2d),
        ("3D", 3, (1, 1, 48, 48, 48) if args.quick else (1, 1, 96, 96, 96), args.channels_3d),
    ]
    print(f"# SATUNet (ORG/AT/ST/SAT) vs MONAI AttentionUnet, equal widths\n\ntorch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {args.device}, {repeats} timed repeats (+1 warm-up), models "
          f"interleaved in rotating order; load average at start {os.getloadavg()[0]:.1f}.\n")
    lines: list[str] = []
    for label, dims, shape, channels in settings:
        if args.only and args.only != label.lower():
            continue
        setting = f"{label} input {'x'.join(map(str, shape))}, channels {tuple(channels)}"
        results = measure(setting, dims, shape, channels, repeats, 1, args.device)
        print(table(setting, results) + "\n", flush=True)
        lines += targets(label, results)
    print("### Targets\n\n" + "\n".join(lines))
    print(f"\nload average at end {os.getloadavg()[0]:.1f} (timings are wall-clock on a shared CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
