"""``samples``: idempotent, extracts only what is missing, fails clearly; and the real files it provides."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
import SimpleITK as sitk

from data_prep.commands import samples
from tests.sample_data import pyradiomics_samples  # noqa: F401 - pytest fixture


def _fake_pip(calls: list[list[str]], missing_member: str | None = None):
    def pip(args: list[str]) -> subprocess.CompletedProcess:
        calls.append(args)
        if args[0] == "download":
            dest = Path(args[args.index("-d") + 1])
            with tarfile.open(dest / f"pyradiomics-{samples.PYRADIOMICS_VERSION}.tar.gz", "w:gz") as tar:
                for name in samples.SAMPLE_FILES:
                    if name == missing_member:
                        continue
                    data = f"fake {name}".encode()
                    info = tarfile.TarInfo(f"pyradiomics-{samples.PYRADIOMICS_VERSION}/data/{name}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        return subprocess.CompletedProcess(args, 0, "", "")

    return pip


def test_fetch_extracts_missing_only_and_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(samples, "_pip", _fake_pip(calls))
    monkeypatch.setattr(samples, "_missing_build_deps", list)
    (tmp_path / "lung1_image.nrrd").write_bytes(b"already here")
    samples.fetch_samples(tmp_path)
    assert (tmp_path / "lung1_image.nrrd").read_bytes() == b"already here"  # kept
    assert (tmp_path / "lung2_label.nrrd").read_bytes() == b"fake lung2_label.nrrd"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(samples.SAMPLE_FILES)  # no temporaries left
    download = next(c for c in calls if c[0] == "download")
    assert {"--no-deps", "--no-build-isolation", f"pyradiomics=={samples.PYRADIOMICS_VERSION}"} <= set(download)
    calls.clear()
    samples.fetch_samples(tmp_path)
    assert calls == []  # complete: pip not run again


def test_fetch_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(samples, "_pip", _fake_pip(calls, missing_member="brain2_label.nrrd"))
    monkeypatch.setattr(samples, "_missing_build_deps", list)
    with pytest.raises(RuntimeError, match="brain2_label.nrrd"):
        samples.fetch_samples(tmp_path)
    monkeypatch.setattr(samples, "_missing_build_deps", lambda: ["versioneer"])
    with pytest.raises(RuntimeError, match="versioneer"):
        samples.fetch_samples(tmp_path / "x", install_build_deps=False)


def test_real_samples_are_ct_and_mri_with_labels(pyradiomics_samples: Path) -> None:  # noqa: F811 - fixture
    for name in ("lung1", "lung2", "brain1", "breast1"):
        r = sitk.ImageFileReader()
        r.SetFileName(str(pyradiomics_samples / f"{name}_image.nrrd"))
        r.ReadImageInformation()
        lab = sitk.ImageFileReader()
        lab.SetFileName(str(pyradiomics_samples / f"{name}_label.nrrd"))
        lab.ReadImageInformation()
        assert r.GetDimension() == 3 and r.GetSize() == lab.GetSize()
    assert r.GetSize()[2] >= 1
