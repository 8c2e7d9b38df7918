"""A real Orthanc PACS (with its DICOMweb plugin) for the tests, started and stopped by the tests themselves.

``.ci/orthanc.sh`` installs Debian's ``orthanc`` and ``orthanc-dicomweb``; the packages' own system service is never
used. :func:`running_orthanc` starts a private Orthanc process on a free port of 127.0.0.1 with a throwaway storage
folder, the DICOMweb plugin under ``/dicom-web/``, no authentication and no remote access, waits (bounded) until it
answers, and stops it afterwards. The session fixture ``orthanc`` (registered in ``tests/conftest.py``) gives every
test session (every xdist worker) its own server::

    def test_something(orthanc):
        orthanc.upload(path_to_dicom_file)
        studies = orthanc.get_json("/dicom-web/studies")

Without the Orthanc binary the fixture skips with the install command; under CI (``CI=true``) it fails instead.
Environment variables: ``SATGATE_ORTHANC`` (the binary; default ``Orthanc`` on PATH or ``/usr/sbin/Orthanc``),
``SATGATE_ORTHANC_DICOMWEB`` (the plugin; default Debian's ``/usr/share/orthanc/plugins/libOrthancDicomWeb.so``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DICOMWEB_PLUGIN",
    "START_TIMEOUT",
    "OrthancServer",
    "find_orthanc",
    "free_port",
    "running_orthanc",
]

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
START_TIMEOUT = 60.0  # seconds; Orthanc answers in about 4 s on a quiet machine
STOP_TIMEOUT = 30.0
INSTALL_HINT = "install it with `bash .ci/orthanc.sh` (Debian packages orthanc and orthanc-dicomweb)"


def find_orthanc() -> tuple[Path | None, Path | None, str]:
    """The Orthanc binary and DICOMweb plugin, or None for a missing one with the reason.

    Returns:
        (binary or None, plugin or None, reason naming what is missing; empty when both exist).
    """
    explicit = os.environ.get("SATGATE_ORTHANC")
    found = explicit or shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if os.path.isfile("/usr/sbin/Orthanc") else "")
    binary = Path(found) if found and os.access(found, os.X_OK) else None
    plugin = Path(os.environ.get("SATGATE_ORTHANC_DICOMWEB") or DICOMWEB_PLUGIN)
    plugin = plugin if plugin.is_file() else None
    reasons = []
    if binary is None:
        reasons.append(f"the Orthanc binary ({explicit or 'Orthanc on PATH or /usr/sbin/Orthanc'}) is missing")
    if plugin is None:
        reasons.append("the Orthanc DICOMweb plugin is missing")
    return binary, plugin, "; ".join(reasons) + (f": {INSTALL_HINT}" if reasons else "")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OrthancServer:
    """A running private Orthanc.

    Attributes:
        url: ``http://127.0.0.1:PORT`` (Orthanc's REST API).
        dicomweb: ``http://127.0.0.1:PORT/dicom-web`` (QIDO-RS, WADO-RS, STOW-RS).
        port: the HTTP port.
        dicom_port: the DICOM (DIMSE) port, or None when the DICOM server is disabled.
        storage: the throwaway storage folder.
        log: Orthanc's log file.
        process: the Orthanc process.
    """

    url: str
    dicomweb: str
    port: int
    dicom_port: int | None
    storage: Path
    log: Path
    process: subprocess.Popen

    def request(
        self, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        """One HTTP request to ``url + path``; returns (status, body) also for HTTP errors."""
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_json(self, path: str) -> object:
        """GET ``path`` (REST or ``/dicom-web/...``) as JSON; raises AssertionError on a non-2xx answer."""
        status, body = self.request(path, headers={"Accept": "application/dicom+json, application/json"})
        assert 200 <= status < 300, f"GET {path} -> {status}: {body[:500]!r}"
        return json.loads(body) if body else None

    def upload(self, path: str | os.PathLike) -> dict:
        """Store one DICOM file (``POST /instances``); returns Orthanc's answer (``ID``, ``ParentStudy``...)."""
        status, body = self.request(
            "/instances", "POST", Path(path).read_bytes(), {"Content-Type": "application/dicom"}
        )
        assert status == 200, f"Orthanc refused {path}: {status} {body[:500]!r}"
        return json.loads(body)

    def clear(self) -> None:
        """Delete every patient (and so every study, series and instance) stored in this server."""
        for patient in self.get_json("/patients") or []:
            status, body = self.request(f"/patients/{patient}", "DELETE")
            assert status == 200, f"DELETE /patients/{patient} -> {status}: {body[:500]!r}"


def _config(storage: Path, port: int, dicom_port: int | None, plugin: Path) -> dict:
    return {
        "Name": "satgate-test",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": port,
        "RemoteAccessAllowed": False,  # Orthanc has no HTTP bind address: it answers loopback clients only
        "AuthenticationEnabled": False,
        "DicomServerEnabled": dicom_port is not None,
        "DicomPort": dicom_port or 4242,
        "DicomAet": "SATGATETEST",
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
        "StableAge": 1,
    }


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def running_orthanc(folder: Path, dicom: bool = False, timeout: float = START_TIMEOUT) -> Iterator[OrthancServer]:
    """Start a private Orthanc in ``folder`` (storage, configuration, log), yield it, stop it.

    Args:
        folder: an empty throwaway folder.
        dicom: also enable the DICOM (DIMSE) server on a free port of this computer.
        timeout: seconds to wait for ``GET /system`` to answer.

    Raises:
        FileNotFoundError: the Orthanc binary or the DICOMweb plugin is missing.
        RuntimeError: it exited or did not answer within ``timeout`` (with the end of its log).
    """
    binary, plugin, reason = find_orthanc()
    if binary is None or plugin is None:
        raise FileNotFoundError(reason)
    storage = folder / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    log = folder / "orthanc.log"
    for attempt in range(3):  # a free port can be taken by another process before Orthanc binds it
        port = free_port()
        dicom_port = free_port() if dicom else None
        config = folder / "orthanc.json"
        config.write_text(json.dumps(_config(storage, port, dicom_port, plugin), indent=1))
        with open(log, "a") as out:
            proc = subprocess.Popen([str(binary), str(config)], stdout=out, stderr=subprocess.STDOUT, cwd=folder)
        server = OrthancServer(
            url=f"http://127.0.0.1:{port}",
            dicomweb=f"http://127.0.0.1:{port}/dicom-web",
            port=port,
            dicom_port=dicom_port,
            storage=storage,
            log=log,
            process=proc,
        )
        deadline = time.monotonic() + timeout
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = server.request("/system")[0] == 200
            except OSError:
                ready = False
            if ready:
                break
            time.sleep(0.2)
        if ready:
            break
        _stop(proc)
        if attempt == 2 or time.monotonic() >= deadline:
            raise RuntimeError(
                f"Orthanc ({binary}) did not answer on {server.url} within {timeout:.0f} s "
                f"(exit status {proc.returncode}); end of {log}:\n{log.read_text()[-3000:]}"
            )
    try:
        yield server
    finally:
        _stop(proc)
