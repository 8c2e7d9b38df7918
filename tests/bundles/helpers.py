"""Shared helpers of the bundle tests: bundle paths, tiny overrides and a subprocess runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from satgate_monai.resources import bundle_names, bundles_dir
from satgate_monai.tasks import TASKS, Task
from tests.conftest import REPO_ROOT

__all__ = ["BUNDLES", "BUNDLE_DIR", "TINY", "config_path", "load_json", "bundle_run", "run_cli", "python_env",
           "task_of", "liver_demo_data"]

BUNDLE_DIR = bundles_dir()
BUNDLES = tuple(bundle_names())  # every shipped bundle folder


def task_of(bundle: str) -> Task:
    """The registered task a bundle segments (its configs' ``task`` id)."""
    return TASKS[json.loads((BUNDLE_DIR / bundle / "configs" / "train.json").read_text())["task"]]


# overrides that shrink each bundle so a one-epoch train -> evaluate -> inference takes seconds on a CPU
_TINY_NET = {"network_def#channels": [4, 8, 16], "network_def#strides": [2, 2]}
TINY: dict[str, dict[str, Any]] = {
    b: {"roi_size": [16, 16, 16], **_TINY_NET} if task_of(b).data.spatial_dims == 3
    else {"image_size": [32, 32], **_TINY_NET, "batch_size": 2}
    for b in BUNDLES
}
COMMON = {"num_workers": 0, "device": "cpu"}


def config_path(bundle: str, name: str) -> Path:
    return BUNDLE_DIR / bundle / "configs" / f"{name}.json"


def load_json(bundle: str, name: str) -> dict:
    return json.loads(config_path(bundle, name).read_text())


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _fmt(v: Any) -> str:
    return repr(v) if not isinstance(v, str) else v  # fire parses Python literals


def bundle_run(bundle: str, configs: list[str], overrides: dict[str, Any], timeout: float = 300, **kw: Any):
    """``python -m monai.bundle run`` of the bundle's configs with overrides; returns the CompletedProcess."""
    files = [str(config_path(bundle, c)) for c in configs]
    config_arg = files[0] if len(files) == 1 else "[" + ",".join(f"'{f}'" for f in files) + "]"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_arg,
           "--meta_file", str(config_path(bundle, "metadata")),
           "--logging_file", str(BUNDLE_DIR / bundle / "configs" / "logging.conf")]
    for k, v in {**COMMON, **overrides}.items():
        cmd += [f"--{k}", _fmt(v)]
    return run_cli(cmd, timeout=timeout, **kw)


def run_cli(cmd: list[str], timeout: float = 300, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=python_env(), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc


def liver_demo_data(root: Path) -> Path:
    """The liver demo phantoms (synthetic) written under ``root/raw`` and imported at 2 mm into ``root/prep``:
    3 training, 1 validation, 1 test case. Returns ``root/prep``."""
    for cmd in (["demo", "--task", "liver", "--out", str(root / "raw"), "--cases", "5", "--test-cases", "0",
                 "--shape", "48", "48", "24"],
                ["import", "--dataset", "msd-liver", "--src", str(root / "raw"), "--out", str(root / "prep")]):
        subprocess.run([sys.executable, "-m", "data_prep", *cmd], check=True, capture_output=True, env=python_env(),
                       timeout=300)
    return root / "prep"
