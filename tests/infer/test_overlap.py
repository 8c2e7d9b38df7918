"""Several cases: reading/preprocessing the next case and writing the previous one overlap the network, with the
outputs, the failures and the report of running the cases one after the other."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import satgate_monai.infer.pipeline as pipeline
from satgate_monai.infer.bundle import BundleRunner
from satgate_monai.infer.cli import parse_overrides
from satgate_monai.infer.pipeline import InferenceOptions, run_inference
from tests.infer.conftest import TINY_UNET_OVERRIDES


def _cases(folder: Path, crop: sitk.Image) -> Path:
    """Five cases, the third one a truncated file (it must fail, the others run)."""
    folder.mkdir()
    for k, name in enumerate(["a", "b", "c_broken", "d", "e"]):
        img = sitk.Image(crop[:, :, 4 * k : 4 * k + 16])
        img.SetOrigin((k * 3.0, -k * 2.0, 10.0 * k))
        sitk.WriteImage(img, str(folder / f"{name}.nii.gz"))
    broken = folder / "c_broken.nii.gz"
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    return folder


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "report.csv", newline="", encoding="utf-8") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


@pytest.mark.slow
def test_overlapped_run_equals_the_sequential_one(liver_bundle, tiny_unet_ckpt, lung_crop, tmp_path, monkeypatch):
    cases = _cases(tmp_path / "cases", lung_crop)
    runner = BundleRunner(liver_bundle, device="cpu", ckpt=tiny_unet_ckpt,
                          overrides=parse_overrides(TINY_UNET_OVERRIDES))
    opts = dict(formats=("nifti",), save_attention=True, stats="json")
    events: list[tuple[str, str, float, str]] = []  # (stage, case, time, thread)
    real = {name: getattr(pipeline, name) for name in ("_prepare", "_network", "_write")}

    def watched(name):
        def run(*a, **k):
            state_or_case = a[1]
            case = getattr(state_or_case, "case", state_or_case).name
            events.append((name + ":start", case, time.perf_counter(), threading.current_thread().name))
            result = real[name](*a, **k)
            events.append((name + ":end", case, time.perf_counter(), threading.current_thread().name))
            return result
        return run

    for name in real:
        monkeypatch.setattr(pipeline, name, watched(name))
    seq = run_inference(runner, cases, tmp_path / "seq", InferenceOptions(**opts, prefetch=False), progress=False)
    seq_events, events[:] = list(events), []
    ovl = run_inference(runner, cases, tmp_path / "ovl", InferenceOptions(**opts), progress=False)

    # the same reports in the same order, the broken case failing with the same message
    assert [(r.case, r.status, r.error, r.outputs, r.volumes_ml, r.extra) for r in ovl] == \
           [(r.case, r.status, r.error, r.outputs, r.volumes_ml, r.extra) for r in seq]
    assert [r.status for r in ovl] == ["ok", "ok", "failed", "ok", "ok"]
    assert "c_broken" in ovl[2].error
    assert _rows(tmp_path / "ovl") == _rows(tmp_path / "seq")
    run_cases = [json.loads((tmp_path / d / "run.json").read_text())["cases"] for d in ("seq", "ovl")]
    assert {k: v["status"] for k, v in run_cases[0].items()} == {k: v["status"] for k, v in run_cases[1].items()}
    # the same files, voxel for voxel
    names = sorted(p.name for p in (tmp_path / "seq").iterdir() if p.name.endswith(".nii.gz"))
    assert names == sorted(p.name for p in (tmp_path / "ovl").iterdir() if p.name.endswith(".nii.gz"))
    assert any("attention" in n for n in names) and not any(n.startswith("c_broken") for n in names)
    for n in names:
        a, b = (sitk.ReadImage(str(tmp_path / d / n)) for d in ("seq", "ovl"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b), err_msg=n)
        assert a.GetOrigin() == b.GetOrigin()
    # sequential: one thread, one stage at a time; overlapped: reading and writing in their own threads, and the
    # next case's reading starts before the current case's network ends
    assert {t for *_, t in seq_events} == {threading.main_thread().name}
    threads = {(stage.split(":")[0], t) for stage, _, _, t in events}
    assert {t for s, t in threads if s == "_network"} == {threading.main_thread().name}
    assert all(t.startswith("satgate-read") for s, t in threads if s == "_prepare")
    assert all(t.startswith("satgate-write") for s, t in threads if s == "_write")
    when = {(stage, case): at for stage, case, at, _ in events}
    order = ["a", "b", "c_broken", "d", "e"]
    overlaps = [when[("_prepare:start", nxt)] < when[("_network:end", cur)] for cur, nxt in zip(order, order[1:])]
    assert any(overlaps), events
