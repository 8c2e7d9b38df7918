"""``python -m satgate_monai.report params``: the Table-3 report."""

from __future__ import annotations

import csv
import io

import pytest

from satgate_monai.networks.factories import gate_names
from satgate_monai.report.cli import main, render_csv, render_markdown
from satgate_monai.report.params import CONFIGS, parameter_table

NETWORKS = ("U-Net", "V-Net", "FC-DenseNet56")  # FC-DenseNet103's count is checked in test_sat_fcdensenet.py


@pytest.fixture(scope="module")
def rows_2d() -> list[dict]:
    return parameter_table(tuple(c for c in CONFIGS if c.setting == "2D skin" and c.network in NETWORKS))


def test_params_table_2d(rows_2d):
    rows = list(csv.DictReader(io.StringIO(render_csv(rows_2d))))
    assert {r["network"] for r in rows} == set(NETWORKS)
    assert all(r["setting"] == "2D skin" for r in rows)
    by = {(r["network"], r["gate"]): r for r in rows}
    for network in NETWORKS:
        assert [g for (n, g) in by if n == network] == [name.upper() for name in gate_names()]  # every gate, in order
        assert gate_names()[:4] == ("org", "at", "st", "sat")
        sat, org = by[(network, "SAT")], by[(network, "ORG")]
        assert int(sat["saving"]) == int(sat["formula"]) == int(org["params"]) - int(sat["params"]) > 0
        assert float(sat["gflops"]) < float(org["gflops"])
        assert set(sat["skip_out"].split("/")) == {"1"}
        assert sat["skip_in"] == org["skip_out"]
    assert -11.0 < float(by[("U-Net", "SAT")]["params_change_pct"]) < -9.0  # a faithful U-Net saves ~10 %


def test_params_markdown(rows_2d):
    out = render_markdown(rows_2d)
    assert "| 2D skin | V-Net | SAT |" in out and "Table 3" in out and "every row." in out
    assert "3D MRI |" not in out
    broken = [dict(r) for r in rows_2d]
    broken[-1]["formula"] += 1
    assert "NOT every row" in render_markdown(broken)


def test_cli_rejects_unknown_format(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["params", "--format", "xml"])
    assert exc.value.code != 0 and "invalid choice" in capsys.readouterr().err
