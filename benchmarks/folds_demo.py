"""k-fold training, fold ensemble, test-time mirroring and learned post-processing on demo phantoms, end to end.

    python benchmarks/folds_demo.py --task prostate --out /tmp/folds_demo --folds 2 --epochs 20 --threads 1

Steps (every one through the public commands' code paths):

1. ``python -m data_prep demo`` phantoms, ``python -m data_prep import ... --folds K`` (seeded folds, held-out test);
2. a CPU-sized copy of the task's bundle (``satgate_monai.demo.prepare_bundle_copy``), trained once per fold
   (``configs/train.json --fold f``) and evaluated on its fold's validation cases (``evaluate.json --fold f
   --eval_split validation``), which writes the cross-validation summary and the post-processing choice;
3. the inference CLI's pipeline on the held-out test images, one run per option: single folds, the fold ensemble,
   + mirroring over ``--mirror-axes`` (the axes the training flips) and over all three axes, + the chosen
   post-processing (and keep-largest-component forced on, to show its effect when validation did not choose it), and
   ``monai.bundle run`` of inference.json with the same ensemble, mirroring and chosen post-processing;
4. a table: test Dice (mean over cases, on the source grid) and inference wall time of each step, and the time
   ratio to the single-fold run (side by side).

Demo phantoms are synthetic, NOT patient data; few cases and epochs: the Dice differences are not evidence for the
options in general. Writes ``<out>/folds_demo.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    p, g = pred > 0, truth > 0
    denom = p.sum() + g.sum()
    return 1.0 if denom == 0 else float(2 * (p & g).sum() / denom)


def _bundle_run(bundle: Path, configs: list[str], **overrides) -> None:
    from monai.bundle import run

    files = [str(bundle / "configs" / c) for c in configs]
    run(config_file=files if len(files) > 1 else files[0], meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=str(bundle / "configs" / "logging.conf"), bundle_root=str(bundle), **overrides)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="prostate", choices=("prostate", "liver"))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--cases", type=int, default=None, help="phantom cases (default: the demo's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-training", action="store_true", help="reuse the trained folds in --out")
    ap.add_argument("--mirror-axes", default="0", help="axes the training flips (train.json RandFlipd; default 0)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from data_prep.cli import main as data_prep
    from satgate_monai.demo import DEMOS, prepare_bundle_copy
    from satgate_monai.infer.bundle import BundleRunner
    from satgate_monai.infer.pipeline import InferenceOptions, run_inference

    demo = DEMOS[args.task]
    out = args.out.resolve()
    data, times = out / "data", {}
    bundle = out / demo["bundle"]
    common = {"dataset_dir": str(data), "device": "cpu", "num_workers": 0}
    if not args.skip_training:
        t = time.perf_counter()
        assert data_prep(["demo", "--task", args.task, "--out", str(out / "raw"), "--seed", "0"]
                         + (["--cases", str(args.cases)] if args.cases else [])) == 0
        assert data_prep(["import", "--dataset", demo["dataset"], "--src", str(out / "raw"), "--out", str(data),
                          "--overwrite", "--no-progress", "--seed", "0", "--folds", str(args.folds)]) == 0
        times["data"] = time.perf_counter() - t
        bundle = prepare_bundle_copy(args.task, out, demo["overrides"], demo.get("train_overrides"))
        for f in range(args.folds):
            t = time.perf_counter()
            _bundle_run(bundle, ["train.json"], epochs=args.epochs, seed=0, fold=f, **common)
            times[f"train fold {f}"] = time.perf_counter() - t
            t = time.perf_counter()
            _bundle_run(bundle, ["train.json", "evaluate.json"], seed=0, fold=f, eval_split="validation", **common)
            times[f"evaluate fold {f} (validation)"] = time.perf_counter() - t
    datalist = json.loads((data / "datalist.json").read_text())
    test_dir = out / "test_images"
    shutil.rmtree(test_dir, ignore_errors=True)
    test_dir.mkdir()
    truth = {}
    for item in datalist["test"]:
        name = Path(item["image"]).name.replace(".nii.gz", "")
        shutil.copy2(data / item["image"], test_dir / Path(item["image"]).name)
        truth[name] = sitk.GetArrayFromImage(sitk.ReadImage(str(data / item["label"])))
    ckpts = [bundle / "models" / f"fold{f}" / "model.pt" for f in range(args.folds)]
    choice_file = bundle / "eval" / "postprocessing.json"
    choice = json.loads(choice_file.read_text())
    forced = out / "keep_largest.json"
    forced.write_text(json.dumps({"keep_largest_component": [1], "fill_holes": []}))
    off = {"postprocessing_file": str(out / "no_postprocessing.json")}
    all_axes = [0, 1, 2]
    axes = [int(a) for a in args.mirror_axes.split(",")]
    mir = "mirroring (" + ", ".join("xyz"[a] for a in axes) + ")"
    chosen = ", ".join(f"label {k}: {v}" for k, v in choice["chosen_variant"].items())
    steps = [(f"fold {f} only", [ckpts[f]], [], off) for f in range(args.folds)]
    steps += [(f"ensemble of {args.folds} folds", ckpts, [], off),
              (f"ensemble + {mir}", ckpts, axes, off),
              ("ensemble + mirroring (x, y, z)", ckpts, all_axes, off),
              (f"ensemble + {mir} + chosen post-processing ({chosen})", ckpts, axes,
               {"postprocessing_file": str(choice_file)}),
              (f"ensemble + {mir} + keep-largest forced", ckpts, axes, {"postprocessing_file": str(forced)})]
    rows = []
    for label, cks, axes, overrides in steps:
        t0 = time.perf_counter()
        runner = BundleRunner(bundle, device="cpu", ckpt=[str(c) for c in cks], mirror_axes=axes,
                              overrides=overrides)
        res_dir = out / "predictions" / f"step{len(rows)}"
        shutil.rmtree(res_dir, ignore_errors=True)
        t1 = time.perf_counter()
        reports = run_inference(runner, test_dir, res_dir, InferenceOptions(formats=("nifti",)), progress=False)
        t2 = time.perf_counter()
        assert all(r.status == "ok" for r in reports), [r.error for r in reports]
        dices = {c: _dice(sitk.GetArrayFromImage(sitk.ReadImage(str(res_dir / f"{c}_seg.nii.gz"))), g)
                 for c, g in truth.items()}
        rows.append({"step": label, "dice_mean": float(np.mean(list(dices.values()))), "dice": dices,
                     "load_s": t1 - t0, "infer_s": t2 - t1, "passes": runner.ensemble.n_passes})
    # the bundle's own inference workflow with the same ensemble and mirroring
    t = time.perf_counter()
    pred_dir = out / "predictions" / "monai_bundle_run"
    _bundle_run(bundle, ["inference.json"], checkpoints=[str(c) for c in ckpts], mirror_axes=axes,
                output_dir=str(pred_dir), **common, **{"dataset#data": [{"image": str(p)}
                                                                        for p in sorted(test_dir.iterdir())]})
    dices = {c: _dice(sitk.GetArrayFromImage(sitk.ReadImage(str(pred_dir / f"{c}_seg.nii.gz"))), g)
             for c, g in truth.items()}
    rows.append({"step": f"monai.bundle run: ensemble + {mir} + chosen post-processing",
                 "dice_mean": float(np.mean(list(dices.values()))), "dice": dices, "load_s": float("nan"),
                 "infer_s": time.perf_counter() - t, "passes": len(ckpts) * 2 ** len(axes)})
    base = rows[0]["infer_s"]
    print(f"\n{args.task}: {args.folds} folds x {args.epochs} epochs, {len(truth)} test cases, threads "
          f"{args.threads}")
    print("| step | passes/case | test Dice (mean) | inference wall time | x fold-0 time |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['passes']} | {r['dice_mean']:.4f} | {r['infer_s']:.1f} s | "
              f"{r['infer_s'] / base:.2f} |")
    cv = json.loads((bundle / "eval" / "crossval_validation.json").read_text())
    print(f"\ncross-validation (validation folds, pooled): Dice {cv['pooled']['dice']['mean']:.4f} "
          f"± {cv['pooled']['dice']['std']:.4f} over {cv['pooled']['n_cases']} cases; per fold "
          + ", ".join(f"{f}: {s['dice']['mean']:.4f}" for f, s in cv["per_fold"].items()))
    print(f"post-processing choice: {choice['chosen_variant']}, mean validation Dice {choice['mean_dice']}")
    print("times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    (out / "folds_demo.json").write_text(json.dumps({"rows": rows, "times": times, "crossval": cv,
                                                     "postprocessing": choice}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
