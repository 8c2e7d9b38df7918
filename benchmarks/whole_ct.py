"""Benchmark: whole-CT inference, the clinical CLI against the MONAI way, on the same volume and checkpoint.

Run::

    python benchmarks/whole_ct.py [--size 512 512 300] [--threads 2] [--device cpu] [--ckpt FILE] [--precision auto]
    python benchmarks/whole_ct.py --quick        # a 128x128x60 volume (a dry run of the whole path)
    python benchmarks/whole_ct.py --backend onnxruntime   # the CLI on ONNX Runtime (exported once, not timed)
    python benchmarks/whole_ct.py --cases 4 --repeats 2 --skip-monai   # several cases: overlapped vs one by one
    python benchmarks/whole_ct.py --cases 4 --repeats 2 --skip-monai --set 'network_def#channels=[4,8,16,32,64]'
                                  # ... with a network as cheap as on an accelerator: the pre/post-processing share

A synthetic int16 CT (air, body, liver-, spleen- and spine-like regions; ``benchmarks/infer.py``) of ``--size`` at
0.7 x 0.7 x 0.8 mm is written as NIfTI, then segmented three ways with the liver bundle, each as its own process and
timed from start to exit:

* ``cli``: ``python -m satgate_monai.infer --bundle B --input ct.nii.gz --out DIR --ckpt CKPT --device D
  --threads T`` (the case engine: the bundle's preprocessing, network and inferer; probabilities back to the source
  grid linearly, slab by slab, then argmax);
* ``bundle``: ``python -m monai.bundle run --config_file B/configs/inference.json --bundle_root B --dataset_dir DATA
  --ckpt_path CKPT --output_dir DIR --num_threads T`` (the bundle's config, which calls the case engine);
* ``reference``: the same with ``benchmarks/reference_inference.json`` on top: a plain MONAI pipeline (LoadImaged,
  Orientationd, Spacingd, the bundle's intensity step, SlidingWindowInferer, ``Invertd`` of the softmax
  probabilities, AsDiscreted argmax, SaveImaged).

Each process runs under a small wrapper process whose ``RUSAGE_CHILDREN`` peak RSS is that process's own: the table
gives the seconds and the peak RSS side by side (times depend on the machine's load, printed; RSS does not).
``--image FILE`` segments that image instead of the synthetic CT (e.g. a demo case with its trained checkpoint, for
the agreement of the CLI with the reference).

With ``--cases N`` (N > 1) the input is a folder of N copies of the volume and the CLI is also timed with
``--no-prefetch`` (the cases one after the other) beside its default (the next case read and preprocessed, the previous
one written, while the network runs), interleaved over ``--repeats``; the ratio of the two is printed, and the CLI's
per-case stage times (read, preprocessing, network, postprocessing with the return to the source grid, write; from
its ``--debug`` log) of the one-by-one run (of the single run with one case). ``--skip-monai`` leaves the MONAI way
out; ``--skip-reference`` runs the bundle but not the reference (whose memory grows with the volume: a 1,500-slice CT
needs more than 20 GB there).

The checkpoint is ``--ckpt``, else ``<bundle>/models/model.pt`` when present, else a randomly initialised network of
the bundle's ``network_def`` (seed 0; stated in the output). Prints both times, their ratio and the voxel agreement
of the label maps (targets: the CLI and the bundle run each >= 3x faster than the reference, the CLI >= 99.99 % equal
to it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _synthetic_ct():
    spec = importlib.util.spec_from_file_location("benchmark_infer", HERE / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_ct


def _random_checkpoint(bundle: Path, path: Path, overrides: list[str]) -> None:
    import torch
    from monai.bundle import ConfigParser

    from satgate_monai.infer.cli import parse_overrides

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update(parse_overrides(overrides))
    torch.manual_seed(0)
    torch.save(parser.get_parsed_content("network_def").state_dict(), path)


_WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
            "sys.exit(r.returncode)")
PEAKS: dict[str, list[float]] = {}


def _timed(cmd: list[str], env: dict[str, str], log: list[str] | None = None, name: str = "") -> float:
    """Run ``cmd`` in a fresh wrapper process (its peak RSS is that of ``cmd`` alone, recorded in ``PEAKS[name]`` in
    GB); return the wall time in seconds."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    kb = int(re.findall(r"peak_rss_kb (\d+)", proc.stderr)[-1])
    PEAKS.setdefault(name, []).append(kb / 2**20)
    if log is not None:
        log.extend(proc.stderr.splitlines())
    return elapsed


_STAGES = re.compile(r"case (\S+): read ([\d.]+) s, preprocessing ([\d.]+) s, network ([\d.]+) s \(network grid "
                     r"(\S+)\), postprocessing and back to source grid ([\d.]+) s, write ([\d.]+) s")


def _stage_table(lines: list[str]) -> str:
    """The CLI's per-case stage times (its --debug log lines) as a markdown table."""
    rows = [m.groups() for line in lines if (m := _STAGES.search(line))]
    out = ["| case | read | preprocessing | network (grid) | postprocessing + back to source | write |",
           "|---|---|---|---|---|---|"]
    out += [f"| {c} | {r} | {p} | {n} ({g}) | {b} | {w} |" for c, r, p, n, g, b, w in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs=3, default=(512, 512, 300))
    p.add_argument("--quick", action="store_true", help="a 128x128x60 volume")
    p.add_argument("--bundle", type=Path, default=REPO / "bundles" / "liver_ct_sat")
    p.add_argument("--ckpt", type=Path, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="auto", help="the CLI's --precision (the MONAI way uses the bundle's amp)")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"), help="the CLI's --backend")
    p.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    p.add_argument("--cases", type=int, default=1, help="copies of the volume in the input folder")
    p.add_argument("--repeats", type=int, default=1, help="timed runs of each CLI mode (interleaved), --cases > 1")
    p.add_argument("--skip-monai", action="store_true", help="do not run the bundle run nor the reference")
    p.add_argument("--skip-reference", action="store_true", help="run the bundle run but not the reference")
    p.add_argument("--image", type=Path, default=None, help="segment this image instead of the synthetic CT")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=JSON",
                   help="config overrides for both runs (e.g. a small network_def#channels standing in for a fast "
                        "accelerator, with the random checkpoint built to match)")
    args = p.parse_args(argv)
    if args.cases < 1 or args.repeats < 1:
        p.error("--cases and --repeats must be >= 1")
    size = (128, 128, 60) if args.quick else tuple(args.size)
    import nibabel as nib
    import SimpleITK as sitk

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory(prefix="satgate-whole-ct-") as td:
        work = args.work or Path(td)
        work.mkdir(parents=True, exist_ok=True)
        data = work / "data"
        data.mkdir(exist_ok=True)
        image = data / "ct.nii.gz"
        if args.image is not None:
            sitk.WriteImage(sitk.ReadImage(str(args.image)), str(image))
            size = sitk.ReadImage(str(image)).GetSize()
            spacing = "x".join(f"{v:g}" for v in sitk.ReadImage(str(image)).GetSpacing())
        else:
            sitk.WriteImage(_synthetic_ct()(size, (0.7, 0.7, 0.8)), str(image))
            spacing = "0.7x0.7x0.8"
        images = [image] + [data / f"ct{k}.nii.gz" for k in range(1, args.cases)]
        for extra in images[1:]:
            shutil.copyfile(image, extra)
        (data / "datalist.json").write_text(json.dumps({"test": [{"image": str(i)} for i in images]}),
                                            encoding="utf-8")
        ckpt = args.ckpt or args.bundle / "models" / "model.pt"
        weights = f"checkpoint {ckpt}"
        if not ckpt.is_file():
            ckpt = work / "random.pt"
            _random_checkpoint(args.bundle, ckpt, args.set)
            weights = "randomly initialised network_def (seed 0): no trained checkpoint given"
        cli_out, monai_out = work / "cli", work / "monai"
        cli = [sys.executable, "-m", "satgate_monai.infer", "--bundle", str(args.bundle),
               "--input", str(image if args.cases == 1 else data),
               "--out", str(cli_out), "--ckpt", str(ckpt), "--device", args.device, "--threads", str(args.threads),
               "--precision", args.precision, "--backend", args.backend, "--format", "nifti", "--no-progress",
               "--overwrite", *[x for item in args.set for x in ("--set", item)]]
        monai = [sys.executable, "-m", "monai.bundle", "run", "--config_file",
                 str(args.bundle / "configs" / "inference.json"), "--bundle_root", str(args.bundle),
                 "--dataset_dir", str(data), "--ckpt_path", str(ckpt), "--output_dir", str(monai_out),
                 "--num_threads", str(args.threads), "--device", f"$torch.device('{args.device}')"]
        for item in args.set:
            key, _, value = item.partition("=")
            monai += [f"--{key}", value]
        reference = [*monai, "--config_file",
                     f"['{args.bundle / 'configs' / 'inference.json'}','{HERE / 'reference_inference.json'}']",
                     "--output_dir", str(work / "reference")]
        del reference[reference.index("--config_file"):reference.index("--config_file") + 2]
        del reference[reference.index("--output_dir"):reference.index("--output_dir") + 2]
        load = os.getloadavg()[0]
        if args.backend == "onnxruntime":  # export once (cached): the timed run is a run with the cache warm
            env["SATGATE_MONAI_CACHE"] = str(work / "cache")
            _timed(cli, env)
        sequential = [*cli, "--no-prefetch", "--debug"]
        stages: list[str] = []
        t_cli, t_seq = [], []
        for r in range(args.repeats if args.cases > 1 else 1):  # interleaved: seq, ovl, ovl, seq, ...
            order = ("seq", "ovl") if r % 2 == 0 else ("ovl", "seq")
            for mode in order if args.cases > 1 else ("ovl",):
                if mode == "ovl" and args.cases == 1:  # one case: its stage times from the --debug log
                    t_cli.append(_timed([*cli, "--debug"], env, stages, "cli"))
                elif mode == "ovl":
                    t_cli.append(_timed(cli, env, name="cli"))
                else:
                    t_seq.append(_timed(sequential, env, stages if not stages else None, "cli_seq"))
        t_monai = None if args.skip_monai else _timed(monai, env, name="bundle")
        t_ref = None if args.skip_monai or args.skip_reference else _timed(reference, env, name="reference")
        agreement = {}
        if t_monai is not None:
            ours = np.asarray(nib.load(cli_out / "ct_seg.nii.gz").dataobj)
            for name, folder in (("bundle run", monai_out), ("reference", work / "reference")):
                if not folder.is_dir():
                    continue
                theirs_path = next(p for p in folder.rglob("*.nii.gz") if p.name.startswith("ct_"))
                theirs = np.asarray(nib.load(theirs_path).dataobj).reshape(ours.shape)
                agreement[name] = float((ours == theirs).mean())
            foreground = float((ours > 0).mean())
    best = min(t_cli)
    print(f"# Whole-CT inference: CLI vs MONAI bundle run\n\n{args.cases} x volume {'x'.join(map(str, size))} at "
          f"{spacing} mm, bundle {args.bundle.name}, {weights}, device {args.device}, threads {args.threads}, CLI "
          f"precision {args.precision}, CLI backend {args.backend}; load average at start {load:.1f}, at end "
          f"{os.getloadavg()[0]:.1f}\n")
    def rss(name: str) -> str:
        return ", ".join(f"{g:.2f}" for g in PEAKS.get(name, []))

    print("| run | seconds | peak RSS (GB) |\n|---|---|---|")
    print(f"| `python -m satgate_monai.infer` | {', '.join(f'{t:.1f}' for t in t_cli)} | {rss('cli')} |")
    if t_seq:
        print(f"| `python -m satgate_monai.infer --no-prefetch` | {', '.join(f'{t:.1f}' for t in t_seq)} | "
              f"{rss('cli_seq')} |")
    if t_monai is not None:
        print(f"| `python -m monai.bundle run` (the case engine) | {t_monai:.1f} | {rss('bundle')} |")
    if t_ref is not None:
        print(f"| plain MONAI reference (`benchmarks/reference_inference.json`: Spacingd ... Invertd) | {t_ref:.1f} | "
              f"{rss('reference')} |")
    if t_seq:
        print(f"\n- one by one / overlapped (best of each): {min(t_seq) / best:.2f}")
    if t_ref is not None:
        print(f"\n- reference / CLI time: {t_ref / best:.2f}; reference / bundle run time: {t_ref / t_monai:.2f} "
              "(target >= 3 each)")
    if t_monai is not None:
        print(f"- foreground (label > 0) in the CLI's mask: {foreground:.4f}")
        for name, a in agreement.items():
            print(f"- voxel label agreement, CLI vs {name}: {a:.6f} (target >= 0.9999 vs the reference)")
    if stages:
        print(f"\nStage times of the CLI{' (one by one)' if args.cases > 1 else ''} (s):\n\n{_stage_table(stages)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
