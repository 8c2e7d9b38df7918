"""``python -m satgate_monai.nnunet``: SAT plans variants for nnU-Net v2, and where the short trainers are.

    python -m satgate_monai.nnunet plans 3 --gate sat      # -> nnUNet_preprocessed/Dataset003_*/nnUNetPlans_SAT.json
    nnUNetv2_train 3 3d_fullres 0 -p nnUNetPlans_SAT        # nnU-Net's own commands from here on
    export nnUNet_extTrainer=$(python -m satgate_monai.nnunet trainer-path)   # for -tr nnUNetTrainer_SATSmoke
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from data_prep.errors import run_command
from satgate_monai.networks.factories import gate_name, gate_names

__all__ = ["main"]


def _selection_init(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m satgate_monai.nnunet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("plans", help="write a SAT plans variant beside nnU-Net's plans of a dataset")
    p.add_argument("dataset", metavar="DATASET_ID", help="dataset id (e.g. 3) or DatasetXXX_Name")
    p.add_argument("--gate", default="sat", help=f"skip gate: {' | '.join(gate_names())} (default sat)")
    p.add_argument("--selection-init", default="glorot", type=_selection_init,
                   help="selection weights' init of sat/st: glorot (default, the paper's), uniform, or a number "
                        "in (0, 1]")
    p.add_argument("--source", default="nnUNetPlans", help="plans to derive from (default nnUNetPlans)")
    p.add_argument("--name", default=None, help="name of the variant (default <source>_<GATE>, e.g. nnUNetPlans_SAT)")
    p.add_argument("--preprocessed", default=None, metavar="DIR",
                   help="nnU-Net's preprocessed folder (default: $nnUNet_preprocessed)")
    sub.add_parser("trainer-path", help="print the folder of the short trainers (for nnUNet_extTrainer)")
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "trainer-path":
        print(Path(__file__).resolve().parent / "trainers")
        return 0
    from satgate_monai.networks.blocks.skip_gates import check_selection_init
    from satgate_monai.nnunet.plans import preprocessed_root, write_sat_plans

    gate = gate_name(args.gate)
    check_selection_init(args.selection_init)
    out = write_sat_plans(preprocessed_root(args.preprocessed), args.dataset, gate, args.selection_init,
                          source=args.source, name=args.name)
    print(f"wrote {out} (network satgate_monai.nnunet.network.SATPlainConvUNet, skip_gate={gate}); train with: "
          f"nnUNetv2_train {args.dataset} 3d_fullres 0 -p {out.stem}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return run_command(lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
