"""``python -m satgate_monai bundle-path [NAME]``: print a shipped bundle's folder (or the folder of all of them).

Works the same in a checkout and after ``pip install satgate-monai``, so the README's bundle commands can be run from
any folder::

    B=$(python -m satgate_monai bundle-path liver_ct_sat)
    python -m monai.bundle run --config_file $B/configs/train.json --bundle_root OUT --dataset_dir PREP
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from satgate_monai.resources import bundle_path, bundles_dir

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m satgate_monai", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bundle-path", help="print the folder of a bundle shipped with the package")
    p.add_argument("name", nargs="?", default=None, help="bundle name (default: print the folder of every bundle)")
    args = parser.parse_args(argv)
    try:
        print(bundle_path(args.name) if args.name else bundles_dir())
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
