"""From finished cells to the numbers of the report: per-variant summaries, paired comparisons, attention, params.

Input: the cell records (schema in ``docs/experiments.md``). A *variant* is a ``(network, gate)`` pair; its
cells differ only by seed. Per variant, each test case's value is averaged over the seeds first, so every summary
(mean ± std over cases), box plot and paired test uses one value per case. ``seed_std`` is the std of the per-seed
means: the run-to-run variability, reported separately.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from satgate_monai.experiments.grid import PEER_GATE
from satgate_monai.experiments.stats import describe, holm, paired_comparison, wilcoxon_signed_rank
from satgate_monai.networks.factories import gate_class, gate_names

__all__ = [
    "METRICS",
    "GATE_ORDER",
    "NETWORK_LABELS",
    "GATE_LABELS",
    "variant_label",
    "per_case",
    "summarize_variants",
    "compare_variants",
    "attention_summary",
    "params_table",
    "switched_off_table",
    "selection_warnings",
    "analyze",
]

METRICS = ("dice", "fpr", "fnr")
def gate_order() -> tuple[str, ...]:
    """Table order of the gates: the registry's order (``org, at, st, sat``, then any registered gate), then peers."""
    return (*gate_names(), PEER_GATE)


GATE_ORDER = gate_order()
NETWORK_LABELS = {"unet": "U-Net", "vnet": "V-Net", "fcdensenet": "Tiramisu (FC-DenseNet)", "di2in": "DI2IN",
                  "attentionunet": "Attention U-Net (MONAI)"}
GATE_LABELS = {"org": "ORG", "at": "AT", "st": "ST", "sat": "SAT", "ag": "AG"}


def variant_label(network: str, gate: str) -> str:
    """Human-readable name, e.g. ``U-Net SAT``."""
    return f"{NETWORK_LABELS.get(network, network)} {GATE_LABELS.get(gate, gate.upper())}"


def _variant_key(cell: dict) -> tuple[str, str]:
    return cell["network"], cell["gate"]


def _sort_key(variant: tuple[str, str]) -> tuple[int, int]:
    nets = list(NETWORK_LABELS)
    order = gate_order()
    net = nets.index(variant[0]) if variant[0] in nets else len(nets)
    gate = order.index(variant[1]) if variant[1] in order else len(order)
    return net, gate


def group_cells(cells: Sequence[dict]) -> dict[tuple[str, str], list[dict]]:
    """Cells grouped by ``(network, gate)``, variants in table order, cells by seed."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for cell in cells:
        groups[_variant_key(cell)].append(cell)
    return {k: sorted(groups[k], key=lambda c: c["seed"]) for k in sorted(groups, key=_sort_key)}


def per_case(cells: Sequence[dict], field: str) -> dict[str, float]:
    """``{case: value averaged over the cells (seeds)}`` for a per-case field; NaN/None values are skipped."""
    values: dict[str, list[float]] = defaultdict(list)
    for cell in cells:
        for case in cell["cases"]:
            v = case.get(field)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                values[case["case"]].append(float(v))
    return {case: float(np.mean(v)) for case, v in sorted(values.items()) if v}


def _per_seed_means(cells: Sequence[dict], field: str) -> list[float]:
    out = []
    for cell in cells:
        vals = [c.get(field) for c in cell["cases"] if c.get(field) is not None]
        vals = [v for v in vals if not math.isnan(v)]
        if vals:
            out.append(float(np.mean(vals)))
    return out


def summarize_variants(cells: Sequence[dict]) -> list[dict]:
    """One row per variant: Dice/FPR/FNR mean ± std over cases (seed-averaged), seed std, params, skip channels.

    Returns:
        rows ``{"network", "gate", "label", "seeds", "n_cases", "dice": {"mean", "std", "n", "seed_std"}, "fpr",
        "fnr", "params", "skip_in_channels", "skip_out_channels", "selected_channels", "switched_off": {...},
        "train_seconds"}``.
    """
    rows = []
    for (network, gate), group in group_cells(cells).items():
        row: dict = {"network": network, "gate": gate, "label": variant_label(network, gate),
                     "seeds": [c["seed"] for c in group]}
        for metric in METRICS:
            cases = per_case(group, metric)
            stats = describe(list(cases.values()))
            stats["seed_std"] = describe(_per_seed_means(group, metric))["std"]
            row[metric] = stats
            row["n_cases"] = len(cases)
        first = group[0]
        row["params"] = first["params"]
        row["skip_in_channels"] = [s["in_channels"] for s in first["skips"]]
        row["skip_out_channels"] = [s["out_channels"] for s in first["skips"]]
        selected = [[s.get("selected") for s in c["skips"]] for c in group]
        row["selected_channels"] = (
            [float(np.mean(col)) for col in zip(*selected)] if selected and all(
                v is not None for sel in selected for v in sel) and selected[0] else None
        )
        off = [c.get("switched_off_fraction") for c in group]
        off = [v for v in off if v is not None and not math.isnan(v)]
        row["switched_off"] = describe(off) if off else None
        row["selection"] = _selection_summary(group)
        row["train_seconds"] = float(sum(c.get("train_seconds", 0.0) for c in group))
        rows.append(row)
    return rows


SHARES = ("off", "between", "frozen")


def _selection_summary(group: Sequence[dict]) -> dict | None:
    """Shares of skip channels off / between / frozen, pooled (mean ± std over seeds) and per skip (mean over
    seeds, shallow -> deep); ``None`` when the variant has no selection weights or the cells predate the shares."""
    pooled = [c.get("selection") for c in group]
    if not pooled or any(p is None for p in pooled):
        return None
    out: dict = {k: describe([p[k] for p in pooled]) for k in SHARES}
    out["never_between"] = all(p["between"] == 0 for p in pooled)
    out["all_frozen"] = all(p["frozen"] == 1 for p in pooled)
    skips = [c["skips"] for c in group]
    out["per_skip"] = [
        {"off": float(np.mean([s["switched_off"] for s in col])),
         "between": float(np.mean([s["between"] for s in col])),
         "frozen": float(np.mean([s["frozen"] for s in col]))}
        if all(s.get("between") is not None for s in col) else None
        for col in zip(*skips)
    ]
    return out


def selection_warnings(rows: Sequence[dict]) -> list[str]:
    """Words for variants whose selection does not select: a gate with selection weights none of which lies strictly
    inside (0, 1) computes the same gate without selection (``sat`` -> ``at``, ``st`` -> ``org``): exactly when every
    weight is frozen at >= 1, with the switched-off channels dropped otherwise. "Nearly" when fewer than 5 % of the
    weights lie between 0 and 1, or when no channel is switched off and at least half are frozen at >= 1."""
    out = []
    for r in rows:
        sel = r.get("selection")
        if not sel:
            continue
        twin = _unselected_twin(r["gate"])
        as_twin = f"{GATE_LABELS.get(twin, twin.upper())}" if twin else "the gate without selection"
        label, seeds = r["label"], len(r["seeds"])
        if sel["all_frozen"]:
            out.append(f"{label} behaves as {as_twin}: every selection weight is frozen at >= 1 in all {seeds} "
                       "seed(s), so it selects nothing (selection init 1.0 does this: trelu has no gradient above 1).")
        elif sel["never_between"]:
            out.append(f"{label} behaves as {as_twin} with channels dropped: no selection weight lies strictly "
                       f"between 0 and 1 in any of {seeds} seed(s) ({100 * sel['off']['mean']:.1f} % off, "
                       f"{100 * sel['frozen']['mean']:.1f} % frozen on).")
        elif sel["between"]["mean"] < 0.05:
            out.append(f"{label} nearly behaves as {as_twin}: only {100 * sel['between']['mean']:.1f} % of its "
                       "selection weights lie strictly between 0 and 1.")
        elif sel["off"]["mean"] == 0 and sel["frozen"]["mean"] >= 0.5:
            out.append(f"{label} nearly behaves as {as_twin}: no channel is switched off in any of {seeds} seed(s) "
                       f"and {100 * sel['frozen']['mean']:.1f} % of the selection weights are frozen at >= 1 "
                       "(typical of selection init 1.0).")
    return out


def _unselected_twin(gate: str) -> str | None:
    """The registered gate with the same capabilities but no selection (``sat`` -> ``at``, ``st`` -> ``org``)."""
    try:
        cls = gate_class(gate)
    except ValueError:
        return None
    twins = gate_names(has_selection=False, transfers_one_channel=cls.transfers_one_channel,
                       produces_attention=cls.produces_attention)
    return twins[0] if twins else None


def compare_variants(cells: Sequence[dict], a: tuple[str, str], b: tuple[str, str], metric: str = "dice",
                     n_boot: int = 10000, seed: int = 0) -> dict | None:
    """Paired comparison of variant ``a`` vs ``b`` on ``metric`` over the test cases both have (seed-averaged).

    Returns ``None`` when either variant is missing.
    """
    groups = group_cells(cells)
    if a not in groups or b not in groups:
        return None
    va, vb = per_case(groups[a], metric), per_case(groups[b], metric)
    common = sorted(set(va) & set(vb))
    result = paired_comparison([va[c] for c in common], [vb[c] for c in common], n_boot=n_boot, seed=seed)
    result.update(a=list(a), b=list(b), metric=metric, cases=common)
    return result


def _comparison_pairs(variants: Sequence[tuple[str, str]]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    present = set(variants)
    pairs = []
    networks = list(dict.fromkeys(n for n, _ in variants))
    vs_org = ("sat", *[g for g in gate_names() if g not in ("sat", "org")])  # every registered gate, SAT first
    for net in networks:
        for gate in vs_org:
            if (net, gate) in present and (net, "org") in present:
                pairs.append(((net, gate), (net, "org")))
        if (net, "sat") in present and (net, "at") in present:
            pairs.append(((net, "sat"), (net, "at")))
    for peer in [v for v in variants if v[1] == "ag"]:
        for gate in ("sat", "org"):
            if ("unet", gate) in present:
                pairs.append((("unet", gate), peer))
    return pairs


def compare_all(cells: Sequence[dict], n_boot: int = 10000) -> list[dict]:
    """Every comparison of the report, on every metric; Holm-adjusted p over the SAT-vs-ORG family per metric."""
    variants = list(group_cells(cells))
    out = []
    for a, b in _comparison_pairs(variants):
        for metric in METRICS:
            res = compare_variants(cells, a, b, metric, n_boot=n_boot)
            if res is not None:
                out.append(res)
    for metric in METRICS:
        family = [r for r in out if r["metric"] == metric and r["a"][1] == "sat" and r["b"][1] == "org"
                  and r["a"][0] == r["b"][0]]
        for r, p in zip(family, holm([r["wilcoxon"]["p"] for r in family])):
            r["p_holm"] = p
    return out


def attention_summary(cells: Sequence[dict]) -> dict:
    """Attention mass outside the dilated ground truth per attending variant, and SAT vs AT per network.

    Returns:
        ``{"rows": [{"network", "gate", "label", "outside": {...}, "outside_finest": {...}, "uniform": {...}}],
        "tests": [{"network", "n", "mean_sat", "mean_at", "mean_difference", "wilcoxon": {...}}]}``.
    """
    groups = group_cells(cells)
    rows, tests = [], []
    for (network, gate), group in groups.items():
        outside = per_case(group, "attention_outside")
        if not outside:
            continue
        rows.append({
            "network": network, "gate": gate, "label": variant_label(network, gate),
            "outside": describe(list(outside.values())),
            "outside_finest": describe(list(per_case(group, "attention_outside_finest").values())),
            "uniform": describe(list(per_case(group, "uniform_outside").values())),
        })
    for network in dict.fromkeys(n for n, _ in groups):
        if (network, "sat") in groups and (network, "at") in groups:
            s = per_case(groups[(network, "sat")], "attention_outside")
            t = per_case(groups[(network, "at")], "attention_outside")
            common = sorted(set(s) & set(t))
            if not common:
                continue
            a, b = [s[c] for c in common], [t[c] for c in common]
            tests.append({"network": network, "n": len(common), "mean_sat": float(np.mean(a)),
                          "mean_at": float(np.mean(b)), "mean_difference": float(np.mean(a) - np.mean(b)),
                          "wilcoxon": wilcoxon_signed_rank(a, b)})
    return {"rows": rows, "tests": tests}


def params_table(rows: Sequence[dict]) -> list[dict]:
    """Per network: parameters of every gate variant, and SAT's change relative to ORG (Table 3)."""
    table: dict[str, dict] = {}
    for row in rows:
        entry = table.setdefault(row["network"], {"network": row["network"],
                                                  "label": NETWORK_LABELS.get(row["network"], row["network"]),
                                                  "params": {}})
        entry["params"][row["gate"]] = row["params"]
    for entry in table.values():
        org, sat = entry["params"].get("org"), entry["params"].get("sat")
        entry["sat_vs_org"] = (sat - org) / org if org and sat is not None else None
    return list(table.values())


def switched_off_table(rows: Sequence[dict]) -> list[dict]:
    """Per network and selecting gate (``sat``/``st``): share of switched-off skip channels, mean ± std over seeds,
    with ``selection`` (shares off / between / frozen, pooled and per skip; ``None`` for cells without them)."""
    return [{"network": r["network"], "gate": r["gate"], "label": r["label"], **r["switched_off"],
             "selection": r.get("selection")}
            for r in rows if r["switched_off"] is not None]


def analyze(cells: Sequence[dict], n_boot: int = 10000) -> dict:
    """All derived sections of ``results.json``: ``variants``, ``comparisons``, ``attention``, ``params``,
    ``switched_off``."""
    rows = summarize_variants(cells)
    return {
        "variants": rows,
        "comparisons": compare_all(cells, n_boot=n_boot),
        "attention": attention_summary(cells),
        "params": params_table(rows),
        "switched_off": switched_off_table(rows),
        "selection_warnings": selection_warnings(rows),
    }
