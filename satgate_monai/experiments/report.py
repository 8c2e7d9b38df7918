"""``report.md`` from ``results.json``: the paper's Tables 1-3, the switched-off share, the paired tests, attention.

Every number in the report is formatted from ``results.json`` (nothing is recomputed here), so the two agree by
construction; :func:`fmt` is the single number format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from satgate_monai.experiments.analysis import GATE_LABELS, NETWORK_LABELS, gate_order, variant_label
from satgate_monai.experiments.paper_tables import paper_comparison_lines

__all__ = ["fmt", "pm", "render_report", "TABLE2_NETWORKS"]

TABLE2_NETWORKS = ("fcdensenet",)


def fmt(value: float | None, digits: int = 3) -> str:
    """Fixed-point number, ``n/a`` for missing values."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_p(value: float | None) -> str:
    """A p-value: 4 significant digits, ``n/a`` when missing."""
    return "n/a" if value is None else f"{value:.4g}"


def pm(stats: dict | None, digits: int = 3) -> str:
    """``mean ± std`` (``mean`` alone when std is undefined)."""
    if not stats or stats.get("mean") is None:
        return "n/a"
    if stats.get("std") is None:
        return fmt(stats["mean"], digits)
    return f"{fmt(stats['mean'], digits)} ± {fmt(stats['std'], digits)}"


def _channels(row: dict) -> str:
    out = "/".join(str(c) for c in row["skip_out_channels"])
    if row.get("selected_channels"):
        active = "/".join(f"{s:.0f}" for s in row["selected_channels"])
        total = "/".join(str(c) for c in row["skip_in_channels"])
        out += f" (active {active} of {total})"
    return out


def _table(rows: Sequence[dict]) -> list[str]:
    lines = [
        "| Network | Skip | Dice | FPR | FNR | Dice seed sd | Channels transferred per skip (shallow→deep) "
        "| Cases | Seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {NETWORK_LABELS.get(r['network'], r['network'])} | {GATE_LABELS.get(r['gate'], r['gate'])} "
            f"| {pm(r['dice'])} | {pm(r['fpr'])} | {pm(r['fnr'])} | {fmt(r['dice'].get('seed_std'))} "
            f"| {_channels(r)} | {r['n_cases']} | {len(r['seeds'])} |"
        )
    return lines


def _sat_vs_org(comparisons: Sequence[dict]) -> list[str]:
    lines = [
        "| Network | Metric | Cases | ORG mean | SAT mean | SAT − ORG [95 % CI] | Wilcoxon W | p | p (Holm) "
        "| std ORG | std SAT | std ratio SAT/ORG [95 % CI] | P(ratio ≥ 1) | Pitman-Morgan p | Note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        if not (c["a"][1] == "sat" and c["b"][1] == "org" and c["a"][0] == c["b"][0]):
            continue
        boot, pmt, w = c["consistency"]["bootstrap"], c["consistency"]["pitman_morgan"], c["wilcoxon"]
        lines.append(
            f"| {NETWORK_LABELS.get(c['a'][0], c['a'][0])} | {c['metric']} | {c['n']} | {fmt(c['mean_b'])} "
            f"| {fmt(c['mean_a'])} | {fmt(c['mean_difference'])} [{fmt(c['ci95'][0])}, {fmt(c['ci95'][1])}] "
            f"| {fmt(w['statistic'], 1)} | {fmt_p(w['p'])} | {fmt_p(c.get('p_holm'))} | {fmt(boot['std_b'])} "
            f"| {fmt(boot['std_a'])} | {fmt(boot['ratio'])} [{fmt(boot['ci95'][0])}, {fmt(boot['ci95'][1])}] "
            f"| {fmt(boot['p_ratio_ge_1'])} | {fmt_p(pmt['p'])} | {w['note']} |"
        )
    return lines


def _other_comparisons(comparisons: Sequence[dict]) -> list[str]:
    lines = [
        "| A | B | Metric | Cases | mean A | mean B | A − B [95 % CI] | Wilcoxon p | std ratio A/B | Note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        boot = c["consistency"]["bootstrap"]
        lines.append(
            f"| {variant_label(*c['a'])} | {variant_label(*c['b'])} | {c['metric']} | {c['n']} | {fmt(c['mean_a'])} "
            f"| {fmt(c['mean_b'])} | {fmt(c['mean_difference'])} [{fmt(c['ci95'][0])}, {fmt(c['ci95'][1])}] "
            f"| {fmt_p(c['wilcoxon']['p'])} | {fmt(boot['ratio'])} | {c['wilcoxon']['note']} |"
        )
    return lines


def _shares(sel: dict | None) -> list[str]:
    if not sel:
        return ["n/a"] * 3
    return [pm(sel[k]) for k in ("off", "between", "frozen")]


def _per_skip(sel: dict | None) -> str:
    if not sel or not sel.get("per_skip") or any(s is None for s in sel["per_skip"]):
        return "n/a"
    return " / ".join(f"{100 * s['off']:.0f}-{100 * s['between']:.0f}-{100 * s['frozen']:.0f}" for s in sel["per_skip"])


def _selection_section(results: dict) -> list[str]:
    """Switched-off / between / frozen shares per selecting variant, and the warnings when a gate does not select."""
    lines = ["", "## Switched-off skip channels", "",
             "After training, each selection weight w is *off* (w <= 0: the channel is switched off for good, "
             "trelu gives it no gradient), *between* (0 < w < 1: the channels that select) or *frozen* (w >= 1: "
             "passed whole for good, no gradient either). Shares of skip channels pooled over the network's gates, "
             "mean ± std over seeds (the paper reports 55-67 % switched off); *per skip* gives off-between-frozen "
             "in % per skip, shallow to deep, mean over seeds.", "",
             "| Network | Skip | Switched off | Between 0 and 1 | Frozen on | Per skip (off-between-frozen %) "
             "| Seeds |",
             "|---|---|---|---|---|---|---|"]
    for r in results["switched_off"]:
        sel = r.get("selection")
        off, between, frozen = _shares(sel) if sel else (pm(r), "n/a", "n/a")
        lines.append(f"| {NETWORK_LABELS.get(r['network'], r['network'])} | {GATE_LABELS.get(r['gate'], r['gate'])} "
                     f"| {off} | {between} | {frozen} | {_per_skip(sel)} | {r['n']} |")
    if not results["switched_off"]:
        lines.append("| — | no sat/st variant in this grid | | | | | |")
    return lines


def render_report(results: dict) -> str:
    """The markdown report for a ``results.json`` dictionary."""
    s = results["settings"]
    variants = results["variants"]
    data_note = results.get("data_note") or ""
    order = gate_order()
    lines = [
        f"# Skip-gate experiments: {results['task']}",
        "",
        f"Data: `{results['data']}`{' — ' + data_note if data_note else ''}. Bundle: `{results['bundle']}`.",
        f"Grid: networks {', '.join(s['networks'])}; gates {', '.join(s['gates'])}; peers "
        f"{', '.join(s['peers']) or 'none'}; seeds {', '.join(map(str, s['seeds']))}; epochs {s['epochs']}; "
        f"device {s['device']}; profile {s.get('profile', 'n/a')}; bundle overrides "
        f"`{json.dumps(s.get('overrides', {}))}`; network arguments `{json.dumps(s.get('network_args', {}))}`. "
        f"Cells finished: {len(results['cells'])}.",
        "",
        f"Command: `{results['command']}`",
        "",
        *[f"**Warning:** {w}\n" for w in [*results.get("warnings", []), *results.get("selection_warnings", [])]],
        "All numbers are on the held-out **test** split. Each case's value is averaged over the seeds first; "
        "`mean ± std` is over test cases (sample std); *Dice seed sd* is the std of the per-seed mean Dice. "
        "FPR = FP / (FP + TN), FNR = FN / (FN + TP), per case.",
        "",
        "## Table 1: Dice, FPR, FNR per network and skip connection",
        "",
        *_table([r for r in variants if r["network"] not in TABLE2_NETWORKS]),
        "",
        "Channels transferred per skip: what each skip hands to the decoder (ORG/ST: all C channels; AT/SAT: one "
        "attention map; AG, MONAI's attention gate: C gated channels). *active* counts the channels whose selection "
        "weight is not zero.",
        "",
        "## Table 2: Tiramisu (FC-DenseNet)",
        "",
    ]
    t2 = [r for r in variants if r["network"] in TABLE2_NETWORKS]
    lines += _table(t2) if t2 else ["Not in this grid (add `fcdensenet` to `--networks`)."]
    lines += ["", *paper_comparison_lines(results, NETWORK_LABELS, GATE_LABELS)]
    lines += [
        "",
        "## Table 3: parameters",
        "",
        "| Network | " + " | ".join(GATE_LABELS.get(g, g.upper()) for g in order) + " | SAT vs ORG |",
        "|---|" + "---|" * len(order) + "---|",
    ]
    for p in results["params"]:
        cells = " | ".join(f"{p['params'][g]:,}" if g in p["params"] else "—" for g in order)
        change = "n/a" if p["sat_vs_org"] is None else f"{100 * p['sat_vs_org']:+.1f} %"
        lines.append(f"| {p['label']} | {cells} | {change} |")
    lines += _selection_section(results)
    lines += [
        "", "## Paired test: SAT vs ORG per case", "",
        "Wilcoxon signed-rank test (two-sided, scipy; zero differences dropped) on the per-case differences, the mean "
        "difference with a paired bootstrap 95 % CI (10,000 resamples), and Holm's correction over networks. "
        "Consistency (\"SAT has a smaller std\"): paired bootstrap of the std ratio SAT/ORG (same resampled cases for "
        "both; percentile 95 % CI; P(ratio ≥ 1) is the one-sided bootstrap p-value for a smaller SAT std) and the "
        "Pitman-Morgan test of equal variances for paired samples (two-sided). Levene/Brown-Forsythe are not used "
        "because the two variants are measured on the same cases.", "",
        *_sat_vs_org(results["comparisons"]),
        "", "### All comparisons", "",
        *_other_comparisons(results["comparisons"]),
        "", "## Does the attention look at the target?", "",
        f"Share of attention mass outside the ground truth dilated by {s['dilation']} pixels/voxels, per case "
        "(maps upsampled to the label grid). *all skips*: mean over the network's attention maps; *finest*: the "
        "full-resolution skip. *uniform*: what a constant map scores (the share of the image outside the dilated "
        "ground truth); lower is better, and a map is informative only when clearly below uniform.", "",
        "| Network | Skip | Outside, all skips | Outside, finest | Uniform | Cases |", "|---|---|---|---|---|---|",
    ]
    for r in results["attention"]["rows"]:
        lines.append(f"| {NETWORK_LABELS.get(r['network'], r['network'])} | {GATE_LABELS.get(r['gate'], r['gate'])} "
                     f"| {pm(r['outside'])} | {pm(r['outside_finest'])} | {pm(r['uniform'])} | {r['outside']['n']} |")
    if results["attention"]["tests"]:
        lines += ["", "| Network | Cases | SAT outside | AT outside | SAT − AT | Wilcoxon p | Note |",
                  "|---|---|---|---|---|---|---|"]
        for t in results["attention"]["tests"]:
            lines.append(f"| {NETWORK_LABELS.get(t['network'], t['network'])} | {t['n']} | {fmt(t['mean_sat'])} "
                         f"| {fmt(t['mean_at'])} | {fmt(t['mean_difference'])} | {fmt_p(t['wilcoxon']['p'])} "
                         f"| {t['wilcoxon']['note']} |")
    lines += ["", "## Figures", ""]
    for name, path in results.get("figures", {}).items():
        lines += [f"### {name}", "", f"![{name}]({path})", ""]
    return "\n".join(lines) + "\n"
