"""``python -m satgate_monai.experiments.curves_report``: the section "Does the gap close with training?" of
docs/experiments.md (and the README's summary of it) from learning-curve run folders (``run --keep-epochs``).

Re-runnable at any time, also while the runs train or after they were stopped: it reads what the run folders hold,
says per run which cells finished and which epochs every seed reached, and decides a claim only on complete points.

Example::

    python -m satgate_monai.experiments.curves_report \\
        --run "Skin phantoms=/work/runs/skin200" --run "Lung lesions=/work/runs/lesions64" \\
        --adam "Lung lesions=/work/runs/lesions_adam32" --load-log /work/runs/logs/uptime.log \\
        --docs docs/experiments.md --readme README.md --figures docs/figures
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satgate_monai.experiments.analysis import GATE_LABELS
from satgate_monai.experiments.curves import gap_table, histograms, load_run, selection_table
from satgate_monai.experiments.io import atomic_write_text

__all__ = ["main", "compute", "render_section", "summary_paragraph", "replace_block", "load_summary"]

logger = logging.getLogger(__name__)

SECTION_BEGIN, SECTION_END = "<!-- curves:begin -->", "<!-- curves:end -->"
SUMMARY_BEGIN, SUMMARY_END = "<!-- curves-summary:begin -->", "<!-- curves-summary:end -->"
TITLE = "## Does the gap close with training?"
PARTS = ("st", "at")  # SAT's two halves: selection only, attention only
_LOAD = re.compile(r"(\d\d:\d\d:\d\d).*load average: ([\d.]+), ([\d.]+), ([\d.]+)")


def replace_block(text: str, begin: str, end: str, block: str, anchor: str | None = None) -> str:
    """``text`` with the lines between ``begin`` and ``end`` replaced by ``block``; without the markers, the block is
    inserted before the line ``anchor`` (or appended)."""
    wrapped = f"{begin}\n{block.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + wrapped + rest.split(end, 1)[1]
    if anchor and anchor in text:
        head, rest = text.split(anchor, 1)
        return head + wrapped + "\n\n" + anchor + rest
    return text.rstrip() + "\n\n" + wrapped + "\n"


def load_summary(path: Path | None) -> dict[str, Any] | None:
    """Min/median/max of the 1-minute load average in an ``uptime`` log (one ``date; uptime`` line a minute)."""
    if path is None or not Path(path).is_file():
        return None
    rows = [m.groups() for m in map(_LOAD.search, Path(path).read_text().splitlines()) if m]
    if not rows:
        return None
    loads = np.array([float(r[1]) for r in rows])
    return {"first": rows[0][0], "last": rows[-1][0], "n": len(rows), "min": float(loads.min()),
            "median": float(np.median(loads)), "max": float(loads.max())}


def _fmt(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _diff(c: dict) -> str:
    lo, hi = c["ci95"] if c.get("ci95") else (None, None)
    return f"{_fmt(c['mean_difference'])} [{_fmt(lo)}, {_fmt(hi)}]"


def _p(c: dict) -> str:
    p = (c.get("wilcoxon") or {}).get("p")
    return "—" if p is None else f"{p:.4g}"


def _ratio(c: dict) -> str:
    b = (c.get("consistency") or {}).get("bootstrap") or {}
    lo, hi = b.get("ci95") or (None, None)
    return f"{_fmt(b.get('ratio'), 2)} [{_fmt(lo, 2)}, {_fmt(hi, 2)}]"


def _status(run: dict) -> list[str]:
    """One line per gate: cells finished, and per seed the epochs trained and the kept epochs evaluated."""
    lines = []
    planned = run["keep_epochs"]
    by_gate: dict[str, dict[int, dict]] = {}
    for c in run["cells"]:
        by_gate.setdefault(c["gate"], {})[c["seed"]] = c
    planned_gates = set(run["settings"].get("gates") or ()) | set(by_gate)
    for gate in [g for g in ("org", "at", "st", "sat") if g in planned_gates]:
        cells = by_gate.get(gate, {})
        if not cells:
            lines.append(f"{GATE_LABELS[gate]}: not started")
            continue
        per_seed = []
        for seed in run["seeds"]:
            c = cells.get(seed)
            if c is None:
                per_seed.append(f"seed {seed} not started")
                continue
            kept = ",".join(map(str, sorted(c["kept"]))) or "none"
            per_seed.append(f"seed {seed} {'finished' if c['done'] else 'stopped at epoch ' + str(c['trained_epochs'])}"
                            f" (kept epochs evaluated: {kept})")
        done = sum(c["done"] for c in cells.values())
        total = planned[-1] if planned else "?"
        lines.append(f"{GATE_LABELS[gate]}: {done}/{len(run['seeds'])} cells finished of {total} epochs; "
                     f"{'; '.join(per_seed)}")
    return lines


def _gap_rows(name: str, rows: Sequence[dict], gate: str, reference: str = "org") -> list[str]:
    out = []
    for r in rows:
        d, f, n = r["dice"], r["fpr"], r["fnr"]
        seeds = "".join(map(str, r["seeds"])) + ("" if r["complete"] else " (partial)")
        pair = f"{GATE_LABELS[gate]} − {GATE_LABELS[reference]}"
        out.append(f"| {name} | {pair} | {r['epoch']} | {seeds} | {d['n']} | {_fmt(d['mean_b'])} | "
                   f"{_fmt(d['mean_a'])} | {_diff(d)} | {_p(d)} | {_ratio(d)} | {_diff(f)} | {_diff(n)} |")
    return out


def _selection_rows(name: str, gate: str, rows: Sequence[dict]) -> list[str]:
    out = []
    for r in rows:
        skips = " / ".join(f"{100 * s['off']:.0f}-{100 * s['between']:.0f}-{100 * s['frozen']:.0f}"
                           for s in r["per_skip"])
        cross = (f"{_fmt(r['crossed0_ever'], 1)} / {_fmt(r['crossed0_now'], 1)}" if r["crossed0_ever"] is not None
                 else "—")
        cross1 = (f"{_fmt(r['crossed1_ever'], 1)} / {_fmt(r['crossed1_now'], 1)}" if r["crossed1_ever"] is not None
                  else "—")
        label = "draw" if r["epoch"] == 0 else str(r["epoch"])
        moved = f"{_fmt(r.get('moved_off'), 4)} / {_fmt(r.get('moved_between'), 4)}" if r["epoch"] else "—"
        out.append(f"| {name} | {GATE_LABELS[gate]} | {label} | {''.join(map(str, r['seeds']))} | {r['n']} | "
                   f"{100 * r['off']:.1f} | {100 * r['between']:.1f} | {100 * r['frozen']:.1f} | {skips} | "
                   f"{cross} | {cross1} | {moved} |")
    return out


def _verdict_gap(name: str, run: dict, rows: Sequence[dict], gate: str = "sat", reference: str = "org") -> str:
    """The plain verdict on "``gate`` improves Dice over ``reference``" (by default SAT over ORG) and whether the gap
    closes: decided on complete points (every seed), with the points only some seeds reached reported as such."""
    pair = (GATE_LABELS[gate], GATE_LABELS[reference])
    planned = max(run["keep_epochs"]) if run["keep_epochs"] else None
    complete = [r for r in rows if r["complete"]]
    beyond = [r for r in rows if not r["complete"] and (not complete or r["epoch"] > complete[-1]["epoch"])]
    if complete:
        text = f"{name}: {_state(complete[-1], pair)}; {_closing(complete, pair)}. {_trend(complete, pair)}."
    else:
        text = f"{name}: **not decided** (no kept epoch reached by every seed of {pair[1]} and {pair[0]})."
    if beyond:
        points = [*complete, *beyond]
        text += (f" With seed(s) {','.join(map(str, beyond[-1]['seeds']))} only (not every seed; indicative, not "
                 f"decided): {_state(points[-1], pair)}; {_closing(points, pair)}. {_trend(points, pair)}.")
    if planned is not None and (not rows or rows[-1]["epoch"] < planned or not rows[-1]["complete"]):
        text += f" **Not decided at epoch {planned}**: the runs had not reached it for every seed."
    return text


def _state(row: dict, pair: tuple[str, str] = ("SAT", "ORG")) -> str:
    lo, hi = row["dice"]["ci95"]
    p = (row["dice"].get("wilcoxon") or {}).get("p")
    unconfirmed = (f" by the 95 % CI of the mean difference, which the paired Wilcoxon test does not confirm "
                   f"(p = {p:.4g})") if p is not None and p >= 0.05 else ""
    if hi is not None and hi < 0:
        return f"{pair[0]} is below {pair[1]} at epoch {row['epoch']}{unconfirmed}"
    if lo is not None and lo > 0:
        return f"{pair[0]} is above {pair[1]} at epoch {row['epoch']}{unconfirmed}"
    return f"no difference detected at epoch {row['epoch']} (the CI holds 0)"


def _closing(points: Sequence[dict], pair: tuple[str, str] = ("SAT", "ORG")) -> str:
    """How the last point compares with the widest gap before it."""
    last = points[-1]
    if len(points) == 1:
        return "one point only"
    widest = min(points[:-1], key=lambda r: r["dice"]["mean_difference"])
    d_w, d_l = widest["dice"]["mean_difference"], last["dice"]["mean_difference"]
    if d_w >= 0:
        return f"{pair[0]} was not below {pair[1]} at any earlier point"
    lo, hi = last["dice"]["ci95"]
    below, above = hi is not None and hi < 0, lo is not None and lo > 0
    if d_l > d_w:
        return (f"the gap narrowed from its widest, {d_w:.3f} at epoch {widest['epoch']}"
                + (", but stays below 0" if below else ", and reversed" if above else ", to within the CI of 0"))
    return f"the gap did not narrow (widest so far: {d_l:.3f} at epoch {last['epoch']})"


def _trend(points: Sequence[dict], pair: tuple[str, str] = ("SAT", "ORG")) -> str:
    last = points[-1]
    d1 = last["dice"]
    series = ", ".join(f"{_diff(r['dice'])} at epoch {r['epoch']}" for r in points)
    text = (f"{pair[0]} − {pair[1]} Dice {series} (last point: Wilcoxon p = {_p(d1)}, {d1['n']} cases, seed(s) "
            f"{','.join(map(str, last['seeds']))}")
    if d1["n"] <= 9:
        text += f"; with {d1['n']} cases the smallest two-sided p is {2 / 2 ** d1['n']:.2g}"
    return text + ")"


def _verdict_selection(name: str, rows: Sequence[dict]) -> str:
    if len(rows) < 2:
        return f"{name}: **not decided** (no kept epoch with selection data)."
    draw, last = rows[0], rows[-1]
    ever = last["crossed0_ever"]
    ever1 = last["crossed1_ever"]
    draw_off = last.get("draw_off", draw["off"])
    draw_off = draw["off"] if draw_off is None else draw_off
    text = (f"{name}: off {100 * draw_off:.1f} % at the draw, {100 * last['off']:.1f} % at epoch {last['epoch']} "
            f"(between {100 * last['between']:.1f} %, frozen {100 * last['frozen']:.1f} %; {last['n']} weights per "
            f"network, mean over seeds {','.join(map(str, last['seeds']))}); ")
    if ever is None:
        return text + "crossings not tracked."
    moved = ""
    if last.get("moved_off") is not None:
        moved = (f" The weights off at the draw moved by at most {last['moved_off']:.4g} (no gradient below 0), "
                 f"those between by at most {_fmt(last.get('moved_between'), 4)}.")
    if ever == 0 and (ever1 or 0) == 0:
        return text + ("**no weight crossed 0 or 1 at any iteration: the switched-off share is the initial draw's.**"
                       + moved)
    return text + (f"weights that crossed 0 at some iteration: {ever:.1f} (on the other side at the end: "
                   f"{_fmt(last['crossed0_now'], 1)}); crossed 1: {_fmt(ever1, 1)} (at the end "
                   f"{_fmt(last['crossed1_now'], 1)})." + moved)


def _verdict_consistency(name: str, rows: Sequence[dict]) -> str:
    complete = [r for r in rows if r["complete"]]
    last = complete[-1] if complete else (rows[-1] if rows else None)
    if last is None:
        return f"{name}: **not decided**."
    b = last["dice"]["consistency"]["bootstrap"]
    lo, hi = b["ci95"] if b.get("ci95") else (None, None)
    if hi is not None and hi < 1:
        state = "SAT's std is smaller"
    elif lo is not None and lo > 1:
        state = "SAT's std is larger"
    else:
        state = "no difference in std detected"
    scope = "" if last["complete"] else (f" (seed(s) {','.join(map(str, last['seeds']))} only: indicative, "
                                         "not decided)")
    return f"{name}, epoch {last['epoch']}{scope}: {state}; std ratio SAT/ORG {_ratio(last['dice'])}."


def compute(runs: Sequence[tuple[str, dict]], adam: Sequence[tuple[str, dict]], n_boot: int = 10000) -> dict:
    """Every number of the section: ``{"gaps": {task: {gate: rows}}, "parts": {task: {"st" | "at": rows of SAT
    against that part}}, "adam": {task: rows}, "selection": {task: {gate: rows}}}`` (see
    :mod:`~satgate_monai.experiments.curves`)."""
    return {"gaps": {name: {g: gap_table(run, g, n_boot=n_boot) for g in ("sat", "at", "st")} for name, run in runs},
            "parts": {name: {ref: gap_table(run, "sat", ref, n_boot=n_boot) for ref in PARTS} for name, run in runs},
            "adam": {name: gap_table(run, "sat", n_boot=n_boot) for name, run in adam},
            "selection": {name: {g: selection_table(run, g) for g in ("sat", "st")} for name, run in runs}}


def render_section(runs: Sequence[tuple[str, dict]], adam: Sequence[tuple[str, dict]], numbers: dict,
                   figures: dict[str, str], load: dict | None) -> tuple[str, dict]:
    """The markdown of the section (without its markers) from :func:`compute`'s ``numbers``, and the verdicts
    (``{"gap", "selection", "consistency", "parts", "adam"}``: lists of sentences)."""
    gaps, parts, adam_gaps, selection = numbers["gaps"], numbers["parts"], numbers["adam"], numbers["selection"]
    lines = [TITLE, "",
             "*Generated by `python -m satgate_monai.experiments.curves_report` from the run folders below (rerun it "
             "to refresh: it reads finished and unfinished cells alike). Every point is a checkpoint kept during "
             "training (`--keep-epochs`) and evaluated on the test split: the weights of that epoch, not the best "
             "on validation.*", ""]
    lines += ["### Runs, commands and what completed", ""]
    for name, run in [*runs, *[(f"{n}, Adam", r) for n, r in adam]]:
        if not run["cells"] and not run["settings"]:
            lines += [f"**{name}** (`{run['dir']}`): not started.", ""]
            continue
        lines += [f"**{name}** (`{run['dir']}`; optimizer {run['settings'].get('optimizer', 'adadelta')}):", "",
                  "```bash", str(run["command"]), "```", ""]
        lines += [f"- {s}" for s in _status(run)] + [""]
    if load:
        lines += [f"Load average (1 min, `uptime` every minute, {load['first']}-{load['last']} UTC, {load['n']} "
                  f"readings) on the 2-core machine shared with other jobs: median {load['median']:.1f}, range "
                  f"{load['min']:.1f}-{load['max']:.1f}.", ""]
    lines += ["### Each gate against ORG, and SAT against its halves, at every kept epoch", ""]
    for title, rel in figures.items():
        lines += [f"![{title}]({rel})", ""]
    lines += ["Paired by test case (each case averaged over the seeds listed): the difference A − B with a paired "
              "bootstrap 95 % CI, the two-sided Wilcoxon signed-rank p, the std ratio A/B with a bootstrap 95 % CI. "
              "B is ORG, or for the SAT − ST and SAT − AT rows the half of SAT named. *(partial)*: not every seed "
              "has reached that epoch yet.", "",
              "| Task | Comparison A − B | Epoch | Seeds | Cases | B Dice | A Dice | Dice difference [95 % CI] | "
              "Wilcoxon p | std ratio [95 % CI] | FPR difference | FNR difference |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, _ in runs:
        for gate in ("sat", "at", "st"):
            lines += _gap_rows(name, gaps[name][gate], gate)
    for name, _ in runs:
        for ref in PARTS:
            lines += _gap_rows(name, parts[name][ref], "sat", ref)
    for name, _ in adam:
        lines += _gap_rows(f"{name}, Adam", adam_gaps[name], "sat")
    lines += ["", "### The selection over time (SAT and ST)", "",
              "Shares of the raw selection weights off (`w <= 0`), between (`0 < w < 1`) and frozen (`w >= 1`), "
              "pooled and per skip (shallow→deep, off-between-frozen %), mean over the seeds listed; *crossed 0*: "
              "weights whose side of 0 differs from the initial draw's at some iteration (*ever*) or at that epoch "
              "(*now*), summed over the skips (mean over seeds); *crossed 1* likewise for 1. *draw*: the initial "
              "weights. *Max |w − w0|*: how far the weights off (`w0 <= 0`) and between at the draw moved by that "
              "epoch (largest over the seeds; `trelu` passes no gradient to a weight at or below 0).", "",
              "| Task | Gate | Epoch | Seeds | Weights | Off % | Between % | Frozen % | Per skip | Crossed 0 ever / "
              "now | Crossed 1 ever / now | Max \\|w − w0\\| off / between |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, _ in runs:
        for gate in ("sat", "st"):
            lines += _selection_rows(name, gate, selection[name][gate])
    verdicts: dict[str, list[str]] = {
        "gap": [_verdict_gap(name, run, gaps[name]["sat"]) for name, run in runs],
        "selection": [_verdict_selection(f"{name}, {GATE_LABELS[g]}", selection[name][g])
                      for name, _ in runs for g in ("sat", "st")],
        "parts": [v for name, run in runs
                  for v in (*(_verdict_gap(f"{name}, {GATE_LABELS[g]} − ORG", run, gaps[name][g], g) for g in PARTS),
                            *(_verdict_gap(f"{name}, SAT − {GATE_LABELS[r]}", run, parts[name][r], "sat", r)
                              for r in PARTS))],
        "consistency": [_verdict_consistency(name, gaps[name]["sat"]) for name, _ in runs],
        "adam": [_verdict_gap(f"{name}, Adam", run, adam_gaps[name]) for name, run in adam],
    }
    lines += ["", "### Verdicts (only what these runs support)", "",
              "- *\"SAT improves Dice over ORG\" and whether the gap closes with training:*"]
    lines += [f"  - {v}" for v in verdicts["gap"]]
    lines += ["- *\"55-67 % of the skip channels are switched off after training\": does training switch channels "
              "off beyond the initial draw?*"]
    lines += [f"  - {v}" for v in verdicts["selection"]]
    lines += ["- *\"SAT is more consistent (smaller std)\":*"] + [f"  - {v}" for v in verdicts["consistency"]]
    lines += ["- *SAT's two halves (the paper: ST sometimes comes close to SAT but hands the decoder all C channels; "
              "AT alone attends to wrong regions): each half against ORG, and SAT against each half:*"]
    lines += [f"  - {v}" for v in verdicts["parts"]]
    if adam:
        lines += ["- *The optimizer check (Adam lr 1e-3 instead of Adadelta lr 1.0):*"]
        lines += [f"  - {v}" for v in verdicts["adam"]]
    return "\n".join(lines) + "\n", verdicts


def summary_paragraph(numbers: dict) -> str:
    """The README's one paragraph on the learning curves, from :func:`compute`'s ``numbers``: per task the first
    and the last kept epoch with its seeds, and whether training moved any selection weight across 0."""
    parts = []
    for name, gaps in numbers["gaps"].items():
        rows = gaps["sat"]
        if not rows:
            parts.append(f"{name}: no kept epoch evaluated yet")
            continue
        first, last = rows[0], rows[-1]
        text = f"{name}: SAT − ORG Dice {_diff(first['dice'])} at epoch {first['epoch']}"
        if last is not first:
            text += f", {_diff(last['dice'])} at epoch {last['epoch']}"
        partial = "" if last["complete"] else ", not every planned seed"
        text += f" (seed(s) {','.join(map(str, last['seeds']))}{partial})"
        sel = numbers["selection"][name]["sat"]
        if len(sel) > 1 and sel[-1]["crossed0_ever"] is not None:
            draw_off = sel[-1].get("draw_off")
            draw_off = sel[0]["off"] if draw_off is None else draw_off
            text += (f"; SAT's switched-off share {100 * draw_off:.1f} % at the draw, {100 * sel[-1]['off']:.1f} %"
                     f" at epoch {sel[-1]['epoch']}, {sel[-1]['crossed0_ever']:.1f} weights per network crossed 0 in"
                     " training (mean over seeds)")
        halves = [(g, gaps[g][-1]) for g in PARTS if gaps.get(g)]
        if halves:
            text += "; " + ", ".join(
                f"{GATE_LABELS[g]} − ORG {_diff(r['dice'])} at epoch {r['epoch']} (seed(s) "
                f"{','.join(map(str, r['seeds']))}{'' if r['complete'] else ', not every planned seed'})"
                for g, r in halves)
        parts.append(text)
    return ("**Does the gap close with training?** Learning curves from checkpoints kept along training (U-Net, "
            "paired over the test cases, 95 % CI; verdicts and what did not complete: docs/experiments.md, *Does "
            "the gap close with training?*): " + "; ".join(parts) + ".")


def _figures(runs, adam, numbers: dict, fig_dir: Path, docs: Path) -> dict[str, str]:
    from satgate_monai.experiments.figures import gap_curves, selection_histograms

    fig_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    panels = [(name, numbers["gaps"][name], run["keep_epochs"]) for name, run in runs]
    panels += [(f"{name}, Adam", {"sat": numbers["adam"][name]}, run["keep_epochs"]) for name, run in adam]
    path = gap_curves(panels, fig_dir / "curves_gap.png")
    out["Gate − ORG test Dice (95 % CI) against epochs"] = _rel(path, docs)
    hists = [(name, gate, histograms(run, gate)) for name, run in runs for gate in ("sat", "st")]
    hists = [h for h in hists if h[2]]
    if hists:
        path = selection_histograms(hists, fig_dir / "curves_selection.png")
        out["Selection weights at the draw and at every kept epoch"] = _rel(path, docs)
    return out


def _rel(path: Path, docs: Path) -> str:
    import os

    return os.path.relpath(path, docs.parent)


def _named(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"takes NAME=RUN_FOLDER, got {value!r}")
    return name.strip(), Path(path.strip())


def _load_or_stub(path: Path) -> dict:
    """:func:`load_run`, or an empty run ("not started") for a folder that does not exist yet (warned)."""
    if not Path(path).exists():
        logger.warning("%s does not exist: reported as not started", path)
        return {"dir": str(path), "task": None, "command": "(not started)", "data_note": None, "settings": {},
                "keep_epochs": [], "epochs": None, "seeds": [], "cells": []}
    return load_run(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m satgate_monai.experiments.curves_report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=_named, action="append", required=True, metavar="NAME=RUN",
                        help="a learning-curve run folder (Adadelta) and the name of its task in the tables")
    parser.add_argument("--adam", type=_named, action="append", default=[], metavar="NAME=RUN",
                        help="the optimizer check's run folder (SAT and ORG with --optimizer adam)")
    parser.add_argument("--docs", type=Path, default=Path("docs/experiments.md"))
    parser.add_argument("--readme", type=Path, default=None, help="README to update (its summary paragraph)")
    parser.add_argument("--figures", type=Path, default=Path("docs/figures"))
    parser.add_argument("--load-log", type=Path, default=None, help="an uptime log (one line a minute)")
    parser.add_argument("--bootstrap", type=int, default=10000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        runs = [(name, _load_or_stub(path)) for name, path in args.run]
        adam = [(name, _load_or_stub(path)) for name, path in args.adam]
        if not args.docs.is_file():
            raise ValueError(f"{args.docs} does not exist.")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    numbers = compute(runs, adam, n_boot=args.bootstrap)
    figures = _figures(runs, adam, numbers, args.figures, args.docs)
    section, verdicts = render_section(runs, adam, numbers, figures, load_summary(args.load_log))
    text = args.docs.read_text(encoding="utf-8")
    atomic_write_text(args.docs, replace_block(text, SECTION_BEGIN, SECTION_END, section, anchor="## results.json"))
    if args.readme is not None:
        readme = args.readme.read_text(encoding="utf-8")
        atomic_write_text(args.readme, replace_block(readme, SUMMARY_BEGIN, SUMMARY_END, summary_paragraph(numbers)))
    print(f"wrote the section to {args.docs}" + (f" and the summary to {args.readme}" if args.readme else "")
          + f"; figures: {', '.join(figures.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
