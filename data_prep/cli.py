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
from pathlib import Path

from data_prep.console import configure_output, reset_output
from data_prep.errors import EXIT_USAGE, run_command
from data_prep.extras import missing_extra
from data_prep.tasks import TARGET_SPACING

__all__ = ["LOG_NAME", "main", "build_parser"]

LOG_NAME = "data_prep.log"  # the full log, in the output folder

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
    parser.add_argument("-v", "--verbose", action="store_true",
                        help=f"stream every library's log lines to the terminal too (always in OUT/{LOG_NAME})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        module = importlib.import_module(module_name)
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None, configure: bool = True) -> int:
    """Run ``python -m data_prep ARGV``; ``configure=False`` leaves the process's logging as the caller set it up."""
    try:
        parser = build_parser()  # imports every sub-command: SimpleITK & co. (the io extra)
    except ImportError as e:
        hint = missing_extra(e, "python -m data_prep")
        if hint is None:
            raise
        print(f"error: {hint}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    level = args.log_level.upper()
    if not configure:
        return run_command(lambda: _run(args), debug=level == "DEBUG", command="python -m data_prep")
    out = getattr(args, "out", None)
    configure_output(Path(out) / LOG_NAME if out else None, verbose=args.verbose,
                     level=logging.getLevelName(level), our_level=logging.getLevelName(level))
    try:
        return run_command(lambda: _run(args), debug=level == "DEBUG", command="python -m data_prep")
    finally:
        reset_output()


def _run(args: argparse.Namespace) -> int:
    from data_prep.extras import require_extras

    require_extras(f"python -m data_prep {args.command}", "io")
    return args._run(args)
