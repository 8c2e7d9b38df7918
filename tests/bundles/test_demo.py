"""``python -m satgate_monai.demo``: data_prep demo -> import -> train -> evaluate -> inference, outside the repo."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from satgate_monai.demo import DEMOS, prepare_bundle_copy
from tests.bundles.helpers import BUNDLE_DIR, python_env


def _tree_state(path):
    return sorted((p.relative_to(path).as_posix(), p.stat().st_mtime_ns) for p in path.rglob("*"))


@pytest.mark.slow
def test_demo_skin_end_to_end(tmp_path):
    before = _tree_state(BUNDLE_DIR)
    cmd = [sys.executable, "-m", "satgate_monai.demo", "--task", "skin", "--out", str(tmp_path / "demo"),
           "--epochs", "1", "--cases", "8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=python_env(), timeout=400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "Test-split Dice" in proc.stdout and "NOT patient data" in proc.stdout
    # text mode turns every "\r" into a line end: each progress-bar refresh counts as a line, as in a log file or a CI
    # transcript, so the count holds there too and cannot grow on a slower machine (no time-driven refreshes)
    terminal = (proc.stdout + proc.stderr).rstrip("\n").split("\n")
    assert len(terminal) <= 30, "\n".join(terminal)
    assert proc.stdout.strip().splitlines()[-1].startswith("Test-split Dice"), "the Dice summary must come last"
    assert "INFO" not in proc.stdout + proc.stderr and "nvImageCodec" not in proc.stdout + proc.stderr
    log = (tmp_path / "demo" / "demo.log").read_text()
    assert "Epoch: 1/1, Iter:" in log and "SupervisedEvaluator" in log and "python -m monai.bundle run" in log
    result = json.loads((tmp_path / "demo" / "demo_result.json").read_text())
    bundle = tmp_path / "demo" / "skin_lesion_sat"
    assert result["bundle"] == str(bundle) and result["summary"]["n_cases"] >= 1
    assert (bundle / "models" / "model.pt").is_file() and (bundle / "eval" / "metrics.csv").is_file()
    assert result["predictions"] and all(p.endswith("_seg.png") for p in result["predictions"])
    inference = json.loads((bundle / "configs" / "inference.json").read_text())
    assert inference["network_def"]["channels"] == DEMOS["skin"]["overrides"]["network_def#channels"]
    assert _tree_state(BUNDLE_DIR) == before, "the demo wrote into the repository's bundles folder"


def test_bundle_copy_keeps_train_and_inference_in_step(tmp_path):
    dst = prepare_bundle_copy("liver", tmp_path, {"network_def#channels": [2, 4], "roi_size": [8, 8, 8],
                                                  "network_def#skip_gate": "org"})
    train = json.loads((dst / "configs" / "train.json").read_text())
    infer = json.loads((dst / "configs" / "inference.json").read_text())
    for cfg in (train, infer):
        assert cfg["network_def"]["channels"] == [2, 4] and cfg["network_def"]["skip_gate"] == "org"
        assert cfg["roi_size"] == [8, 8, 8]
    assert (dst / "LICENSE").is_file() and (dst / "docs" / "README.md").is_file()
    with pytest.raises(KeyError, match="no_such_id"):
        prepare_bundle_copy("liver", tmp_path / "x", {"no_such_id": 1})


def test_demo_rejects_unknown_task(tmp_path, capsys):
    from satgate_monai.demo import main

    with pytest.raises(SystemExit):
        main(["--task", "brain", "--out", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err


def test_demo_data_steps_show_only_their_step_lines(tmp_path, capfd):
    """The phantom and import steps print one line each, however fast the machine: no progress bar whose refreshes
    (one per 0.1 s, so more on a slow machine) would add lines where the output is not a terminal."""
    from satgate_monai.demo import _make_data, _Steps

    log = tmp_path / "demo.log"
    _make_data("skin", DEMOS["skin"]["dataset"], tmp_path, 4, 0, _Steps(5, quiet=False), log)
    out, err = capfd.readouterr()
    assert [line.split(" ")[0] for line in out.splitlines()] == ["[1/5]", "[2/5]"], out
    assert err == "", err
    assert "python -m data_prep demo" in log.read_text()
