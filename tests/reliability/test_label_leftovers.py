"""No patient data left behind by the MONAI Label server: refused uploads, a signal during an upload, a SIGKILL.

A real server (``python -m satgate_monai.label serve``) runs with a private ``TMPDIR``; it keeps its temporaries in
one scratch folder there (``satgate-label-<pid>-*``, mode 0700). A refused upload leaves nothing in it; SIGTERM or
SIGHUP in the middle of an upload lets that upload finish (it is stored), then the server exits and the folder is gone;
after a SIGKILL the folder stays, and the next start removes it.
"""

from __future__ import annotations

import gzip
import io
import json
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from data_prep.scratch import MARKER
from tests.conftest import REPO_ROOT
from tests.label.client import label_python, serving
from tests.label.phantoms import MR_AFFINE, copy_bundle, make_studies, write_random_weights

PROSTATE = "prostate_mri_sat"
BOUNDARY = "satgate-upload-boundary"


def _nifti_bytes(shape=(128, 128, 48), seed=0) -> bytes:
    import nibabel as nib

    data = np.random.default_rng(seed).normal(100, 20, shape).astype(np.float32)
    buf = io.BytesIO()
    nib.Nifti1Image(data, MR_AFFINE).to_file_map({"image": nib.FileHolder(fileobj=buf)})
    return gzip.compress(buf.getvalue(), compresslevel=1)


def _multipart(filename: str, data: bytes) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n{{}}\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def _open_upload(url: str, image_id: str, body: bytes) -> socket.socket:
    """Start ``PUT /datastore/image?image=ID``: send the headers, leave the body to the caller."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=120)
    sock.sendall((f"PUT /datastore/image?image={image_id} HTTP/1.1\r\nHost: {host}\r\n"
                  f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
                  "Connection: close\r\n\r\n").encode())
    return sock


def _answer(sock: socket.socket) -> tuple[int, str]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def _upload(url: str, image_id: str, filename: str, data: bytes) -> tuple[int, str]:
    body = _multipart(filename, data)
    sock = _open_upload(url, image_id, body)
    sock.sendall(body)
    return _answer(sock)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _left(tmpdir: Path) -> list[str]:
    """Files and scratch folders under ``tmpdir`` (torch may leave its empty compile-cache folder there)."""
    return [n for n in _listing(tmpdir) if n.startswith("satgate-") or (tmpdir / n).is_file()]


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """(MONAI Label python, studies folder, bundles, private TMPDIR); the server started later inherits TMPDIR."""
    python = label_python()
    studies = tmp_path / "studies"
    studies.mkdir()
    make_studies(studies, n_mr=1, n_rgb=0, labelled=0)
    bundle = copy_bundle(REPO_ROOT / "bundles" / PROSTATE, tmp_path / "bundles" / PROSTATE)
    write_random_weights(bundle, seed=0)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    return python, studies, [bundle], tmpdir


def _scratch(tmpdir: Path, pid: int) -> Path:
    found = list(tmpdir.glob(f"satgate-label-{pid}-*"))
    assert len(found) == 1, _listing(tmpdir)
    assert (found[0].stat().st_mode & 0o777) == 0o700
    return found[0]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_refused_upload_and_a_signal_during_an_upload_leave_nothing(setup, tmp_path, sig):
    python, studies, bundles, tmpdir = setup
    good = _nifti_bytes()
    with serving(tmp_path, studies, bundles, python) as server:
        scratch = _scratch(tmpdir, server.process.pid)
        before = _listing(scratch)  # the marker and MONAI Label's own logging configuration
        assert MARKER in before
        status, body = _upload(server.url, "cut", "cut.nii.gz", good[: len(good) // 2])
        assert status == 422 and "cut" in json.loads(body)["detail"], body
        assert _listing(scratch) == before, "a refused upload stayed in the server's temporary folder"

        body = _multipart("late.nii.gz", good)
        sock = _open_upload(server.url, "late", body)
        sock.sendall(body[: len(body) // 2])
        time.sleep(0.5)
        server.process.send_signal(sig)
        time.sleep(0.5)
        sock.sendall(body[len(body) // 2 :])
        status, answer = _answer(sock)
        assert status == 200, answer  # the upload in flight finishes before the server stops
        assert server.process.wait(timeout=120) == 128 + signal.SIGTERM
    assert (studies / "late.nii.gz").is_file()
    assert _left(tmpdir) == []


@pytest.mark.slow
def test_after_a_sigkill_the_next_start_sweeps(setup, tmp_path):
    python, studies, bundles, tmpdir = setup
    with serving(tmp_path, studies, bundles, python) as server:
        scratch = _scratch(tmpdir, server.process.pid)
        (scratch / "upload.nii.gz").write_bytes(b"what a killed upload leaves")
        server.process.kill()
        server.process.wait(timeout=60)
    assert scratch.is_dir()
    with serving(tmp_path, studies, bundles, python) as server:
        assert not scratch.exists()
        _scratch(tmpdir, server.process.pid)
    assert _left(tmpdir) == []
