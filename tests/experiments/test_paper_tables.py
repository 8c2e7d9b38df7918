"""The paper's Tables 1-2 beside a run's measurements in ``report.md``."""

from __future__ import annotations

from satgate_monai.experiments.analysis import GATE_LABELS, NETWORK_LABELS
from satgate_monai.experiments.paper_tables import paper_comparison_lines


def _variant(network: str, gate: str, dice: float) -> dict:
    return {"network": network, "gate": gate, "dice": {"mean": dice, "std": 0.1},
            "fpr": {"mean": 0.01, "std": 0.002}, "fnr": {"mean": 0.2, "std": 0.05}}


def _results(task: str, variants: list[dict], note: str = "") -> dict:
    return {"task": task, "data": "/data/PREP", "data_note": note, "variants": variants}


def test_skin_rows_beside_the_papers_table1_and_2():
    variants = [_variant("unet", "org", 0.70), _variant("unet", "sat", 0.75), _variant("fcdensenet", "org", 0.8),
                _variant("fcdensenet", "sat", 0.78), _variant("attentionunet", "ag", 0.9)]
    lines = paper_comparison_lines(_results("skin", variants, "synthetic phantoms"), NETWORK_LABELS, GATE_LABELS)
    text = "\n".join(lines)
    assert "| U-Net | SAT | 0.81 ± 0.20 | 0.75 ± 0.10 | 0.030 ± 0.050 | 0.010 ± 0.002 | 0.18 ± 0.23 |" in text
    assert "| Tiramisu (FC-DenseNet) | ORG | 0.79 ± 0.24 | 0.80 ± 0.10 |" in text  # Table 2
    assert "Attention U-Net" not in text  # the paper has no such row
    assert "U-Net: SAT − ORG Dice here +0.050 (SAT higher than ORG, as in the paper; paper +0.02)" in text
    assert "Tiramisu (FC-DenseNet): SAT − ORG Dice here -0.020 (SAT lower than ORG, unlike the paper" in text
    assert "synthetic phantoms, so they say nothing" in text


def test_tasks_and_networks_the_paper_does_not_report():
    lines = paper_comparison_lines(_results("liver", [_variant("unet", "sat", 0.9)]), NETWORK_LABELS, GATE_LABELS)
    assert "reports no network/skip of this grid" in "\n".join(lines)
    lines = paper_comparison_lines(_results("prostate", [_variant("vnet", "at", 0.9)]), NETWORK_LABELS, GATE_LABELS)
    assert "| V-Net | AT | 0.86 ± 0.05 | 0.90 ± 0.10 |" in "\n".join(lines)
    assert "not both in this grid" in "\n".join(lines)
