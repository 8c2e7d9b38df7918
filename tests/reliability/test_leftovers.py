"""No patient data left behind: the inference CLI on a study from a real Orthanc, stopped by a signal at the worst
moment (the whole study retrieved into its scratch folder, the case not finished), then the temporary folder listed.

Each test runs ``python -m satgate_monai.infer`` as a real process with a private ``TMPDIR``, waits until the
retrieval is complete, freezes the process (SIGSTOP) to check that it is caught in that moment, sends the signal and
lets it go on (SIGCONT). SIGINT, SIGTERM and SIGHUP must leave an empty temporary folder and exit 130, 143 and 129 with
one line; SIGKILL leaves the folder, and the next start of the CLI sweeps it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
import torch

from data_prep.scratch import MARKER, private_folder, sweep
from tests.conftest import REPO_ROOT
from tests.infer.helpers import set_args, write_ct_series
from tests.reliability.faults import ct_image

LIVER = REPO_ROOT / "bundles" / "liver_ct_sat"
OVERRIDES = ['network_def={"_target_": "tests.infer.helpers.ThresholdNet"}', "roi_size=[16,16,16]",
             "inferer#sw_batch_size=1"]
WAIT_S = 180.0


@pytest.fixture(scope="module")
def study(orthanc, tmp_path_factory) -> tuple[str, int]:
    """A CT series of 40 slices in the session's Orthanc: (StudyInstanceUID, instances)."""
    folder = tmp_path_factory.mktemp("leftover-study")
    write_ct_series(ct_image(size=(96, 96, 40), seed=3), folder, patient_id="LEFTOVER")
    files = sorted(folder.iterdir())
    for f in files:
        orthanc.upload(f)
    return str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID), len(files)


def _command(orthanc, study_uid: str, out: Path, ckpt: Path) -> list[str]:
    address = f"dicomweb://127.0.0.1:{orthanc.port}/dicom-web?study={study_uid}"
    return [sys.executable, "-m", "satgate_monai.infer", "--bundle", str(LIVER), "--input", address, "--out",
            str(out), "--ckpt", str(ckpt), "--device", "cpu", "--no-progress", "--threads", "1",
            *set_args(OVERRIDES)]


def _env(tmpdir: Path) -> dict[str, str]:
    env = dict(os.environ, TMPDIR=str(tmpdir), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _stop_after_retrieval(proc: subprocess.Popen, tmpdir: Path, n: int) -> Path:
    """Wait until the scratch folder holds the whole study, freeze the process there; return the folder."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < WAIT_S:
        assert proc.poll() is None, f"the CLI ended ({proc.returncode}) before the retrieval was seen"
        for scratch in tmpdir.glob("satgate-dicomweb-*"):
            if len(list(scratch.rglob("*.dcm"))) >= n:
                proc.send_signal(signal.SIGSTOP)
                if scratch.is_dir() and len(list(scratch.rglob("*.dcm"))) >= n:
                    return scratch
                proc.send_signal(signal.SIGCONT)
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no complete retrieval in {tmpdir} within {WAIT_S} s")


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    p = tmp_path / "threshold.pt"
    torch.save({"model": {"level": torch.tensor(0.3)}}, p)
    return p


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, line", [(signal.SIGTERM, 143, "terminated by SIGTERM"),
                                             (signal.SIGHUP, 129, "terminated by SIGHUP"),
                                             (signal.SIGINT, 130, "interrupted")])
def test_a_signal_after_retrieval_leaves_no_patient_file(orthanc, study, ckpt, tmp_path, sig, code, line):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen(_command(orthanc, study[0], tmp_path / "out", ckpt), env=_env(tmpdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scratch = _stop_after_retrieval(proc, tmpdir, study[1])
    assert (scratch.stat().st_mode & 0o777) == 0o700
    assert ((scratch / MARKER).stat().st_mode & 0o777) == 0o600
    assert (scratch / MARKER).read_text().split()[0] == str(proc.pid)
    proc.send_signal(sig)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == code, err[-2000:]
    assert err.strip().splitlines()[-1] == line and "Traceback" not in err
    assert _listing(tmpdir) == []


@pytest.mark.slow
def test_after_a_sigkill_the_next_start_sweeps(orthanc, study, ckpt, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen(_command(orthanc, study[0], tmp_path / "out", ckpt), env=_env(tmpdir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scratch = _stop_after_retrieval(proc, tmpdir, study[1])
    proc.kill()
    proc.wait(timeout=60)
    assert len(list(scratch.rglob("*.dcm"))) == study[1]  # what a power loss leaves
    # the next start (here one that fails at once: no such input) removes it before anything else
    again = subprocess.run([sys.executable, "-m", "satgate_monai.infer", "--bundle", str(LIVER), "--input",
                            str(tmp_path / "missing"), "--out", str(tmp_path / "o2")], env=_env(tmpdir),
                           capture_output=True, text=True, timeout=WAIT_S)
    assert again.returncode == 2, again.stderr
    assert _listing(tmpdir) == []


def test_sweep_spares_live_owners_and_other_folders(tmp_path):
    live = tmp_path / "satgate-upload-1-live"
    with private_folder("upload", root=tmp_path) as mine:
        assert (mine.stat().st_mode & 0o777) == 0o700
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        stale = tmp_path / f"satgate-dicomweb-{dead.pid}-abc"
        stale.mkdir()
        (stale / MARKER).write_text(f"{dead.pid} 1\n")
        (stale / "x.dcm").write_bytes(b"patient")
        live.mkdir()
        (live / MARKER).write_text(f"{os.getpid()} \n")
        other = tmp_path / "satgate-notes"  # no owner: never touched
        other.mkdir()
        assert sweep(tmp_path) == [stale]
        assert mine.is_dir() and live.is_dir() and other.is_dir()
    assert not mine.exists()
