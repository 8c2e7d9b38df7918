"""End-to-end: the real MONAI Label server on temporary copies of the three bundles, phantom studies, 127.0.0.1.

The MONAI Label environment's python comes from SATGATE_MONAILABEL_PYTHON (``.ci/run`` sets it from
``.ci/monailabel_env.sh``); without it the build script is called (cached; a few minutes the first time).
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.label.client import label_python, reference_command, server_output, stop
from tests.label.phantoms import copy_bundle, make_studies, write_random_weights
from tests.orthanc import free_port

BUNDLES = {"liver": "liver_ct_sat", "prostate": "prostate_mri_sat", "skin": "skin_lesion_sat"}
START_TIMEOUT = 240.0


def _request(url: str, method: str = "GET", body: dict | None = None, timeout: float = 120.0) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def _offline(python: Path, bundle: Path, image: Path, out: Path, env: dict[str, str]) -> subprocess.Popen:
    """The offline reference run on one image, same weights as served (:func:`tests.label.client.reference_command`:
    the inference CLI for the 3D bundle, ``monai.bundle run`` for the 2D one)."""
    cmd = reference_command(python, bundle, image, out)
    log = open(out.parent / f"offline_{bundle.name}.log", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=out.parent)


def _load_label(path: Path) -> np.ndarray:
    if path.suffix == ".png":
        from PIL import Image

        return np.asarray(Image.open(path))
    import nibabel as nib

    return np.asanyarray(nib.load(path).dataobj)


def _served_label(url: str, model: str, image_id: str, ext: str, folder: Path) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    status, body = _request(f"{url}/infer/{model}?image={image_id}&output=image", method="POST")
    elapsed = time.perf_counter() - start
    assert status == 200, f"/infer/{model} on {image_id} returned {status}: {body[:2000]!r}"
    path = folder / f"served_{model}_{image_id}{ext}"
    path.write_bytes(body)
    return _load_label(path), elapsed


@pytest.mark.slow
def test_monailabel_server_end_to_end(tmp_path):
    """Start the real server, check /info/, /infer against offline runs, /train, and a clean stop by PID."""
    python = label_python()
    studies, bundles, offline_dir, app_dir = (tmp_path / n for n in ("studies", "bundles", "offline", "app"))
    studies.mkdir()
    offline_dir.mkdir()
    ids = make_studies(studies, n_mr=3, n_rgb=3, labelled=2)
    mr, rgb = studies / f"{ids['mr'][2]}.nii.gz", studies / f"{ids['rgb'][2]}.png"  # unlabelled ones
    copies = {task: copy_bundle(REPO_ROOT / "bundles" / name, bundles / name) for task, name in BUNDLES.items()}
    write_random_weights(copies["liver"], seed=0)
    write_random_weights(copies["prostate"], balance_on=mr, seed=1)
    write_random_weights(copies["skin"], balance_on=rgb, seed=2)
    weights_before = {t: (b / "models" / "model.pt").read_bytes() for t, b in copies.items()}

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    offline = {
        "prostate": _offline(python, copies["prostate"], mr, offline_dir, env),
        "skin": _offline(python, copies["skin"], rgb, offline_dir, env),
    }

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "satgate_monai.label", "serve", "--studies", str(studies), "--port", str(port)]
    cmd += ["--bundles-dir", str(bundles), "--python", str(python), "--app-dir", str(app_dir)]
    log_path = tmp_path / "server.log"
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    timings: dict[str, float] = {}
    try:
        info = None
        while time.perf_counter() - t0 < START_TIMEOUT:
            if server.poll() is not None:
                pytest.fail(f"the server exited with {server.returncode}:\n{server_output(log_path, app_dir)[-4000:]}")
            try:
                status, body = _request(f"{url}/info/", timeout=5)
                if status == 200:
                    info = json.loads(body)
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert info is not None, f"no /info/ after {START_TIMEOUT} s:\n{server_output(log_path, app_dir)[-4000:]}"
        timings["start"] = time.perf_counter() - t0
        assert f"URL     {url}" in log_path.read_text(), "the serve command must print the URL for 3D Slicer"

        # /info/: the three models, labels from channel_def (background dropped), dimension from spatial_shape.
        models = info["models"]
        assert set(models) == set(BUNDLES.values())
        for task, name in BUNDLES.items():
            meta = json.loads((copies[task] / "configs" / "metadata.json").read_text())
            channel_def = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
            expected = {v.lower(): int(k) for k, v in channel_def.items() if v.lower() != "background"}
            assert models[name]["labels"] == expected, name
            assert models[name]["dimension"] == (2 if task == "skin" else 3), name
        assert set(info["trainers"]) == set(BUNDLES.values())

        # /infer: identical, voxel for voxel, to the offline reference with the same weights (3D: the inference CLI,
        # whose post-processing the app shares; 2D: `monai.bundle run` of the same config).
        for task, image_id, ext in (("prostate", mr.name[:-7], ".nii.gz"), ("skin", rgb.stem, ".png")):
            served, timings[f"infer_{task}_first"] = _served_label(url, BUNDLES[task], image_id, ext, tmp_path)
            _, timings[f"infer_{task}_again"] = _served_label(url, BUNDLES[task], image_id, ext, tmp_path)
            proc = offline[task]
            assert proc.wait(timeout=180) == 0, (offline_dir.parent / f"offline_{BUNDLES[task]}.log").read_text()
            ref = _load_label(offline_dir / f"{image_id}_seg{ext}")
            source = _load_label(mr if task == "prostate" else rgb)
            assert served.shape == ref.shape == source.shape[: served.ndim], (served.shape, ref.shape)
            if task == "skin":  # the bundle writes PNG masks scaled to 0/255; MONAI Label returns label indices
                assert set(np.unique(ref)) <= {0, 255}
                ref = ref // 255
            assert set(np.unique(served)) <= {0, 1}
            assert 0.05 < served.mean() < 0.95, f"{task}: a one-class label cannot show a content mismatch"
            mismatch = int((served != ref).sum())
            assert mismatch == 0, f"{task}: {mismatch} of {served.size} voxels differ from the offline reference run"
        import nibabel as nib  # geometry of the 3D label: the source image's affine

        served_nii = nib.load(tmp_path / f"served_{BUNDLES['prostate']}_{mr.name[:-7]}.nii.gz")
        assert np.allclose(served_nii.affine, nib.load(mr).affine, atol=1e-4)

        # /train: one epoch on the labelled phantoms of the bundle's own dimension, overwriting models/model.pt.
        import torch

        for task in ("prostate", "skin"):
            t = time.perf_counter()
            status, body = _request(
                f"{url}/train/{BUNDLES[task]}?run_sync=true",
                method="POST",
                body={"max_epochs": 1, "val_split": 0.5, "multi_gpu": False},
                timeout=300,
            )
            timings[f"train_{task}"] = time.perf_counter() - t
            assert status == 200, f"/train/{BUNDLES[task]} returned {status}: {body[:2000]!r}"
            weights = copies[task] / "models" / "model.pt"
            assert weights.read_bytes() != weights_before[task], f"{task}: training did not change models/model.pt"
            new = torch.load(weights, map_location="cpu", weights_only=True)
            old = torch.load(io.BytesIO(weights_before[task]), map_location="cpu", weights_only=True)
            assert set(new) == set(old), f"{task}: the trained model.pt is not the same flat state_dict"
        assert (copies["liver"] / "models" / "model.pt").read_bytes() == weights_before["liver"]
        train_log = (app_dir / "logs" / "serve.log").read_text()  # the server's output goes to the log file
        assert "prostate_mri_sat: 2 of 4 labelled studies are 3D" in train_log
        assert "skin_lesion_sat: 2 of 4 labelled studies are 2D" in train_log
        status, _ = _request(f"{url}/infer/{BUNDLES['prostate']}?image={mr.name[:-7]}&output=image", method="POST")
        assert status == 200, "inference with the retrained weights failed"
    finally:
        # Stop by PID (serve execs the server, so this PID is the server) and check nothing is left behind.
        descendants = _children(server.pid) if server.poll() is None else set()
        t = time.perf_counter()
        stop(server)
        timings["stop"] = time.perf_counter() - t
        for p in offline.values():
            stop(p)
        print("MONAI Label timings (s):", json.dumps({k: round(v, 2) for k, v in timings.items()}))
    deadline = time.time() + 20
    while time.time() < deadline and [p for p in descendants if _alive(p)]:
        time.sleep(0.25)
    assert not [p for p in descendants if _alive(p)], "the server left child processes behind"
    assert not [p for p in _processes_mentioning(str(app_dir)) if _alive(p)], "a server process is still running"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the port still accepts connections after the stop"


@pytest.mark.slow
def test_serve_names_a_bundle_whose_network_cannot_be_imported(tmp_path):
    """A network_def that cannot be imported stops `serve` before the server starts, naming bundle and target."""
    python = label_python()
    studies = tmp_path / "studies"
    studies.mkdir()
    make_studies(studies, n_mr=1, n_rgb=0, labelled=0)
    good = copy_bundle(REPO_ROOT / "bundles" / BUNDLES["skin"], tmp_path / "bundles" / BUNDLES["skin"])
    write_random_weights(good)
    broken = copy_bundle(REPO_ROOT / "bundles" / BUNDLES["prostate"], tmp_path / "bundles" / "broken_net_sat")
    write_random_weights(broken)
    config = json.loads((broken / "configs" / "inference.json").read_text())
    config["network_def"]["_target_"] = "satgate_monai.networks.nets.NoSuchSATNet"
    (broken / "configs" / "inference.json").write_text(json.dumps(config, indent=1))

    port = free_port()
    app_dir = tmp_path / "app"
    cmd = [sys.executable, "-m", "satgate_monai.label", "serve", "--studies", str(studies), "--port", str(port)]
    cmd += ["--bundles-dir", str(tmp_path / "bundles"), "--python", str(python), "--app-dir", str(app_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "bundle 'broken_net_sat'" in proc.stderr
    assert "'satgate_monai.networks.nets.NoSuchSATNet' cannot be imported" in proc.stderr
    assert BUNDLES["skin"] not in proc.stderr, "only the broken bundle is blamed"
    assert "URL" not in proc.stdout
    assert not _processes_mentioning(str(app_dir))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
