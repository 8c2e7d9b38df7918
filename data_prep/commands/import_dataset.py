"""Placeholder for the `import_dataset` sub-command (written by the importers/phantoms helper; overwrite freely)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return subparsers.add_parser("import", help="(not implemented yet)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("the import_dataset sub-command is not implemented yet")
