"""End to end: a tiny grid through the skin bundle, its tables and figures, the cache/resume, the dry run."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from satgate_monai.experiments import cli
from satgate_monai.experiments.bundle_task import BundleTask
from tests.conftest import REPO_ROOT, skip_or_fail
from tests.experiments.tiny_data import write_tiny_skin

BUNDLE = REPO_ROOT / "bundles" / "skin_lesion_sat"
NET_ARGS = {"channels": [4, 8, 16], "strides": [2, 2]}


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--task", "skin", "--data", str(data), "--out", str(out), "--networks", "unet",
            "--gates", "org,sat", "--seeds", "1", "--epochs", "1", "--no-progress", "--bootstrap", "300",
            "--network-args", "unet=" + json.dumps(NET_ARGS), "--override", "image_size=[32,32]",
            "--override", "num_workers=0", "--override", "batch_size=3", *extra]


@pytest.fixture()
def bundle_ready():
    if not (BUNDLE / "configs" / "train.json").is_file() or not (BUNDLE / "configs" / "evaluate.json").is_file():
        skip_or_fail(f"{BUNDLE} has no train/evaluate config")


def _table_row(report: str, first_cells: str) -> list[str]:
    for line in report.splitlines():
        if line.startswith(f"| {first_cells} |"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no row starting with {first_cells!r} in the report")


def _mean_std(cell: str) -> tuple[float, float]:
    m = re.fullmatch(r"(-?\d+\.\d+) ± (\d+\.\d+)", cell)
    assert m, cell
    return float(m.group(1)), float(m.group(2))


def _csv_dice(path: Path) -> dict[str, float]:
    with path.open() as f:
        return {r["case"]: float(r["dice"]) for r in csv.DictReader(f)}


@pytest.mark.slow
def test_tiny_grid_tables_figures_and_resume(tmp_path, bundle_ready, monkeypatch):
    data = write_tiny_skin(tmp_path / "data")
    out = tmp_path / "run"
    assert cli.main(_args(data, out)) == 0

    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    assert [c["key"] for c in results["cells"]] == ["unet-org-s0", "unet-sat-s0"]
    assert {(v["network"], v["gate"]) for v in results["variants"]} == {("unet", "org"), ("unet", "sat")}

    # Table 1: every row formatted from results.json, and results.json agrees with the bundle's per-case CSVs
    for variant in results["variants"]:
        gate = variant["gate"]
        csv_dice = _csv_dice(out / "cells" / f"unet-{gate}-s0" / "eval" / "metrics.csv")
        assert len(csv_dice) == 6 and variant["n_cases"] == 6
        assert variant["dice"]["mean"] == pytest.approx(np.mean(list(csv_dice.values())), abs=1e-5)
        assert variant["dice"]["std"] == pytest.approx(np.std(list(csv_dice.values()), ddof=1), abs=1e-5)
        row = _table_row(report, f"U-Net | {gate.upper()}")
        for col, metric in ((2, "dice"), (3, "fpr"), (4, "fnr")):
            mean, std = _mean_std(row[col])
            assert mean == pytest.approx(variant[metric]["mean"], abs=6e-4)
            assert std == pytest.approx(variant[metric]["std"], abs=6e-4)
        expected_channels = "4/8" if gate == "org" else "1/1"
        assert row[6].startswith(expected_channels)

    # Table 3: parameters of the networks actually trained, SAT lighter than ORG
    from satgate_monai.networks.nets import SATUNet

    counts = {g: sum(p.numel() for p in SATUNet(2, 3, 2, skip_gate=g, **NET_ARGS).parameters()) for g in ("org", "sat")}
    assert results["params"][0]["params"] == counts and counts["sat"] < counts["org"]
    t3 = [line for line in report.split("## Table 3")[1].splitlines() if line.startswith("| U-Net |")][0]
    assert f"{counts['org']:,}" in t3 and f"{counts['sat']:,}" in t3

    # switched-off share: from the trained selection weights
    assert "## Switched-off skip channels" in report
    sat_cell = next(c for c in results["cells"] if c["gate"] == "sat")
    assert 0.0 <= sat_cell["switched_off_fraction"] <= 1.0
    assert [s["in_channels"] for s in sat_cell["skips"]] == [4, 8]
    # ... with the shares off / between / frozen, per skip and pooled, in results.json and the report
    sel, skips = sat_cell["selection"], sat_cell["skips"]
    assert sel["n"] == 12 and sum(sel[k] for k in ("off", "between", "frozen")) == pytest.approx(1.0)
    for key, skip_key in (("off", "switched_off"), ("between", "between"), ("frozen", "frozen")):
        assert sel[key] == pytest.approx(sum(s[skip_key] * s["in_channels"] for s in skips) / 12)
    sat_row = next(r for r in results["switched_off"] if r["gate"] == "sat")
    row = _table_row(report.split("## Switched-off skip channels")[1], "U-Net | SAT")
    for col, key in ((2, "off"), (3, "between"), (4, "frozen")):
        assert float(row[col]) == pytest.approx(sat_row["selection"][key]["mean"], abs=6e-4)
    assert row[5] == " / ".join(f"{100 * s['switched_off']:.0f}-{100 * s['between']:.0f}-{100 * s['frozen']:.0f}"
                                for s in skips)

    # paired test: recomputed independently from the two CSVs
    org = _csv_dice(out / "cells" / "unet-org-s0" / "eval" / "metrics.csv")
    sat = _csv_dice(out / "cells" / "unet-sat-s0" / "eval" / "metrics.csv")
    cases = sorted(org)
    diff = np.array([sat[c] - org[c] for c in cases])
    comp = next(c for c in results["comparisons"] if c["metric"] == "dice" and c["a"] == ["unet", "sat"]
                and c["b"] == ["unet", "org"])
    assert comp["mean_difference"] == pytest.approx(diff.mean(), abs=1e-6)
    if np.count_nonzero(diff):
        assert comp["wilcoxon"]["p"] == pytest.approx(stats.wilcoxon(diff[diff != 0]).pvalue, rel=1e-6)
    paired_row = [line for line in report.split("## Paired test")[1].splitlines() if line.startswith("| U-Net | dice")]
    assert paired_row and f"{comp['wilcoxon']['p']:.4g}" in paired_row[0]

    # attention outside the dilated ground truth: measured for SAT only (ORG has no attention)
    rows = results["attention"]["rows"]
    assert [(r["network"], r["gate"]) for r in rows] == [("unet", "sat")]
    assert 0.0 <= rows[0]["outside"]["mean"] <= 1.0 and rows[0]["outside"]["n"] == 6

    # figures: every one listed, a real PNG, and linked from the report
    names = {Path(p).name for p in results["figures"].values()}
    assert names == {"dice_boxplot.png", "training_curves.png", "channel_selection_unet.png", "attention_unet.png"}
    for rel in results["figures"].values():
        png = (out / rel).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        assert f"]({rel})" in report
    assert len(sat_cell["curve"]) == 1 and sat_cell["curve"][0]["loss"] is not None

    # resume: a rerun trains and evaluates nothing
    calls = {"train": 0, "evaluate": 0}
    real_train, real_eval = BundleTask.train, BundleTask.evaluate

    def counting(name, fn):
        def wrapper(self, *a, **k):
            calls[name] += 1
            return fn(self, *a, **k)
        return wrapper

    monkeypatch.setattr(BundleTask, "train", counting("train", real_train))
    monkeypatch.setattr(BundleTask, "evaluate", counting("evaluate", real_eval))
    done_org = (out / "cells" / "unet-org-s0" / "cell.json").stat().st_mtime_ns
    assert cli.main(_args(data, out)) == 0
    assert calls == {"train": 0, "evaluate": 0}
    # an interrupted cell (no done marker; training finished) is evaluated again but not retrained
    (out / "cells" / "unet-sat-s0" / "cell.json").unlink()
    assert cli.main(_args(data, out)) == 0
    assert calls == {"train": 0, "evaluate": 1}
    # a cell interrupted during training is trained again; finished cells are untouched
    shutil.rmtree(out / "cells" / "unet-sat-s0")
    assert cli.main(_args(data, out)) == 0
    assert calls == {"train": 1, "evaluate": 2}
    assert (out / "cells" / "unet-org-s0" / "cell.json").stat().st_mtime_ns == done_org
    assert len(json.loads((out / "results.json").read_text())["cells"]) == 2

    # changed settings never mix with cached cells
    assert cli.main(_args(data, out)[:-6] + ["--override", "image_size=[32,32]", "--override", "num_workers=0",
                                             "--override", "batch_size=2"]) == 2


@pytest.mark.slow
def test_dry_run_prints_grid_and_estimate(tmp_path, bundle_ready, capsys):
    data = write_tiny_skin(tmp_path / "data", n_train=2, n_val=1, n_test=1, size=32)
    out = tmp_path / "run"
    args = _args(data, out, "--dry-run", "--peers", "attentionunet", "--network-args",
                 "attentionunet=" + json.dumps(NET_ARGS))
    args[args.index("--seeds") + 1] = "2"
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    for key in ("unet-org-s0", "unet-sat-s0", "attentionunet-ag-s0", "unet-org-s1", "attentionunet-ag-s1"):
        assert key in printed
    assert re.search(r"6 cells, estimated \d+\.\d min", printed)
    low, high = map(float, re.search(r"estimated (\d+\.\d) min to (\d+\.\d) min", printed).groups())
    assert 0 < low <= high  # a range over several measured steps
    assert "1 thread(s)" in printed
    assert not out.exists()


def test_bad_inputs_fail_loudly(tmp_path, bundle_ready, capsys):
    data = write_tiny_skin(tmp_path / "data", n_train=2, n_val=1, n_test=1, size=32)
    assert cli.main(_args(tmp_path / "nowhere", tmp_path / "o1")) == 2
    assert "datalist.json" in capsys.readouterr().err
    bad = _args(data, tmp_path / "o2")
    bad[bad.index("--gates") + 1] = "org,sta"
    assert cli.main(bad) == 2
    assert "sta" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(_args(data, tmp_path / "o3", "--seeds", "0"))
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


@pytest.mark.slow
def test_attention_map_difference_between_gates(tmp_path, bundle_ready):
    from satgate_monai.experiments.map_difference import main as map_main
    from satgate_monai.experiments.map_difference import map_difference

    data = write_tiny_skin(tmp_path / "data", n_train=3, n_val=1, n_test=3, size=32)
    out = tmp_path / "run"
    args = _args(data, out)
    args[args.index("--gates") + 1] = "at,sat"
    args[args.index("--seeds") + 1] = "2"
    assert cli.main(args) == 0
    result = map_difference(out, "sat", "at")
    assert result["seeds"] == [0, 1] and len(result["cases"]) == 3
    same, across = result["same_seed"], result["b_across_seeds"]
    assert same["pairs"] == 2 and across["pairs"] == 1
    assert 0.0 < same["mean_abs_difference"]["mean"] < 1.0 and same["mean_abs_difference"]["n"] == 3
    assert -1.0 <= same["pearson_r"]["mean"] <= 1.0
    # a variant against itself (same seed, same run) does not differ at all
    itself = map_difference(out, "at", "at")["same_seed"]
    assert itself["mean_abs_difference"]["mean"] == 0.0 and itself["pearson_r"]["mean"] == pytest.approx(1.0)
    assert map_main([str(out), "--a", "org"]) == 2  # no org cell: one line, exit 2
    assert map_main([str(out), "--json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["a"] == "sat"
