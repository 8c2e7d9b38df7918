"""End-to-end runs of each bundle on tiny data: train -> evaluate -> inference, export, properties, loud failures."""

from __future__ import annotations

import csv
import glob
import json

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.bundle import run as bundle_run_inprocess

from satgate_monai.tasks import TASKS
from tests.bundles.helpers import BUNDLES, COMMON, TINY, bundle_run, config_path, load_json
from tests.bundles.synthetic import TASK_OF_BUNDLE, make_dataset


def _run(bundle: str, configs: list[str], **overrides) -> None:
    files = [str(config_path(bundle, c)) for c in configs]
    bundle_run_inprocess(
        config_file=files if len(files) > 1 else files[0],
        meta_file=str(config_path(bundle, "metadata")),
        logging_file=str(config_path(bundle, "metadata").parent / "logging.conf"),
        **{**COMMON, **TINY[bundle], **overrides},
    )


def _network(bundle: str):
    parser = ConfigParser()
    parser.read_config(str(config_path(bundle, "inference")))
    for k, v in TINY[bundle].items():
        parser[k] = v
    return parser.get_parsed_content("network_def")


def _tb(log_dir) -> tuple[set, set]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars, images = set(), set()
    for f in glob.glob(f"{log_dir}/events.out.tfevents.*"):
        ea = EventAccumulator(f, size_guidance={"images": 0, "scalars": 0})
        ea.Reload()
        scalars |= set(ea.Tags()["scalars"])
        images |= set(ea.Tags()["images"])
    return scalars, images


@pytest.mark.slow
@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_evaluate_infer(bundle, tmp_path):
    task = TASK_OF_BUNDLE[bundle]
    two_d = TASKS[task].data.spatial_dims == 2  # the skin bundle
    data = make_dataset(tmp_path / "data", task, n_train=2, n_val=1, n_test=2, size=40 if two_d else 24)
    root = tmp_path / "bundle"
    common = {"bundle_root": str(root), "dataset_dir": str(data)}

    # properties MONAI (and MONAI Label) expect, on the real configs
    for workflow_type, name in (("train", "train"), ("inference", "inference")):
        wf = ConfigWorkflow(config_file=str(config_path(bundle, name)), meta_file=str(config_path(bundle, "metadata")),
                            workflow_type=workflow_type, init_id="__no_init__", **{**COMMON, **common})
        wf.initialize()
        assert wf.check_properties() == [], f"{bundle} {name}"

    _run(bundle, ["train"], epochs=1, **common)
    state = torch.load(root / "models" / "model.pt", weights_only=True)
    assert "model" not in state and all(not k.startswith("module.") for k in state), "model.pt must be flat"
    net = _network(bundle)
    net.load_state_dict(state)  # strict: same architecture as inference.json with the same overrides
    last = torch.load(root / "models" / "last.pt", weights_only=True)
    assert last["epoch"] == 1 and last["completed"]
    scalars, images = _tb(root / "eval" / "tensorboard")
    for tag in ("train_loss", "val_mean_dice", "val_fpr", "val_fnr", "lr", "gates/switched_off/all"):
        assert tag in scalars, f"{tag} not in {sorted(scalars)}"
    gate_tags = {t for t in scalars if t.startswith("gates/switched_off/")} - {"gates/switched_off/all"}
    assert len(gate_tags) == 2, sorted(scalars)  # one per gate
    for share in ("between", "frozen"):  # with the other two shares of every gate's selection weights, and pooled
        tags = {t for t in scalars if t.startswith(f"gates/{share}/")}
        assert tags == {t.replace("switched_off", share) for t in gate_tags} | {f"gates/{share}/all"}
    assert {"attention/image", "attention/label"} <= images
    assert len({t for t in images if t.startswith("attention/")} - {"attention/image", "attention/label"}) == 2

    _run(bundle, ["train", "evaluate"], **common)
    rows = list(csv.DictReader((root / "eval" / "metrics.csv").open()))
    assert sorted(r["case"] for r in rows) == ["case003", "case004"]
    for r in rows:
        assert 0 <= float(r["dice"]) <= 1 and 0 <= float(r["fpr"]) <= 1 and float(r["label_volume"]) > 0
        assert r["volume_unit"] == ("px" if two_d else "mL")
    table = (root / "eval" / "summary.md").read_text()
    network = load_json(bundle, "train")["network_def"]["_target_"].rsplit(".", 1)[1]  # SATUNet in the shipped ones
    assert table.startswith("| Method | Dice | FPR | FNR | Cases |") and f"| {network} (sat) |" in table
    assert "±" in table

    _run(bundle, ["inference"], **common)
    for case in ("case003", "case004"):
        if two_d:
            from PIL import Image

            src = np.asarray(Image.open(data / "images" / f"{case}.png"))
            out = np.asarray(Image.open(root / "predictions" / f"{case}_seg.png"))
            assert out.shape == src.shape[:2] and out.dtype == np.uint8 and set(np.unique(out)) <= {0, 255}
        else:
            import nibabel as nib

            src = nib.load(data / "images" / f"{case}.nii.gz")
            out = nib.load(root / "predictions" / f"{case}_seg.nii.gz")
            assert out.shape == src.shape and np.allclose(out.affine, src.affine)
            assert np.issubdtype(out.get_data_dtype(), np.integer)
            assert set(np.unique(np.asarray(out.dataobj))) <= {0, 1}

    # TorchScript export of the trained network loads and matches eager
    from monai.bundle import ckpt_export

    ts = tmp_path / "model.ts"
    ckpt_export("network_def", filepath=str(ts), ckpt_file=str(root / "models" / "model.pt"),
                meta_file=str(config_path(bundle, "metadata")), config_file=str(config_path(bundle, "inference")),
                bundle_root=str(root), **TINY[bundle])
    scripted = torch.jit.load(str(ts))
    net.eval()
    dims = 2 if two_d else 3
    x = torch.rand(1, 3 if two_d else 1, *([16] * dims))
    with torch.no_grad():
        assert torch.allclose(scripted(x), net(x), atol=1e-5)


@pytest.mark.slow
def test_inference_on_arbitrary_geometry(tmp_path):
    """An input that is not 2 mm / RAS is resampled for the network and the mask comes back on its own grid."""
    import nibabel as nib

    bundle = "liver_ct_sat"
    root = tmp_path / "bundle"
    (root / "models").mkdir(parents=True)
    torch.save(_network(bundle).state_dict(), root / "models" / "model.pt")
    rng = np.random.default_rng(0)
    affine = np.array([[-1.3, 0, 0, 10.0], [0, 0.9, 0, -5.0], [0, 0, 3.1, 2.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(rng.integers(-200, 200, (27, 31, 9)).astype(np.int16), affine), tmp_path / "ct.nii.gz")
    _run(bundle, ["inference"], bundle_root=str(root), output_dir=str(tmp_path / "out"),
         **{"dataset#data": [{"image": str(tmp_path / "ct.nii.gz")}]})
    out = nib.load(tmp_path / "out" / "ct_seg.nii.gz")
    assert out.shape == (27, 31, 9) and np.allclose(out.affine, affine)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_verify_net_in_out_default_network(bundle):
    """``verify_net_in_out`` on each inference.json as shipped (the default network, metadata shapes)."""
    from monai.bundle import verify_net_in_out

    verify_net_in_out("network_def", meta_file=str(config_path(bundle, "metadata")),
                      config_file=str(config_path(bundle, "inference")), device="cpu")


@pytest.mark.slow
def test_empty_dataset_fails_loudly(tmp_path):
    """An empty data_prep folder exits non-zero naming the commands that create data (not MONAI's exit 0)."""
    data = make_dataset(tmp_path / "data", "liver", n_train=1, n_val=1, n_test=1, size=8)
    d = json.loads((data / "datalist.json").read_text())
    d.update(training=[], validation=[], test=[])
    (data / "datalist.json").write_text(json.dumps(d))
    proc = bundle_run("liver_ct_sat", ["train"], {"bundle_root": str(tmp_path / "b"), "dataset_dir": str(data),
                                                  "epochs": 1, **TINY["liver_ct_sat"]}, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "python -m data_prep demo --task liver" in out and "python -m data_prep import" in out
    assert not (tmp_path / "b" / "models" / "model.pt").exists()
