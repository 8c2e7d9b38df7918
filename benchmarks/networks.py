"""Benchmark: SATUNet with ORG / AT / ST / SAT skips against MONAI's AttentionUnet and DynUNet, at equal widths.

Run::

    python benchmarks/networks.py            # 2D 4x3x256x256 and 3D 1x1x96x96x96
    python benchmarks/networks.py --quick    # 2D 2x3x128x128 and 3D 1x1x48x48x48, fewer repeats
    python benchmarks/networks.py --threads 1 --clock cpu   # CPU time of one thread: robust on a loaded machine
    python benchmarks/networks.py --device cuda --amp       # GPU, fp16 autocast (bf16 autocast with --amp on CPU)

Measures, per model:

* parameters; forward GFLOPs (``torch.utils.flop_counter.FlopCounterMode`` on the meta device, 2 per multiply-add);
* memory kept for backward in a training step: unique storages given to ``torch.autograd.graph.saved_tensors_hooks``
  during the forward pass (parameters and the input batch excluded);
* peak inference memory: peak bytes of live tensors during an ``inference_mode`` forward, tracked by a
  ``TorchDispatchMode`` (:mod:`satgate_monai.report.memory`; kernel-internal scratch buffers are not seen);
* median wall time (or, with ``--clock cpu``, this process's CPU time) of a training step (forward, cross-entropy,
  backward, SGD step) and of an inference forward, with the models interleaved in rotating order on every repeat and
  ``torch.set_num_threads`` fixed;
* this device's peak FLOP/s, from a large float32 matmul (4096^2 on CPU, 8192^2 on CUDA), and the share of it the 3D
  SAT inference forward achieves.

It prints one table per setting with ratios against ORG, then the targets, met or not.
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
from monai.networks.nets import AttentionUnet, DynUNet
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from satgate_monai.networks.nets import SATUNet
from satgate_monai.report.memory import peak_live_bytes, saved_tensor_bytes
from satgate_monai.runtime import autocast

MODELS = ("ORG", "AT", "ST", "SAT", "AttentionUnet", "DynUNet")
MB = 2.0**20


def build(name: str, dims: int, in_channels: int, channels: Sequence[int], device: str | torch.device) -> nn.Module:
    with torch.device(device):
        if name == "AttentionUnet":
            return AttentionUnet(dims, in_channels, 2, channels=channels, strides=(2,) * (len(channels) - 1))
        if name == "DynUNet":  # nnU-Net's network, with the same widths, batch norm and ReLU as the SATUNets
            levels = len(channels)
            return DynUNet(dims, in_channels, 2, kernel_size=[3] * levels, strides=[1] + [2] * (levels - 1),
                           upsample_kernel_size=[2] * (levels - 1), filters=channels, norm_name="batch",
                           act_name=("relu", {"inplace": True}))
        return SATUNet(dims, in_channels, 2, channels=channels, skip_gate=name.lower())


def gflops(name: str, dims: int, shape: Sequence[int], channels: Sequence[int]) -> float:
    net = build(name, dims, shape[1], channels, "meta").eval()
    with FlopCounterMode(display=False) as counter:
        net(torch.empty(tuple(shape), device="meta"))
    return counter.get_total_flops() / 1e9


def peak_gflops(device: str, clock=time.perf_counter, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` large float32 matmuls (4096^2 on CPU, 8192^2 on CUDA), timed by ``clock``
    (the clock of the network timings, so that their ratio is a share of this peak)."""
    n = 8192 if device.startswith("cuda") else 4096
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        _sync(device)
        t = clock()
        a @ b
        _sync(device)
        best = min(best, clock() - t)
    return 2 * n**3 / best / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(setting: str, dims: int, shape: Sequence[int], channels: Sequence[int], repeats: int, warmup: int,
            device: str, clock=time.perf_counter, amp: bool = False) -> dict[str, dict]:
    """All measurements of one setting, ``{model: {metric: value}}``."""
    cast = autocast(device, ("fp16" if device.startswith("cuda") else "bf16") if amp else "fp32")
    torch.manual_seed(0)
    x = torch.randn(tuple(shape), device=device)
    target = torch.randint(0, 2, (shape[0], *shape[2:]), device=device)
    nets = {name: build(name, dims, shape[1], channels, device) for name in MODELS}
    optimisers = {name: torch.optim.SGD(net.parameters(), lr=1e-4) for name, net in nets.items()}
    results: dict[str, dict] = {}
    for name, net in nets.items():
        excluded = [*net.parameters(), *net.buffers(), x]
        net.train()
        with cast:
            kept = saved_tensor_bytes(lambda net=net: F.cross_entropy(net(x).float(), target), excluded)
        net.zero_grad(set_to_none=True)
        net.eval()
        with torch.inference_mode(), cast:
            peak = peak_live_bytes(lambda net=net: net(x), excluded)
        results[name] = {"params": sum(p.numel() for p in net.parameters()),
                         "gflops": gflops(name, dims, shape, channels), "kept_mb": kept / MB, "peak_mb": peak / MB,
                         "train_s": [], "infer_s": []}
        print(f"  [{setting}] {name}: memory measured", file=sys.stderr, flush=True)

    def train_step(name: str) -> None:
        net, opt = nets[name], optimisers[name]
        net.train()
        opt.zero_grad(set_to_none=True)
        with cast:
            loss = F.cross_entropy(net(x).float(), target)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def infer(name: str) -> None:
        net = nets[name].eval()
        with torch.inference_mode(), cast:
            net(x)

    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=amp and device.startswith("cuda"))

    for kind, step in (("train_s", train_step), ("infer_s", infer)):
        for r in range(warmup + repeats):
            order = MODELS[r % len(MODELS):] + MODELS[: r % len(MODELS)]  # rotate: no model always runs first
            for name in order:
                _sync(device)
                start = clock()
                step(name)
                _sync(device)
                elapsed = clock() - start
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
    """The performance targets: SAT against ORG at equal widths, and against MONAI's AttentionUnet."""
    sat, org, att, dyn = results["SAT"], results["ORG"], results["AttentionUnet"], results["DynUNet"]
    checks = [("SAT/ORG FLOPs", sat["gflops"] / org["gflops"], None)]
    for key, label, limit in (("train_s", "train step", 0.85), ("infer_s", "inference", 0.80),
                              ("kept_mb", "memory kept for backward", 0.85),
                              ("peak_mb", "peak inference memory", 0.70)):
        checks.append((f"SAT/ORG {label}", sat[key] / org[key], limit))
    for key, label in (("train_s", "train step"), ("infer_s", "inference"), ("kept_mb", "memory kept for backward"),
                       ("peak_mb", "peak inference memory")):
        checks.append((f"SAT/AttentionUnet {label}", sat[key] / att[key], 0.80))
    for key, label in (("train_s", "train step"), ("infer_s", "inference"), ("kept_mb", "memory kept for backward"),
                       ("peak_mb", "peak inference memory")):
        checks.append((f"SAT/DynUNet {label}", sat[key] / dyn[key], None))
    lines = []
    for label, value, limit in checks:
        verdict = "" if limit is None else f" (target <= {limit:.2f}: {'met' if value <= limit else 'NOT met'})"
        lines.append(f"- {setting}: {label}: {value:.3f}{verdict}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer repeats")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per model (default 5, quick 3)")
    parser.add_argument("--channels-2d", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--channels-3d", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--only", choices=("2d", "3d"), default=None, help="run one setting only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="autocast: fp16 on CUDA, bf16 on CPU")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this process's CPU time (with --threads 1: robust on a loaded machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    repeats = args.repeats or (3 if args.quick else 5)
    settings = [
        ("2D", 2, (2, 3, 128, 128) if args.quick else (4, 3, 256, 256), args.channels_2d),
        ("3D", 3, (1, 1, 48, 48, 48) if args.quick else (1, 1, 96, 96, 96), args.channels_3d),
    ]
    peak = peak_gflops(args.device, clock)
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    print(f"# SATUNet (ORG/AT/ST/SAT) vs MONAI AttentionUnet and DynUNet, equal widths\n\ntorch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {args.device} ({device_name}), "
          f"{'AMP' if args.amp else 'float32'}, {args.clock} clock, {repeats} timed repeats (+1 warm-up), models "
          f"interleaved in rotating order; load average at start {os.getloadavg()[0]:.1f}. Peak float32 matmul: "
          f"{peak:.1f} GFLOP/s.\n")
    lines: list[str] = []
    for label, dims, shape, channels in settings:
        if args.only and args.only != label.lower():
            continue
        setting = f"{label} input {'x'.join(map(str, shape))}, channels {tuple(channels)}"
        results = measure(setting, dims, shape, channels, repeats, 1, args.device, clock, args.amp)
        print(table(setting, results) + "\n", flush=True)
        lines += targets(label, results)
        if dims == 3:
            for name in ("ORG", "SAT"):
                achieved = results[name]["gflops"] / results[name]["infer_s"]
                lines.append(f"- 3D: {name} inference forward: {achieved:.1f} GFLOP/s = {achieved / peak:.0%} of the "
                             f"{peak:.1f} GFLOP/s matmul peak")
    print("### Targets\n\n" + "\n".join(lines))
    clock_name = "wall-clock" if args.clock == "wall" else "this process's CPU time"
    print(f"\nload average at end {os.getloadavg()[0]:.1f} (timings: {clock_name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
