"""The package as installed: bundles shipped in the wheel, ``python -m satgate_monai bundle-path``, dependency pins."""

from __future__ import annotations

import configparser
import fnmatch
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from satgate_monai.__main__ import main
from satgate_monai.resources import bundle_names, bundle_path, bundles_dir
from tests.conftest import REPO_ROOT

SETUP_CFG = REPO_ROOT / "setup.cfg"


def _package_data_patterns() -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    return [p.strip() for p in cfg["options.package_data"]["satgate_monai.bundles"].split(",")]


def _bundle_files(root: Path) -> set[str]:
    """Every file of the bundles a user needs (what the demo copies: LICENSE, configs, docs), relative to ``root``."""
    return {p.relative_to(root).as_posix() for b in bundle_names() for part in ("LICENSE", "configs", "docs")
            for p in ([root / b / part] if part == "LICENSE" else sorted((root / b / part).rglob("*"))) if p.is_file()}


def test_bundle_path_command(capsys):
    assert main(["bundle-path", "liver_ct_sat"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == bundle_path("liver_ct_sat") == REPO_ROOT.resolve() / "bundles" / "liver_ct_sat"
    assert main(["bundle-path"]) == 0 and Path(capsys.readouterr().out.strip()) == bundles_dir()
    assert main(["bundle-path", "no_such_bundle"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no bundle named 'no_such_bundle'" in err and "liver_ct_sat" in err


def test_package_data_covers_every_bundle_file():
    """The package_data patterns of ``satgate_monai.bundles`` (the top-level bundles/ folder) match every bundle file
    in the checkout, and the bundles are reached without a link (an sdist or a checkout without links keeps them)."""
    assert not (REPO_ROOT / "satgate_monai" / "bundles").exists(), "satgate_monai/bundles must not exist in a checkout"
    assert bundles_dir() == REPO_ROOT.resolve() / "bundles"
    assert not [p for p in bundles_dir().rglob("*") if p.is_symlink()]
    patterns = _package_data_patterns()
    missed = [f for f in _bundle_files(bundles_dir()) if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not missed, f"setup.cfg package_data does not ship {missed}"


def _build(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """Build the ``"wheel"`` or ``"sdist"`` of a clean copy of the checkout; returns the file and the build output."""
    src = tmp_path / "src"
    shutil.copytree(REPO_ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "runs"))
    dist = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    hook = "build_wheel" if kind == "wheel" else "build_sdist"
    proc = subprocess.run([sys.executable, "-c", f"from setuptools import build_meta as b; b.{hook}({str(dist)!r})"],
                          cwd=src, env=env, timeout=600, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = dist.glob("satgate_monai-*.whl" if kind == "wheel" else "satgate_monai-*.tar.gz")
    return built, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_wheel_and_sdist_ship_the_bundles_and_find_them_outside_the_repository(tmp_path, kind):
    """Build the wheel or the sdist with no "Package would be ignored" warning, install it (not editable) into a
    folder and ask it for a bundle from another folder."""
    built, log = _build(kind, tmp_path)
    assert "would be ignored" not in log and "absent from the `packages`" not in log, log[-3000:]
    if kind == "wheel":
        names = set(zipfile.ZipFile(built).namelist())
        shipped = {n[len("satgate_monai/bundles/"):] for n in names if n.startswith("satgate_monai/bundles/")}
        assert shipped == _bundle_files(bundles_dir()), "the wheel's bundles differ from the checkout's"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target",
                           str(site), str(built)], env=env, timeout=600, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "would be ignored" not in proc.stdout + proc.stderr
    assert _bundle_files(site / "satgate_monai" / "bundles") == _bundle_files(bundles_dir())
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = subprocess.run([sys.executable, "-m", "satgate_monai", "bundle-path", "skin_lesion_sat"], cwd=outside,
                          env={**env, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Path(proc.stdout.strip()) == (site / "satgate_monai" / "bundles" / "skin_lesion_sat").resolve()


def test_pins_match_what_the_code_uses():
    """highdicom >= 0.24 (hd.Volume arrived in 0.24); itk stays: MONAI's LoadImage reads MHA/NRRD with ITKReader."""
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    extras = cfg["options.extras_require"]
    assert "highdicom>=0.24" in extras["dicomseg"].split()
    assert "itk>=5.3" in extras["io"].split()


def test_bundle_preprocessing_reads_mha_through_itk(tmp_path):
    """A 3D bundle's own LoadImaged reads an MHA image (e.g. a study served to MONAI Label) with MONAI's ITKReader."""
    import SimpleITK as sitk
    from monai.bundle import ConfigParser
    from monai.data import ITKReader

    from satgate_monai.bundle import ValidatingReader

    image = sitk.GetImageFromArray(np.arange(6 * 7 * 8, dtype=np.int16).reshape(8, 7, 6))
    image.SetSpacing((1.5, 1.5, 3.0))
    path = tmp_path / "ct.mha"
    sitk.WriteImage(image, str(path))
    parser = ConfigParser()
    parser.read_config(str(bundle_path("liver_ct_sat") / "configs" / "inference.json"))
    load = parser.get_parsed_content("preprocessing").transforms[0]
    out = load({"image": str(path)})
    assert tuple(out["image"].shape[-3:]) == (6, 7, 8)
    assert np.allclose(np.abs(np.diag(out["image"].affine[:3, :3])), (1.5, 1.5, 3.0))
    candidates = [r for r in load._loader.readers if r.verify_suffix(str(path))]  # MONAI tries the last one first
    chosen = candidates[-1]
    if isinstance(chosen, ValidatingReader):  # the bundles' reader validates the file, then hands it to MONAI's own
        chosen = chosen._reader(str(path))
    assert isinstance(chosen, ITKReader), [type(r).__name__ for r in candidates]
