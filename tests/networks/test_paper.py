"""The paper's figures in the package (``satgate_monai.report.paper``) and their comparison with our counts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from satgate_monai.report.cli import render_markdown
from satgate_monai.report.compare import readings, table3_comparison
from satgate_monai.report.paper import DI2IN, TABLE1, TABLE2, TABLE3, paper_metrics
from satgate_monai.report.params import CONFIGS, parameter_table

REPO = Path(__file__).resolve().parents[2]
_DATA = {"prostate MRI (3D)": "prostate", "prostate MRI": "prostate", "skin (ISIC 2017, 2D RGB)": "skin",
         "skin": "skin"}
_NETS = {"3D U-Net": "unet", "2D U-Net": "unet", "3D V-Net": "vnet", "2D V-Net": "vnet"}


def _tables(text: str) -> dict[str, list[list[str]]]:
    """Markdown tables of PAPER.md by their heading (body rows as cell lists)."""
    out, heading = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].split(" —")[0].strip()
        elif line.startswith("|") and heading and not line.startswith("|---"):
            out.setdefault(heading, []).append([c.strip() for c in line.strip().strip("|").split("|")])
    return {k: rows[1:] for k, rows in out.items()}  # drop the header row


def _pm(cell: str) -> tuple[float, float]:
    mean, std = cell.split("±")
    return float(mean), float(std)


def test_transcription_matches_the_shared_paper_notes(shared_dir):
    tables = _tables((shared_dir / "PAPER.md").read_text(encoding="utf-8"))
    data = net = None
    seen1 = {}
    for row in tables["Table 1"]:
        data = _DATA.get(row[0], data) if row[0] else data
        net = _NETS.get(row[1], net) if row[1] else net
        seen1[(data, net, row[2].lower())] = {"dice": _pm(row[4]), "fpr": _pm(row[5]), "fnr": _pm(row[6])}
    assert seen1 == TABLE1
    seen2 = {}
    for row in tables["Table 2"]:
        data = _DATA.get(row[0], data) if row[0] else data
        seen2[(data, "fcdensenet", row[1].lower())] = {"dice": _pm(row[3]), "fpr": _pm(row[4]), "fnr": _pm(row[5])}
    assert seen2 == TABLE2
    counts = {}
    for row in tables["Table 3"]:
        n = [int(c.replace(",", "")) for c in (row[1], row[2], row[4], row[5])]
        counts[row[0]] = n
    ours = {}
    for r in TABLE3:
        i = 0 if r.setting == "3D MRI" else 2
        ours.setdefault(r.label, [0, 0, 0, 0])[i:i + 2] = [r.original, r.sat]
    assert ours == counts
    # the changes PAPER.md prints next to the counts are the table's own (not the text's)
    for row in tables["Table 3"]:
        for col, (orig, sat) in ((3, (row[1], row[2])), (6, (row[4], row[5]))):
            o, s = int(orig.replace(",", "")), int(sat.replace(",", ""))
            assert float(row[col].replace("−", "-").rstrip(" %")) == pytest.approx(100 * (s - o) / o, abs=0.05)
    di2in = (shared_dir / "PAPER.md").read_text(encoding="utf-8")
    assert f"{DI2IN['original']:,} → {DI2IN['sat']:,}" in di2in


def test_transcription_matches_the_paper_text(shared_dir):
    text = (shared_dir / "paper.txt").read_text(encoding="utf-8")
    for r in TABLE3:
        assert f"{r.original:,}" in text and f"{r.sat:,}" in text
    assert f"from {DI2IN['original']:,} to {DI2IN['sat']:,}" in text
    assert "30.2% and 7.3% and 30.6% and 8.02%" in text  # the text's percentages, which the counts contradict


def test_table3_changes_come_from_the_counts():
    changes = {(r.network, r.setting): round(r.change_pct, 1) for r in TABLE3}
    assert changes == {("unet", "3D MRI"): -26.2, ("unet", "2D skin"): -31.2, ("vnet", "3D MRI"): -7.1,
                       ("vnet", "2D skin"): -7.7, ("fcdensenet", "3D MRI"): -17.1, ("fcdensenet", "2D skin"): -17.1}
    assert paper_metrics("skin", "vnet", "sat")["dice"] == (0.83, 0.20)
    assert paper_metrics("prostate", "fcdensenet", "at") is None
    assert paper_metrics("liver", "di2in", "sat")["dice"][0] == 0.96


@pytest.fixture(scope="module")
def skin_rows() -> list[dict]:
    return parameter_table(tuple(c for c in CONFIGS if c.setting == "2D skin" and c.network in ("U-Net", "V-Net")))


def test_report_prints_the_papers_counts_beside_ours(skin_rows):
    out = render_markdown(skin_rows)
    section = out[out.index("## The paper's Table 3 beside ours"):]
    assert "| 2D/3D V-Net | 2D skin | 13,923,041 | 12,849,421 | -7.7 % | 1,073,620 | V-Net |" in section
    assert "| 2D/3D U-Net | 2D skin | 772,401 | 531,338 | -31.2 % |" in section
    assert "3D MRI" not in section.split("Reading:")[0]  # only the settings measured here
    assert "30.2 %" in section and "the table's counts" in section
    assert "+1,896 |" in section  # the V-Net saving gap, counted
    assert not re.search(r"issue\s*#?\d", out, re.IGNORECASE)


def _comparison(org_gap: int, gaps: tuple[int, int]) -> list[dict]:
    return [{"network": "vnet", "label": "V-Net", "setting": s, "org_gap": org_gap, "saving_gap": g,
             "ours_saving": 100 + g, "paper_saving": 100} for s, g in zip(("3D MRI", "2D skin"), gaps)]


def test_readings_follow_the_numbers():
    assert "reproduced exactly" in readings(_comparison(0, (0, 0)))[0]
    assert "equals the paper's" in readings(_comparison(5, (0, 0)))[0]
    assert "the same 7 parameters" in readings(_comparison(5, (7, 7)))[0]
    assert "not reproducible" in readings(_comparison(5, (7, 8)))[0]
    rows = [{"setting": "2D skin", "network": "V-Net", "gate": g, "params": p} for g, p in (("ORG", 10), ("SAT", 4))]
    (c,) = table3_comparison(rows)
    assert (c["ours_saving"], c["paper_org"], c["org_gap"]) == (6, 13_923_041, 10 - 13_923_041)


def test_no_work_process_words_in_product_text():
    pattern = re.compile(r"\bissue\s*#?\s*\d|\bhelper h\d", re.IGNORECASE)
    offenders = [name for name in ("README.md",) if pattern.search((REPO / name).read_text())]
    for root in ("satgate_monai", "data_prep", "bundles", "docs", "benchmarks"):
        for path in (REPO / root).rglob("*"):
            if path.suffix in {".py", ".md", ".json", ".txt"} and pattern.search(path.read_text(errors="replace")):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders, offenders


def test_report_reproduces_the_di2in_counts():
    rows = parameter_table(tuple(c for c in CONFIGS if c.network == "DI2IN"))
    by_gate = {r["gate"]: r for r in rows}
    assert by_gate["ORG"]["params"] == DI2IN["original"] and by_gate["SAT"]["params"] == DI2IN["sat"]
    assert by_gate["SAT"]["saving"] == by_gate["SAT"]["formula"] == 290_036
    out = render_markdown(rows)
    assert "| DI2IN (liver, text) | 3D liver CT | 2,353,089 | 2,063,053 | -12.3 % | 290,036 | DI2IN | 2,353,089 " in out
    assert "DI2IN (liver, text): reproduced exactly" in out
