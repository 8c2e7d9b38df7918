"""Benchmark: the largest patch and batch whose training step fits a memory budget, ORG / AT / SAT skips.

Run::

    python benchmarks/capacity.py                         # every bundle, budgets 8 16 24 GiB, counted (meta device)
    python benchmarks/capacity.py --budgets 8 --bundles liver_ct_sat --gates org sat
    python benchmarks/capacity.py --validate              # the count against a real CPU step (tensors and RSS)
    python benchmarks/capacity.py --device cuda --amp     # on a GPU: torch.cuda.max_memory_allocated

The networks, patch, batch, loss and optimizer are the bundles' own (``configs/train.json`` of each bundle: its
``network_def`` with ``skip_gate`` switched, ``roi_size``, ``batch_size`` x ``num_samples`` patches per step,
``loss``, ``optimizer``); nothing is repeated here. A training step is forward, loss, backward and the optimizer's
step, the second of two (the first creates the gradients and the optimizer state, which the trainer keeps: MONAI's
``SupervisedTrainer`` zeroes gradients without freeing them).

How memory is measured:

* ``--device meta`` (default; what a CPU-only machine can do at any size): the step runs on PyTorch's ``meta``
  device (shapes, no data, no arithmetic) under :class:`~satgate_monai.report.memory.LiveTensorMeter`, which counts
  the bytes of every tensor an operator returns until its last reference dies. Peak = those bytes at their highest
  plus what exists before the step (parameters, buffers, gradients, optimizer state, the batch). It is the same
  operator sequence as the float32 CPU step, so the count equals the CPU step's (``--validate`` checks it) and it
  takes under a second at any size: the search needs no extrapolation. What it does not see: scratch buffers a kernel
  allocates and frees internally (oneDNN/cuDNN workspaces), allocator rounding and fragmentation.
* ``--validate``: at small sizes, the meta count against the same step on the CPU under the meter (equal) and against
  the peak resident-set growth of a fresh subprocess over its first step (sampled every millisecond), which includes
  the kernels' scratch and the allocator's overhead.
* ``--device cuda``: ``torch.cuda.max_memory_allocated`` of the step (a step that raises out-of-memory does not
  fit); ``--amp`` trains under fp16 autocast with a ``GradScaler``, as the bundles do on a GPU.

The search: the largest cubic patch (square in 2D) at the bundle's batch, by bisection over the side in steps of the
network's size divisor (16), and the largest batch at the bundle's patch, by bisection over the batch. Budgets are
GiB (2^30 bytes). Target: SAT trains >= 1.25x the voxels per step of ORG under the same budget.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from monai.bundle import ConfigParser
from torch import nn

from satgate_monai.report.memory import LiveTensorMeter
from satgate_monai.resources import bundle_names, bundle_path

GIB = 2.0**30
MB = 2.0**20
GATES = ("org", "at", "sat")


@dataclass
class BundleSetup:
    """What a bundle's ``configs/train.json`` says about one training step."""

    name: str
    network_def: dict[str, Any]
    patch: tuple[int, ...]
    batch: int
    loss_def: dict[str, Any]
    optimizer_def: dict[str, Any]
    divisor: int = field(init=False)

    def __post_init__(self) -> None:
        self.divisor = math.prod(self.network_def.get("strides") or [2] * (len(self.network_def["channels"]) - 1))

    @property
    def dims(self) -> int:
        return int(self.network_def["spatial_dims"])

    def build(self, gate: str) -> nn.Module:
        """The bundle's network with ``skip_gate=gate`` (on the current default device)."""
        return ConfigParser({"net": {**self.network_def, "skip_gate": gate}}).get_parsed_content("net")

    def loss(self) -> nn.Module:
        return ConfigParser({"loss": self.loss_def}).get_parsed_content("loss")

    def optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        parser = ConfigParser({"optimizer": {**self.optimizer_def, "params": "$@net.parameters()"}, "net": net})
        return parser.get_parsed_content("optimizer")


def bundle_setup(name: str) -> BundleSetup:
    """Read a shipped bundle's training step from its ``configs/train.json`` (references resolved)."""
    parser = ConfigParser()
    parser.read_config(str(bundle_path(name) / "configs" / "train.json"))
    network_def = {k: (v if k == "_target_" else parser.get_parsed_content(f"network_def#{k}"))
                   for k, v in parser["network_def"].items()}
    patch = tuple(int(s) for s in parser.get_parsed_content("roi_size"))
    batch = int(parser.get_parsed_content("batch_size")) * int(parser.get_parsed_content("num_samples"))
    return BundleSetup(name, network_def, patch, batch, parser["loss"], parser["optimizer"])


def _static_bytes(tensors: Sequence[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        seen[t.untyped_storage()._cdata] = t.untyped_storage().nbytes()
    return sum(seen.values())


class Step:
    """One bundle's training step with one gate, built once (network, optimizer, loss) and measured at any size."""

    def __init__(self, setup: BundleSetup, gate: str, device: str = "meta", amp: bool = False) -> None:
        self.setup, self.device = setup, device
        self.cuda = device.startswith("cuda")
        self.cast = torch.autocast("cuda", dtype=torch.float16, enabled=amp and self.cuda)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp and self.cuda)
        torch.manual_seed(0)
        with torch.device(device):
            self.net = setup.build(gate).train()
        self.opt, self.loss_fn = setup.optimizer(self.net), setup.loss()
        self.warm = False

    def _batch(self, patch: Sequence[int], batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.device(self.device):
            x = torch.randn((batch, self.setup.network_def["in_channels"], *patch))
            y = torch.randint(0, self.setup.network_def["out_channels"], (batch, 1, *patch)).float()
        return x, y

    def run(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Forward, loss, backward, optimizer step (gradients zeroed, not freed, as MONAI's trainer does)."""
        self.opt.zero_grad(set_to_none=False)
        with self.cast:
            out = self.net(x)
        loss = self.loss_fn(out.float(), y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()

    def bytes(self, patch: Sequence[int], batch: int) -> tuple[float, float]:
        """``(before, during)``: bytes existing before the step (parameters, buffers, gradients, optimizer state,
        batch) and the peak of the tensors the step creates (meta/cpu); on CUDA ``(0, max_memory_allocated)``,
        ``(0, inf)`` when the step runs out of memory."""
        if self.cuda:
            return self._cuda_bytes(patch, batch)
        x, y = self._batch(patch, batch)
        if not self.warm:  # gradients and optimizer state exist from the first step on
            self.run(x, y)
            self.warm = True
        existing = [*self.net.parameters(), *self.net.buffers(), x, y]
        existing += [p.grad for p in self.net.parameters() if p.grad is not None]
        existing += [v for st in self.opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
        meter = LiveTensorMeter(exclude=existing)
        with meter:
            self.run(x, y)
        return float(_static_bytes(existing)), float(meter.peak)

    def _cuda_bytes(self, patch: Sequence[int], batch: int) -> tuple[float, float]:
        try:
            x, y = self._batch(patch, batch)
            if not self.warm:
                self.run(x, y)
                self.warm = True
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.run(x, y)
            torch.cuda.synchronize(self.device)
            return 0.0, float(torch.cuda.max_memory_allocated(self.device))
        except torch.cuda.OutOfMemoryError:
            return 0.0, math.inf
        finally:
            x = y = None
            self.opt.zero_grad(set_to_none=False)
            torch.cuda.empty_cache()


def step_peak_bytes(setup: BundleSetup, gate: str, patch: Sequence[int], batch: int, device: str = "meta",
                    amp: bool = False) -> float:
    """Peak bytes of one training step (the second) of the bundle's network with ``gate`` on ``(batch, *patch)``."""
    return sum(Step(setup, gate, device, amp).bytes(patch, batch))


def largest(fits: Callable[[int], bool], limit: int = 1 << 16) -> int:
    """The largest ``k`` in ``[1, limit]`` with ``fits(k)`` for a monotone ``fits`` (0 if ``fits(1)`` is false):
    doubling to bracket it, then bisection."""
    if not fits(1):
        return 0
    lo = 1
    while lo * 2 <= limit and fits(lo * 2):
        lo *= 2
    hi = min(lo * 2, limit + 1)  # fits(lo), not fits(hi) (or hi is past the limit)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


class Search:
    """Memoised peaks of one bundle's training step and the searches over them."""

    def __init__(self, setup: BundleSetup, device: str, amp: bool) -> None:
        self.setup, self.device, self.amp = setup, device, amp
        self.cache: dict[tuple, float] = {}
        self.steps: dict[str, Step] = {}
        self.probes = 0

    def peak(self, gate: str, patch: Sequence[int], batch: int) -> float:
        key = (gate, tuple(patch), batch)
        if key not in self.cache:
            if gate not in self.steps:
                self.steps[gate] = Step(self.setup, gate, self.device, self.amp)
            self.cache[key] = sum(self.steps[gate].bytes(patch, batch))
            self.probes += 1
        return self.cache[key]

    def cube(self, k: int) -> tuple[int, ...]:
        return (k * self.setup.divisor,) * self.setup.dims

    def largest_patch(self, gate: str, budget: float) -> int:
        """Side of the largest cubic (square) patch at the bundle's batch within ``budget`` bytes (0: none)."""
        limit = 4096 // self.setup.divisor
        k = largest(lambda k: self.peak(gate, self.cube(k), self.setup.batch) <= budget, limit=limit)
        return k * self.setup.divisor

    def largest_batch(self, gate: str, budget: float) -> int:
        """The largest batch at the bundle's patch within ``budget`` bytes (0: not even one)."""
        return largest(lambda n: self.peak(gate, self.setup.patch, n) <= budget, limit=4096)

    def bytes_per_voxel(self, gate: str) -> float:
        """Slope of the peak in the voxels of a step, between the bundle's batch at sides 4 and 8 divisors."""
        a, b = self.cube(4), self.cube(8)
        va, vb = math.prod(a) * self.setup.batch, math.prod(b) * self.setup.batch
        return (self.peak(gate, b, self.setup.batch) - self.peak(gate, a, self.setup.batch)) / (vb - va)


def capacity_table(setup: BundleSetup, gates: Sequence[str], budgets: Sequence[float], device: str,
                   amp: bool) -> tuple[str, dict[str, Any]]:
    """Markdown table of one bundle and its figures ``{"patch": {(budget, gate): side}, ...}``."""
    search = Search(setup, device, amp)
    start = time.perf_counter()
    d, n = setup.dims, setup.batch
    shape = "x".join(map(str, setup.patch))
    at_bundle = {g: search.peak(g, setup.patch, n) for g in gates}
    slope = {g: search.bytes_per_voxel(g) for g in gates}
    figures: dict[str, Any] = {"patch": {}, "batch": {}, "peak": at_bundle, "slope": slope}
    lines = [f"### {setup.name}: {setup.network_def['_target_'].rsplit('.', 1)[-1]} {d}D, channels "
             f"{tuple(setup.network_def['channels'])}, bundle patch {shape}, {n} patches per step", "",
             "| budget (GiB) | gate | largest {} patch (batch {}) | voxels per step | vs ORG | largest batch at {} | "
             "vs ORG |".format("cubic" if d == 3 else "square", n, shape),
             "|---|---|---|---|---|---|---|"]
    ref = gates[0]
    for budget in budgets:
        for gate in gates:
            side = search.largest_patch(gate, budget * GIB)
            batch = search.largest_batch(gate, budget * GIB)
            figures["patch"][(budget, gate)], figures["batch"][(budget, gate)] = side, batch
            ref_side, ref_batch = figures["patch"][(budget, ref)], figures["batch"][(budget, ref)]
            vox = n * side**d
            ratio = vox / (n * ref_side**d) if ref_side else float("nan")
            lines.append(f"| {budget:g} | {gate.upper()} | {side}{'^' + str(d)} | {vox / 1e6:.2f} M | {ratio:.3f} | "
                         f"{batch} | {batch / ref_batch if ref_batch else float('nan'):.3f} |")
    lines += ["", "Training step at the bundle's patch and batch, and the peak's growth per voxel of a step:", "",
              "| gate | peak (MB) | vs ORG | bytes per voxel | vs ORG | voxels per step a budget holds, vs ORG |",
              "|---|---|---|---|---|---|"]
    for gate in gates:
        lines.append(f"| {gate.upper()} | {at_bundle[gate] / MB:.1f} | {at_bundle[gate] / at_bundle[ref]:.3f} | "
                     f"{slope[gate]:.0f} | {slope[gate] / slope[ref]:.3f} | {slope[ref] / slope[gate]:.3f} |")
    lines.append(f"\n({search.probes} steps counted in {time.perf_counter() - start:.1f} s)")
    return "\n".join(lines), figures


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _rss_child(args: list[str]) -> None:
    """In a fresh process: the peak growth of the resident set over the first training step (bytes), sampled every
    millisecond from ``/proc/self/statm`` by a thread (``ru_maxrss`` is a high-water mark that importing and building
    already set higher than a small step), printed as JSON."""
    import threading

    name, gate, side, batch = args[0], args[1], int(args[2]), int(args[3])
    torch.set_num_threads(1)
    step = Step(bundle_setup(name), gate, "cpu")
    x, y = step._batch((side,) * step.setup.dims, batch)
    before = _resident_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _resident_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    step.run(x, y)  # the first step: it also creates the gradients and the optimizer state, as the count includes
    done.set()
    sampler.join()
    print(json.dumps({"rss_growth": max(peak[0], _resident_bytes()) - before}))


def validate(name: str, gates: Sequence[str], sides: Sequence[int], batch: int) -> str:
    """The meta count against the CPU step's live tensors and against a fresh subprocess's RSS growth."""
    setup = bundle_setup(name)
    lines = [f"### The count checked on the CPU ({name}, batch {batch}, float32, one thread)", "",
             "| gate | patch | meta count (MB) | CPU live tensors (MB) | equal | beyond parameters and batch: count "
             "(MB) | peak RSS growth over a fresh process's first step (MB) | RSS / count |",
             "|---|---|---|---|---|---|---|---|"]
    for side in sides:
        patch = (side,) * setup.dims
        for gate in gates:
            step = Step(setup, gate, "meta")
            counted, real = sum(step.bytes(patch, batch)), step_peak_bytes(setup, gate, patch, batch, "cpu")
            dynamic = counted - _static_bytes([*step.net.parameters(), *step.net.buffers(), *step._batch(patch, batch)])
            proc = subprocess.run([sys.executable, __file__, "--rss-child", name, gate, str(side), str(batch)],
                                  capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                  check=True)
            rss = json.loads(proc.stdout.strip().splitlines()[-1])["rss_growth"]
            lines.append(f"| {gate.upper()} | {side}^{setup.dims} | {counted / MB:.1f} | {real / MB:.1f} | "
                         f"{'yes' if counted == real else 'NO'} | {dynamic / MB:.1f} | {rss / MB:.1f} | "
                         f"{rss / dynamic:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--rss-child"]:
        _rss_child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", default=None, help=f"default: every shipped bundle {bundle_names()}")
    parser.add_argument("--gates", nargs="+", default=list(GATES), help="the first is the reference (default org)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[8, 16, 24], help="GiB (default 8 16 24)")
    parser.add_argument("--device", default="meta", help="meta (count, default), cpu (count, computed) or cuda")
    parser.add_argument("--amp", action="store_true", help="fp16 autocast on CUDA (the bundles' GPU setting)")
    parser.add_argument("--validate", action="store_true", help="check the count against real CPU steps")
    parser.add_argument("--quick", action="store_true", help="one bundle (liver_ct_sat), budget 1 GiB")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.bundles or (["liver_ct_sat"] if args.quick else bundle_names())
    budgets = [1.0] if args.quick and args.budgets == [8, 16, 24] else args.budgets
    for name in names:
        if name not in bundle_names():
            parser.error(f"unknown bundle {name!r}: expected one of {bundle_names()}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available")
    what = {"meta": "tensor bytes counted on the meta device (= the float32 CPU step's tensors)",
            "cpu": "tensor bytes of the float32 CPU step"}.get(args.device, "torch.cuda.max_memory_allocated")
    print(f"# Training-step capacity under a memory budget, ORG / AT / SAT at the bundles' widths\n\n"
          f"torch {torch.__version__}, device {args.device}{' (AMP fp16)' if args.amp else ''}: {what}; "
          f"load average at start {os.getloadavg()[0]:.1f}.\n")
    if args.validate:
        print(validate(names[0], args.gates, [32, 48] if args.quick else [48, 64], 1) + "\n")
    summary = []
    for name in names:
        setup = bundle_setup(name)
        text, fig = capacity_table(setup, args.gates, budgets, args.device, args.amp)
        print(text + "\n", flush=True)
        ref = args.gates[0]
        for gate in args.gates[1:]:
            for budget in budgets:
                a, b = fig["patch"][(budget, ref)], fig["patch"][(budget, gate)]
                ratio = (b / a) ** setup.dims if a else float("nan")
                summary.append(f"- {name}, {budget:g} GiB: {gate.upper()}/{ref.upper()} voxels per step {ratio:.3f}"
                               + (f" (target >= 1.25: {'met' if ratio >= 1.25 else 'NOT met'})" if gate == "sat"
                                  else ""))
            peak = fig["peak"][gate] / fig["peak"][ref]
            summary.append(f"- {name}: {gate.upper()}/{ref.upper()} training-step peak at the bundle's patch "
                           f"{peak:.3f}" + (f" (target <= 0.75: {'met' if peak <= 0.75 else 'NOT met'})"
                                            if gate == "sat" and setup.dims == 3 else ""))
    print("### Targets\n\n" + "\n".join(summary))
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
