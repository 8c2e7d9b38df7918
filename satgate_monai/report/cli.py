"""Command line of the reports: ``python -m satgate_monai.report params [--format markdown|csv]``."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence

from satgate_monai.report.compare import readings, table3_comparison
from satgate_monai.report.paper import CITATION, HONEST_NOTE, PAPER_CLAIMS, TABLE3_NOTE
from satgate_monai.report.params import CONFIGS, describe, input_label, parameter_table

__all__ = ["main", "render_markdown", "render_csv", "paper_table"]

_COLUMNS = (
    ("setting", "setting"), ("network", "network"), ("gate", "skip"), ("params", "parameters"),
    ("params_change_pct", "params vs ORG"), ("gflops", "GFLOPs (fwd)"), ("gflops_change_pct", "FLOPs vs ORG"),
    ("skip_in", "skip channels C"), ("skip_out", "channels transferred"), ("saving", "ORG - this"),
    ("formula", "formula"),
)


def _cell(key: str, value) -> str:
    if key == "params" or key in ("saving", "formula"):
        return f"{value:,}"
    if key.endswith("_pct"):
        return f"{value:+.1f} %"
    if key == "gflops":
        return f"{value:.2f}"
    return str(value)


def render_markdown(rows: list[dict]) -> str:
    """The report as Markdown: configurations, table, the paper's figures and the honest note."""
    out = ["# Parameters and FLOPs with ORG / AT / ST / SAT skips", "", "## Configurations", ""]
    for config in CONFIGS:
        out.append(f"- {config.setting}, {config.network} (input {input_label(config)}): {describe(config)}.")
    agree = all(row["saving"] == row["formula"] for row in rows)
    out += ["", "FLOPs: torch.utils.flop_counter on the meta device, 2 per multiply-add, convolutions only. "
            "'formula' is the saving predicted from the skip formula; it equals the counted 'ORG - this' on "
            + ("every row." if agree else "NOT every row (see the table)."), ""]
    out.append("| " + " | ".join(title for _, title in _COLUMNS) + " |")
    out.append("|" + "---|" * len(_COLUMNS))
    for row in rows:
        out.append("| " + " | ".join(_cell(key, row[key]) for key, _ in _COLUMNS) + " |")
    out += ["", "## The paper's Table 3 beside ours", "", f"Paper: {CITATION}. {TABLE3_NOTE}", ""]
    out += paper_table(rows)
    out += ["", "## The paper's claims", ""]
    out += [f"- {claim}" for claim in PAPER_CLAIMS]
    out += ["", "## Note", "", HONEST_NOTE]
    sat = {(r["setting"], r["network"]): r["params_change_pct"] for r in rows if r["gate"] == "SAT"}
    measured = ", ".join(f"{s} {n} {v:+.1f} %" for (s, n), v in sat.items())
    out += ["", f"Measured SAT parameter change vs ORG here: {measured}.", ""]
    return "\n".join(out)


def paper_table(rows: list[dict]) -> list[str]:
    """Markdown lines: the paper's parameter counts beside ours for the same network and setting, and the reading."""
    comparison = table3_comparison(rows)
    if not comparison:
        return ["No network of the paper's Table 3 is in this report's settings."]
    out = ["| network (paper) | setting | paper original | paper SAT | paper change | paper saving | ours | ours ORG "
           "| ours SAT | ours change | ours saving | saving gap (ours - paper) |", "|" + "---|" * 12]
    for c in comparison:
        out.append(f"| {c['label']} | {c['setting']} | {c['paper_org']:,} | {c['paper_sat']:,} "
                   f"| {c['paper_change_pct']:+.1f} % | {c['paper_saving']:,} | {c['ours_label']} | {c['ours_org']:,} "
                   f"| {c['ours_sat']:,} | {c['ours_change_pct']:+.1f} % | {c['ours_saving']:,} "
                   f"| {c['saving_gap']:+,} |")
    out += ["", "Reading:", ""]
    out += [f"- {line}" for line in readings(comparison)]
    return out


def render_csv(rows: list[dict]) -> str:
    """The table alone as CSV, one row per (setting, network, gate)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[key for key, _ in _COLUMNS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: round(row[key], 4) if isinstance(row[key], float) else row[key] for key, _ in _COLUMNS})
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m satgate_monai.report", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("params", help="parameters, FLOPs and skip channels of every network (Table 3)")
    params.add_argument("--format", choices=("markdown", "csv"), default="markdown", help="output format")
    params.add_argument("--setting", choices=sorted({c.setting for c in CONFIGS}), default=None,
                        help="only one setting (default: all)")
    args = parser.parse_args(argv)
    configs = tuple(c for c in CONFIGS if args.setting in (None, c.setting))
    rows = parameter_table(configs)
    sys.stdout.write(render_markdown(rows) if args.format == "markdown" else render_csv(rows))
    return 0
