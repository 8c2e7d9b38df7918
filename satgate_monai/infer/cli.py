"""``python -m satgate_monai.infer``: masks in the source geometry from a bundle, for files and DICOM series.

Exit codes: 0 every case ok or skipped; 1 at least one case failed (the others were written); 2 the run could not
start (bad arguments, bundle, checkpoint or input: one line on stderr naming the file and the fault); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.errors import run_command
from satgate_monai.runtime import PRECISIONS

LOG_NAME = "infer.log"  # the full log, in the output folder

__all__ = ["build_parser", "main", "parse_mirror_axes", "parse_overrides"]

EPILOG = """\
inputs: an image file (.nii/.nii.gz/.nrrd/.nhdr/.mha/.mhd), a DICOM series folder, or a folder of cases (image files
  and/or DICOM series sub-folders), read with data_prep's validated readers (broken DICOM series are refused); or a
  study on a DICOMweb server, dicomweb://HOST:PORT/dicom-web?study=UID, retrieved with WADO-RS (--store sends the
  DICOM-SEG back with STOW-RS).
series: a DICOM folder (study) with several series is read by the bundle's series_selection rules (metadata.json;
  --series-rules FILE replaces them): localizers and non-image objects never qualify, the first selection that a
  series satisfies decides, a tie is refused with the tied series listed; --series UID overrides. report.csv names
  the series read (series) and why the others were skipped (series_selection). See docs/pacs.md.
outputs in --out, per case <case>:
  <case>_seg.nii.gz              integer labels on exactly the source image's grid (same shape and affine)
  <case>_seg.dcm                 DICOM-SEG referencing the source series (DICOM input, --format dicomseg)
  <case>_attention_<gate>.nii.gz each SAT/AT gate's attention map on the source grid (--save-attention)
  selection.json                 shares of skip channels off / between 0 and 1 / frozen on (--save-attention)
  <case>_probabilities.npz       float16 class probabilities on the source grid, argmax = label (--save-probabilities)
  <case>_stats.json              per label statistics (--stats json)
  report.csv                     per case: status (ok/skipped/failed), seconds, error, outputs, volume_ml_<label>,
                                 voxels/mean/std/min/max/components/bbox_min_mm/bbox_max_mm_<label>
  run.json                       provenance: bundle and version, checkpoint sha256, command, overrides, device,
                                 precision, package versions, per case the input files (or series UID) and digest
Names are sanitised ([A-Za-z0-9._-]); existing outputs are kept unless --overwrite; files are written atomically.
Every case runs through the bundle's case engine (configs/inference.json: its working grid, network, inferer and
post-processing): probabilities linearly back to the source grid, then argmax, as in python -m monai.bundle run.
2D bundles (skin): a picture (.png/.jpg/.jpeg) or a folder of them in, <stem>_seg.png (uint8, 0/255) and run.json
out, exactly as python -m monai.bundle run writes them; the volume options do not apply.
Inputs are validated (whole compressed stream, positive spacing, orthonormal direction, finite voxels): a truncated,
NaN-holding or geometrically invalid input fails its case with one line naming the file and the fault.
exit status: 0 all ok/skipped, 1 some case failed, 2 nothing could run, 130 interrupted (Ctrl-C).
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


def parse_mirror_axes(value: str | None) -> list[int] | None:
    """``"all"`` -> ``[0, 1, 2]``, ``"none"`` -> ``[]``, ``"0,2"`` -> ``[0, 2]``, ``None`` -> ``None`` (the bundle's).

    Raises:
        ValueError: anything else.
    """
    from satgate_monai.bundle.ensemble import check_mirror_axes

    if value is None:
        return None
    v = value.strip().lower()
    if v in ("all", "none", ""):
        return [0, 1, 2] if v == "all" else []
    try:
        axes = [int(a) for a in v.split(",")]
        check_mirror_axes(axes, 3)  # the CLI runs 3D bundles
    except ValueError:
        raise ValueError(f"--mirror-axes takes all, none or distinct axes 0-2 such as 0,1, got {value!r}") from None
    return axes


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(
        prog="python -m satgate_monai.infer", description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", required=True, help="bundle folder (configs/inference.json, models/model.pt)")
    p.add_argument("--input", required=True, help="image file, DICOM series folder, or folder of cases")
    p.add_argument("--out", required=True, help="output folder (created; must not lie inside the input)")
    p.add_argument("--ckpt", nargs="+", default=None, metavar="FILE",
                   help="checkpoint(s) (default <bundle>/models/model.pt); flat state_dict or {'model': state_dict}; "
                   "loaded with torch.load(weights_only=True). Several files: an ensemble averaging their softmax "
                   "probabilities, e.g. --ckpt models/fold0/model.pt models/fold1/model.pt")
    p.add_argument("--mirror-axes", default=None, metavar="AXES",
                   help="test-time mirroring: 'all' (0,1,2), a list such as 0,1, or 'none'; the probabilities of "
                   "every flip combination are averaged (2**k passes). Default: the bundle's mirror_axes")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write <case>_probabilities.npz (float16 class probabilities on the source grid)")
    p.add_argument("--format", default="nifti,dicomseg",
                   help="comma-separated outputs: nifti, dicomseg (DICOM inputs only). Default: nifti,dicomseg")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N. Default: auto")
    p.add_argument("--overlap", type=float, default=None,
                   help="sliding-window overlap in [0, 1), e.g. 0.5. Default: the bundle's value")
    p.add_argument("--stats", choices=("json",), default=None,
                   help="also write <case>_stats.json (per label: volume, voxels, intensity mean/std/min/max, "
                   "components, bounding box in LPS mm); report.csv has them in any case")
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
    _add_input_options(p)
    return p


def _add_input_options(p: argparse.ArgumentParser) -> None:
    """The options on reading the input, storing to a PACS, scheduling and what is shown."""
    p.add_argument("--nonfinite", choices=("refuse", "zero"), default="refuse",
                   help="NaN/Inf input voxels: refuse the case (default) or replace them by 0 (report.csv's warning "
                        "column says how many)")
    p.add_argument("--series", default=None, metavar="UID",
                   help="SeriesInstanceUID to read in DICOM folders that hold several series (overrides the rules)")
    p.add_argument("--series-rules", default=None, metavar="JSON",
                   help="series selection rules file (default: the bundle's metadata.json series_selection)")
    p.add_argument("--store", action="store_true",
                   help="send each DICOM-SEG back to the dicomweb:// input's server with STOW-RS; skipped with a "
                        "notice when the study already holds a SEG of the same bundle, versions and weights for the "
                        "series")
    p.add_argument("--store-again", action="store_true",
                   help="with --store: store the DICOM-SEG even when the study already holds one of this algorithm")
    p.add_argument("--no-prefetch", action="store_true",
                   help="run the cases one after the other (default: the next case is read and preprocessed, and the "
                        "previous one written, while the network runs; up to three cases in memory)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", "--debug", action="store_true",
                   help=f"stream the full log (debug level, tracebacks of failed cases) to the terminal; always in "
                        f"OUT/{LOG_NAME}")


def _write_selection_state(network: Any, out: Path) -> None:
    """``selection.json`` beside the attention maps: shares of skip channels off / between / frozen, per gate and
    pooled (see :func:`~satgate_monai.networks.inspection.selection_state`), also printed."""
    from data_prep.atomic import atomic_write_text
    from satgate_monai.networks.inspection import format_selection_state, selection_state

    state = selection_state(network)
    if state:
        atomic_write_text(out / "selection.json", json.dumps(state, indent=2) + "\n")
        print(format_selection_state(state))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = build_parser().parse_args(argv)
    from data_prep.console import configure_output, reset_output

    # the full log in OUT/infer.log once the checked output folder exists; -v streams it (DEBUG) to the terminal
    configure_output(Path(args.out) / LOG_NAME, verbose=args.verbose,
                     level=logging.DEBUG if args.verbose else logging.INFO)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return run_command(lambda: _run(args, argv), debug=args.verbose, debug_hint="--debug",
                           command="python -m satgate_monai.infer")
    finally:
        reset_output()


def _run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from data_prep.extras import require_extras

    require_extras("python -m satgate_monai.infer", "io", "train")
    from data_prep.series_selection import load_rules
    from satgate_monai.infer.bundle import BundleRunner, input_spatial_dims, resolve_device
    from satgate_monai.infer.dicomweb import is_dicomweb, run_dicomweb
    from satgate_monai.infer.pictures import run_pictures
    from satgate_monai.infer.pipeline import InferenceOptions, run_inference
    from satgate_monai.runtime import set_threads

    formats = tuple(f.strip().lower() for f in args.format.split(",") if f.strip())
    if args.store and not is_dicomweb(args.input):
        raise ValueError("--store needs a dicomweb://HOST:PORT/PATH?study=UID input")
    if args.store_again and not args.store:
        raise ValueError("--store-again goes with --store")
    set_threads(args.threads)
    device = resolve_device(args.device)
    if input_spatial_dims(args.bundle) == 2:
        written = run_pictures(args.bundle, args.input, args.out, ckpt=args.ckpt, device=device,
                               overrides=parse_overrides(args.overrides))
        print(f"{len(written)} picture(s) segmented into {args.out}")
        return 0
    precision = ("fp16" if device.type == "cuda" else "bf16") if args.amp else args.precision
    runner = BundleRunner(args.bundle, device=device, ckpt=args.ckpt, overlap=args.overlap,
                          overrides=parse_overrides(args.overrides),
                          mirror_axes=parse_mirror_axes(args.mirror_axes), sw_batch_size=args.sw_batch_size,
                          precision=precision, backend=args.backend)
    opts = InferenceOptions(formats=formats, save_attention=args.save_attention, overwrite=args.overwrite,
                            name_from=args.name_from, nonfinite=args.nonfinite,
                            save_probabilities=args.save_probabilities, stats=args.stats, series_uid=args.series,
                            series_rules=load_rules(args.series_rules or runner.bundle_dir),
                            prefetch=not args.no_prefetch)
    command = ["python", "-m", "satgate_monai.infer", *argv]
    if is_dicomweb(args.input):
        reports = run_dicomweb(runner, args.input, args.out, opts, store=args.store, store_again=args.store_again,
                               progress=not args.no_progress, command=command)
    else:
        reports = run_inference(runner, args.input, args.out, opts, progress=not args.no_progress, command=command)
    if args.save_attention:
        _write_selection_state(runner.network, Path(args.out))
    counts = {s: sum(r.status == s for r in reports) for s in ("ok", "skipped", "failed")}
    print(f"{len(reports)} case(s): {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed; "
          f"report: {args.out}/report.csv")
    for r in reports:
        if r.status != "ok":
            print(f"  {r.case}: {r.status}: {r.error}", file=sys.stderr)
    return 1 if counts["failed"] else 0
