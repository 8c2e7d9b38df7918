"""Benchmark: PACS to PACS round trip of one multi-series study against a local Orthanc, beside the same study read
from a folder.

Run:  python benchmarks/pacs.py [--size 256 256 80] [--spacing 0.8 0.8 1.25] [--repeats 3] [--bundle DIR]

A synthetic CT (benchmarks/infer.py's body with organs) becomes one study: the volume as a thin reconstruction, every
other slice as a thick one, a localizer, an SR and a dose report. A private Orthanc (tests/orthanc.py, Debian's
``orthanc`` + ``orthanc-dicomweb``) on 127.0.0.1 receives it; then, timed (best of ``--repeats``, the stored SEG
deleted between runs):

- ``folder``: ``python -m satgate_monai.infer --input STUDY_FOLDER`` in-process (read, select, bundle, SEG write);
- ``pacs``: ``--input dicomweb://127.0.0.1:PORT/dicom-web?study=UID --store``: WADO-RS retrieval of the whole study,
  the same pipeline, STOW-RS of the SEG; its retrieval and store seconds from report.csv are shown too.

The "network" is a fixed HU threshold inside the bundle's real pre/postprocessing (tests/infer/helpers.py's
ThresholdNet), so the times are those of everything around a trained network plus a cheap forward pass.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.infer import synthetic_ct  # noqa: E402


def _row(out: Path) -> dict[str, str]:
    with open(out / "report.csv", newline="", encoding="utf-8") as f:
        return next(csv.DictReader(f))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs=3, default=[256, 256, 80])
    p.add_argument("--spacing", type=float, nargs=3, default=[0.8, 0.8, 1.25])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bundle", type=Path, default=REPO / "bundles" / "liver_ct_sat")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from satgate_monai.infer.cli import main as infer
    from tests.infer.helpers import set_args
    from tests.infer.study import write_ct_study
    from tests.orthanc import running_orthanc

    overrides = set_args(['network_def={"_target_": "tests.infer.helpers.ThresholdNet"}', "inferer#sw_batch_size=2"])
    with tempfile.TemporaryDirectory(prefix="satgate-pacs-bench-") as td:
        td = Path(td)
        ckpt = td / "threshold.pt"
        torch.save({"model": {"level": torch.tensor(0.3)}}, ckpt)
        study = write_ct_study(synthetic_ct(tuple(args.size), tuple(args.spacing)), td / "study")
        files = sorted(study.folder.iterdir())
        mb = sum(f.stat().st_size for f in files) / 2**20
        common = ["--bundle", str(args.bundle), "--ckpt", str(ckpt), "--device", "cpu", "--no-progress",
                  "--overwrite", *overrides]
        best = {"folder": float("inf"), "pacs": float("inf"), "retrieve": 0.0, "store": 0.0}
        with running_orthanc(td / "orthanc") as pacs:
            for f in files:
                pacs.upload(f)
            address = f"dicomweb://127.0.0.1:{pacs.port}/dicom-web?study={study.study}"
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                assert infer(["--input", str(study.folder), "--out", str(td / "out_folder"), *common]) == 0
                best["folder"] = min(best["folder"], time.perf_counter() - t0)
                t0 = time.perf_counter()
                assert infer(["--input", address, "--out", str(td / "out_pacs"), "--store", *common]) == 0
                dt = time.perf_counter() - t0
                row = _row(td / "out_pacs")
                if dt < best["pacs"]:
                    best.update(pacs=dt, retrieve=float(row["retrieve_seconds"]), store=float(row["store_seconds"]))
                for s in pacs.get_json(f"/dicom-web/studies/{study.study}/series?Modality=SEG") or []:
                    status, _ = pacs.request(f"/series/{_series_id(pacs, s['0020000E']['Value'][0])}", "DELETE")
                    assert status == 200
    print(f"study: {len(files)} instances, {mb:.1f} MB; thin series {args.size[0]}x{args.size[1]}x{args.size[2]}; "
          f"best of {args.repeats}; torch threads {torch.get_num_threads()}; load {os.getloadavg()[0]:.2f}")
    print(f"{'path':<28}{'seconds':>10}{'ratio':>8}")
    print(f"{'folder (read..SEG write)':<28}{best['folder']:>10.2f}{1.0:>8.2f}")
    print(f"{'PACS round trip':<28}{best['pacs']:>10.2f}{best['pacs'] / best['folder']:>8.2f}")
    print(f"{'  of which WADO-RS retrieve':<28}{best['retrieve']:>10.2f}")
    print(f"{'  of which STOW-RS store':<28}{best['store']:>10.2f}")
    return 0


def _series_id(pacs, uid: str) -> str:
    import json

    status, body = pacs.request("/tools/lookup", "POST", uid.encode())
    assert status == 200
    return next(r["ID"] for r in json.loads(body) if r["Type"] == "Series")


if __name__ == "__main__":
    sys.exit(main())
