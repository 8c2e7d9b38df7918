"""Fast checks of the serve command's pieces (standard library only; no MONAI Label environment needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from satgate_monai.label import cli, environment
from tests.conftest import REPO_ROOT
from tests.orthanc import free_port


def _bundle(root: Path, name: str) -> Path:
    (root / name / "configs").mkdir(parents=True)
    return root / name


def test_env_path_matches_build_script():
    """The serve command looks for the environment exactly where .ci/monailabel_env.sh builds it."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / ".ci" / "monailabel_env.sh"), "--path"], capture_output=True, text=True, check=True
    )
    assert Path(out.stdout.strip().splitlines()[-1]) == environment.expected_env_dir() / "bin" / "python"


def test_env_hash_follows_requirements(tmp_path, monkeypatch):
    """A different requirements file (or python version) gives a different cached environment."""
    monkeypatch.setenv("SATGATE_MONAILABEL_CACHE", str(tmp_path))
    first = environment.expected_env_dir()
    assert first.parent == tmp_path and first.name.startswith("monailabel-")
    assert environment.expected_env_dir((3, 99)) != first
    req = tmp_path / "req.txt"
    req.write_bytes(environment.REQUIREMENTS.read_bytes() + b"# changed\n")
    monkeypatch.setattr(environment, "REQUIREMENTS", req)
    assert environment.expected_env_dir() != first


def test_resolve_bundles(tmp_path):
    for name in ("b_sat", "a_sat"):
        _bundle(tmp_path, name)
    (tmp_path / "not_a_bundle").mkdir()
    assert list(cli.resolve_bundles("", tmp_path)) == ["a_sat", "b_sat"]
    assert cli.resolve_bundles("b_sat", tmp_path) == {"b_sat": (tmp_path / "b_sat").resolve()}
    other = _bundle(tmp_path / "elsewhere", "c_sat")
    assert cli.resolve_bundles(f"a_sat,{other}", tmp_path)["c_sat"] == other.resolve()
    with pytest.raises(cli.UsageError, match="nope"):
        cli.resolve_bundles("nope", tmp_path)
    with pytest.raises(cli.UsageError, match="two bundles named 'a_sat'"):
        cli.resolve_bundles(f"a_sat,{_bundle(tmp_path / 'x', 'a_sat')}", tmp_path)


def test_prepare_app_dir_links_and_replaces(tmp_path):
    b1, b2 = _bundle(tmp_path / "b", "one"), _bundle(tmp_path / "b", "two")
    app = tmp_path / "app"
    cli.prepare_app_dir(app, {"one": b1, "two": b2})
    assert (app / "model" / "one").resolve() == b1.resolve()
    assert "SATGateLabelApp" in (app / "main.py").read_text()
    assert (app / "python" / "satgate_monai" / "label" / "cli.py").is_file()
    assert (app / "python" / "data_prep" / "readers.py").is_file()  # the server checks uploads with its readers
    cli.prepare_app_dir(app, {"two": b2})  # a later start with fewer models drops the old link
    assert sorted(p.name for p in (app / "model").iterdir()) == ["two"]
    (app / "model" / "three").mkdir()
    with pytest.raises(cli.UsageError, match="not a link"):
        cli.prepare_app_dir(app, {"three": b1})


def test_serve_rejects_missing_studies(tmp_path, capsys):
    assert cli.main(["serve", "--studies", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "not a folder" in err


def test_server_command_is_offline_and_local(tmp_path):
    cmd = cli.server_command(Path("/py"), tmp_path, tmp_path, "127.0.0.1", 8123, ["a", "b"], [["k", "v"]])
    joined = " ".join(cmd)
    assert "--conf models a,b" in joined and "--conf zoo_source github" in joined and "--conf sam2 false" in joined
    assert "--host 127.0.0.1 --port 8123" in joined and joined.endswith("--conf k v")
    env = cli.server_env(tmp_path)
    assert env["PYTHONPATH"].split(":")[0] == str(tmp_path / "python")
    assert env["BUNDLE_DOWNLOAD_SRC"] == "github"


def test_studies_from_a_data_prep_output(tmp_path, capsys):
    prep = tmp_path / "prep"
    (prep / "images").mkdir(parents=True)
    (prep / "labels").mkdir()
    for name in ("a.nii.gz", "b.png"):
        (prep / "images" / name).write_bytes(b"image " + name.encode())
    (prep / "labels" / "a.nii.gz").write_bytes(b"label a")
    (prep / "images" / "notes.txt").write_text("ignored")
    out = tmp_path / "studies"
    assert cli.main(["studies", "--from", str(prep), "--out", str(out), "--labels"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["a.nii.gz", "b.png", "studies.log"]
    assert (out / "labels" / "final" / "a.nii.gz").read_bytes() == b"label a"
    assert not (out / "labels" / "final" / "b.png").exists()
    assert cli.make_studies_folder(prep, out, labels=True) == (0, 0)  # identical files are kept, not recopied
    (prep / "images" / "a.nii.gz").write_bytes(b"changed")
    assert cli.main(["studies", "--from", str(prep), "--out", str(out)]) == 2
    assert "differs" in capsys.readouterr().err
    assert cli.main(["studies", "--from", str(tmp_path / "none"), "--out", str(out)]) == 2


def test_serve_on_a_dicomweb_url_lists_the_bundles_modalities(tmp_path, capsys):
    """A DICOMweb --studies URL is passed on, with the modalities of the served bundles and a cache in the app."""
    bundles = {}
    for name, modality in (("mr_sat", "MR"), ("skin_sat", "dermoscopy")):
        bundle = _bundle(tmp_path / "b", name)
        meta = {"network_data_format": {"inputs": {"image": {"modality": modality}}}}
        (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
        bundles[name] = bundle
    assert cli.bundle_modalities(bundles) == ["MR"]
    assert cli.is_dicomweb("HTTP://pacs:8042/dicom-web") and not cli.is_dicomweb(str(tmp_path))
    app = tmp_path / "app"
    argv = ["serve", "--studies", "http://127.0.0.1:8042/dicom-web/", "--models", ",".join(map(str, bundles.values()))]
    argv += ["--python", sys.executable, "--skip-check", "--dry-run", "--app-dir", str(app), "--port", str(free_port())]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "studies http://127.0.0.1:8042/dicom-web (DICOMweb)" in out
    assert "--studies http://127.0.0.1:8042/dicom-web --host" in out
    assert f"--conf modalities MR --conf dicomweb_cache {app / 'dicomweb-cache'}" in out
    assert cli.main([*argv, "--modality", "ct, mr"]) == 0
    assert "--conf modalities CT,MR" in capsys.readouterr().out
    shutil.rmtree(app)
