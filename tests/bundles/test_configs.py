"""Static checks of the three bundles: layout, metadata, MONAI Label ids, and train/inference consistency."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from monai.bundle import ConfigParser

from satgate_monai.networks.blocks.skip_gates import ATGate, OrgGate, SATGate, STGate
from satgate_monai.networks.inspection import gate_modules
from tests.bundles.helpers import BUNDLE_DIR, BUNDLES, config_path, load_json, python_env, task_of

LAYOUT = ["LICENSE", "configs/metadata.json", "configs/train.json", "configs/evaluate.json",
          "configs/inference.json", "configs/multi_gpu_train.json", "configs/logging.conf", "docs/README.md",
          "docs/data_license.txt"]
SHARED_IDS = ["network_def", "intensity", "roi_size", "task", "imports"]
SPATIAL_IDS = {b: ["pixdim", "axcodes"] if task_of(b).data.spatial_dims == 3 else ["image_size"] for b in BUNDLES}


def parser_for(bundle: str, *names: str, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(config_path(bundle, n)) for n in names])
    parser.read_meta(str(config_path(bundle, "metadata")))
    for k, v in overrides.items():
        parser[k] = v
    return parser


@pytest.mark.parametrize("bundle", BUNDLES)
def test_layout(bundle):
    missing = [f for f in LAYOUT if not (BUNDLE_DIR / bundle / f).is_file()]
    assert not missing, f"{bundle} lacks {missing}"
    assert not (BUNDLE_DIR / bundle / "configs" / "inference.yml").exists(), "MONAI Label ignores .yml"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_and_inference_share_network_and_preprocessing(bundle):
    """inference.json and train.json stand alone, so the shared parts are duplicated: they must not drift."""
    train, infer = load_json(bundle, "train"), load_json(bundle, "inference")
    for key in SHARED_IDS + SPATIAL_IDS[bundle]:
        assert key in train and key in infer, f"{bundle}: {key} missing"
        assert train[key] == infer[key], f"{bundle}: {key} differs between train.json and inference.json"
    assert train["validate"]["inferer"] == infer["inferer"], f"{bundle}: validation and inference inferers differ"
    # the image part of the train/validation spatial transforms equals the inference ones, in the same order
    image_only = []
    for t in train["train"]["deterministic_transforms"]:
        keys = t["keys"] if isinstance(t["keys"], list) else [t["keys"]]
        if "image" not in keys:
            continue
        t = dict(t, keys="image")
        for per_key in ("mode", "anti_aliasing", "padding_mode", "align_corners"):  # one value per key
            if isinstance(t.get(per_key), list):
                t[per_key] = t[per_key][keys.index("image")]
        image_only.append(t)
    assert image_only == infer["spatial_transforms"], f"{bundle}: spatial preprocessing differs"
    # the composed pipelines really use those shared pieces
    assert "@intensity" in train["train"]["preprocessing"]["transforms"]
    assert "@intensity" in train["validate"]["preprocessing"]["transforms"]
    assert infer["preprocessing"]["transforms"].startswith("$@spatial_transforms + @intensity")
    if "image_size" in infer["engine"]:  # 2D: the case engine loads as declared and resizes as the last step does
        resize = infer["spatial_transforms"][-1]
        assert infer["loading"] == "$@spatial_transforms[:-1]" and infer["engine"]["image_size"] == "@image_size"
        assert (resize["_target_"], resize["spatial_size"], resize["mode"], resize["anti_aliasing"]) == (
            "Resized", "@image_size", "bilinear", True), resize


@pytest.mark.parametrize("bundle", BUNDLES)
def test_recipe(bundle):
    train = load_json(bundle, "train")
    opt = train["optimizer"]
    assert opt["_target_"] == "torch.optim.Adadelta" and (opt["lr"], opt["rho"], opt["eps"]) == (1.0, 0.95, 1e-8)
    assert train["loss"]["_target_"] == "DiceCELoss"
    net = train["network_def"]
    assert net["_target_"].startswith("satgate_monai.networks.nets.")
    assert (net["init"], net["norm"], net["skip_gate"]) == ("glorot", "batch", "sat")
    assert train["validate"]["inferer"]["_target_"] == "SlidingWindowInferer"
    if task_of(bundle).data.spatial_dims == 3:
        targets = [t["_target_"] for t in train["train"]["random_transforms"]]
        assert "RandCropByPosNegLabeld" in targets
        assert train["pixdim"] == list(task_of(bundle).data.spacing)  # data_prep.tasks.TARGET_SPACING, 2 mm


@pytest.mark.parametrize("bundle", BUNDLES)
def test_no_image_prefixed_data_keys(bundle):
    """monai 1.6.1's Spacingd updates every data key named image_*: the configs must not create such keys."""
    for name in ("train", "inference", "evaluate"):
        text = config_path(bundle, name).read_text()
        for key in json.loads(text).get("intensity", []):
            assert not str(key.get("keys", "")).startswith("image_")
        assert '"image_' not in text.replace('"image_only"', "").replace('"image_key"', "").replace(
            '"image_threshold"', "").replace('"image_size"', ""), f"{bundle}/{name}: a data key image_*"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_monailabel_ids(bundle):
    """The ids MONAI Label reads from inference.json and overrides in train.json exist; Invertd is kept."""
    infer = load_json(bundle, "inference")
    for key in ("network_def", "preprocessing", "postprocessing", "inferer", "bundle_root", "device"):
        assert key in infer, key
    post = [t["_target_"] for t in infer["postprocessing"]["transforms"]]
    assert "Invertd" in post and post.index("Invertd") < post.index("AsDiscreted")
    parser = parser_for(bundle, "train")
    for key in ("train#trainer#max_epochs", "train#dataset#data", "validate#dataset#data", "train#handlers",
                "device", "bundle_root", "network", "network_def"):
        assert key in parser, key
    assert all(isinstance(h, dict) and "_target_" in h for h in parser["train#handlers"])
    meta = json.loads(config_path(bundle, "metadata").read_text())
    image = meta["network_data_format"]["inputs"]["image"]
    pred = meta["network_data_format"]["outputs"]["pred"]
    assert len(image["spatial_shape"]) == task_of(bundle).data.spatial_dims
    assert pred["channel_def"]["0"] == "background" and len(pred["channel_def"]) == pred["num_channels"] == 2
    assert image["num_channels"] == infer["network_def"]["in_channels"]
    assert meta["version"] in meta["changelog"]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_inference_preprocessing_instantiates_flat(bundle, tmp_path):
    """MONAI Label swaps LoadImaged inside preprocessing.transforms: it must sit at the top level."""
    from monai.transforms import Compose, Invertd, LoadImaged

    parser = parser_for(bundle, "inference", bundle_root=str(tmp_path))
    pre = parser.get_parsed_content("preprocessing")
    assert isinstance(pre, Compose) and isinstance(pre.transforms[0], LoadImaged)
    post = parser.get_parsed_content("postprocessing")
    assert any(isinstance(t, Invertd) for t in post.transforms)


@pytest.mark.parametrize("gate", ["org", "at", "st", "sat"])
@pytest.mark.parametrize("bundle", BUNDLES)
def test_skip_gate_override(bundle, gate):
    """``--network_def#skip_gate`` switches the gate of every skip with the same network and recipe."""
    parser = parser_for(bundle, "train", **{"network_def#skip_gate": gate, "network_def#channels": [4, 8, 16],
                                            "network_def#strides": [2, 2]})
    net = parser.get_parsed_content("network_def")
    expected = {"org": OrgGate, "at": ATGate, "st": STGate, "sat": SATGate}[gate]
    gates = list(gate_modules(net).values())
    assert len(gates) == 2 and all(type(g) is expected for g in gates)
    dims = parser["network_def"]["spatial_dims"]
    x = torch.rand(1, parser["network_def"]["in_channels"], *([16] * dims))
    net.eval()
    assert net(x).shape == (1, 2, *([16] * dims))


@pytest.mark.parametrize(
    "bundle,network_def",
    [
        ("liver_ct_sat", {"_target_": "satgate_monai.networks.nets.SATVNet", "spatial_dims": 3, "in_channels": 1,
                          "out_channels": 2, "channels": [4, 8, 16], "strides": [2, 2], "skip_gate": "org"}),
        ("skin_lesion_sat", {"_target_": "satgate_monai.networks.nets.SATFCDenseNet", "spatial_dims": 2,
                             "in_channels": 3, "out_channels": 2, "preset": None, "growth_rate": 4,
                             "layers_per_block": [2, 2, 2], "first_channels": 8, "skip_gate": "sat"}),
    ],
)
def test_network_swap(bundle, network_def):
    """Overriding ``network_def`` swaps in V-Net or FC-DenseNet; ``network`` follows."""
    parser = parser_for(bundle, "train", network_def=network_def, device="cpu")
    net = parser.get_parsed_content("network")
    assert type(net).__name__ == network_def["_target_"].rsplit(".", 1)[1]
    dims = network_def["spatial_dims"]
    net.eval()
    size = 32
    assert net(torch.rand(1, network_def["in_channels"], *([size] * dims))).shape == (1, 2, *([size] * dims))


@pytest.mark.parametrize("bundle", BUNDLES)
def test_verify_metadata(bundle, shared_dir, tmp_path):
    """Each metadata.json validates against the official schema; a broken copy does not (so the check can fail)."""
    from monai.bundle import verify_metadata

    schema = shared_dir / "schema" / "meta_schema_20240725.json"
    verify_metadata(meta_file=str(config_path(bundle, "metadata")), filepath=str(schema))
    broken = json.loads(config_path(bundle, "metadata").read_text())
    del broken["network_data_format"]["inputs"]["image"]["num_channels"]
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="num_channels"):
        verify_metadata(meta_file=str(bad), filepath=str(schema))


@pytest.mark.slow
def test_verify_metadata_cli(shared_dir):
    """The documented command, offline: ``python -m monai.bundle verify_metadata --filepath <local schema>``."""
    schema = shared_dir / "schema" / "meta_schema_20240725.json"
    cmd = [sys.executable, "-m", "monai.bundle", "verify_metadata", "--meta_file",
           str(config_path("skin_lesion_sat", "metadata")), "--filepath", str(schema)]
    ok = subprocess.run(cmd, capture_output=True, text=True, env=python_env(), timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "metadata is verified with no error" in ok.stdout + ok.stderr
