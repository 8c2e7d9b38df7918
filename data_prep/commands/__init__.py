"""Sub-commands of ``python -m data_prep`` (one module each)."""

from __future__ import annotations

import argparse

__all__ = ["command_parser"]


def command_parser(subparsers: argparse._SubParsersAction, name: str, help: str,
                   description: str | None) -> argparse.ArgumentParser:
    """The sub-command's parser: one-line ``help`` in the command list, ``description`` shown as written."""
    return subparsers.add_parser(name, help=help, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
