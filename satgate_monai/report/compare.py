"""The paper's Table 3 (and its DI2IN figures) beside our counted parameters, with a reading per network.

Input: the rows of :func:`satgate_monai.report.params.parameter_table`. Our row for a paper row is the same network
in the same setting (the Tiramisu is our FC-DenseNet103, the network the paper names); the comparison reports both
totals, both SAT savings and their gap. The readings are derived from those numbers, not written in advance: a row
is "reproduced" only when both totals agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from satgate_monai.report.paper import DI2IN, TABLE3, Table3Row

__all__ = ["OUR_LABELS", "table3_comparison", "readings"]

OUR_LABELS = {"unet": "U-Net", "vnet": "V-Net", "fcdensenet": "FC-DenseNet103", "di2in": "DI2IN"}
"""Our report row label for each network the paper counts."""

_EXACT = {
    "di2in": " Yang et al. publish no widths; SATDI2IN's follow from the skip formula (skips 16/32/64/128, each "
             "feeding one 3x3x3 convolution C/2 wide), completed to match this count.",
}
_UNPUBLISHED = {
    "unet": "the paper's U-Net widths and depths per dataset are not given; a U-Net with two convolutions per level "
            "and doubling widths saves about 10 % with SAT, so the paper's 26-31 % imply a network much lighter "
            "outside the skips",
    "fcdensenet": "the paper gates the long skips and the connections inside every dense block, with per-dataset "
                  "widths it does not give; our row gates the long skips of FC-DenseNet103 (dense-block gates are "
                  "the optional dense_gate)",
    "vnet": "the paper narrowed V-Net per dataset without giving the widths",
    "di2in": "the paper gives DI2IN's totals but not its widths",
}


def _paper_rows() -> list[Table3Row]:
    return [*TABLE3, Table3Row(DI2IN["network"], "DI2IN (liver, text)", DI2IN["setting"], DI2IN["original"],
                               DI2IN["sat"])]


def table3_comparison(rows: Sequence[dict]) -> list[dict]:
    """One entry per paper count whose network and setting we measured.

    Args:
        rows: parameter-table rows (``setting, network, gate, params``).

    Returns:
        dicts with ``network, label, setting, paper_org, paper_sat, paper_change_pct, paper_saving, ours_org,
        ours_sat, ours_change_pct, ours_saving, org_gap`` (ours - paper) and ``saving_gap`` (ours - paper).
    """
    counted = {(r["setting"], r["network"], r["gate"]): r["params"] for r in rows}
    out = []
    for p in _paper_rows():
        key = (p.setting, OUR_LABELS[p.network])
        if (*key, "ORG") not in counted or (*key, "SAT") not in counted:
            continue
        org, sat = counted[(*key, "ORG")], counted[(*key, "SAT")]
        out.append({
            "network": p.network, "label": p.label, "setting": p.setting, "ours_label": OUR_LABELS[p.network],
            "paper_org": p.original, "paper_sat": p.sat, "paper_change_pct": p.change_pct, "paper_saving": p.saving,
            "ours_org": org, "ours_sat": sat, "ours_change_pct": 100.0 * (sat - org) / org, "ours_saving": org - sat,
            "org_gap": org - p.original, "saving_gap": (org - sat) - p.saving,
        })
    return out


def readings(comparison: Sequence[dict]) -> list[str]:
    """One sentence per network: what matches the paper, what cannot, and why (from the numbers)."""
    lines = []
    for network in dict.fromkeys(c["network"] for c in comparison):
        group = [c for c in comparison if c["network"] == network]
        label = group[0]["label"]
        if all(c["org_gap"] == 0 and c["saving_gap"] == 0 for c in group):
            lines.append(f"{label}: reproduced exactly ({', '.join(c['setting'] for c in group)}): both totals and "
                         f"the SAT saving equal the paper's.{_EXACT.get(network, '')}")
            continue
        savings = "; ".join(f"{c['setting']} ours {c['ours_saving']:,} vs paper {c['paper_saving']:,}" for c in group)
        gaps = {c["saving_gap"] for c in group}
        if all(c["saving_gap"] == 0 for c in group):
            why = (f"the SAT saving equals the paper's ({savings}), so the skip widths and the convolutions after "
                   f"them match; the totals differ because {_UNPUBLISHED[network]}.")
        elif len(group) > 1 and len(gaps) == 1:
            gap = gaps.pop()
            why = (f"the SAT saving differs by the same {abs(gap):,} parameters in every setting ({savings}) although "
                   "the kernel volume k^d differs between 2D and 3D, so the convolutions after the skips account for "
                   "the paper's saving and the gap lies elsewhere (the paper does not say where); the totals differ "
                   f"because {_UNPUBLISHED[network]}.")
        else:
            why = f"not reproducible from the paper: {_UNPUBLISHED[network]} ({savings})."
        lines.append(f"{label}: {why}")
    return lines
