"""``python -m satgate_monai.demo``: demo data -> import -> train -> evaluate -> inference with one bundle, on a CPU.

Steps (all outputs under ``--out DIR``; the shipped bundle folder is never written to):

1. ``python -m data_prep demo --task T --out DIR/raw`` writes phantoms (synthetic, NOT patient data) in the public
   dataset's layout (MSD Task03_Liver / Task05_Prostate, ISIC 2017);
2. ``python -m data_prep import ... --out DIR/data`` prepares them (2 mm NIfTI or 192x192 PNG, ``datalist.json``);
3. the task's bundle (:mod:`satgate_monai.tasks`) is copied to ``DIR/<bundle>`` with a CPU-sized network and patch
   size written into its configs (so the copy stays self-consistent: its ``inference.json`` matches the trained
   ``models/model.pt``);
4. ``python -m monai.bundle run`` of ``train.json`` (TensorBoard logs in ``DIR/<bundle>/eval/tensorboard``),
   ``train.json + evaluate.json`` on the test split (``eval/metrics.csv``, ``eval/summary.md``) and
   ``inference.json`` (masks in ``DIR/<bundle>/predictions``).

Re-running with the same ``--out`` reuses the phantoms and resumes an interrupted training.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from satgate_monai.tasks import TASKS, get_task

__all__ = ["DEMOS", "main", "run_demo", "prepare_bundle_copy"]

logger = logging.getLogger(__name__)

# per task, as in the task registry: bundle, data_prep importer and the CPU-sized overrides written into the bundle
# copy: "overrides" go into train.json and inference.json (they must agree), "train_overrides" into train.json only
# (more, smaller steps: the demo trains few epochs on few cases)
DEMOS: dict[str, dict[str, Any]] = {
    name: {"bundle": t.bundle, "dataset": t.data.dataset, "epochs": t.demo_epochs,
           "overrides": dict(t.demo_overrides), "train_overrides": dict(t.demo_train_overrides)}
    for name, t in TASKS.items()
}
SHARED_CONFIGS = ("train.json", "inference.json")


def _set(config: dict, dotted: str, value: Any) -> None:
    keys = dotted.split("#")
    node = config
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if keys[-1] not in node and not isinstance(node, list):
        raise KeyError(f"config id {dotted!r} does not exist")
    node[keys[-1]] = value


def prepare_bundle_copy(
    task: str,
    out: Path,
    overrides: dict[str, Any],
    train_overrides: dict[str, Any] | None = None,
    source: Path | None = None,
) -> Path:
    """Copy the task's bundle to ``out/<bundle>`` (configs, docs, LICENSE), write ``overrides`` into its
    ``train.json`` and ``inference.json`` and ``train_overrides`` into ``train.json``. Trained files are kept.

    Raises:
        KeyError: an override names an id the config does not have.
    """
    from data_prep.atomic import atomic_write_text

    name = get_task(task).bundle
    src = Path(source) if source is not None else get_task(task).bundle_dir
    if not (src / "configs" / "train.json").is_file():
        raise FileNotFoundError(f"bundle {str(src)!r} has no configs/train.json")
    dst = Path(out) / name
    for part in ("configs", "docs"):
        shutil.copytree(src / part, dst / part, dirs_exist_ok=True)
    shutil.copy2(src / "LICENSE", dst / "LICENSE")
    for fname in SHARED_CONFIGS:
        path = dst / "configs" / fname
        config = json.loads(path.read_text(encoding="utf-8"))
        extra = (train_overrides or {}) if fname == "train.json" else {}
        for k, v in {**overrides, **extra}.items():
            _set(config, k, v)
        atomic_write_text(path, json.dumps(config, indent=4) + "\n")
    return dst


def _bundle_run(bundle: Path, configs: list[str], **overrides: Any) -> None:
    from monai.bundle import run

    files = [str(bundle / "configs" / c) for c in configs]
    run(
        config_file=files if len(files) > 1 else files[0],
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=str(bundle / "configs" / "logging.conf"),
        bundle_root=str(bundle),
        **overrides,
    )


def _data_prep(argv: list[str]) -> None:
    from data_prep.cli import main as data_prep_main

    print("$ python -m data_prep " + " ".join(argv), flush=True)
    code = data_prep_main(argv)
    if code != 0:
        raise RuntimeError(f"`python -m data_prep {' '.join(argv)}` failed with exit code {code}")


def _make_data(task: str, dataset: str, out: Path, cases: int | None, seed: int, seconds: dict[str, float]) -> None:
    """The demo's phantoms in ``out/raw``, imported into ``out/data`` (each step's time into ``seconds``)."""
    t = time.perf_counter()
    argv = ["demo", "--task", task, "--out", str(out / "raw"), "--seed", str(seed)]
    if cases is not None:
        argv += ["--cases", str(cases)]
    _data_prep(argv)
    seconds["data_prep demo"] = time.perf_counter() - t

    t = time.perf_counter()
    _data_prep(["import", "--dataset", dataset, *get_task(task).data.import_args, "--src", str(out / "raw"),
                "--out", str(out / "data"), "--overwrite", "--no-progress", "--seed", str(seed)])
    seconds["data_prep import"] = time.perf_counter() - t


def run_demo(
    task: str,
    out: str | Path,
    epochs: int | None = None,
    device: str = "cpu",
    gate: str = "sat",
    cases: int | None = None,
    seed: int = 0,
    num_workers: int = 0,
    extra_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the whole demo for ``task``; returns ``{"bundle", "summary", "seconds": {step: s}, ...}``.

    Raises:
        ValueError: unknown ``task`` or ``gate``.
    """
    get_task(task)  # ValueError naming the tasks
    from satgate_monai.networks.factories import gate_names

    if gate not in gate_names():
        raise ValueError(f"gate must be one of {', '.join(gate_names())}, got {gate!r}")
    demo = DEMOS[task]
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    epochs = int(epochs if epochs is not None else demo["epochs"])
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    _make_data(task, demo["dataset"], out, cases, seed, seconds)

    overrides = {**demo["overrides"], "network_def#skip_gate": gate, **(extra_overrides or {})}
    bundle = prepare_bundle_copy(task, out, overrides, demo.get("train_overrides"))
    common = {"dataset_dir": str(out / "data"), "device": device, "num_workers": num_workers}

    t = time.perf_counter()
    print(f"$ python -m monai.bundle run --config_file {bundle}/configs/train.json --bundle_root {bundle} "
          f"--dataset_dir {out / 'data'} --epochs {epochs} --device {device}", flush=True)
    _bundle_run(bundle, ["train.json"], epochs=epochs, seed=seed, **common)
    seconds["train"] = time.perf_counter() - t

    t = time.perf_counter()
    print(f"$ python -m monai.bundle run --config_file \"['{bundle}/configs/train.json','{bundle}/configs/"
          f"evaluate.json']\" --bundle_root {bundle} --dataset_dir {out / 'data'}", flush=True)
    _bundle_run(bundle, ["train.json", "evaluate.json"], seed=seed, **common)
    seconds["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    print(f"$ python -m monai.bundle run --config_file {bundle}/configs/inference.json --bundle_root {bundle} "
          f"--dataset_dir {out / 'data'}", flush=True)
    _bundle_run(bundle, ["inference.json"], **common)
    seconds["inference"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_all

    summary = json.loads((bundle / "eval" / "summary.json").read_text(encoding="utf-8"))
    result = {"task": task, "gate": gate, "epochs": epochs, "seed": seed, "bundle": str(bundle),
              "summary": summary, "seconds": seconds,
              "predictions": sorted(str(p) for p in (bundle / "predictions").glob("*_seg.*"))}
    from data_prep.atomic import atomic_write_text

    atomic_write_text(out / "demo_result.json", json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m satgate_monai.demo",
        description="Demo phantoms (synthetic, not patient data) -> data_prep import -> train -> evaluate -> "
        "inference with one satgate-monai bundle, sized for a CPU. Everything is written under --out.",
    )
    parser.add_argument("--task", required=True, choices=sorted(TASKS), help="which task's bundle to demonstrate")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the task's, 20)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default cpu)")
    from satgate_monai.networks.factories import gate_names

    parser.add_argument("--gate", default="sat", choices=gate_names(),
                        help="skip gate of the network (default sat; org is the plain U-Net)")
    parser.add_argument("--cases", type=int, default=None, help="number of phantom cases (default: data_prep's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the phantoms, split and training (default 0)")
    parser.add_argument("--num-workers", type=int, default=0, help="data loader workers (default 0)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: the cores this process may use, os.sched_getaffinity)")
    args = parser.parse_args(argv)
    from satgate_monai.runtime import set_threads

    try:
        set_threads(args.threads)
        result = run_demo(args.task, args.out, epochs=args.epochs, device=args.device, gate=args.gate,
                          cases=args.cases, seed=args.seed, num_workers=args.num_workers)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    s = result["summary"]
    print(f"\nDemo finished in {result['seconds']['total']:.0f} s (phantom data, NOT patient data).")
    dice_std = "" if math.isnan(s["dice"]["std"]) else f" ± {s['dice']['std']:.3f}"  # undefined for one case
    print(f"Test-split Dice {s['dice']['mean']:.3f}{dice_std} over {s['n_cases']} case(s), "
          f"FPR {s['fpr']['mean']:.4f}, FNR {s['fnr']['mean']:.3f}")
    bundle = Path(result["bundle"])
    print(f"Trained bundle:   {bundle} (weights models/model.pt)")
    print(f"Per-case metrics: {bundle / 'eval' / 'metrics.csv'}")
    print(f"Masks:            {bundle / 'predictions'}")
    print(f"TensorBoard:      tensorboard --logdir {bundle / 'eval' / 'tensorboard'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
