"""The nnU-Net environment for the tests: its python (``SATGATE_NNUNET_PYTHON``, else built or reused by
``.ci/nnunet_env.sh``, cached outside the repository) and the environment variables nnU-Net's commands read."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT, cached_env_python

__all__ = ["ENV_VAR", "nnunet_python", "nnunet_environ", "run_checked"]

ENV_VAR = "SATGATE_NNUNET_PYTHON"


def nnunet_python() -> Path:
    """The nnU-Net environment's python; nnU-Net's commands (``nnUNetv2_*``) lie beside it."""
    return cached_env_python(ENV_VAR, "nnunet_env.sh", "nnU-Net")


def nnunet_environ(root: Path) -> dict[str, str]:
    """nnU-Net's three folders under ``root``, the checkout on PYTHONPATH (nnU-Net imports SATPlainConvUNet from it),
    the short trainers on ``nnUNet_extTrainer``, one thread and no augmentation workers."""
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]),
        "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "preprocessed"),
        "nnUNet_results": str(root / "results"),
        "nnUNet_extTrainer": str(REPO_ROOT / "satgate_monai" / "nnunet" / "trainers"),
        "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1", "nnUNet_compile": "false",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    })
    return env


def run_checked(cmd: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """Run ``cmd``; on failure fail the test with the command and its output's tail. Returns stdout."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc.stdout
