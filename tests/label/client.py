"""Test helpers: start ``python -m satgate_monai.label serve`` and talk to it with MONAI Label's own client.

:func:`serving` starts the real server on a free port of 127.0.0.1 (bounded wait for ``/info/``) and stops it by PID;
:class:`LabelClient` runs ``tests/label/client_driver.py`` in the MONAI Label environment, where
``monailabel.client.MONAILabelClient`` lives, and forwards calls to it; :func:`offline_run` runs the reference a served
label must equal (:func:`reference_command`): for a 3D bundle the inference CLI, whose case engine the app shares
(:mod:`satgate_monai.bundle.engine`), for a 2D bundle (which keeps ``Invertd``) the bundle's own
``monai.bundle run`` of ``inference.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from satgate_monai.label.environment import ENV_VAR
from tests.conftest import REPO_ROOT, cached_env_python
from tests.orthanc import free_port

__all__ = ["LabelClient", "Served", "label_python", "offline_run", "project_env", "reference_command", "serving",
           "stop"]

START_TIMEOUT = 300.0


def label_python() -> Path:
    """The MONAI Label environment's python (``SATGATE_MONAILABEL_PYTHON``, else built/reused by the CI script)."""
    return cached_env_python(ENV_VAR, "monailabel_env.sh", "MONAI Label")


def project_env() -> dict[str, str]:
    """This checkout first on PYTHONPATH, one thread per process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    return env


class Served:
    """A running server: ``url``, ``log`` (its output), ``process``, ``start_s`` (seconds to the first /info/)."""

    def __init__(self, url: str, log: Path, process: subprocess.Popen, start_s: float) -> None:
        self.url, self.log, self.process, self.start_s = url, log, process, start_s

    def get(self, path: str, timeout: float = 60.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def server_output(terminal: Path, app_dir: Path) -> str:
    """What ``serve`` printed (``terminal``, its captured stdout and stderr) and then its log file, which holds the
    server's own output (``APP_DIR/logs/serve.log``)."""
    log = app_dir / "logs" / "serve.log"
    return terminal.read_text() + (log.read_text() if log.is_file() else "")


@contextlib.contextmanager
def serving(
    tmp: Path, studies: str | Path, bundles: list[Path], python: Path, extra: list[str] = ()
) -> Iterator[Served]:
    """Run ``python -m satgate_monai.label serve`` on 127.0.0.1 until the block ends; fail with its log if it dies."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "satgate_monai.label", "serve", "--studies", str(studies), "--port", str(port)]
    cmd += ["--models", ",".join(map(str, bundles)), "--python", str(python), "--app-dir", str(tmp / "app"), *extra]
    log = tmp / "server.log"
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp, env=project_env())
    try:
        served = Served(url, log, proc, 0.0)
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{server_output(log, tmp / 'app')[-4000:]}")
            if time.perf_counter() - t0 > START_TIMEOUT:
                pytest.fail(f"no /info/ after {START_TIMEOUT} s:\n{server_output(log, tmp / 'app')[-4000:]}")
            try:
                if served.get("/info/", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        served.start_s = time.perf_counter() - t0
        yield served
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM a process that is still running, SIGKILL it after 30 s; wait for it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


class LabelClient:
    """``MONAILabelClient`` in the MONAI Label environment, one driver process per client.

    ``call(method, *args, **kwargs)`` returns the client's result; ``error(...)`` expects a refusal and returns
    ``(HTTP status, message)``.
    """

    def __init__(self, python: Path, url: str, out_dir: Path) -> None:
        cmd = [str(python), "-m", "tests.label.client_driver", url, str(out_dir)]
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=project_env(), cwd=REPO_ROOT
        )

    def _send(self, method: str, args: tuple, kwargs: dict) -> dict:
        self.process.stdin.write(json.dumps({"method": method, "args": list(args), "kwargs": kwargs}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the client driver exited ({self.process.poll()}) during {method}"
        return json.loads(line)

    def call(self, method: str, *args, **kwargs):
        answer = self._send(method, args, kwargs)
        assert answer["ok"], f"{method}{args}: HTTP {answer['status']}: {answer['message'][:2000]}"
        return answer["result"]

    def error(self, method: str, *args, **kwargs) -> tuple[int, str]:
        answer = self._send(method, args, kwargs)
        assert not answer["ok"], f"{method}{args} was accepted: {str(answer['result'])[:500]}"
        return answer["status"], answer["message"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def reference_command(python: Path, bundle: Path, image: Path, out: Path) -> list[str]:
    """The offline run whose label the app must serve for ``image`` (``out/<case>_seg<ext>`` either way, same
    ``models/model.pt``): a 3D bundle through the inference CLI (this environment's python), a 2D bundle through
    ``python -m monai.bundle run`` of its ``inference.json`` (``python``: the MONAI Label environment's)."""
    from satgate_monai.infer.bundle import input_spatial_dims

    if input_spatial_dims(bundle) == 3:
        return [sys.executable, "-m", "satgate_monai.infer", "--bundle", str(bundle), "--input", str(image), "--out",
                str(out), "--format", "nifti", "--device", "cpu", "--threads", "1", "--no-progress"]
    cmd = [str(python), "-m", "monai.bundle", "run", "--config_file", str(bundle / "configs" / "inference.json")]
    cmd += ["--bundle_root", str(bundle), "--output_dir", str(out), "--num_workers", "0"]
    return cmd + ["--dataset#data", json.dumps([{"image": str(image)}])]


def offline_run(python: Path, bundle: Path, image: Path, out: Path) -> subprocess.Popen:
    """Start the offline reference run (:func:`reference_command`) on one image with the bundle's models/model.pt."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = reference_command(python, bundle, image, out)
    log = open(out / "offline.log", "w")
    return subprocess.Popen(cmd, env=project_env(), stdout=log, stderr=subprocess.STDOUT, cwd=out)
