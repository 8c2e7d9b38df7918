"""``prepare``: CLI contract, report/datalist, failures, re-runs, overwrite, safety and kill-safety."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from data_prep import writers
from data_prep.atomic import TMP_MARKER, atomic_path, check_output_not_inside_input
from data_prep.cli import main
from data_prep.datalist import split_cases, write_datalist
from data_prep.pipeline import CaseSpec, prepare_cases
from tests.data_prep.dicom_factory import volume, write_series


def _write_case(folder: Path, name: str, seed: int, *, spacing=(0.8, 0.8, 3.0), label_dir: Path | None = None,
                direction=None) -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(-200, 200, size=(8, 24, 20)).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin((seed * 1.0, -5.0, 30.0))
    if direction is not None:
        img.SetDirection(direction)
    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(folder / f"{name}.nii.gz"))
    if label_dir is not None:
        lab = sitk.GetImageFromArray((arr > 100).astype(np.uint8) * 2)
        lab.CopyInformation(img)
        label_dir.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(lab, str(label_dir / f"{name}.nii.gz"))


def _hash_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _report(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "report.csv", newline="") as f:
        return {r["case"]: r for r in csv.DictReader(f)}


@pytest.fixture()
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    images, labels = tmp_path / "in" / "images", tmp_path / "in" / "labels"
    for i in range(4):
        _write_case(images, f"case{i}", i, label_dir=labels)
    write_series(images / "dicomcase", volume((6, 24, 20)))  # a DICOM case without a label
    (images / "broken.nii.gz").write_bytes(b"this is not a nifti file")
    return images, labels


@pytest.mark.slow  # imports MONAI (torch) to check the datalist resolves
def test_cli_folder_of_cases(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    images, labels = dataset
    before = _hash_tree(tmp_path / "in")
    out = tmp_path / "out"
    code = main(["prepare", "--images", str(images), "--labels", str(labels), "--out", str(out), "--no-progress"])
    assert code == 1  # the broken case fails, the others are written
    rep = _report(out)
    assert set(rep) == {"case0", "case1", "case2", "case3", "dicomcase", "broken"}
    assert rep["broken"]["status"] == "failed" and "broken.nii.gz" in rep["broken"]["error"]
    for c in ("case0", "case1", "case2", "case3", "dicomcase"):
        assert rep[c]["status"] == "ok", rep[c]
        assert (out / "images" / f"{c}.nii.gz").is_file()
    assert rep["case0"]["source_spacing"] == "0.8x0.8x3" and rep["case0"]["source_size"] == "20x24x8"
    assert rep["case0"]["source_orientation"] == "LPS" and rep["case0"]["output_size"] == "9x10x12"
    assert not (out / "images" / "broken.nii.gz").exists()
    assert not (out / "labels" / "dicomcase.nii.gz").exists()
    # outputs: spacing 2, geometry of the source kept, label values only from the source
    img = sitk.ReadImage(str(out / "images" / "case1.nii.gz"))
    lab = sitk.ReadImage(str(out / "labels" / "case1.nii.gz"))
    np.testing.assert_allclose(img.GetSpacing(), (2, 2, 2))
    np.testing.assert_allclose(img.GetOrigin(), (1.0, -5.0, 30.0), atol=1e-4)
    assert img.GetSize() == lab.GetSize() and set(np.unique(sitk.GetArrayFromImage(lab))) <= {0, 2}
    # datalist: decathlon style, relative paths MONAI resolves, unlabelled case only in test
    doc = json.loads((out / "datalist.json").read_text())
    assert doc["numTraining"] == len(doc["training"]) and doc["spacing"] == [2.0, 2.0, 2.0]
    all_entries = doc["training"] + doc["validation"] + doc["test"]
    assert sorted(e["image"] for e in all_entries) == sorted(f"images/{c}.nii.gz" for c in
                                                             ("case0", "case1", "case2", "case3", "dicomcase"))
    assert {"image": "images/dicomcase.nii.gz"} in doc["test"]
    assert doc["training"] and doc["validation"] and doc["labels"] == {"0": "background", "2": "label2"}
    from monai.data import load_decathlon_datalist

    for key in ("training", "validation", "test"):
        for item in load_decathlon_datalist(str(out / "datalist.json"), data_list_key=key, base_dir=str(out)):
            assert Path(item["image"]).is_file()
    # inputs untouched
    assert _hash_tree(tmp_path / "in") == before


def test_rerun_skips_and_overwrite_redoes(tmp_path: Path) -> None:
    images = tmp_path / "in"
    for i in range(3):
        _write_case(images, f"c{i}", i)
    out = tmp_path / "out"
    assert main(["prepare", "--images", str(images), "--out", str(out), "--no-progress"]) == 0
    target = out / "images" / "c0.nii.gz"
    stamp = target.stat().st_mtime_ns
    assert main(["prepare", "--images", str(images), "--out", str(out), "--no-progress"]) == 0
    rep = _report(out)
    assert {r["status"] for r in rep.values()} == {"skipped"}
    assert rep["c0"]["source_spacing"] == "0.8x0.8x3"  # carried over from the first run's report
    assert target.stat().st_mtime_ns == stamp
    assert main(["prepare", "--images", str(images), "--out", str(out), "--overwrite", "--no-progress",
                 "--compression-level", "0"]) == 0
    assert {r["status"] for r in _report(out).values()} == {"ok"}
    assert target.stat().st_mtime_ns != stamp
    # a different spacing is not "complete": prepared again
    assert main(["prepare", "--images", str(images), "--out", str(out), "--spacing", "3", "--no-progress"]) == 0
    assert {r["status"] for r in _report(out).values()} == {"ok"}
    np.testing.assert_allclose(sitk.ReadImage(str(target)).GetSpacing(), (3, 3, 3))


def test_output_inside_input_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    images = tmp_path / "in"
    _write_case(images, "c0", 0)
    code = main(["prepare", "--images", str(images), "--out", str(images / "prepared"), "--no-progress"])
    assert code == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert not (images / "prepared").exists()
    f = tmp_path / "x" / "images" / "a.nii.gz"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"")
    with pytest.raises(ValueError, match="where outputs are written"):
        check_output_not_inside_input(tmp_path / "x", [f], protected_subdirs=("images",))


def test_label_in_another_physical_space_fails(tmp_path: Path) -> None:
    _write_case(tmp_path / "img", "c0", 0)
    lab = sitk.Image([20, 24, 8], sitk.sitkUInt8)
    lab.SetSpacing((0.8, 0.8, 3.0))
    lab.SetOrigin((0.0, -5.0, 33.0))  # one slice off
    (tmp_path / "lab").mkdir()
    sitk.WriteImage(lab, str(tmp_path / "lab" / "c0.nii.gz"))
    code = main(["prepare", "--images", str(tmp_path / "img"), "--labels", str(tmp_path / "lab"),
                 "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 1
    err = _report(tmp_path / "out")["c0"]["error"]
    assert "physical space" in err and "origin" in err
    assert not (tmp_path / "out" / "images" / "c0.nii.gz").exists()


def test_failure_mid_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_case(tmp_path / "in", "c0", 0)
    real_copy = writers.shutil.copyfileobj

    def broken_copy(src, dst, length=0):
        dst.write(src.read(1000))
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(writers.shutil, "copyfileobj", broken_copy)
    cases = [CaseSpec("c0", tmp_path / "in" / "c0.nii.gz")]
    assert prepare_cases(cases, tmp_path / "out", progress=False) == 1
    assert "disk full" in _report(tmp_path / "out")["c0"]["error"]
    leftovers = [p.name for p in (tmp_path / "out").rglob("*") if p.is_file() and p.name != "report.csv"]
    assert leftovers == []
    # a stale temporary from a killed process is cleaned on the next run, which completes
    (tmp_path / "out" / "images" / ".c0.tmp-999-deadbeef.nii.gz").write_bytes(b"partial")
    monkeypatch.setattr(writers.shutil, "copyfileobj", real_copy)
    assert prepare_cases(cases, tmp_path / "out", progress=False) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == ["c0.nii.gz"]
    sitk.ReadImage(str(tmp_path / "out" / "images" / "c0.nii.gz"))


def test_atomic_path_keeps_previous_file_on_error(tmp_path: Path) -> None:
    final = tmp_path / "a.csv"
    final.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("new but incomplete")
        raise RuntimeError("crash")
    assert final.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_channels_label_map_and_workers(tmp_path: Path) -> None:
    # a 2-channel 4D image (MSD prostate style) and a label map merging 2 into 1, run with 2 worker processes
    chans = [sitk.GetImageFromArray(np.full((6, 10, 12), v, np.int16)) for v in (100, 200)]
    for c in chans:
        c.SetSpacing((0.6, 0.6, 3.6))
    four = sitk.JoinSeries(chans)
    (tmp_path / "in").mkdir()
    sitk.WriteImage(four, str(tmp_path / "in" / "p.nii.gz"))
    lab = sitk.GetImageFromArray(np.pad(np.full((2, 4, 4), 2, np.uint8), ((2, 2), (3, 3), (4, 4))))
    lab.CopyInformation(chans[0])
    sitk.WriteImage(lab, str(tmp_path / "in" / "p_seg.nii.gz"))
    cases = [CaseSpec("both", tmp_path / "in" / "p.nii.gz", tmp_path / "in" / "p_seg.nii.gz", label_map={2: 1}),
             CaseSpec("t2", tmp_path / "in" / "p.nii.gz", image_channel=0),
             CaseSpec("adc", tmp_path / "in" / "p.nii.gz", image_channel=1),
             CaseSpec("bad", tmp_path / "in" / "p.nii.gz", image_channel=5)]
    assert prepare_cases(cases, tmp_path / "out", workers=2, progress=False) == 1
    both = sitk.ReadImage(str(tmp_path / "out" / "images" / "both.nii.gz"))
    assert both.GetDimension() == 4 and both.GetSize()[3] == 2
    adc = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "images" / "adc.nii.gz")))
    assert adc.ndim == 3 and np.all(adc == 200)
    assert set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "labels" / "both.nii.gz"))))) \
        == {0, 1}
    assert "image_channel=5" in _report(tmp_path / "out")["bad"]["error"]


def test_split_is_deterministic_and_non_empty() -> None:
    names = [f"c{i:02d}" for i in range(20)]
    a = split_cases(names, seed=1)
    assert a == split_cases(list(reversed(names)), seed=1)  # order of discovery does not matter
    assert a != split_cases(names, seed=2)
    assert [len(a[k]) for k in ("training", "validation", "test")] == [14, 3, 3]
    assert sorted(sum(a.values(), [])) == names
    small = split_cases(["a", "b", "c"], seed=0)
    assert all(len(v) == 1 for v in small.values())
    assert split_cases(["a"], seed=0)["training"] == ["a"]
    with pytest.raises(ValueError, match="fractions"):
        split_cases(names, 0, (0.5, 0.5, 0.5))


def test_write_datalist_unlabelled_only_in_test(tmp_path: Path) -> None:
    entries = [{"image": f"images/c{i}.nii.gz", "label": f"labels/c{i}.nii.gz"} for i in range(6)]
    entries.append({"image": "images/u.nii.gz", "label": None})
    write_datalist(tmp_path, entries, 0, name="x", labels={"0": "background", "1": "liver"}, modality={"0": "CT"},
                   spacing=2.0, tensor_image_size="3D")
    doc = json.loads((tmp_path / "datalist.json").read_text())
    assert {"image": "images/u.nii.gz"} in doc["test"]
    assert all("label" in e for e in doc["training"] + doc["validation"])
    with pytest.raises(ValueError, match="relative"):
        write_datalist(tmp_path, [{"image": "/abs/x.nii.gz"}], 0)


def test_help_documents_every_option() -> None:
    r = subprocess.run([sys.executable, "-m", "data_prep", "prepare", "--help"], capture_output=True, text=True,
                       check=True)
    for opt in ("--images", "--labels", "--out", "--spacing", "--workers", "--overwrite", "--series",
                "--interpolation", "--compression-level", "report.csv", "datalist.json", "gantry tilt"):
        assert opt in r.stdout, opt


@pytest.mark.slow  # two CLI runs with spawned worker processes
def test_cli_subprocess_with_workers_and_series(tmp_path: Path) -> None:
    write_series(tmp_path / "in" / "two", volume(), series_uid="1.2.3.4", names=[f"a{k}.dcm" for k in range(6)])
    write_series(tmp_path / "in" / "two", volume(seed=2)[:4], series_uid="1.2.3.5",
                 names=[f"b{k}.dcm" for k in range(4)])
    _write_case(tmp_path / "in", "nii", 0)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "data_prep", "prepare", "--images", str(tmp_path / "in"), "--out", str(out),
           "--workers", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "2 image series" in _report(out)["two"]["error"]
    assert _report(out)["nii"]["status"] == "ok"
    r = subprocess.run(cmd + ["--series", "1.2.3.5"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sitk.ReadImage(str(out / "images" / "two.nii.gz")).GetSize()[2] == 5  # 4 slices -> 5 at 2 mm (the other: 7)


def test_split_series_makes_one_case_per_series(tmp_path: Path) -> None:
    write_series(tmp_path / "in" / "pat", volume(), series_uid="1.2.3.4", series_number=2,
                 names=[f"a{k}.dcm" for k in range(6)])
    write_series(tmp_path / "in" / "pat", volume(seed=2)[:4], series_uid="1.2.3.5", series_number=5,
                 names=[f"b{k}.dcm" for k in range(4)])
    out = tmp_path / "out"
    assert main(["prepare", "--images", str(tmp_path / "in"), "--out", str(out), "--split-series", "--spacing", "2",
                 "--no-progress"]) == 0
    assert sorted(_report(out)) == ["pat_s2", "pat_s5"]
    assert sitk.ReadImage(str(out / "images" / "pat_s5.nii.gz")).GetSize()[2] == 5
    assert sitk.ReadImage(str(out / "images" / "pat_s2.nii.gz")).GetSize()[2] == 7


@pytest.mark.slow  # a real CLI run killed with SIGKILL in the middle of writing, then resumed
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_write_leaves_only_complete_files_and_rerun_finishes(tmp_path: Path) -> None:
    import os
    import signal
    import time

    rng = np.random.default_rng(0)
    images = tmp_path / "in"
    images.mkdir()
    for i in range(8):  # 8 cases of 8 MB written at gzip level 9 (zlib, slow): the kill lands while one is written
        img = sitk.GetImageFromArray(rng.integers(-1000, 1000, size=(64, 160, 200)).astype(np.int16))
        img.SetSpacing((2.0, 2.0, 2.0))
        sitk.WriteImage(img, str(images / f"c{i}.nii.gz"), useCompression=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "data_prep", "prepare", "--images", str(images), "--out", str(out),
           "--compression-level", "9", "--no-progress"]
    before = _hash_tree(images)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    temporaries: list[Path] = []
    deadline = time.monotonic() + 120
    try:
        # wait until one case is complete and the next is being written (its hidden temporary exists)
        while time.monotonic() < deadline and proc.poll() is None:
            finals = list((out / "images").glob("c*.nii.gz")) if (out / "images").is_dir() else []
            temporaries = [p for p in (out / "images").glob(".*") if TMP_MARKER in p.name] if finals else []
            if temporaries:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        proc.kill()
        proc.wait()
    assert temporaries, "the run ended before a write could be interrupted"
    finals = sorted((out / "images").glob("c*.nii.gz"))
    assert 1 <= len(finals) < 8
    for f in finals:  # every file under a final name is complete
        arr = sitk.GetArrayFromImage(sitk.ReadImage(str(f)))
        np.testing.assert_array_equal(arr, sitk.GetArrayFromImage(sitk.ReadImage(str(images / f.name))))
    assert not (out / "report.csv").exists()  # the report is written at the end, never half
    # the re-run removes the stale temporaries, skips the finished cases and completes the others
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = _report(out)
    assert {c for c, row in rep.items() if row["status"] == "skipped"} == {f.name[:-7] for f in finals}
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"c{i}.nii.gz" for i in range(8)]
    assert _hash_tree(images) == before  # inputs untouched
