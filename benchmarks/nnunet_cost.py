"""Cost of nnU-Net's planned network, SAT against ORG: parameters, forward GFLOPs at the planned patch, nnU-Net's
own activation estimate (``compute_conv_feature_map_size``, what its planner budgets memory with), and the peak memory
of one training step at the plans' patch and batch size (``benchmarks/nnunet_step.py``, a fresh subprocess per gate,
``--threads`` threads: peak RSS on a CPU, ``torch.cuda.max_memory_allocated`` on a GPU; ``--no-step`` skips it).

Run in the nnU-Net environment (``bash .ci/nnunet_env.sh`` prints its python) with the checkout on PYTHONPATH::

    PYTHONPATH=. $(bash .ci/nnunet_env.sh | tail -1) benchmarks/nnunet_cost.py \\
        "$nnUNet_preprocessed/Dataset501_Lesions/nnUNetPlans.json" [--config 3d_fullres] [--gates org sat] [--no-step]

Every gate's network is built from the same plans with nnU-Net's own builder (``get_network_from_plans``); the FLOPs
are counted by ``torch.utils.flop_counter`` on one patch, batch 1, eval mode.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from torch.utils.flop_counter import FlopCounterMode

from satgate_monai.nnunet.plans import sat_plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plans", type=Path, help="nnU-Net's nnUNetPlans.json of the dataset")
    parser.add_argument("--config", default="3d_fullres")
    parser.add_argument("--gates", nargs="+", default=["org", "sat"])
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the training-step subprocesses")
    parser.add_argument("--no-step", action="store_true", help="parameters and FLOPs only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    plans = json.loads(args.plans.read_text())
    patch = plans["configurations"][args.config]["patch_size"]
    print(f"{args.plans.parent.name} {args.config}: patch {patch}, batch 1")
    print("| gate | parameters | GFLOPs (forward) | activations (nnU-Net estimate, M values) |")
    print("|---|---|---|---|")
    rows = {}
    for gate in args.gates:
        arch = sat_plans(plans, gate)["configurations"][args.config]["architecture"]
        net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                     args.in_channels, args.classes, deep_supervision=False).eval()
        params = sum(p.numel() for p in net.parameters())
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(torch.zeros(1, args.in_channels, *patch))
        rows[gate] = (params, counter.get_total_flops() / 1e9, float(net.compute_conv_feature_map_size(patch)) / 1e6)
        print(f"| {gate} | {params:,} | {rows[gate][1]:.2f} | {rows[gate][2]:.1f} |")
    if "org" in rows:
        for gate, (p, f, a) in rows.items():
            if gate != "org":
                o = rows["org"]
                print(f"{gate}/org: parameters {p / o[0]:.3f}, GFLOPs {f / o[1]:.3f}, activations {a / o[2]:.3f}")
    if not args.no_step:
        _step_table(args)


def _step_table(args: argparse.Namespace) -> None:
    """One training step per gate, each in a fresh subprocess (its own peak RSS); prints the table and SAT/ORG."""
    conf = json.loads(args.plans.read_text())["configurations"][args.config]
    print(f"\none training step (forward + backward + SGD), batch {conf['batch_size']} x {conf['patch_size']}, "
          f"{args.threads} thread(s), a fresh process per gate")
    print("| gate | peak RSS (MiB) | RSS before the step (MiB) | step's own (MiB) | GPU peak (MiB) | step (s) |")
    print("|---|---|---|---|---|---|")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    script = Path(__file__).with_name("nnunet_step.py")
    rows = {}
    for gate in args.gates:
        out = subprocess.run([sys.executable, str(script), str(args.plans), args.config, gate, "--in-channels",
                              str(args.in_channels), "--classes", str(args.classes)],
                             env=env, check=True, capture_output=True, text=True).stdout
        r = rows[gate] = json.loads(out.strip().splitlines()[-1])
        r["own_mb"] = r["rss_peak_mb"] - r["rss_build_mb"]
        print(f"| {gate} | {r['rss_peak_mb']:.0f} | {r['rss_build_mb']:.0f} | {r['own_mb']:.0f} | "
              f"{r.get('cuda_peak_mb', '-')} | {r['step_s']:.1f} |")
    if "org" in rows:
        o = rows["org"]
        for gate, r in rows.items():
            if gate != "org":
                gpu = f", GPU peak {r['cuda_peak_mb'] / o['cuda_peak_mb']:.3f}" if "cuda_peak_mb" in r else ""
                print(f"{gate}/org: peak RSS {r['rss_peak_mb'] / o['rss_peak_mb']:.3f}, "
                      f"step's own RSS {r['own_mb'] / o['own_mb']:.3f}{gpu}, step time {r['step_s'] / o['step_s']:.3f}")


if __name__ == "__main__":
    main()
