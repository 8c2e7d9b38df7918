"""Benchmark: the decoder seam of SATUNet, measured side by side in 2D and 3D.

Run::

    python benchmarks/join.py [--quick] [--threads 2] [--repeats 5] [--only 2d|3d] [--device cpu]

Variants (all SATUNet at the widths of ``benchmarks/networks.py``; every variant computes the same function):

* ``ORG concat``: the plain U-Net, one convolution of the ``2C``-channel concatenation;
* ``SAT concat``: one convolution of the ``C + 1``-channel concatenation (the layout before the split);
* ``SAT split``: ``conv_C(up) + conv_1(attention)``, no concatenated tensor, both convolutions on oneDNN and the side
  term added in place (the shipped default for 1-channel gates);
* ``SAT split-torch``: the same split with PyTorch's own choice of CPU kernel (its im2col kernel for the one-channel
  side convolution and, with one thread and a batch of one, for the deep 3D levels);
* ``ORG concat``, ``SAT concat`` and ``SAT split`` again in channels-last memory format (``*_CL``: weights and input
  converted).

Prints median wall time of an inference forward and of a training step (forward, cross-entropy, backward, SGD
step) per variant, with the variants interleaved in rotating order on every repeat and the thread count fixed,
and each time as a ratio against ``ORG concat``.

``--levels`` measures the seam alone instead, level by level (the decoder's first convolution, 3x3(x3), on the
up-sampled features and the gated skip at each decoder level's width and size, no norm or activation): ``ORG concat``
(``2C -> C``), ``SAT concat`` (``C + 1 -> C``), ``SAT split-torch``, ``SAT split`` and the split's two parts alone,
``main`` (``C -> C``) and ``side`` (``1 -> C``); forward without autograd, and forward plus backward.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from unittest import mock

import torch
import torch.nn.functional as F

from satgate_monai.networks.blocks import join
from satgate_monai.networks.blocks.conv_config import ConvConfig
from satgate_monai.networks.blocks.fast_conv import convolution
from satgate_monai.networks.nets import SATUNet

VARIANTS = ("ORG concat", "SAT concat", "SAT split", "SAT split-torch", "ORG concat_CL", "SAT concat_CL",
            "SAT split_CL")


@contextlib.contextmanager
def join_form(split: bool | None) -> Iterator[None]:
    """Build networks whose joins use the given form (None: the shipped rule)."""
    if split is None:
        yield
        return
    with mock.patch.object(join, "split_join", lambda skip, inp: split):
        yield


def _torch_convolution(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       padding: int) -> torch.Tensor:
    return (F.conv2d if x.dim() == 4 else F.conv3d)(x, weight, bias, padding=padding)


def kernels(variant: str) -> contextlib.AbstractContextManager:
    """While running ``variant``: PyTorch's own kernel choice for the ``-torch`` variants, the shipped one otherwise."""
    if "-torch" in variant:
        return mock.patch.object(join, "convolution", _torch_convolution)
    return contextlib.nullcontext()


def build(variant: str, dims: int, in_channels: int, channels: Sequence[int], device: str) -> torch.nn.Module:
    gate = variant.split()[0].lower()
    form = variant.split()[1].removesuffix("_CL").removesuffix("-torch")
    torch.manual_seed(0)
    with join_form({"concat": False, "split": True}[form]):
        net = SATUNet(dims, in_channels, 2, channels=channels, skip_gate=gate).to(device)
    if variant.endswith("_CL"):
        net = net.to(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
    return net


def measure(dims: int, shape: Sequence[int], channels: Sequence[int], repeats: int, device: str,
            clock=time.perf_counter, variants: Sequence[str] = VARIANTS) -> dict:
    x = torch.randn(tuple(shape), device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
    target = torch.randint(0, 2, (shape[0], *shape[2:]), device=device)
    variants = tuple(variants)
    nets = {v: build(v, dims, shape[1], channels, device) for v in variants}
    opts = {v: torch.optim.SGD(n.parameters(), lr=1e-4) for v, n in nets.items()}
    times: dict[str, dict[str, list[float]]] = {v: {"infer": [], "train": []} for v in variants}

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def infer(v: str) -> None:
        with torch.inference_mode(), kernels(v):
            nets[v].eval()(x_cl if v.endswith("_CL") else x)

    def train(v: str) -> None:
        net, opt = nets[v].train(), opts[v]
        opt.zero_grad(set_to_none=True)
        with kernels(v):
            F.cross_entropy(net(x_cl if v.endswith("_CL") else x), target).backward()
        opt.step()

    for kind, step in (("infer", infer), ("train", train)):
        for r in range(repeats + 1):
            order = variants[r % len(variants):] + variants[: r % len(variants)]
            for v in order:
                sync()
                t = clock()
                step(v)
                sync()
                if r > 0:
                    times[v][kind].append(clock() - t)
            print(f"  [{dims}D] {kind} repeat {r + 1}/{repeats + 1}", file=sys.stderr, flush=True)
    return {v: {k: statistics.median(ts) for k, ts in kinds.items()} for v, kinds in times.items()}


LEVEL_FORMS = ("ORG concat", "SAT concat", "SAT split-torch", "SAT split", "main C->C", "side 1->C")


def measure_levels(dims: int, shape: Sequence[int], channels: Sequence[int], repeats: int, device: str,
                   clock=time.perf_counter) -> list[tuple[int, tuple, dict]]:
    """``[(C, (N, C, *S), {form: {"infer": s, "train": s}})]`` for each decoder level, shallow to deep."""
    cfg = ConvConfig(dims, kernel_size=3, act=None, norm=None, dropout=None)
    rows = []
    for level, width in enumerate(channels[:-1]):
        size = (shape[0], width, *(s // 2**level for s in shape[2:]))
        torch.manual_seed(level)
        x = torch.randn(size, device=device, requires_grad=True)
        wide = torch.randn(size, device=device, requires_grad=True)
        g = torch.rand((size[0], 1, *size[2:]), device=device, requires_grad=True)
        org = join.JoinConvolution(cfg, width, width, width).to(device)
        concat = join.JoinConvolution(cfg, width, 1, width, split=False).to(device)
        split = join.JoinConvolution(cfg, width, 1, width, split=True).to(device)
        forms = {
            "ORG concat": lambda org=org, x=x, wide=wide: org(x, wide),
            "SAT concat": lambda concat=concat, x=x, g=g: concat(x, g),
            "SAT split-torch": lambda split=split, x=x, g=g: split(x, g),
            "SAT split": lambda split=split, x=x, g=g: split(x, g),
            "main C->C": lambda split=split, x=x: convolution(x, split.conv.weight, split.conv.bias, 1),
            "side 1->C": lambda split=split, g=g: convolution(g, split.side.weight, None, 1),
        }
        grad = torch.randn(size, device=device)
        times: dict[str, dict[str, list[float]]] = {f: {"infer": [], "train": []} for f in LEVEL_FORMS}
        for r in range(repeats + 1):
            order = LEVEL_FORMS[r % len(LEVEL_FORMS):] + LEVEL_FORMS[: r % len(LEVEL_FORMS)]
            for f in order:
                with kernels(f):
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t = clock()
                    with torch.no_grad():
                        forms[f]()
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t_infer = clock() - t
                    t = clock()
                    forms[f]().backward(grad)
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t_train = clock() - t
                if r > 0:
                    times[f]["infer"].append(t_infer)
                    times[f]["train"].append(t_train)
        medians = {f: {k: statistics.median(v) for k, v in kinds.items()} for f, kinds in times.items()}
        rows.append((width, size, medians))
        print(f"  [{dims}D] level {level} measured", file=sys.stderr, flush=True)
    return rows


def print_levels(dims: int, rows: list[tuple[int, tuple, dict]]) -> None:
    for kind, label in (("infer", "forward, no autograd"), ("train", "forward + backward")):
        print(f"### {dims}D seam per decoder level: {label} (ms; ratio to ORG concat)\n")
        print("| C | features | " + " | ".join(LEVEL_FORMS) + " |")
        print("|---|---|" + "---|" * len(LEVEL_FORMS))
        for width, size, res in rows:
            org = res["ORG concat"][kind]
            cells = [f"{res[f][kind] * 1e3:.1f} ({res[f][kind] / org:.2f})" for f in LEVEL_FORMS]
            print(f"| {width} | {'x'.join(map(str, size))} | " + " | ".join(cells) + " |")
        print(flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller inputs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", choices=("2d", "3d"), default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time, or this process's CPU time (with --threads 1: robust on a loaded machine)")
    p.add_argument("--levels", action="store_true", help="the seam alone, level by level, instead of whole networks")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=None,
                   help="whole-network variants to run (default: all; 'ORG concat' always runs, as the reference)")
    args = p.parse_args(argv)
    variants = ("ORG concat", *(v for v in args.variants or VARIANTS if v != "ORG concat"))
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch.set_num_threads(args.threads)
    settings = [(2, (2, 3, 128, 128) if args.quick else (4, 3, 256, 256), (32, 64, 128, 256, 512)),
                (3, (1, 1, 48, 48, 48) if args.quick else (1, 1, 96, 96, 96), (16, 32, 64, 128, 256))]
    print(f"# SATUNet decoder seam: concatenation vs split, contiguous vs channels-last\n\ntorch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {args.device}, {args.clock} clock, median of {args.repeats} "
          f"interleaved repeats; "
          f"load average at start {os.getloadavg()[0]:.1f}\n")
    for dims, shape, channels in settings:
        if args.only and args.only != f"{dims}d":
            continue
        if args.levels:
            print_levels(dims, measure_levels(dims, shape, channels, args.repeats, args.device, clock))
            continue
        res = measure(dims, shape, channels, args.repeats, args.device, clock, variants)
        org = res["ORG concat"]
        print(f"### {dims}D input {'x'.join(map(str, shape))}, channels {channels}\n")
        print("| variant | inference (s) | train step (s) | inference / ORG concat | train / ORG concat |")
        print("|---|---|---|---|---|")
        for v in variants:
            r = res[v]
            print(f"| {v} | {r['infer']:.3f} | {r['train']:.3f} | {r['infer'] / org['infer']:.3f} | "
                  f"{r['train'] / org['train']:.3f} |")
        print(flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
