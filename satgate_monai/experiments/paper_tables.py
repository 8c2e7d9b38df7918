"""The paper's Tables 1-2 (and its DI2IN liver Dice) beside a run's measurements, for ``report.md``.

The paper's numbers come from :mod:`satgate_monai.report.paper`; the run's from ``results.json`` (``variants``), so
nothing is recomputed. The reading compares what can be compared: the direction of SAT - ORG per network (the
paper's claim "SAT improves Dice") and, only when the run used the paper's data, the values themselves.
"""

from __future__ import annotations

import math

from satgate_monai.report.paper import CITATION, paper_metrics

__all__ = ["paper_comparison_lines"]

_PAPER_DATA = {
    "prostate": "prostate MRI, 1029 volumes (258 test) at 2 mm",
    "skin": "ISIC 2017, 2000 training and 150 test images",
    "liver": "liver CT, more than 2000 volumes (61 test) at 2 mm",
}


def _pm(value: tuple[float, float] | None, digits: int) -> str:
    if value is None:
        return "—"
    mean, std = value
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _ours(stats: dict | None, digits: int) -> str:
    if not stats or stats.get("mean") is None:
        return "n/a"
    std = stats.get("std")
    return f"{stats['mean']:.{digits}f}" if std is None else f"{stats['mean']:.{digits}f} ± {std:.{digits}f}"


def _direction(delta: float) -> str:
    return "higher" if delta > 0 else "lower" if delta < 0 else "equal"


def paper_comparison_lines(results: dict, network_labels: dict[str, str], gate_labels: dict[str, str]) -> list[str]:
    """Markdown lines: a table of the paper's Dice/FPR/FNR beside this run's per variant, and the reading.

    Args:
        results: the ``results.json`` dictionary (``task``, ``data_note``, ``variants``).
        network_labels: display names of the networks.
        gate_labels: display names of the gates.
    """
    task = results["task"]
    lines = ["## The paper's Tables 1-2 beside this run", ""]
    rows = [(v, paper_metrics(task, v["network"], v["gate"])) for v in results["variants"]]
    rows = [(v, p) for v, p in rows if p is not None]
    if not rows:
        lines.append(f"The paper ({CITATION}) reports no network/skip of this grid on the {task} task.")
        return lines
    lines += [
        f"Paper: {CITATION}, test set of its {_PAPER_DATA[task]}. This run: `{results['data']}`"
        + (f" ({results['data_note']})" if results.get("data_note") else "") + ".", "",
        "| Network | Skip | Dice (paper) | Dice (here) | FPR (paper) | FPR (here) | FNR (paper) | FNR (here) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v, p in rows:
        lines.append(
            f"| {network_labels.get(v['network'], v['network'])} | {gate_labels.get(v['gate'], v['gate'])} "
            f"| {_pm(p.get('dice'), 2)} | {_ours(v.get('dice'), 2)} | {_pm(p.get('fpr'), 3)} "
            f"| {_ours(v.get('fpr'), 3)} | {_pm(p.get('fnr'), 2)} | {_ours(v.get('fnr'), 2)} |")
    lines += ["", "Reading:", ""]
    measured = {(v["network"], v["gate"]): v for v, _ in rows}
    papers = {(v["network"], v["gate"]): p for v, p in rows}
    for network in dict.fromkeys(n for n, _ in measured):
        label = network_labels.get(network, network)
        if (network, "sat") not in measured or (network, "org") not in measured:
            lines.append(f"- {label}: SAT and ORG are not both in this grid; nothing to compare.")
            continue
        ours = [measured[(network, g)].get("dice", {}).get("mean") for g in ("sat", "org")]
        theirs = papers[(network, "sat")]["dice"][0] - papers[(network, "org")]["dice"][0]
        if None in ours:
            lines.append(f"- {label}: no Dice measured.")
            continue
        delta = ours[0] - ours[1]
        agree = "as in the paper" if _direction(delta) == _direction(theirs) else "unlike the paper"
        lines.append(f"- {label}: SAT − ORG Dice here {delta:+.3f} (SAT {_direction(delta)} than ORG, {agree}; paper "
                     f"{theirs:+.2f}). The paired test below says whether the difference is more than noise.")
    lines.append(
        "- The values themselves are comparable with the paper's only on the paper's data and recipe; "
        + ("this run's data are synthetic phantoms, so they say nothing about the paper's numbers."
           if "phantom" in (results.get("data_note") or "").lower() else
           "check that the data, split and epochs match before reading them as a reproduction."))
    return lines
