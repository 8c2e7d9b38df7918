"""benchmarks/gpu.sh: valid bash, every step's script accepts its arguments, and its CPU quick path writes results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu.sh"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}


def test_gpu_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_dry_run_checks_every_step():
    proc = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--quick", "--dry-run"], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert [line.split()[3] for line in lines] == ["benchmarks/networks.py", "benchmarks/capacity.py",
                                                   "benchmarks/bundle_epoch.py", "benchmarks/join.py"]
    assert all("--quick" in line for line in lines)
    assert all("--device cpu" in line for line in lines if "capacity.py" not in line)
    assert "--device meta" in lines[1]  # a CPU counts the capacity on the meta device
    assert "--amp" in lines[0]
    assert sum(int(line.split()[1]) for line in lines) <= 600  # the GPU run fits 10 minutes


def test_unknown_argument_is_refused():
    proc = subprocess.run(["bash", str(SCRIPT), "--gpu"], env=_env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown argument --gpu" in proc.stderr


@pytest.mark.slow
def test_cpu_quick_run_writes_one_results_file(tmp_path):
    out = tmp_path / "results.md"
    proc = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)], env=_env(),
                          capture_output=True, text=True, timeout=1800)
    text = out.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert text.count("## `python benchmarks/") == 4 and "step failed" not in text
    for expected in ("SAT/ORG train step", "SAT/DynUNet", "SAT/ORG voxels per step", "One epoch of each bundle",
                     "SAT split"):
        assert expected in text
    assert not list(tmp_path.glob("results.md.tmp*"))
