"""Resume after a killed training, and multi-GPU (DDP) training on CPU with gloo and two processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.bundles.helpers import BUNDLE_DIR, COMMON, TINY, config_path, python_env
from tests.bundles.synthetic import make_dataset

BUNDLE = "skin_lesion_sat"


def _cmd(root, data, epochs: int) -> list[str]:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(config_path(BUNDLE, "train")),
           "--meta_file", str(config_path(BUNDLE, "metadata")),
           "--logging_file", str(BUNDLE_DIR / BUNDLE / "configs" / "logging.conf"),
           "--bundle_root", str(root), "--dataset_dir", str(data), "--epochs", str(epochs)]
    for k, v in {**COMMON, **TINY[BUNDLE]}.items():
        cmd += [f"--{k}", repr(v) if not isinstance(v, str) else v]
    return cmd


def _last_epoch(path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["epoch"])
    except (FileNotFoundError, EOFError, RuntimeError, KeyError):
        return 0


@pytest.mark.slow
def test_resume_after_kill(tmp_path):
    data = make_dataset(tmp_path / "data", "skin", n_train=2, n_val=1, n_test=1, size=32)
    root = tmp_path / "bundle"
    last = root / "models" / "last.pt"
    proc = subprocess.Popen(_cmd(root, data, 500), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=python_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while _last_epoch(last) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the training ended before it could be killed"
        assert _last_epoch(last) >= 2, "no resumable checkpoint within the time limit"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group this test started (kill -9: no clean-up at all)
        proc.wait(timeout=60)
    state = torch.load(last, weights_only=True)  # written atomically: never truncated by the kill
    killed_at = int(state["epoch"])
    assert killed_at >= 2 and not state["completed"]
    assert (root / "models" / "model.pt").is_file()

    target = killed_at + 2
    rerun = subprocess.run(_cmd(root, data, target), capture_output=True, text=True, env=python_env(), timeout=300)
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, out[-4000:]
    assert f"Resumed training from {last} at epoch {killed_at} of {target}" in out
    assert f"Epoch: {killed_at + 1}/{target}" in out and f"Epoch: {target}/{target}" in out
    assert "Epoch: 1/" not in out  # no epoch trained again from scratch
    final = torch.load(last, weights_only=True)
    assert final["epoch"] == target and final["completed"]


@pytest.mark.slow
def test_multi_gpu_train_ddp_gloo(tmp_path):
    data = make_dataset(tmp_path / "data", "skin", n_train=4, n_val=2, n_test=1, size=32)
    root = tmp_path / "bundle"
    files = f"['{config_path(BUNDLE, 'train')}','{config_path(BUNDLE, 'multi_gpu_train')}']"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "monai.bundle", "run", "--config_file", files, "--meta_file", str(config_path(BUNDLE, "metadata")),
           "--logging_file", str(BUNDLE_DIR / BUNDLE / "configs" / "logging.conf"),
           "--bundle_root", str(root), "--dataset_dir", str(data), "--epochs", "1"]
    for k, v in {**COMMON, **TINY[BUNDLE]}.items():
        if k != "device":  # the overlay picks cuda:<rank> or cpu
            cmd += [f"--{k}", repr(v) if not isinstance(v, str) else v]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=python_env(), timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "val_mean_dice" in out
    state = torch.load(root / "models" / "model.pt", weights_only=True)
    assert state and not any(k.startswith("module.") for k in state), "DDP wrapper leaked into model.pt"
    last = torch.load(root / "models" / "last.pt", weights_only=True)
    assert last["completed"] and last["epoch"] == 1

