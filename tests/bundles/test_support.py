"""Unit tests of satgate_monai.bundle: loud data loading, metrics, Table 1 summary, resume state, crops."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from satgate_monai.bundle import (
    CaseMetricsWriter,
    DatasetNotFoundError,
    ResumeHandler,
    case_metrics,
    format_table1,
    load_datalist,
    require_data,
    require_file,
    summarise,
)
from satgate_monai.bundle.handlers import center_crop_on_label
from satgate_monai.bundle.metrics import mean_std
from tests.bundles.synthetic import make_dataset


def test_load_datalist_resolves_relative_paths(tmp_path):
    root = make_dataset(tmp_path / "prep", "skin", n_train=2, n_val=1, n_test=1, size=8)
    items = load_datalist(root, "training", task="skin")
    assert len(items) == 2 and all(set(i) == {"image", "label"} for i in items)
    assert all(i["image"].startswith(str(root)) and i["image"].endswith(".png") for i in items)
    assert list(load_datalist(root, "test", keys=["image"])[0]) == ["image"]


@pytest.mark.parametrize("case", ["missing_dir", "no_datalist", "empty_split", "missing_file"])
def test_load_datalist_fails_loudly(tmp_path, case):
    root = tmp_path / "prep"
    if case != "missing_dir":
        make_dataset(root, "liver", n_train=1, n_val=1, n_test=1, size=8)
    if case == "no_datalist":
        (root / "datalist.json").unlink()
    elif case == "empty_split":
        d = json.loads((root / "datalist.json").read_text())
        d["training"] = []
        (root / "datalist.json").write_text(json.dumps(d))
    elif case == "missing_file":
        next((root / "images").iterdir()).unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        for split in ("training", "validation", "test"):
            load_datalist(root, split, task="liver")
    msg = str(err.value)
    assert "python -m data_prep demo --task liver" in msg
    assert "python -m data_prep import --dataset msd-liver" in msg
    assert str(root) in msg


def test_load_datalist_bad_json(tmp_path):
    (tmp_path / "datalist.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_datalist(tmp_path, "training")


def test_require_data_and_file(tmp_path):
    assert require_data([1, 2]) == 2
    with pytest.raises(DatasetNotFoundError, match="python -m data_prep demo"):
        require_data([], "train#dataset")
    with pytest.raises(FileNotFoundError, match="train the bundle"):
        require_file(tmp_path / "model.pt", "checkpoint", "train the bundle first")
    (tmp_path / "model.pt").write_bytes(b"x")
    assert require_file(tmp_path / "model.pt", "checkpoint", "-") == str(tmp_path / "model.pt")


def test_case_metrics_known_values():
    pred = np.zeros((4, 5), dtype=np.uint8)
    label = np.zeros((4, 5), dtype=np.uint8)
    pred[0, :4] = 1  # 4 predicted
    label[0, 2:5] = 1  # 3 true, overlap 2 -> TP 2, FP 2, FN 1, TN 15
    m = case_metrics(pred, label, voxel_size=8.0, unit_scale=1e-3)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 2, 1, 15)
    assert m["dice"] == pytest.approx(4 / 7)
    assert m["fpr"] == pytest.approx(2 / 17)
    assert m["fnr"] == pytest.approx(1 / 3)
    assert m["pred_volume"] == pytest.approx(4 * 8e-3) and m["label_volume"] == pytest.approx(3 * 8e-3)
    empty = case_metrics(np.zeros((3, 3)), np.zeros((3, 3)))
    assert empty["dice"] == 1.0 and empty["fpr"] == 0.0 and math.isnan(empty["fnr"])
    with pytest.raises(ValueError, match="shapes differ"):
        case_metrics(np.zeros((2, 2)), np.zeros((2, 3)))


def test_table1_format():
    rows = [{"dice": 0.8, "fpr": 0.001, "fnr": 0.2}, {"dice": 0.6, "fpr": 0.003, "fnr": float("nan")}]
    s = summarise(rows, method="SATUNet (sat)")
    # sample std (ddof 1): std of (0.8, 0.6) is 0.1414; one FNR value has no std, so the cell shows the mean alone
    assert s["dice"]["mean"] == pytest.approx(0.7) and s["dice"]["std"] == pytest.approx(0.1 * math.sqrt(2))
    assert s["fnr"]["n"] == 1 and s["n_cases"] == 2 and math.isnan(s["fnr"]["std"])
    table = format_table1([s])
    assert table.splitlines()[0] == "| Method | Dice | FPR | FNR | Cases |"
    assert "| SATUNet (sat) | 0.700 ± 0.141 | 0.0020 ± 0.0014 | 0.200 | 2 |" in table


def test_bundle_summary_and_experiment_tables_share_one_std():
    """"mean ± std" means the same in a bundle's summary.md and in the experiment report: the sample std."""
    from satgate_monai.experiments.stats import describe

    values = [0.91, 0.72, 0.85, float("nan"), 0.64]
    mean, std, n = mean_std(values)
    assert (mean, std, n) == (pytest.approx(np.nanmean(values)), pytest.approx(np.nanstd(values, ddof=1)), 4)
    assert describe(values) == {"mean": pytest.approx(mean), "std": pytest.approx(std), "n": 4}
    assert describe([0.5])["std"] is None and math.isnan(mean_std([0.5])[1])


def test_case_metrics_writer_files(tmp_path):
    from monai.data import MetaTensor

    from satgate_monai.networks.nets import SATUNet

    writer = CaseMetricsWriter(tmp_path, network=SATUNet(3, 1, 2, channels=(2, 4), skip_gate="org"))
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0]))
    label = torch.zeros(2, 4, 4, 4)
    label[1, :2] = 1
    label[0] = 1 - label[1]
    pred = label.clone()
    writer.add_case(MetaTensor(pred, affine=affine, meta={"filename_or_obj": "/x/images/c1.nii.gz"}), label)
    writer.add_case(MetaTensor(torch.stack([torch.ones(4, 4, 4), torch.zeros(4, 4, 4)]), affine=affine,
                               meta={"filename_or_obj": "/x/images/c2.nii.gz"}), label)
    summary = writer.write()
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["case"] for r in rows] == ["c1", "c2"]
    assert float(rows[0]["dice"]) == 1.0 and float(rows[1]["dice"]) == 0.0 and float(rows[1]["fnr"]) == 1.0
    assert float(rows[0]["label_volume"]) == pytest.approx(32 * 8e-3) and rows[0]["volume_unit"] == "mL"
    assert summary["method"] == "SATUNet (org)" and summary["dice"]["mean"] == pytest.approx(0.5)
    assert "| SATUNet (org) | 0.500 ± 0.707 |" in (tmp_path / "summary.md").read_text()  # sample std of (1, 0)
    assert json.loads((tmp_path / "summary.json").read_text())["n_cases"] == 2


def test_center_crop_on_label():
    image = torch.arange(10 * 12, dtype=torch.float32).reshape(1, 10, 12)
    label = torch.zeros(1, 10, 12)
    label[0, 8, 10] = 1
    crop = center_crop_on_label(image, label, [4, 4])
    assert crop.shape == (1, 4, 4) and crop[0, -1, -1] == image[0, 9, 11]
    padded = center_crop_on_label(image, None, [16, 8])
    assert padded.shape == (1, 16, 8) and padded[0, 0].abs().sum() == 0


def test_resume_handler_round_trip(tmp_path):
    """The saved state restores weights, optimizer, epoch and the best-checkpoint bookkeeping; completed runs not."""
    from ignite.engine import Engine, Events
    from monai.handlers import CheckpointSaver

    net = torch.nn.Linear(2, 1)
    opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
    evaluator = Engine(lambda e, b: None)
    evaluator.state.best_metric, evaluator.state.best_metric_epoch = 0.75, 2
    saver = CheckpointSaver(str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="m",
                            key_metric_filename="model.pt")
    saver._key_metric_checkpoint._saved = [saver._key_metric_checkpoint.Item(0.75, "model.pt")]
    trainer = Engine(lambda e, b: None)
    handler = ResumeHandler(tmp_path, net, opt, evaluator=evaluator, best_saver=saver)
    handler.attach(trainer)

    def kill(_engine):
        raise RuntimeError("killed")

    trainer.add_event_handler(Events.EPOCH_COMPLETED(once=3), kill)
    with pytest.raises(RuntimeError, match="killed"):
        trainer.run([0, 1], max_epochs=10)  # interrupted after epoch 3 was saved
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 3 and not state["completed"]
    assert state["best_saver"]["_saved"] == [(0.75, "model.pt")]

    net2 = torch.nn.Linear(2, 1)
    opt2 = torch.optim.Adadelta(net2.parameters(), lr=1.0)
    ev2 = Engine(lambda e, b: None)
    saver2 = CheckpointSaver(str(tmp_path), {"model": net2}, save_key_metric=True, key_metric_name="m",
                             key_metric_filename="model.pt")
    epochs = []
    trainer2 = Engine(lambda e, b: None)
    handler2 = ResumeHandler(tmp_path, net2, opt2, evaluator=ev2, best_saver=saver2)
    handler2.attach(trainer2)
    trainer2.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs.append(e.state.epoch))
    trainer2.run([0, 1], max_epochs=5)
    assert handler2.resumed_epoch == 3 and epochs == [4, 5]
    assert torch.equal(net2.weight, net.weight)
    assert ev2.state.best_metric == 0.75 and ev2.state.best_metric_epoch == 2
    assert [tuple(i) for i in saver2._key_metric_checkpoint._saved] == [(0.75, "model.pt")]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["completed"]

    trainer3 = Engine(lambda e, b: None)
    handler3 = ResumeHandler(tmp_path, torch.nn.Linear(2, 1), opt2)
    handler3.attach(trainer3)
    trainer3.run([0], max_epochs=1)
    assert handler3.resumed_epoch is None  # a finished training is not resumed


def test_progress_bar_shows_loss(capsys):
    from ignite.engine import Engine

    from satgate_monai.bundle import TrainProgressBar

    engine = Engine(lambda e, b: [{"loss": torch.tensor(0.25)}])
    TrainProgressBar(disable=False, persist=True).attach(engine)
    engine.run([0, 1, 2], max_epochs=1)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss=0.25" in err


@pytest.mark.parametrize("bundle", ["liver_ct_sat", "prostate_mri_sat"])
def test_bundles_refuse_data_prepared_at_another_spacing(bundle, tmp_path):
    """``datalist.json`` records the spacing data_prep resampled to; every data list of a 3D bundle checks it."""
    from monai.bundle import ConfigParser

    from tests.bundles.helpers import config_path, task_of

    data = make_dataset(tmp_path / "data", task_of(bundle).name, n_train=1, n_val=1, n_test=1, size=12)
    good = list(task_of(bundle).data.spacing)  # the bundle's pixdim
    bad = [s + 0.5 for s in good]
    datalist = json.loads((data / "datalist.json").read_text())
    lists = {"train": ["train#dataset#data", "validate#dataset#data"], "inference": ["dataset#data"],
             "evaluate": ["validate#dataset#data"]}
    for spacing, fails in ((good, False), (None, False), (bad, True)):
        (data / "datalist.json").write_text(json.dumps({**datalist, "spacing": spacing}))
        for config, ids in lists.items():
            parser = ConfigParser()
            files = [config_path(bundle, "train")] if config == "evaluate" else []
            parser.read_config([str(f) for f in [*files, config_path(bundle, config)]])
            parser["dataset_dir"] = str(data)
            for key in ids:
                if not fails:
                    assert len(parser.get_parsed_content(key)) == 1
                    continue
                with pytest.raises(RuntimeError) as raised:  # MONAI wraps what a config expression raises
                    parser.get_parsed_content(key)
                assert isinstance(raised.value.__cause__, ValueError), raised.value
                assert str(raised.value.__cause__).startswith(
                    f"{data / 'datalist.json'} records spacing {bad} mm but the bundle's pixdim is {good} mm: "
                ), raised.value.__cause__
