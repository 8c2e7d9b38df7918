"""Check bundles the way MONAI Label will load them, before the server starts (run in the MONAI Label environment).

A network that cannot be imported stops the whole MONAI Label server at start-up with a long traceback, and a bundle
without weights is silently left out. ``python -m satgate_monai.label.precheck BUNDLE_DIR...`` reports, per bundle,
what MONAI Label needs and what is wrong, as one JSON line on stdout::

    [{"name": ..., "path": ..., "errors": [...], "warnings": [...], "dimension": 3, "labels": {...},
      "network": "satgate_monai.networks.nets.SATUNet"}]
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

__all__ = ["INFER_IDS", "TRAIN_IDS", "check_bundle", "main"]

INFER_IDS = ("network_def", "preprocessing", "postprocessing", "inferer")
TRAIN_IDS = (
    "bundle_root",
    "device",
    "network_def",
    "train#trainer#max_epochs",
    "train#dataset#data",
    "train#handlers",
    "validate#dataset#data",
)


def _config_file(path: str, stem: str) -> str | None:
    for ext in (".json", ".yaml"):
        f = os.path.join(path, "configs", stem + ext)
        if os.path.isfile(f):
            return f
    return None


def _network_target(config: Any) -> str:
    net = config.get("network_def") if isinstance(config, dict) else None
    return str(net.get("_target_", "?")) if isinstance(net, dict) else repr(net)


def _import_error(target: str) -> str | None:
    """Why the module of a dotted ``_target_`` cannot be imported, or None (short names are left to MONAI)."""
    if "." not in target:
        return None
    module, _, attr = target.rpartition(".")
    try:
        mod = importlib.import_module(module)
    except Exception as e:
        return f"cannot be imported ({type(e).__name__}: {e})"
    if not hasattr(mod, attr):
        return f"cannot be imported (module {module!r} has no attribute {attr!r})"
    return None


def _check_metadata(meta_file: str, report: dict[str, Any]) -> None:
    """``report``'s dimension and labels from ``configs/metadata.json``; its faults added to ``report["errors"]``."""
    errors = report["errors"]
    try:
        with open(meta_file) as f:
            fmt = json.load(f)["network_data_format"]
        image = next(iter(fmt["inputs"].values()))
        pred = next(iter(fmt["outputs"].values()))
        shape = image.get("spatial_shape")
        report["dimension"] = len(shape) if shape else 3
        labels = {v: int(k) for k, v in pred.get("channel_def", {}).items() if str(v).lower() != "background"}
        report["labels"] = labels
        if not labels:
            errors.append("metadata.json: the output has no channel_def naming a foreground label")
    except (KeyError, StopIteration, ValueError, TypeError, AttributeError) as e:
        errors.append(f"configs/metadata.json: network_data_format is malformed ({type(e).__name__}: {e})")


def _check_inference(path: str, infer_file: str, weights: str, report: dict[str, Any]) -> None:
    """The inference config's ids, network and weights, as MONAI Label builds them; faults into ``report``."""
    from monai.bundle import ConfigParser

    errors = report["errors"]
    sys.path.insert(0, path)  # as MONAI Label does, so a bundle's scripts/ package can be imported
    try:
        parser = ConfigParser()
        parser.read_config(infer_file)
        parser.config["bundle_root"] = path
        missing = [k for k in INFER_IDS if k not in parser]
        if missing:
            errors.append(f"{os.path.basename(infer_file)} lacks the ids MONAI Label needs: {', '.join(missing)}")
        target = _network_target(parser.config)
        report["network"] = target
        if "network_def" in parser:
            problem = _import_error(target)
            net = None
            if problem is None:
                try:
                    net = parser.get_parsed_content("network_def", instantiate=True)
                except Exception as e:
                    problem = f"cannot be built: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if problem is not None:
                errors.append(
                    f"network_def _target_ {target!r} {problem}; the MONAI Label environment ({sys.executable}) "
                    "must be able to import and build it"
                )
            elif os.path.isfile(weights):
                errors.extend(_check_weights(net, weights))
    except Exception as e:
        errors.append(f"{infer_file} cannot be parsed: {type(e).__name__}: {e}")
    finally:
        sys.path.remove(path)


def _check_train(path: str, warnings: list[str]) -> None:
    """The train config's ids MONAI Label sets when it retrains; what is missing goes into ``warnings``."""
    from monai.bundle import ConfigParser

    train_file = _config_file(path, "train")
    if train_file is None:
        warnings.append("no configs/train.json: it can be served but not retrained from MONAI Label")
    else:
        try:
            tparser = ConfigParser()
            tparser.read_config(train_file)
            missing = [k for k in TRAIN_IDS if k not in tparser]
            if missing:
                warnings.append(f"train config lacks ids MONAI Label sets: {', '.join(missing)} (retraining fails)")
        except Exception as e:
            warnings.append(f"{train_file} cannot be parsed: {type(e).__name__}: {e}")


def check_bundle(path: str) -> dict[str, Any]:
    """Check one bundle folder as MONAI Label 0.8.5 loads it (inference config, metadata, weights, network, train ids).

    Args:
        path: the bundle folder.

    Returns:
        a report dictionary: ``name, path, errors, warnings, dimension, labels, network``.
    """

    name = os.path.basename(os.path.normpath(path))
    report: dict[str, Any] = {"name": name, "path": path, "errors": [], "warnings": [], "dimension": None}
    errors, warnings = report["errors"], report["warnings"]
    if not os.path.isdir(path):
        errors.append(f"bundle folder {path} does not exist")
        return report

    infer_file = _config_file(path, "inference")
    if infer_file is None:
        hint = " (rename inference.yml to inference.yaml)" if os.path.isfile(f"{path}/configs/inference.yml") else ""
        errors.append(f"no configs/inference.json or configs/inference.yaml{hint}")
    meta_file = os.path.join(path, "configs", "metadata.json")
    if not os.path.isfile(meta_file):
        errors.append("no configs/metadata.json")
    else:
        _check_metadata(meta_file, report)

    weights = os.path.join(path, "models", "model.pt")
    if not os.path.isfile(weights) and not os.path.isfile(os.path.join(path, "models", "model.ts")):
        errors.append(
            f"no weights at {weights}: train the bundle first (python -m monai.bundle run --config_file "
            "configs/train.json ...) or copy a trained model.pt there"
        )

    if infer_file is not None:
        _check_inference(path, infer_file, weights, report)

    _check_train(path, warnings)
    return report


def _check_weights(net: Any, weights: str) -> list[str]:
    from satgate_monai.bundle.checkpoint import CheckpointError, load_weights

    try:
        load_weights(net, weights)
    except CheckpointError as e:
        return [str(e)]
    return []


def main(argv: list[str] | None = None) -> int:
    """Print the JSON reports of the bundle folders given as arguments; exit 0 (the caller judges them)."""
    paths = sys.argv[1:] if argv is None else argv
    try:
        import satgate_monai  # noqa: F401 - registers the gates' MONAI factories, as the server does
    except ImportError:
        pass  # reported per bundle as a network_def that cannot be imported

    reports = [check_bundle(os.path.abspath(p)) for p in paths]
    sys.stdout.write(json.dumps(reports) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
