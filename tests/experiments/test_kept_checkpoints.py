"""Checkpoints kept along training (``--keep-epochs``): the kept weights are the weights at that epoch, keeping them
does not change the training, each is evaluated on the test split, and the selection is tracked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from satgate_monai.bundle.checkpoint import load_state_dict
from satgate_monai.experiments import cli
from satgate_monai.experiments.checkpoints import HIST_EDGES, kept_results, parse_epochs
from tests.conftest import REPO_ROOT, skip_or_fail
from tests.experiments.tiny_data import write_tiny_skin

BUNDLE = REPO_ROOT / "bundles" / "skin_lesion_sat"
NET_ARGS = {"channels": [4, 8, 16], "strides": [2, 2]}


def _args(data: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return ["run", "--task", "skin", "--data", str(data), "--out", str(out), "--networks", "unet",
            "--gates", "sat", "--seeds", "1", "--epochs", str(epochs), "--no-progress", "--bootstrap", "100",
            "--network-args", "unet=" + json.dumps(NET_ARGS), "--override", "image_size=[32,32]",
            "--override", "num_workers=0", "--override", "batch_size=3", *extra]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_state_dict(path)


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_parse_epochs():
    assert parse_epochs("20,10,20") == [10, 20]
    for bad in ("", "0,5", "a", "-1"):
        with pytest.raises(ValueError, match="--keep-epochs"):
            parse_epochs(bad)


@pytest.mark.slow
def test_kept_checkpoint_is_the_weights_at_that_epoch(tmp_path):
    if not (BUNDLE / "configs" / "train.json").is_file():
        skip_or_fail(f"{BUNDLE} has no train config")
    data = write_tiny_skin(tmp_path / "data", n_train=4, n_val=1, n_test=2, size=32)
    # the best-on-validation checkpoint must not stand in for the last weights: validate only at the end
    assert cli.main(_args(data, tmp_path / "long", 3, "--keep-epochs", "2,3", "--override", "val_interval=3",
                          "--gates", "org,sat")) == 0
    assert cli.main(_args(data, tmp_path / "short", 2, "--override", "val_interval=2")) == 0
    assert cli.main(_args(data, tmp_path / "plain", 3, "--override", "val_interval=3")) == 0
    cell = tmp_path / "long" / "cells" / "unet-sat-s0"
    # epoch 2 kept during the 3-epoch run == the end of a separate 2-epoch run with the same seed
    _assert_same(_weights(cell / "kept" / "epoch_0002.pt"),
                 _weights(tmp_path / "short" / "cells" / "unet-sat-s0" / "models" / "last.pt"))
    # keeping (and evaluating in between) does not change the training: epoch 3 == a run that keeps nothing
    _assert_same(_weights(cell / "kept" / "epoch_0003.pt"),
                 _weights(tmp_path / "plain" / "cells" / "unet-sat-s0" / "models" / "last.pt"))
    kept = kept_results(cell)
    assert [k["epoch"] for k in kept] == [2, 3]
    # the last kept epoch is evaluated on the same weights as the final evaluation (validated only at epoch 3)
    record = json.loads((cell / "cell.json").read_text())
    assert [c["dice"] for c in kept[-1]["cases"]] == pytest.approx([c["dice"] for c in record["cases"]], abs=1e-6)
    assert len(kept[0]["cases"]) == 2
    skips = kept[0]["selection"]
    assert len(skips) == len(NET_ARGS["channels"]) - 1
    state = _weights(cell / "kept" / "epoch_0002.pt")
    raw = [v for k, v in state.items() if k.endswith("selection.weight")]
    for skip, w in zip(skips, raw):
        assert skip["n"] == w.numel() == sum(skip["hist"]) and len(skip["hist"]) == len(HIST_EDGES) + 1
        assert skip["off"] == pytest.approx(float((w <= 0).float().mean()))
        assert 0 <= skip["crossed0_now"] <= skip["crossed0_ever"] <= skip["n"]
    track = json.loads((cell / "kept" / "selection_track.json").read_text())
    assert track["epoch"] == 3 and len(track["initial"]) == len(skips)
    _check_report(tmp_path, tmp_path / "long", kept)


def _check_report(tmp_path: Path, run: Path, sat_kept: list[dict]) -> None:
    """The generated docs section pairs the kept evaluations per test case, and is replaced (not repeated) on rerun."""
    from satgate_monai.experiments import curves_report
    from satgate_monai.experiments.stats import paired_comparison

    docs = tmp_path / "docs" / "experiments.md"
    docs.parent.mkdir()
    docs.write_text("# Experiments\n\n## results.json\n\nschema\n")
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n")
    argv = ["--run", f"Tiny={run}", "--docs", str(docs), "--readme", str(readme), "--figures", str(docs.parent / "f"),
            "--bootstrap", "200"]
    assert curves_report.main(argv) == 0
    assert curves_report.main(argv) == 0
    text = docs.read_text()
    assert text.count("## Does the gap close with training?") == 1 and text.index("gap close") < text.index(
        "## results.json")
    assert (docs.parent / "f" / "curves_gap.png").stat().st_size > 1000
    assert (docs.parent / "f" / "curves_selection.png").is_file()
    assert readme.read_text().count("<!-- curves-summary:begin -->") == 1 and "SAT − ORG Dice" in readme.read_text()
    org = json.loads((run / "cells" / "unet-org-s0" / "kept" / "epoch_0003.json").read_text())["cases"]
    sat = sat_kept[-1]["cases"]
    expected = paired_comparison([c["dice"] for c in sat], [c["dice"] for c in org], n_boot=200)
    row = next(line for line in text.splitlines() if line.startswith("| Tiny | SAT − ORG | 3 |"))
    assert f"{expected['mean_difference']:.3f} [{expected['ci95'][0]:.3f}, {expected['ci95'][1]:.3f}]" in row
    assert "| Tiny | SAT | draw | 0 |" in text


@pytest.mark.slow
def test_resumed_training_keeps_done_evaluations_and_keeps_a_missing_epoch(tmp_path):
    """Interrupted after the last epoch's ``last.pt`` but before that epoch was kept: the rerun keeps it (the same
    weights) and leaves the evaluations already written alone."""
    if not (BUNDLE / "configs" / "train.json").is_file():
        skip_or_fail(f"{BUNDLE} has no train config")
    data = write_tiny_skin(tmp_path / "data", n_train=4, n_val=1, n_test=2, size=32)
    args = _args(data, tmp_path / "run", 3, "--keep-epochs", "1,3")
    assert cli.main(args) == 0
    cell = tmp_path / "run" / "cells" / "unet-sat-s0"
    first = (cell / "kept" / "epoch_0001.json").stat().st_mtime_ns
    kept3 = _weights(cell / "kept" / "epoch_0003.pt")
    for name in ("cell.json", "trained.json", "kept/epoch_0003.pt", "kept/epoch_0003.json"):
        (cell / name).unlink()
    last = cell / "models" / "last.pt"  # as if killed right after the epoch-3 checkpoint, before the end of training
    state = torch.load(last, weights_only=True)
    state["completed"] = False
    torch.save(state, last)
    assert cli.main(args) == 0
    assert (cell / "kept" / "epoch_0001.json").stat().st_mtime_ns == first
    _assert_same(_weights(cell / "kept" / "epoch_0003.pt"), kept3)
    assert [k["epoch"] for k in kept_results(cell)] == [1, 3]


def test_keep_epochs_beyond_training_fail_in_one_line(tmp_path, capsys):
    if not (BUNDLE / "configs" / "train.json").is_file():
        skip_or_fail(f"{BUNDLE} has no train config")
    data = write_tiny_skin(tmp_path / "data", n_train=2, n_val=1, n_test=1, size=32)
    assert cli.main(_args(data, tmp_path / "run", 2, "--keep-epochs", "1,5")) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --keep-epochs 1,5 goes beyond the 2 training epochs." and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_optimizer_adam_trains_with_adam(tmp_path):
    if not (BUNDLE / "configs" / "train.json").is_file():
        skip_or_fail(f"{BUNDLE} has no train config")
    data = write_tiny_skin(tmp_path / "data", n_train=2, n_val=1, n_test=1, size=32)
    assert cli.main(_args(data, tmp_path / "run", 1, "--optimizer", "adam")) == 0
    state = torch.load(tmp_path / "run" / "cells" / "unet-sat-s0" / "models" / "last.pt", weights_only=True)
    assert all("exp_avg" in s for s in state["optimizer"]["state"].values())  # Adadelta keeps square_avg instead
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-3)
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert settings["optimizer"] == "adam" and settings["overrides"]["optimizer"]["_target_"] == "torch.optim.Adam"
