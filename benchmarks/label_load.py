"""MONAI Label under a team's load: six clients keep ``/infer`` busy while one uploads images and submits labels.

Starts ``python -m satgate_monai.label serve`` on 127.0.0.1 (loopback only) on phantom MR studies with the prostate
bundle (random weights), and measures under one load:

- ``/infer``: six client threads, each sending ``--infers`` requests one after the other (as 3D Slicer does), on
  images spread over the studies; every answer's label is kept;
- uploads (``PUT /datastore/image``) and label submits (``PUT /datastore/label``) from a seventh client, started once
  the inferences run.

Prints p50/p95 seconds of each kind, the failures, whether every label served for the same image is equal, whether
every upload and submit is in the datastore, and the machine load (``os.getloadavg``). Bounded: at most
``6 * --infers`` inferences and ``--uploads`` uploads + submits per setting, each request times out after 300 s.

    python benchmarks/label_load.py

``--server-arg`` passes extra ``serve`` arguments (e.g. ``--conf KEY VALUE``); each value of ``--settings`` is one
run, so settings can be compared side by side once the server offers any that helps (MONAI Label 0.8.5 does not:
docs/label.md).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import REPO_ROOT
from tests.label.client import label_python, serving
from tests.label.phantoms import MR_AFFINE, copy_bundle, make_studies, mr_phantom, write_random_weights

MODEL = "prostate_mri_sat"
BOUNDARY = "satgate-bench"
TIMEOUT = 300.0


def _nifti(array) -> bytes:
    import gzip

    import nibabel as nib

    buf = io.BytesIO()
    nib.Nifti1Image(array, MR_AFFINE).to_file_map({"image": nib.FileHolder(fileobj=buf)})
    return gzip.compress(buf.getvalue(), compresslevel=1)


def _multipart(fields: dict[str, str], file_field: str | None = None, filename: str = "", data: bytes = b"") -> bytes:
    parts = [f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
             for k, v in fields.items()]
    if file_field:
        parts.append((f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\""
                      "\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _request(url: str, method: str, body: bytes) -> tuple[int, bytes, float]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, r.read(), time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.perf_counter() - t0
    except OSError as e:
        return 0, str(e).encode(), time.perf_counter() - t0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def run(setting: str, infers: int, uploads: int, tmp: Path, python: Path) -> dict:
    studies = tmp / "studies"
    studies.mkdir(parents=True)
    ids = make_studies(studies, n_mr=3, n_rgb=0, labelled=0)["mr"]
    bundle = copy_bundle(REPO_ROOT / "bundles" / MODEL, tmp / "bundles" / MODEL)
    write_random_weights(bundle, seed=0)
    image, label = mr_phantom(7)
    image_bytes, label_bytes = _nifti(image), _nifti(label)
    infer_s: list[float] = []
    write_s: list[float] = []
    failures: list[str] = []
    labels: dict[str, set[str]] = {}
    lock = threading.Lock()
    with serving(tmp, studies, [bundle], python, setting.split()) as server:
        start = threading.Event()

        def client(k: int) -> None:
            start.wait()
            for j in range(infers):
                image_id = ids[(k + j) % len(ids)]
                status, body, dt = _request(f"{server.url}/infer/{MODEL}?image={image_id}&output=image", "POST",
                                            _multipart({"params": "{}"}))
                with lock:
                    infer_s.append(dt)
                    if status != 200:
                        failures.append(f"infer {image_id}: {status} {body[:200]!r}")
                    else:
                        labels.setdefault(image_id, set()).add(hashlib.sha256(body).hexdigest())

        def writer() -> None:
            start.wait()
            time.sleep(2.0)  # the inferences are queued by now
            for j in range(uploads):
                for what, path, field, data in (("upload", f"image?image=up_{j}", "file", image_bytes),
                                                 ("label", f"label?image=up_{j}&tag=final", "label", label_bytes)):
                    status, body, dt = _request(f"{server.url}/datastore/{path}", "PUT",
                                                _multipart({"params": "{}"}, field, f"up_{j}.nii.gz", data))
                    with lock:
                        write_s.append(dt)
                        if status != 200:
                            failures.append(f"{what} up_{j}: {status} {body[:200]!r}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(6)] + [threading.Thread(target=writer)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        start.set()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        kept = sum((studies / f"up_{j}.nii.gz").is_file() and (studies / "labels" / "final" / f"up_{j}.nii.gz")
                   .is_file() for j in range(uploads))
    return {"setting": setting or "default", "infer_p50": _pct(infer_s, 50), "infer_p95": _pct(infer_s, 95),
            "write_p50": _pct(write_s, 50), "write_p95": _pct(write_s, 95), "write_max": max(write_s, default=0),
            "infers": len(infer_s), "writes": len(write_s), "failures": failures, "kept": f"{kept}/{uploads}",
            "labels_equal": all(len(v) == 1 for v in labels.values()), "wall_s": wall,
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=[""],
                        help="extra serve arguments per run, one string each (default: one run, the defaults)")
    parser.add_argument("--infers", type=int, default=3, help="/infer requests per client (six clients)")
    parser.add_argument("--uploads", type=int, default=3, help="uploads (each followed by a label submit)")
    args = parser.parse_args()
    python = label_python()
    rows = []
    for setting in args.settings:
        with tempfile.TemporaryDirectory(prefix="label-load-") as td:
            row = run(setting, args.infers, args.uploads, Path(td), python)
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    print("setting | /infer p50 | /infer p95 | upload+submit p50 | p95 | max | failures | labels equal | kept | load")
    for r in rows:
        print(f"{r['setting']} | {r['infer_p50']:.2f} | {r['infer_p95']:.2f} | {r['write_p50']:.2f} | "
              f"{r['write_p95']:.2f} | {r['write_max']:.2f} | {len(r['failures'])} | {r['labels_equal']} | "
              f"{r['kept']} | {r['load']}")
    for r in rows[1:]:
        print(f"ratio upload p95 {r['setting']} / {base['setting']}: {r['write_p95'] / base['write_p95']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
