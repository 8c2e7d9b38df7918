"""Learning curves from kept checkpoints: which points are complete, and verdicts decided only on those."""

from __future__ import annotations

import numpy as np

from satgate_monai.experiments.curves import gap_table, selection_table
from satgate_monai.experiments.curves_report import compute, render_section, replace_block, summary_paragraph


def _cell(gate: str, seed: int, dice: dict[int, list[float]], selection: bool = False) -> dict:
    kept = {}
    for epoch, values in dice.items():
        sel = [{"n": 4, "off": 0.5, "between": 0.5, "frozen": 0.0, "hist": [0] * 32, "crossed0_now": 0,
                "crossed1_now": 0, "crossed0_ever": epoch // 10, "crossed1_ever": 0}] if selection else []
        kept[epoch] = {"epoch": epoch, "selection": sel,
                       "cases": [{"case": f"c{i}", "dice": v, "fpr": 0.01, "fnr": 1 - v} for i, v in enumerate(values)]}
    return {"key": f"unet-{gate}-s{seed}", "network": "unet", "gate": gate, "seed": seed, "done": False,
            "trained_epochs": max(dice), "train_seconds": None, "kept": kept,
            "initial": [[-0.5, -0.1, 0.2, 0.7]] if selection else None}


def _run() -> dict:
    rng = np.random.default_rng(0)
    org = {e: list(0.8 + 0.05 * rng.random(9)) for e in (10, 20)}
    sat = {e: [v - 0.1 for v in org[e]] for e in org}
    cells = [_cell("org", 0, org), _cell("sat", 0, sat, True), _cell("org", 1, {10: org[10]}),
             _cell("sat", 1, {10: sat[10]}, True)]
    return {"dir": "RUN", "task": "skin", "command": "python -m satgate_monai.experiments run ...", "data_note": "",
            "settings": {"optimizer": "adadelta"}, "keep_epochs": [10, 20, 50], "epochs": 50, "seeds": [0, 1],
            "cells": cells}


def test_complete_points_and_verdicts():
    run = _run()
    rows = gap_table(run, "sat", n_boot=200)
    assert [(r["epoch"], r["seeds"], r["complete"]) for r in rows] == [(10, [0, 1], True), (20, [0], False)]
    assert abs(rows[0]["dice"]["mean_difference"] + 0.1) < 1e-9
    sel = selection_table(run, "sat")
    assert [r["epoch"] for r in sel] == [0, 10, 20] and sel[0]["off"] == 0.5 and sel[2]["crossed0_ever"] == 2
    numbers = compute([("Skin", run)], [], n_boot=200)
    text, verdicts = render_section([("Skin", run)], [], numbers, {}, None)
    gap = verdicts["gap"][0]
    # decided on epoch 10 (both seeds); epoch 20 (seed 0 only) is reported as indicative; epoch 50 not reached
    assert gap.startswith("Skin: SAT is below ORG at epoch 10; one point only.")
    assert "seed(s) 0 only (not every seed; indicative, not decided)" in gap
    assert "**Not decided at epoch 50**" in gap
    assert "| Skin | SAT − ORG | 20 | 0 (partial) |" in text


def test_replace_block_inserts_then_replaces():
    text = "# A\n\n## results.json\n"
    once = replace_block(text, "<!-- b -->", "<!-- e -->", "one", anchor="## results.json")
    assert once.index("one") < once.index("## results.json")
    twice = replace_block(once, "<!-- b -->", "<!-- e -->", "two", anchor="## results.json")
    assert "one" not in twice and twice.count("<!-- b -->") == 1 and "two" in twice


def test_the_draw_row_holds_the_seeds_that_reached_a_kept_epoch():
    """A seed that has only just started (its draw, no kept epoch yet) does not enter the draw row the kept rows are
    read against."""
    run = _run()
    started = {**_cell("sat", 2, {10: [0.5] * 9}, True), "kept": {}, "trained_epochs": 3,
               "initial": [[-0.5, -0.4, -0.3, -0.2]]}
    run["cells"].append(started)
    draw = selection_table(run, "sat")[0]
    assert draw["epoch"] == 0 and draw["seeds"] == [0, 1] and draw["off"] == 0.5
    run["cells"][1]["initial"] = [[-0.5, -0.1, -0.2, 0.7]]  # seed 0 alone reached epoch 20: its own draw is read
    assert selection_table(run, "sat")[-1]["draw_off"] == 0.75


def test_the_halves_of_sat_get_their_own_rows_and_verdicts():
    """ST and AT are compared with ORG, and SAT with each of them; ST's selection gets its own verdict."""
    run = _run()
    org = {e: [c["dice"] for c in run["cells"][0]["kept"][e]["cases"]] for e in (10, 20)}
    for seed in (0, 1):
        epochs = (10, 20) if seed == 0 else (10,)
        run["cells"].append(_cell("st", seed, {e: [v + 0.05 for v in org[e]] for e in epochs}, True))
        run["cells"].append(_cell("at", seed, {e: [v - 0.2 for v in org[e]] for e in epochs}))
    numbers = compute([("Skin", run)], [], n_boot=200)
    sat_vs_st = numbers["parts"]["Skin"]["st"]
    assert [r["epoch"] for r in sat_vs_st] == [10, 20] and abs(sat_vs_st[0]["dice"]["mean_difference"] + 0.15) < 1e-9
    text, verdicts = render_section([("Skin", run)], [], numbers, {}, None)
    assert "| Skin | SAT − ST | 10 | 01 | 9 | " in text and "| Skin | SAT − AT | 10 | 01 | 9 | " in text
    parts = verdicts["parts"]
    assert parts[0].startswith("Skin, ST − ORG: ST is above ORG at epoch 10")
    assert parts[1].startswith("Skin, AT − ORG: AT is below ORG at epoch 10")
    assert parts[2].startswith("Skin, SAT − ST: SAT is below ST at epoch 10")
    assert parts[3].startswith("Skin, SAT − AT: SAT is above AT at epoch 10")
    assert [v.split(":")[0] for v in verdicts["selection"]] == ["Skin, SAT", "Skin, ST"]
    assert "| Skin | ST | draw | 01 |" in text


def test_the_readme_summary_names_each_half_at_its_last_epoch():
    run = _run()
    org = [c["dice"] for c in run["cells"][0]["kept"][10]["cases"]]
    run["cells"].append(_cell("st", 0, {10: [v + 0.05 for v in org]}, True))
    paragraph = summary_paragraph(compute([("Skin", run)], [], n_boot=200))
    assert "ST − ORG 0.050 [" in paragraph and "at epoch 10 (seed(s) 0, not every planned seed)" in paragraph
    assert "; AT − ORG" not in paragraph and ", AT − ORG" not in paragraph


def test_the_status_lists_the_gates_the_run_plans():
    """A gate the run planned but never started is listed as not started; a gate it never planned is not listed."""
    run = _run()
    run["settings"]["gates"] = ["org", "sat"]
    text, _ = render_section([("Skin", run)], [], compute([("Skin", run)], [], n_boot=200), {}, None)
    assert "- ORG: " in text and "- SAT: " in text and "- AT: " not in text
    run["settings"]["gates"] = ["org", "at", "st", "sat"]
    text, _ = render_section([("Skin", run)], [], compute([("Skin", run)], [], n_boot=200), {}, None)
    assert "- AT: not started" in text and "- ST: not started" in text
