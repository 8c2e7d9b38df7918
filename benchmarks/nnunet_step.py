"""One nnU-Net training step of one gate's planned network, in this process, and its peak memory: prints one JSON line.

``benchmarks/nnunet_cost.py`` runs it in a fresh subprocess per gate, so each gate's peak resident set size (RSS) is its
own. Run in the nnU-Net environment with the checkout on PYTHONPATH::

    PYTHONPATH=. $(bash .ci/nnunet_env.sh | tail -1) benchmarks/nnunet_step.py PLANS.json 3d_fullres sat

The step is nnUNetTrainer's: the network from the plans with deep supervision (nnU-Net's ``get_network_from_plans``),
a batch of the plans' ``batch_size`` x 1 channel x ``patch_size``, nnU-Net's Dice + cross-entropy loss under its
deep-supervision weights, backward, gradient clipping at 12 and SGD (lr 1e-2, momentum 0.99, Nesterov). Random input
and labels: the cost does not depend on the values. Printed: ``rss_build_mb`` (peak RSS once the network, optimiser
and batch exist), ``rss_peak_mb`` (peak RSS after the step), ``step_s`` and, on a GPU, ``cuda_peak_mb``
(``torch.cuda.max_memory_allocated`` over the step).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from satgate_monai.nnunet.plans import sat_plans


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _loss(n_outputs: int, batch_dice: bool) -> DeepSupervisionWrapper:
    """nnUNetTrainer's loss: Dice + CE, deep-supervision weights 1/2^i normalised, the lowest output weighted 0."""
    weights = [1 / (2 ** i) for i in range(n_outputs)]
    weights[-1] = 0
    total = sum(weights)
    loss = DC_and_CE_loss({"batch_dice": batch_dice, "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                          weight_ce=1, weight_dice=1, ignore_label=None, dice_class=MemoryEfficientSoftDiceLoss)
    return DeepSupervisionWrapper(loss, [w / total for w in weights])


def step(plans: dict, config: str, gate: str, in_channels: int = 1, classes: int = 2) -> dict:
    """One training step of ``gate``'s network for ``plans[configurations][config]``; returns its cost figures."""
    conf = sat_plans(plans, gate)["configurations"][config]
    arch = conf["architecture"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                 in_channels, classes, deep_supervision=True).to(device).train()
    optimiser = torch.optim.SGD(net.parameters(), 1e-2, weight_decay=3e-5, momentum=0.99, nesterov=True)
    batch = conf["batch_size"]
    x = torch.randn(batch, in_channels, *conf["patch_size"], device=device)
    with torch.no_grad():
        shapes = [o.shape[2:] for o in net(x[:1])]
    targets = [torch.randint(0, classes, (batch, 1, *s), device=device).float() for s in shapes]
    loss = _loss(len(shapes), conf.get("batch_dice", True))
    rss_build = _peak_rss_mb()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    optimiser.zero_grad(set_to_none=True)
    value = loss(net(x), targets)
    value.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
    optimiser.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    out = {"gate": gate, "device": device.type, "threads": torch.get_num_threads(), "batch": batch,
           "patch": conf["patch_size"], "step_s": round(time.perf_counter() - start, 2),
           "rss_build_mb": round(rss_build, 1), "rss_peak_mb": round(_peak_rss_mb(), 1), "loss": float(value)}
    if device.type == "cuda":
        out["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plans", type=Path, help="nnU-Net's nnUNetPlans.json of the dataset")
    parser.add_argument("config", help="configuration, e.g. 3d_fullres")
    parser.add_argument("gate", help="org | at | st | sat")
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(json.dumps(step(json.loads(args.plans.read_text()), args.config, args.gate, args.in_channels, args.classes)))


if __name__ == "__main__":
    main()
