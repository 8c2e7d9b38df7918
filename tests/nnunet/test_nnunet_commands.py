"""nnU-Net's own commands with a SAT plans variant, on the CPU: a tiny phantom dataset exported by data_prep, planned
and preprocessed by ``nnUNetv2_plan_and_preprocess``, a plans variant written by ``python -m satgate_monai.nnunet
plans``, one short epoch of ``nnUNetv2_train`` (the short trainer ``nnUNetTrainer_SATSmoke``: 4 + 2 iterations, found
through ``nnUNet_extTrainer``) and ``nnUNetv2_predict``, for ``sat`` and ``org``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.nnunet.nnunet_env import nnunet_environ, nnunet_python, run_checked
from tests.nnunet.phantom import write_tiny_dataset

pytestmark = pytest.mark.slow

DATASET = 9
TRAINER = "nnUNetTrainer_SATSmoke"


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """Export, plan and preprocess once: ``(root, env, bin folder)``."""
    root = tmp_path_factory.mktemp("nnunet")
    python = nnunet_python()
    env = nnunet_environ(root)
    write_tiny_dataset(root / "prepared", cases=6)
    run_checked([sys.executable, "-m", "data_prep", "export-nnunet", "--src", str(root / "prepared"),
                 "--out", env["nnUNet_raw"], "--id", str(DATASET), "--name", "Blobs"], env)
    bin_dir = python.parent
    # the planner sets torch's threads from nnUNet_n_proc_DA, which must be positive there
    run_checked([str(bin_dir / "nnUNetv2_plan_and_preprocess"), "-d", str(DATASET), "-c", "3d_fullres",
                 "-np", "1", "-npfp", "1"], {**env, "nnUNet_n_proc_DA": "1"})
    return root, env, bin_dir


def _check_weights(python: Path, env: dict, plans: Path, checkpoint: Path, network: str) -> str:
    """Build ``network`` from ``plans`` (3d_fullres) with nnU-Net's builder and load the checkpoint strictly."""
    code = (
        "import json, sys, torch\n"
        "from nnunetv2.utilities.get_network_from_plans import get_network_from_plans\n"
        f"arch = json.load(open({str(plans)!r}))['configurations']['3d_fullres']['architecture']\n"
        f"net = get_network_from_plans({network!r}, arch['arch_kwargs'], arch['_kw_requires_import'], 1, 2, "
        "deep_supervision=True)\n"
        f"w = torch.load({str(checkpoint)!r}, map_location='cpu', weights_only=False)['network_weights']\n"
        "net.load_state_dict(w, strict=True)\n"
        "print(type(net).__name__, sum('skip_gates' in k for k in w))\n"
    )
    return run_checked([str(python), "-c", code], env).strip().splitlines()[-1]


@pytest.mark.parametrize("gate", ("sat", "org"))
def test_train_and_predict_with_nnunet_commands(planned, gate):
    root, env, bin_dir = planned
    plans_name = f"nnUNetPlans_{gate.upper()}"
    run_checked([sys.executable, "-m", "satgate_monai.nnunet", "plans", str(DATASET), "--gate", gate], env)
    folder = Path(env["nnUNet_preprocessed"]) / "Dataset009_Blobs"
    plans = json.loads((folder / f"{plans_name}.json").read_text())
    assert plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"] == \
        "satgate_monai.nnunet.network.SATPlainConvUNet"

    run_checked([str(bin_dir / "nnUNetv2_train"), str(DATASET), "3d_fullres", "0", "-p", plans_name, "-tr", TRAINER,
                 "-device", "cpu"], env)
    model = Path(env["nnUNet_results"]) / "Dataset009_Blobs" / f"{TRAINER}__{plans_name}__3d_fullres"
    checkpoint = model / "fold_0" / "checkpoint_final.pth"
    assert checkpoint.is_file() and (model / "fold_0" / "validation" / "summary.json").is_file()

    out = root / f"pred_{gate}"
    images = Path(env["nnUNet_raw"]) / "Dataset009_Blobs" / "imagesTs"
    run_checked([str(bin_dir / "nnUNetv2_predict"), "-i", str(images), "-o", str(out), "-d", str(DATASET),
                 "-c", "3d_fullres", "-f", "0", "-p", plans_name, "-tr", TRAINER, "-chk", "checkpoint_final.pth",
                 "-device", "cpu", "-npp", "1", "-nps", "1"], env)
    import numpy as np
    import SimpleITK as sitk

    for image in images.iterdir():
        pred = sitk.ReadImage(str(out / image.name.replace("_0000.nii.gz", ".nii.gz")))
        assert pred.GetSize() == sitk.ReadImage(str(image)).GetSize()
        assert set(np.unique(sitk.GetArrayFromImage(pred))) <= {0, 1}

    python = bin_dir / "python"
    if gate == "sat":  # the trained network is SAT's: its gates are in the checkpoint
        name, n_gate_keys = _check_weights(python, env, folder / f"{plans_name}.json", checkpoint,
                                           "satgate_monai.nnunet.network.SATPlainConvUNet").split()
        assert name == "SATPlainConvUNet" and int(n_gate_keys) > 0
    else:  # SATPlainConvUNet(org) trained by nnU-Net loads strictly into nnU-Net's own PlainConvUNet
        assert _check_weights(python, env, folder / "nnUNetPlans.json", checkpoint,
                              "dynamic_network_architectures.architectures.unet.PlainConvUNet") == "PlainConvUNet 0"


def test_variant_needs_no_second_preprocessing(planned):
    """The variant keeps nnU-Net's data_identifier: it trains on the data preprocessed for nnUNetPlans."""
    _, env, _ = planned
    folder = Path(env["nnUNet_preprocessed"]) / "Dataset009_Blobs"
    subprocess.run([sys.executable, "-m", "satgate_monai.nnunet", "plans", str(DATASET)], env=env, check=True,
                   capture_output=True, cwd=REPO_ROOT)
    variant = json.loads((folder / "nnUNetPlans_SAT.json").read_text())
    identifier = variant["configurations"]["3d_fullres"]["data_identifier"]
    assert identifier == "nnUNetPlans_3d_fullres" and (folder / identifier).is_dir()
