"""``python -m satgate_monai.infer``: masks in the source geometry from a bundle, for files and DICOM series.

Exit codes: 0 every case ok or skipped; 1 at least one case failed (the others were written); 2 the run could not
start (bad arguments, bundle, checkpoint or input).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from satgate_monai.runtime import PRECISIONS

__all__ = ["build_parser", "main", "parse_overrides"]

EPILOG = """\
inputs: an image file (.nii/.nii.gz/.nrrd/.nhdr/.mha/.mhd), a DICOM series folder, or a folder of cases (image files
  and/or DICOM series sub-folders), read with data_prep's validated readers (broken DICOM series are refused).
outputs in --out, per case <case>:
  <case>_seg.nii.gz              integer labels on exactly the source image's grid (same shape and affine)
  <case>_seg.dcm                 DICOM-SEG referencing the source series (DICOM input, --format dicomseg)
  <case>_attention_<gate>.nii.gz each SAT/AT gate's attention map on the source grid (--save-attention)
  report.csv                     per case: status (ok/skipped/failed), seconds, error, outputs, volume_ml_<label>
Names are sanitised ([A-Za-z0-9._-]); existing outputs are kept unless --overwrite; files are written atomically.
The bundle's own configs/inference.json runs (preprocessing, network, inferer, postprocessing without Invertd and
SaveImaged); the label map returns to the source grid by one SimpleITK nearest-neighbour resampling.
exit status: 0 all ok/skipped, 1 some case failed, 2 nothing could run.
example:
  python -m satgate_monai.infer --bundle bundles/liver_ct_sat --input ct_folder/ --out masks/ --format nifti,dicomseg
"""


def parse_overrides(items: Sequence[str]) -> dict:
    """``["network_def#channels=[8,16]", "inferer#sw_batch_size=2"]`` -> dict; values are JSON (else strings).

    Raises:
        ValueError: an item without ``=``.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE (VALUE in JSON), got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(
        prog="python -m satgate_monai.infer", description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", required=True, help="bundle folder (configs/inference.json, models/model.pt)")
    p.add_argument("--input", required=True, help="image file, DICOM series folder, or folder of cases")
    p.add_argument("--out", required=True, help="output folder (created; must not lie inside the input)")
    p.add_argument("--ckpt", default=None, help="checkpoint (default <bundle>/models/model.pt); flat state_dict or "
                   "{'model': state_dict}; loaded with torch.load(weights_only=True)")
    p.add_argument("--format", default="nifti,dicomseg",
                   help="comma-separated outputs: nifti, dicomseg (DICOM inputs only). Default: nifti,dicomseg")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N. Default: auto")
    p.add_argument("--overlap", type=float, default=None,
                   help="sliding-window overlap in [0, 1), e.g. 0.5. Default: the bundle's value")
    p.add_argument("--sw-batch-size", type=int, default=None,
                   help="sliding windows per network call (more uses more memory). Default: the bundle's value")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="network arithmetic: auto (fp16 autocast on CUDA, fp32 on CPU), fp32, bf16, fp16 (CUDA)")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision: fp16 autocast on CUDA, bf16 on CPU (overrides --precision)")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="network runtime: torch (default) or onnxruntime (CPU, float32; exported once and cached "
                   "under $SATGATE_MONAI_CACHE or ~/.cache/satgate_monai)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads. Default: the cores this process may use (os.sched_getaffinity)")
    p.add_argument("--save-attention", action="store_true", help="also write every gate's attention map")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip such cases)")
    p.add_argument("--name-from", choices=("path", "patient"), default="path",
                   help="case names from the file/folder name (default) or DICOM PatientID_SeriesNumber")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=JSON",
                   help="override a bundle config entry, e.g. --set 'inferer#sw_batch_size=2' (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (tracebacks of failed cases)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from satgate_monai.infer.bundle import BundleRunner, resolve_device
    from satgate_monai.infer.pipeline import InferenceOptions, run_inference
    from satgate_monai.runtime import set_threads

    try:
        formats = tuple(f.strip().lower() for f in args.format.split(",") if f.strip())
        opts = InferenceOptions(formats=formats, save_attention=args.save_attention, overwrite=args.overwrite,
                                name_from=args.name_from)
        set_threads(args.threads)
        device = resolve_device(args.device)
        precision = ("fp16" if device.type == "cuda" else "bf16") if args.amp else args.precision
        runner = BundleRunner(args.bundle, device=device, ckpt=args.ckpt, overlap=args.overlap,
                              overrides=parse_overrides(args.overrides), sw_batch_size=args.sw_batch_size,
                              precision=precision, backend=args.backend)
        reports = run_inference(runner, args.input, args.out, opts, progress=not args.no_progress)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = {s: sum(r.status == s for r in reports) for s in ("ok", "skipped", "failed")}
    print(f"{len(reports)} case(s): {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed; "
          f"report: {args.out}/report.csv")
    for r in reports:
        if r.status != "ok":
            print(f"  {r.case}: {r.status}: {r.error}", file=sys.stderr)
    return 1 if counts["failed"] else 0
