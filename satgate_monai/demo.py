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
   ``inference.json`` (masks in ``DIR/<bundle>/predictions``), each a child process running exactly that command.

Output: one line per step, a progress bar over training, and a summary ending with the test Dice; everything else
(each command line, every engine line, warnings) goes to ``DIR/demo.log``; ``-v`` streams it to the terminal too.

Re-running with the same ``--out`` reuses the phantoms and resumes an interrupted training.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import subprocess
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
LOG_NAME = "demo.log"
# MONAI's StatsHandler line of one training iteration: "Epoch: 1/20, Iter: 3/9 -- train_loss: 0.53"
_ITERATION = re.compile(r"Epoch: (\d+)/(\d+), Iter: (\d+)/(\d+)")


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


def _bundle_command(bundle: Path, configs: list[str], **overrides: Any) -> list[str]:
    """The ``python -m monai.bundle run`` command line of ``configs`` of ``bundle`` with ``--key value`` overrides."""
    files = [str(bundle / "configs" / c) for c in configs]
    config_file = files[0] if len(files) == 1 else "[" + ",".join(repr(f) for f in files) + "]"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_file,
           "--meta_file", str(bundle / "configs" / "metadata.json"),
           "--logging_file", str(bundle / "configs" / "logging.conf"), "--bundle_root", str(bundle)]
    for key, value in overrides.items():
        cmd += [f"--{key}", str(value)]
    return cmd


def _bundle_run(cmd: list[str], log_file: Path, label: str, verbose: bool, show_bar: bool = True) -> None:
    """Run ``cmd`` (a ``monai.bundle run``) in a child process, its whole output appended to ``log_file`` (and
    streamed with ``verbose``); a progress bar over its training iterations when it trains.

    Raises:
        MissingExtraError: the run failed for want of a module of an extra (the message names the extra).
        RuntimeError: the run failed otherwise (the message quotes its last error line and names the log file).
    """
    from data_prep.console import is_noise
    from data_prep.extras import MissingExtraError, missing_extra_in_text

    shown = " ".join(shlex.quote(c) for c in ["python", *cmd[1:]])
    tail: list[str] = []
    bar = None
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(f"$ {shown}\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                encoding="utf-8", errors="replace", env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail = [*tail[-40:], line.rstrip()]
            if verbose and not is_noise(line):
                sys.stdout.write(line)
            match = None if verbose or not show_bar else _ITERATION.search(line)
            if match:
                epoch, epochs, it, iters = (int(g) for g in match.groups())
                if bar is None:
                    from tqdm import tqdm

                    bar = tqdm(total=epochs * iters, desc=f"{label} epoch {epoch}/{epochs}", dynamic_ncols=True,
                               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
                bar.set_description_str(f"{label} epoch {epoch}/{epochs}", refresh=False)
                bar.n = (epoch - 1) * iters + it
                bar.refresh()
        code = proc.wait()
    if bar is not None:
        bar.close()
    if code != 0:
        text = "\n".join(tail)
        hint = missing_extra_in_text(text, "python -m satgate_monai.demo")
        if hint:
            raise MissingExtraError(hint)
        errors = [t for t in tail if t.startswith(("error", "Error")) or "Error:" in t]
        last = errors[-1] if errors else (tail[-1] if tail else "no output")
        raise RuntimeError(f"`{shown}` failed with exit code {code}: {last} (full log: {log_file})")


def _data_prep(argv: list[str], log_file: Path) -> None:
    """``python -m data_prep ARGV`` in this process; what it prints goes to ``log_file``."""
    from data_prep.cli import main as data_prep_main

    with open(log_file, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        print("$ python -m data_prep " + " ".join(argv), flush=True)
        code = data_prep_main(argv, configure=False)
    if code != 0:
        raise RuntimeError(f"`python -m data_prep {' '.join(argv)}` failed with exit code {code} (log: {log_file})")


class _Steps:
    """``[k/n] name ... done (s)`` lines on the terminal, the seconds of each step kept."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet, self.k, self.seconds = total, quiet, 0, {}

    @contextlib.contextmanager
    def step(self, name: str, what: str):
        self.k += 1
        t = time.perf_counter()
        if not self.quiet:
            print(f"[{self.k}/{self.total}] {what}", flush=True)
        yield
        self.seconds[name] = time.perf_counter() - t
        logger.info("step %s took %.1f s", name, self.seconds[name])


def _make_data(task: str, dataset: str, out: Path, cases: int | None, seed: int, steps: _Steps,
               log_file: Path) -> None:
    """The demo's phantoms in ``out/raw``, imported into ``out/data``, as two of the demo's steps."""
    with steps.step("data_prep demo", f"phantoms (synthetic, NOT patient data) -> {out / 'raw'}"):
        argv = ["demo", "--task", task, "--out", str(out / "raw"), "--seed", str(seed), "--no-progress"]
        if cases is not None:
            argv += ["--cases", str(cases)]
        _data_prep(argv, log_file)

    with steps.step("data_prep import", f"data_prep import -> {out / 'data'}"):
        _data_prep(["import", "--dataset", dataset, *get_task(task).data.import_args, "--src",
                    str(out / "raw"), "--out", str(out / "data"), "--overwrite", "--no-progress", "--seed", str(seed)],
                   log_file)


def _train_evaluate_infer(bundle: Path, steps: _Steps, what: str, log_file: Path, verbose: bool, quiet: bool, *,
                          epochs: int, seed: int, common: dict[str, Any]) -> None:
    """The demo's three bundle runs (train, evaluate on the test split, inference), as three of its steps."""
    with steps.step("train", f"train {bundle.name} ({what})"):
        _bundle_run(_bundle_command(bundle, ["train.json"], epochs=epochs, seed=seed, **common), log_file,
                    "      train", verbose, not quiet)
    with steps.step("evaluate", "evaluate on the test split"):
        _bundle_run(_bundle_command(bundle, ["train.json", "evaluate.json"], seed=seed, **common), log_file,
                    "      evaluate", verbose, not quiet)
    with steps.step("inference", f"inference -> {bundle / 'predictions'}"):
        _bundle_run(_bundle_command(bundle, ["inference.json"], **common), log_file, "      inference",
                    verbose, not quiet)


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
    threads: int | None = None,
    verbose: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run the whole demo for ``task``; returns ``{"bundle", "summary", "seconds": {step: s}, "log", ...}``.

    The three bundle runs are ``python -m monai.bundle run`` child processes, exactly the commands the README shows;
    everything they and the data_prep steps print goes to ``out/demo.log`` (streamed too with ``verbose``). The
    terminal gets one line per step and a progress bar over the training iterations (none with ``quiet``).

    Raises:
        ValueError: unknown ``task`` or ``gate``.
        RuntimeError: a step failed (the message names the log file).
    """
    get_task(task)  # ValueError naming the tasks
    from satgate_monai.networks.factories import gate_names

    if gate not in gate_names():
        raise ValueError(f"gate must be one of {', '.join(gate_names())}, got {gate!r}")
    demo = DEMOS[task]
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    log_file = out / LOG_NAME
    epochs = int(epochs if epochs is not None else demo["epochs"])
    steps = _Steps(5, quiet)
    t_all = time.perf_counter()

    _make_data(task, demo["dataset"], out, cases, seed, steps, log_file)

    overrides = {**demo["overrides"], "network_def#skip_gate": gate, **(extra_overrides or {})}
    bundle = prepare_bundle_copy(task, out, overrides, demo.get("train_overrides"))
    common: dict[str, Any] = {"dataset_dir": out / "data", "device": device, "num_workers": num_workers}
    if threads is not None:
        common["num_threads"] = threads

    _train_evaluate_infer(bundle, steps, f"{gate} gate, {epochs} epochs on {device}", log_file, verbose, quiet,
                          epochs=epochs, seed=seed, common=common)
    seconds = {**steps.seconds, "total": time.perf_counter() - t_all}

    summary = json.loads((bundle / "eval" / "summary.json").read_text(encoding="utf-8"))
    result = {"task": task, "gate": gate, "epochs": epochs, "seed": seed, "bundle": str(bundle),
              "summary": summary, "seconds": seconds, "log": str(log_file),
              "predictions": sorted(str(p) for p in (bundle / "predictions").glob("*_seg.*"))}
    from data_prep.atomic import atomic_write_text

    atomic_write_text(out / "demo_result.json", json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m satgate_monai.demo",
        description="Demo phantoms (synthetic, not patient data) -> data_prep import -> train -> evaluate -> "
        f"inference with one satgate-monai bundle, sized for a CPU. Everything is written under --out; the full log "
        f"in --out/{LOG_NAME}.",
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
    parser.add_argument("-v", "--verbose", action="store_true",
                        help=f"stream the full log (every engine line) to the terminal as well as to --out/{LOG_NAME}")
    args = parser.parse_args(argv)
    from data_prep.console import reset_output
    from data_prep.errors import run_command

    try:
        return run_command(lambda: _main(args), debug=args.verbose, debug_hint="--verbose",
                           command="python -m satgate_monai.demo")
    finally:
        reset_output()


def _main(args: argparse.Namespace) -> int:
    from data_prep.console import configure_output
    from data_prep.extras import require_extras

    require_extras("python -m satgate_monai.demo", "io", "train")
    from satgate_monai.runtime import set_threads

    out = args.out.expanduser().resolve()
    log_file = configure_output(out / LOG_NAME, verbose=args.verbose)
    print(f"satgate-monai demo: task {args.task}, {args.gate} gate, output in {out}\n"
          f"Full log: {log_file}{'' if args.verbose else ' (-v streams it here)'}", flush=True)
    set_threads(args.threads)
    result = run_demo(args.task, out, epochs=args.epochs, device=args.device, gate=args.gate, cases=args.cases,
                      seed=args.seed, num_workers=args.num_workers, threads=args.threads, verbose=args.verbose)
    print(format_summary(result), flush=True)
    return 0


def format_summary(result: dict[str, Any]) -> str:
    """The demo's closing lines, the Dice summary last."""
    s = result["summary"]
    bundle = Path(result["bundle"])
    dice_std = "" if math.isnan(s["dice"]["std"]) else f" ± {s['dice']['std']:.3f}"  # undefined for one case
    return "\n".join([
        "",
        f"Trained bundle:   {bundle} (weights models/model.pt)",
        f"Masks:            {bundle / 'predictions'}",
        f"Per-case metrics: {bundle / 'eval' / 'metrics.csv'}",
        f"TensorBoard:      tensorboard --logdir {bundle / 'eval' / 'tensorboard'}",
        f"Demo finished in {result['seconds']['total']:.0f} s (phantom data, NOT patient data).",
        f"Test-split Dice {s['dice']['mean']:.3f}{dice_std} over {s['n_cases']} case(s), "
        f"FPR {s['fpr']['mean']:.4f}, FNR {s['fnr']['mean']:.3f}",
    ])


if __name__ == "__main__":
    sys.exit(main())
