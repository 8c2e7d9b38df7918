"""``python -m satgate_monai.experiments``: the paper's grid (networks x skip gates x seeds) through the bundles.

Sub-commands:

* ``run``: train and evaluate every cell (cached, resumable), then write ``results.json``, ``report.md`` and figures;
  ``--dry-run`` prints the grid and a measured cost estimate instead;
* ``report``: rewrite ``results.json``, ``report.md`` and the figures from the finished cells of a run folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from satgate_monai.experiments.grid import NETWORKS, PEERS, TASK_BUNDLES, build_grid, parse_list
from satgate_monai.experiments.io import atomic_write_json, read_json
from satgate_monai.networks.factories import gate_names
from satgate_monai.tasks import TASKS, get_task

__all__ = ["main", "build_parser", "OPTIMIZERS", "PROFILES", "default_bundle_dir", "parse_seeds"]

logger = logging.getLogger(__name__)
LOG_NAME = "experiments.log"  # the full log, in the run folder

# --profile: "demo" (default) shortens training so the default grid of every task (U-Net x 4 gates x 3 seeds) finishes
# within an hour on 2 CPU cores with one thread per process (measured in docs/experiments.md); the 3D tasks train the
# demo's CPU-sized U-Net (channels 8-16-32-64) on small patches. "bundle" is the bundle's own recipe unchanged (200
# epochs, full size: the setting for a real run on a GPU). --epochs and --override apply on top of either.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {name: {"epochs": t.experiment_epochs, "overrides": dict(t.experiment_overrides)}
             for name, t in TASKS.items()},
    "bundle": {task: {"epochs": None, "overrides": {}} for task in TASK_BUNDLES},
}
# --optimizer: "adadelta" is the bundles' own (Adadelta lr 1.0, the paper's); "adam" replaces it with Adam lr 1e-3
# (torch defaults otherwise), to tell the method from Adadelta's slow start. Change its rate with
# --override optimizer#lr=VALUE.
OPTIMIZERS: dict[str, dict[str, Any] | None] = {
    "adadelta": None,
    "adam": {"_target_": "torch.optim.Adam", "params": "$@network.parameters()", "lr": 1e-3},
}
SEEDS_RULE = ("--seeds N (one int, no comma) is a count: seeds 0..N-1; a comma list (0,5,7 or 7, for seed 7 "
              "alone) or several values (0 5 7) are the seeds themselves")


def default_bundle_dir(task: str) -> Path:
    """The folder of the task's shipped bundle (checkouts and installed packages alike)."""
    return get_task(task).bundle_dir


def parse_seeds(values: str | list[str]) -> list[int]:
    """Seeds from ``--seeds``: one value without a comma is a count ``N`` (seeds ``0..N-1``); a comma list
    (``0,5,7``; ``7,`` is seed 7 alone) or several values (``0 5 7``) are the seeds themselves.

    Raises:
        ValueError: for a non-integer, a count below 1, a negative or a repeated seed.
    """
    items = [values] if isinstance(values, str) else list(values)
    try:
        if len(items) == 1 and "," not in items[0]:
            n = int(items[0])
            if n < 1:
                raise ValueError(f"--seeds count must be at least 1, got {items[0]!r} ({SEEDS_RULE}).")
            return list(range(n))
        seeds = [int(v) for item in items for v in item.split(",") if v.strip()]
    except ValueError as e:
        if str(e).startswith("--seeds"):
            raise
        raise ValueError(f"--seeds takes integers, got {' '.join(items)!r} ({SEEDS_RULE}).") from None
    if not seeds or len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ValueError(f"--seeds must be distinct non-negative ints, got {' '.join(items)!r}.")
    return seeds


class _SeedsAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, parse_seeds(values))
        except ValueError as e:
            parser.error(str(e))


def _positive_int_option(option: str = "") -> Callable[[str], int]:
    """An argparse ``type`` taking an int >= 1; its error names ``option`` when given."""
    prefix = f"{option} " if option else ""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(f"{prefix}takes a positive int, got {value!r}")
        return n

    return parse


_threads = _positive_int_option("--threads")
_epochs = _positive_int_option("--epochs")
_positive_int = _positive_int_option()


def _selection_args(value: str) -> dict:
    try:
        kwargs = json.loads(value)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"--selection-args {value!r} is not JSON ({e})") from None
    if not isinstance(kwargs, dict):
        raise argparse.ArgumentTypeError(f"--selection-args takes a JSON object, e.g. '{{\"selection_init\": 1.0}}', "
                                         f"got {value!r}")
    return kwargs


def _keep_epochs(value: str) -> list[int]:
    from satgate_monai.experiments.checkpoints import parse_epochs

    try:
        return parse_epochs(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _override(value: str) -> tuple[str, Any]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--override takes KEY=VALUE (VALUE in JSON, else a string), got {value!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _executor(args: argparse.Namespace) -> Any:
    """The executor the command line asks for (``--jobs``, ``--devices``, ``--ray``)."""
    from satgate_monai.experiments.executors import LocalExecutor, RayExecutor, SerialExecutor

    threads = getattr(args, "threads", None) or 1
    if args.ray is not None:
        if args.jobs > 1 or args.devices:
            raise ValueError("--ray places the cells itself: drop --jobs/--devices.")
        gpus = args.gpus_per_cell if args.gpus_per_cell is not None else float(args.device.startswith("cuda"))
        return RayExecutor(args.ray, num_cpus=threads, num_gpus=gpus)
    if args.gpus_per_cell is not None:
        raise ValueError("--gpus-per-cell applies to --ray only.")
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None
    if devices is not None and len(devices) != args.jobs:
        raise ValueError(f"--devices lists {len(devices)} device(s) for --jobs {args.jobs}: give one per job.")
    if args.jobs == 1 and devices is None:
        return SerialExecutor()
    return LocalExecutor(args.jobs, threads=threads, devices=devices)


def _network_args(value: str) -> tuple[str, dict]:
    name, sep, raw = value.partition("=")
    try:
        kwargs = json.loads(raw) if sep else None
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"--network-args {value!r}: the kwargs are not JSON ({e})") from None
    if not isinstance(kwargs, dict):
        raise argparse.ArgumentTypeError(f"--network-args takes NAME='{{json kwargs}}', got {value!r}")
    return name.strip().lower(), kwargs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m satgate_monai.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default="WARNING", help="logging level on the terminal (default: WARNING)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help=f"stream every library's log lines to the terminal too (always in OUT/{LOG_NAME})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="train and evaluate the grid, then write the report",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("--task", required=True, choices=sorted(TASK_BUNDLES))
    run.add_argument("--data", required=True, type=Path, help="a data_prep output folder (datalist.json)")
    run.add_argument("--out", required=True, type=Path, help="run folder (cells cache, results, report, figures)")
    run.add_argument("--bundle", type=Path, default=None,
                     help="bundle folder (default: the repository's bundles/<task bundle>)")
    run.add_argument("--networks", default="unet", help=f"comma list of {', '.join(NETWORKS)}")
    run.add_argument("--gates", default=",".join(gate_names()), help=f"comma list of {', '.join(gate_names())}")
    run.add_argument("--peers", default="", help=f"comma list of peer networks ({', '.join(PEERS)})")
    run.add_argument("--seeds", nargs="+", action=_SeedsAction, default=[0, 1, 2], metavar="SEED",
                     help=SEEDS_RULE + " (default: 3, i.e. 0 1 2)")
    run.add_argument("--selection-args", type=_selection_args, default=None, metavar="JSON",
                     help="keyword arguments of the gates with selection weights (st, sat), e.g. "
                          "'{\"selection_init\": 1.0}' or '{\"selection_init\": \"glorot\", \"fan\": \"c\"}' "
                          "(default: the gates' own, the paper's glorot init)")
    run.add_argument("--threads", type=_threads, default=None,
                     help="torch threads per training process (default: 1, the fastest on a CPU; with --jobs, one "
                          "process per core with one thread each)")
    run.add_argument("--folds", action="store_true",
                     help="replicate i trains on cross-validation fold i of a datalist written with --folds (seed i)")
    run.add_argument("--profile", choices=sorted(PROFILES), default="demo",
                     help="demo: short CPU training (skin: 20 epochs at 64x64; prostate/liver: 10 epochs, U-Net "
                          "8-16-32-64 on 32^3 patches); bundle: the bundle's recipe unchanged (200 epochs, full size), "
                          "for a GPU")
    run.add_argument("--epochs", type=_epochs, default=None, help="training epochs per cell (default: the profile's)")
    run.add_argument("--keep-epochs", type=_keep_epochs, default=[], metavar="E1,E2,...",
                     help="keep the weights at these epochs and evaluate each on the test split during training "
                          "(CELL/kept/epoch_<E>.pt and .json: per-case metrics and the selection weights' state), "
                          "e.g. 10,20,50,100,200: one long run gives the whole learning curve")
    run.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adadelta",
                     help="adadelta: the bundle's own (Adadelta lr 1.0); adam: Adam lr 1e-3 (change the rate with "
                          "--override optimizer#lr=VALUE)")
    run.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    run.add_argument("--override", type=_override, action="append", default=[], metavar="KEY=VALUE",
                     help="extra bundle override for every cell, e.g. batch_size=16 or 'image_size=[96,96]'")
    run.add_argument("--network-args", type=_network_args, action="append", default=[], metavar="NAME=JSON",
                     help="extra kwargs of one network, e.g. 'fcdensenet={\"preset\": \"fcdensenet56\"}'")
    run.add_argument("--dilation", type=float, default=5.0,
                     help="margin (pixels/voxels) around the ground truth for the attention-outside measure")
    run.add_argument("--bootstrap", type=int, default=10000, help="bootstrap resamples of the paired tests")
    run.add_argument("--data-note", default=None,
                     help="how to describe the data in the report (default: detected; phantoms are labelled)")
    run.add_argument("--dry-run", action="store_true", help="print the grid and a measured cost estimate, run nothing")
    run.add_argument("--rerun-stale", action="store_true",
                     help="retrain finished cells whose settings changed (default: refuse)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_where_options(run)
    rep = sub.add_parser("report", help="rewrite results.json, report.md and figures from a run folder")
    rep.add_argument("--out", required=True, type=Path, help="a run folder written by `run`")
    rep.add_argument("--bootstrap", type=int, default=10000, help="bootstrap resamples of the paired tests")
    return parser


def _add_where_options(run: argparse.ArgumentParser) -> None:
    """``run``'s options on where the cells run: local workers, devices, a Ray cluster."""
    where = run.add_argument_group("where the cells run (default: one after another in this process)")
    where.add_argument("--jobs", type=_positive_int, default=1,
                       help="cells at once in local worker processes, each with one torch thread")
    where.add_argument("--devices", default=None,
                       help="with --jobs: one device per worker, comma list, e.g. cuda:0,cuda:1")
    where.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="run each cell as a task on the Ray cluster at ADDRESS (host:port, ray://host:port or "
                            "auto); OUT, --data and the bundle must be on storage every node sees")
    where.add_argument("--gpus-per-cell", type=float, default=None,
                       help="with --ray: GPUs each cell asks for (default: 1 with --device cuda..., else 0)")


def detect_data_note(data_dir: Path) -> str:
    """``synthetic phantoms ...`` when the data_prep output says it holds phantoms, else an empty string."""
    texts = []
    for name in ("datalist.json", "report.csv", "PHANTOM_README.txt"):
        f = data_dir / name
        if f.is_file():
            texts.append(f.read_text(encoding="utf-8", errors="replace")[:200000].lower())
    if any("phantom" in t for t in texts):
        return "synthetic phantoms from `python -m data_prep demo`, NOT patient data"
    return ""


def _datalist_sizes(data_dir: Path) -> dict[str, int]:
    datalist = read_json(data_dir / "datalist.json")
    return {k: len(datalist.get(k, []) or []) for k in ("training", "validation", "test")}


def _dry_run(task: Any, cells: list, args: argparse.Namespace, epochs: int) -> int:
    from satgate_monai.experiments.cost import build_network, count_params, time_steps
    from satgate_monai.experiments.runner import cell_fingerprint, estimate_seconds

    parser = task._parser([task.train_config], task.common_overrides())
    batch = int(parser.get_parsed_content("batch_size"))
    roi = [int(v) for v in parser.get_parsed_content("roi_size")]
    val_interval = int(parser.get_parsed_content("val_interval")) if "val_interval" in parser.config else 1
    sizes = _datalist_sizes(task.data_dir)
    nd = task.bundle_network_def()
    if nd["spatial_dims"] == 3 and "num_samples" in parser.config:
        batch_items = batch * int(parser.get_parsed_content("num_samples"))
    else:
        batch_items = batch
    print(f"task {args.task}: bundle {task.bundle_dir}, data {task.data_dir} ({sizes['training']} training, "
          f"{sizes['validation']} validation, {sizes['test']} test cases); {epochs} epochs; batch {batch_items} x "
          f"{nd['in_channels']} x {roi}; device {args.device}; {torch_threads()} thread(s)")
    measured: dict[tuple[str, str], tuple[int, float, float]] = {}
    low = high = 0.0
    print(f"{'cell':<28} {'network':<42} {'params':>11} {'status':<8} {'estimate':>15}")
    for cell in cells:
        variant = (cell.network, cell.gate)
        if variant not in measured:
            net = build_network(cell.network_def)
            # a full training batch: single-sample steps are not representative (batch norm over one sample is
            # pathologically slow on CPU); several steps, so the estimate is a range
            steps, fwds = time_steps(net, (batch_items, nd["in_channels"], *roi), device=args.device, repeats=3)
            scale = 4 if nd["spatial_dims"] == 3 else 1  # sliding windows over a whole volume, roughly
            lo, hi = (estimate_seconds(sizes["training"], sizes["validation"], sizes["test"], epochs, batch, step,
                                       fwd * scale, val_interval)
                      for step, fwd in ((min(steps), min(fwds)), (max(steps), max(fwds))))
            measured[variant] = (count_params(net), lo, hi)
        params, lo, hi = measured[variant]
        done = args.out / "cells" / cell.key / "cell.json"
        status = "pending"
        if done.is_file():
            record = read_json(done)
            fp = cell_fingerprint(task.settings(), cell)["fingerprint"]
            status = "cached" if record.get("fingerprint") == fp else "stale"
            if status == "cached":
                lo = hi = 0.0
        low += lo
        high += hi
        print(f"{cell.key:<28} {cell.network_def['_target_']:<42} {params:>11,} {status:<8} "
              f"{lo / 60:>6.1f}-{hi / 60:<6.1f} m")
    print(f"{len(cells)} cells, estimated {low / 60:.1f} min to {high / 60:.1f} min "
          f"({low / 3600:.2f}-{high / 3600:.2f} h) on {args.device}, run one cell at a time "
          "(fastest and slowest of 3 measured training steps x steps; "
          "validation and test inference approximated)")
    return 0


def torch_threads() -> int:
    """Torch's intra-op threads in this process."""
    import torch

    return torch.get_num_threads()


def _grid_cells(task: Any, networks: list[str], gates: list[str], peers: list[str], args: argparse.Namespace,
                extra: dict[str, dict]) -> list:
    """The grid's cells, each network's ``--network-args`` written into its ``network_def``.

    Raises:
        ValueError: ``--network-args`` names a network that is not in the grid.
    """
    cells = build_grid(task.bundle_network_def(), networks, gates, args.seeds, peers, args.selection_args)
    unknown = set(extra) - set(networks) - set(peers)
    if unknown:
        raise ValueError(f"--network-args names {sorted(unknown)}, which are not in the grid {networks + peers}.")
    for cell in cells:
        cell.network_def.update(extra.get(cell.network, {}))
    return cells


def _run(args: argparse.Namespace) -> int:
    from satgate_monai.experiments.bundle_task import BundleTask
    from satgate_monai.experiments.executors import run_cells
    from satgate_monai.experiments.runner import write_outputs

    networks = parse_list(args.networks, NETWORKS, "network")
    from satgate_monai.experiments.threads import apply_threads, plan_threads

    _, threads = plan_threads(args.threads, getattr(args, "jobs", None))
    apply_threads(threads)
    gates = parse_list(args.gates, gate_names(), "gate")
    peers = parse_list(args.peers, PEERS, "peer") if args.peers else []
    if not networks and not peers:
        raise ValueError("nothing to run: --networks and --peers are both empty.")
    if networks and not gates:
        raise ValueError("--gates is empty.")
    bundle = args.bundle or default_bundle_dir(args.task)
    if not bundle.is_dir():
        raise ValueError(f"bundle folder {bundle} does not exist: pass --bundle DIR.")
    profile = PROFILES[args.profile][args.task]
    epochs = profile["epochs"] if args.epochs is None else args.epochs
    optimizer = OPTIMIZERS[args.optimizer]
    overrides = {**profile["overrides"], **({"optimizer": dict(optimizer)} if optimizer else {}), **dict(args.override)}
    level = logging.getLogger().getEffectiveLevel()
    task = BundleTask(bundle, args.data, device=args.device, epochs=epochs, overrides=overrides,
                      dilation=args.dilation, quiet_level=level if level >= logging.WARNING else None,
                      use_folds=args.folds, keep_epochs=args.keep_epochs)
    total = epochs if epochs is not None else int(task._parser([task.train_config], {}).get_parsed_content("epochs"))
    if args.keep_epochs and args.keep_epochs[-1] > total:
        raise ValueError(f"--keep-epochs {','.join(map(str, args.keep_epochs))} goes beyond the {total} training "
                         "epochs.")
    extra = dict(args.network_args)
    cells = _grid_cells(task, networks, gates, peers, args, extra)
    if args.dry_run:
        return _dry_run(task, cells, args, total)
    executor = _executor(args)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "task": args.task,
        "data": str(task.data_dir),
        "data_note": args.data_note if args.data_note is not None else detect_data_note(task.data_dir),
        "bundle": str(task.bundle_dir),
        "command": "python -m satgate_monai.experiments " + shlex.join(args.argv),
        "settings": {"networks": networks, "gates": gates, "peers": peers, "seeds": args.seeds,
                     "profile": args.profile, "epochs": epochs if epochs is not None else "bundle",
                     "device": args.device, "overrides": overrides, "network_args": extra, "dilation": args.dilation,
                     "bootstrap": args.bootstrap, "selection_args": args.selection_args, "threads": threads,
                     "keep_epochs": args.keep_epochs, "optimizer": args.optimizer},
    }
    atomic_write_json(args.out / "run.json", meta)
    records = run_cells(task, cells, args.out, rerun_stale=args.rerun_stale, progress=not args.no_progress,
                        executor=executor)
    results = write_outputs(args.out, records, meta, n_boot=args.bootstrap)
    print(f"{len(records)} cells; wrote {args.out / 'results.json'}, {args.out / 'report.md'} and "
          f"{len(results['figures'])} figures in {args.out / 'figures'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from satgate_monai.experiments.runner import write_outputs

    run_file = args.out / "run.json"
    if not run_file.is_file():
        raise ValueError(f"{args.out} is not a run folder (no run.json).")
    meta = read_json(run_file)
    records = [read_json(f) for f in sorted((args.out / "cells").glob("*/cell.json"))]
    if not records:
        raise ValueError(f"{args.out} has no finished cell.")
    results = write_outputs(args.out, records, meta, n_boot=args.bootstrap)
    print(f"{len(records)} cells; wrote {args.out / 'report.md'} and {len(results['figures'])} figures")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    from data_prep.console import configure_output, reset_output

    try:
        configure_output(Path(args.out) / LOG_NAME, verbose=args.verbose,
                         our_level=logging.getLevelName(args.log_level.upper()))
        return _main(args)
    finally:
        reset_output()


def _main(args: argparse.Namespace) -> int:
    from data_prep.extras import missing_extra, require_extras
    from satgate_monai.experiments.executors import CellsFailed

    try:
        require_extras("python -m satgate_monai.experiments", "io", "train", "report")
    except ImportError as e:
        print(f"error: {missing_extra(e, 'python -m satgate_monai.experiments')}", file=sys.stderr)
        return 2

    try:
        return _run(args) if args.command == "run" else _report(args)
    except (ValueError, CellsFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
