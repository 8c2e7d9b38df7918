"""Run-time settings of the CLI: thread count, mixed precision (labels compared with float32), sliding-window batch."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from satgate_monai.infer.cli import main
from satgate_monai.networks.blocks.skip_gates import SATGate
from satgate_monai.runtime import autocast, default_threads, resolve_precision, set_threads
from tests.infer.conftest import TINY_UNET_OVERRIDES
from tests.infer.helpers import set_args


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _cli(bundle: Path, image: Path, out: Path, ckpt: Path, *extra: str) -> int:
    return main(["--bundle", str(bundle), "--input", str(image), "--out", str(out), "--ckpt", str(ckpt),
                 "--device", "cpu", "--no-progress", *set_args(TINY_UNET_OVERRIDES), *extra])


def test_threads_default_to_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert set_threads(1) == 1 and torch.get_num_threads() == 1
    assert set_threads() == default_threads()
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        set_threads(0)


def test_precision_resolution():
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", "cuda") == "fp16"
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="'half'"):
        resolve_precision("half", "cpu")


def test_sat_gate_sigmoid_runs_in_float32_under_autocast():
    torch.manual_seed(0)
    gate = SATGate(3, 8)
    x = torch.randn(1, 8, 6, 6, 6) * 4
    ref = gate(x)
    with autocast("cpu", "bf16"):
        out = gate(x)
    assert out.dtype == torch.bfloat16
    # bf16 logits, float32 sigmoid: within bf16 rounding of the float32 gate
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=0)


@pytest.mark.slow
def test_bf16_labels_agree_with_float32(liver_bundle, lung_crop, tiny_unet_ckpt, tmp_path):
    image = tmp_path / "ct.nii.gz"
    sitk.WriteImage(lung_crop[32:96, 32:96, 6:18], str(image))
    labels = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        assert _cli(liver_bundle, image, out, tiny_unet_ckpt, "--precision", precision, "--threads", "1",
                    "--sw-batch-size", "2") == 0
        assert torch.get_num_threads() == 1
        labels[precision] = np.asarray(nib.load(out / "ct_seg.nii.gz").dataobj)
    agreement = float((labels["fp32"] == labels["bf16"]).mean())
    assert agreement >= 0.99, agreement


def test_fp16_on_cpu_is_refused_in_one_line(liver_bundle, tmp_path, tiny_unet_ckpt, capsys):
    image = tmp_path / "missing.nii.gz"
    rc = _cli(liver_bundle, image, tmp_path / "out", tiny_unet_ckpt, "--precision", "fp16")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "fp16 needs a CUDA device" in err[0]


def test_bad_sliding_window_batch_is_refused(liver_bundle, tmp_path, tiny_unet_ckpt, capsys):
    rc = _cli(liver_bundle, tmp_path / "x.nii.gz", tmp_path / "out", tiny_unet_ckpt, "--sw-batch-size", "0")
    assert rc == 2 and "sw_batch_size must be a positive int, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_onnxruntime_backend_gives_the_torch_labels_and_exports_once(liver_bundle, lung_crop, tiny_unet_ckpt,
                                                                      tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("SATGATE_MONAI_CACHE", str(tmp_path / "cache"))
    image = tmp_path / "ct.nii.gz"
    sitk.WriteImage(lung_crop[32:96, 32:96, 6:18], str(image))
    labels = {}
    for run, backend in enumerate(("torch", "onnxruntime", "onnxruntime")):
        out = tmp_path / f"{backend}{run}"
        assert _cli(liver_bundle, image, out, tiny_unet_ckpt, "--backend", backend, "--threads", "1") == 0
        labels[run] = np.asarray(nib.load(out / "ct_seg.nii.gz").dataobj)
        models = sorted((tmp_path / "cache" / "onnx").glob("*.onnx")) if backend == "onnxruntime" else []
        if run == 1:
            exported = [(m, m.stat().st_mtime_ns) for m in models]
            assert len(exported) == 1
    assert [(m, m.stat().st_mtime_ns) for m in models] == exported  # the second run used the cached model
    assert float((labels[0] == labels[1]).mean()) >= 0.9999
    np.testing.assert_array_equal(labels[1], labels[2])


def test_onnxruntime_backend_refuses_cuda_precision(liver_bundle, tmp_path, tiny_unet_ckpt, capsys):
    rc = _cli(liver_bundle, tmp_path / "x.nii.gz", tmp_path / "out", tiny_unet_ckpt, "--backend", "onnxruntime",
              "--precision", "bf16")
    assert rc == 2 and "--backend onnxruntime runs float32 on the CPU" in capsys.readouterr().err
