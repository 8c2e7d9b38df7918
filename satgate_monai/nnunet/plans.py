"""A SAT plans variant of nnU-Net v2's plans: the same plans, the network class swapped for ``SATPlainConvUNet``.

nnU-Net reads ``nnUNet_preprocessed/DatasetXXX_Name/<plans_identifier>.json``; every configuration's
``architecture.network_class_name`` is imported by its dotted path and built with ``arch_kwargs``
(``_kw_requires_import`` names the values that are themselves import paths). The variant keeps everything else,
``data_identifier`` included, so it trains on the data nnU-Net already preprocessed for the source plans: only the
network differs, and ``nnUNetv2_train ID CONFIG FOLD -p nnUNetPlans_SAT`` needs no second preprocessing.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

from data_prep.atomic import atomic_write_text

__all__ = ["PLAIN_CONV_UNET", "SAT_PLAIN_CONV_UNET", "dataset_folder", "sat_plans", "write_sat_plans"]

PLAIN_CONV_UNET = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
"""nnU-Net v2's default network (``nnUNetPlans``)."""
SAT_PLAIN_CONV_UNET = "satgate_monai.nnunet.network.SATPlainConvUNet"
"""The class a SAT plans variant names."""


def dataset_folder(preprocessed: Path, dataset: str) -> Path:
    """``preprocessed/DatasetXXX_Name`` for a dataset id (``"3"``, ``"003"``) or full name (``"Dataset003_Name"``).

    Raises:
        FileNotFoundError: no such folder (the message names the folder searched), or ``preprocessed`` is missing.
        ValueError: a malformed id, or two folders with the same id.
    """
    if not preprocessed.is_dir():
        raise FileNotFoundError(f"nnUNet_preprocessed folder {preprocessed} does not exist")
    if dataset.startswith("Dataset"):
        folder = preprocessed / dataset
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} does not exist (run nnUNetv2_plan_and_preprocess first)")
        return folder
    if not re.fullmatch(r"\d{1,3}", dataset):
        raise ValueError(f"dataset must be an id (1-999) or a DatasetXXX_Name folder name, got {dataset!r}")
    matches = sorted(preprocessed.glob(f"Dataset{int(dataset):03d}_*"))
    if not matches:
        raise FileNotFoundError(f"no Dataset{int(dataset):03d}_* folder in {preprocessed} (run "
                                f"nnUNetv2_plan_and_preprocess -d {int(dataset)} first)")
    if len(matches) > 1:
        raise ValueError(f"dataset id {dataset} matches {len(matches)} folders in {preprocessed}: "
                         f"{[m.name for m in matches]}")
    return matches[0]


def sat_plans(plans: dict[str, Any], gate: str, selection_init: str | float = "glorot",
              plans_name: str | None = None) -> dict[str, Any]:
    """A copy of nnU-Net ``plans`` whose configurations build ``SATPlainConvUNet`` with ``skip_gate=gate``.

    Configurations that inherit their architecture (``inherits_from``, e.g. ``3d_cascade_fullres``) follow their
    parent. ``plans_name`` defaults to ``<source plans_name>_<GATE>``.

    Raises:
        ValueError: a configuration whose network is not ``PlainConvUNet`` (the residual-encoder plans are not
            supported yet), or plans without configurations.
    """
    out = copy.deepcopy(plans)
    configurations = out.get("configurations")
    if not isinstance(configurations, dict) or not configurations:
        raise ValueError("the plans hold no 'configurations' (not an nnU-Net v2 plans file?)")
    for name, cfg in configurations.items():
        arch = cfg.get("architecture")
        if arch is None:
            continue
        cls = arch.get("network_class_name")
        if cls not in (PLAIN_CONV_UNET, SAT_PLAIN_CONV_UNET):
            raise ValueError(f"configuration {name!r} builds {cls!r}; a SAT variant needs {PLAIN_CONV_UNET} "
                             "(nnU-Net's default nnUNetPlans)")
        arch["network_class_name"] = SAT_PLAIN_CONV_UNET
        arch["arch_kwargs"]["skip_gate"] = gate
        arch["arch_kwargs"]["selection_init"] = selection_init
    out["plans_name"] = plans_name or f"{plans.get('plans_name', 'nnUNetPlans')}_{gate.upper()}"
    return out


def write_sat_plans(preprocessed: Path, dataset: str, gate: str, selection_init: str | float = "glorot",
                    source: str = "nnUNetPlans", name: str | None = None) -> Path:
    """Write ``<name>.json`` (default ``<source>_<GATE>``) beside ``<source>.json`` in the dataset's preprocessed
    folder, atomically; the source plans are only read. Returns the written path.

    Raises:
        FileNotFoundError: the dataset folder or the source plans are missing.
        ValueError: see :func:`sat_plans`; or the output would replace the source plans.
    """
    folder = dataset_folder(preprocessed, dataset)
    src = folder / f"{source}.json"
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist (run nnUNetv2_plan_and_preprocess -d {dataset} first)")
    name = name or f"{source}_{gate.upper()}"
    if name == source:
        raise ValueError(f"the variant's name {name!r} equals the source plans' name; choose another --name")
    try:
        plans = json.loads(src.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{src}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    variant = sat_plans(plans, gate, selection_init, plans_name=name)
    out = folder / f"{name}.json"
    atomic_write_text(out, json.dumps(variant, indent=4, sort_keys=False) + "\n")
    return out


def preprocessed_root(value: str | None) -> Path:
    """``--preprocessed`` or the ``nnUNet_preprocessed`` environment variable nnU-Net itself reads."""
    root = value or os.environ.get("nnUNet_preprocessed")
    if not root:
        raise ValueError("set nnUNet_preprocessed (as for nnU-Net's own commands) or pass --preprocessed DIR")
    return Path(root)
