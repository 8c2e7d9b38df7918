"""The grid's cells in parallel: local worker processes (``--jobs``) and a real local Ray cluster (``--ray``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from satgate_monai.experiments import cli
from tests.bundles.helpers import python_env
from tests.conftest import skip_or_fail
from tests.experiments.test_pipeline import _args
from tests.experiments.tiny_data import write_tiny_skin


def _workers(out: Path) -> dict[str, str]:
    return {c["key"]: c["worker"] for c in json.loads((out / "results.json").read_text())["cells"]}


def _mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*/cell.json")}


@pytest.mark.slow
def test_local_jobs_run_cells_in_worker_processes_and_resume(tmp_path):
    data = write_tiny_skin(tmp_path / "data", n_train=4, n_val=1, n_test=3, size=32)
    out = tmp_path / "run"
    assert cli.main(_args(data, out, "--jobs", "2")) == 0
    workers = _workers(out)
    assert sorted(workers) == ["unet-org-s0", "unet-sat-s0"]
    assert all(int(w.rsplit(":", 1)[1]) != os.getpid() for w in workers.values())  # not in this process
    assert "## Table 1" in (out / "report.md").read_text()
    before = _mtimes(out)
    assert cli.main(_args(data, out, "--jobs", "2")) == 0  # everything cached: nothing runs again
    assert _mtimes(out) == before


@pytest.mark.slow
def test_failed_cells_are_named_and_the_others_kept(tmp_path, capsys):
    data = write_tiny_skin(tmp_path / "data", n_train=4, n_val=1, n_test=3, size=32)
    args = _args(data, tmp_path / "run", "--jobs", "2")
    args[args.index("--network-args") + 1] = 'unet={"channels": [4]}'  # a U-Net needs two levels: every cell fails
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "2 cell(s) failed" in err and "unet-org-s0: ValueError" in err and "Traceback" not in err


def test_executor_options_are_checked(tmp_path, capsys):
    data = write_tiny_skin(tmp_path / "data", n_train=2, n_val=1, n_test=1, size=32)
    for extra, message in ((["--jobs", "2", "--devices", "cpu"], "give one per job"),
                           (["--ray", "127.0.0.1:1", "--jobs", "2"], "drop --jobs"),
                           (["--gpus-per-cell", "1"], "--ray only")):
        assert cli.main(_args(data, tmp_path / "run", *extra)) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(_args(data, tmp_path / "run", "--jobs", "0"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A real Ray cluster on 127.0.0.1: a head node with two CPUs (two worker processes at once), stopped after."""
    try:
        import ray  # noqa: F401
    except ImportError:
        skip_or_fail("ray is not installed (the 'cluster' extra)")
    ray_cli = Path(sys.executable).parent / "ray"
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 characters
    env = {**python_env(), "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    log = open(Path(temp) / "head.log", "wb")
    cmd = [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
           "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
           f"--ray-client-server-port={_free_port()}", "--object-store-memory=200000000", f"--temp-dir={temp}"]
    head = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if head.poll() is not None:
                raise AssertionError(f"ray start exited {head.returncode}: {(Path(temp) / 'head.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("the Ray head did not open its port within 120 s") from None
                time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(head.pid, sig)  # the head and every Ray process it started (its own session)
            except ProcessLookupError:
                break
            try:
                head.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        log.close()


@pytest.mark.slow
def test_two_cell_grid_on_a_local_ray_cluster(ray_cluster, tmp_path):
    data = write_tiny_skin(tmp_path / "data", n_train=4, n_val=1, n_test=3, size=32)
    out = tmp_path / "run"
    start = time.perf_counter()
    assert cli.main(_args(data, out, "--ray", ray_cluster)) == 0
    first_run = time.perf_counter() - start
    workers = _workers(out)
    assert sorted(workers) == ["unet-org-s0", "unet-sat-s0"]
    assert all(int(w.rsplit(":", 1)[1]) != os.getpid() for w in workers.values())  # ran in Ray worker processes
    results = json.loads((out / "results.json").read_text())
    assert {(v["network"], v["gate"]) for v in results["variants"]} == {("unet", "org"), ("unet", "sat")}
    assert "## Table 1" in (out / "report.md").read_text()

    # resumable: a rerun submits nothing; a lost cell is the only one run again
    before = _mtimes(out)
    assert cli.main(_args(data, out, "--ray", ray_cluster)) == 0
    assert _mtimes(out) == before
    (out / "cells" / "unet-sat-s0" / "cell.json").unlink()
    assert cli.main(_args(data, out, "--ray", ray_cluster)) == 0
    after = _mtimes(out)
    assert after["unet-org-s0"] == before["unet-org-s0"] and after["unet-sat-s0"] > before["unet-sat-s0"]
    print(f"two-cell grid on the Ray cluster: {first_run:.1f} s")


def test_unreachable_ray_cluster_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray")
    data = write_tiny_skin(tmp_path / "data", n_train=2, n_val=1, n_test=1, size=32)
    assert cli.main(_args(data, tmp_path / "run", "--ray", f"127.0.0.1:{_free_port()}")) == 2
    err = capsys.readouterr().err
    assert "cannot connect to the Ray cluster" in err and "Traceback" not in err


def _start_method() -> str:
    import multiprocessing as mp

    return mp.get_start_method()


def test_local_workers_start_their_own_children_the_platform_way():
    """A spawned worker inherits "spawn"; the bundle's DataLoader would then spawn (import torch and MONAI anew)
    its workers every epoch. The local workers restore the platform's default (fork on Linux)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from satgate_monai.experiments.executors import _init_local_worker

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_local_worker, initargs=(1, None)) as pool:
        assert pool.submit(_start_method).result() == mp.get_all_start_methods()[0]
