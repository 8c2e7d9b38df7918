"""Command line of ``data_prep``: one sub-command per module.

Every sub-command module exposes ``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int``
(the process exit code). Modules are imported lazily, so ``--help`` stays fast and one sub-command's optional
dependencies never break another.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from data_prep.errors import run_command
from data_prep.tasks import TARGET_SPACING

__all__ = ["main", "build_parser"]

# sub-command name -> module that implements it
SUBCOMMANDS = {
    "prepare": "data_prep.commands.prepare",
    "import": "data_prep.commands.import_dataset",
    "demo": "data_prep.commands.demo",
    "samples": "data_prep.commands.samples",
    "lesions": "data_prep.commands.lesions",
    "export-nnunet": "data_prep.commands.export_nnunet",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description=f"Turn DICOM series and NIfTI/NRRD/MHA files into training-ready {TARGET_SPACING:g} mm isotropic "
        "volumes.",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        module = importlib.import_module(module_name)
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = args.log_level.upper()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return run_command(lambda: args._run(args), debug=level == "DEBUG")
