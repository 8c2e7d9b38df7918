"""Placeholder for the `demo` sub-command (written by the importers/phantoms helper; overwrite freely)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return subparsers.add_parser("demo", help="(not implemented yet)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("the demo sub-command is not implemented yet")
