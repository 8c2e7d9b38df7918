"""``python -m satgate_monai.experiments.map_difference RUN``: how much two gates' attention maps differ.

The paper shows SAT's attention maps as more focused than AT's. This compares, on every test case of a finished run,
the finest attention map of variant ``a`` (default ``sat``) with variant ``b`` (default ``at``) trained with the same
seed: the mean absolute difference ``mean |a - b|`` and Pearson's ``r`` of the two maps (on the whole image/volume,
upsampled to it). As the yardstick, the same numbers for ``b`` against itself trained with another seed: two maps
differ "more than retraining does" only when the first difference clearly exceeds the second.

``--a-run`` takes variant ``a`` from another run folder of the same task and data (e.g. SAT trained with another
selection init). The networks are rebuilt from each cell's ``network_def`` and ``models/model.pt``; nothing is
retrained.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from satgate_monai.experiments.io import read_json

__all__ = ["map_difference", "main"]

logger = logging.getLogger(__name__)


def _cells(run: Path, gate: str, network: str) -> dict[int, dict]:
    out = {}
    for f in sorted((run / "cells").glob("*/cell.json")):
        record = read_json(f)
        if record["gate"] == gate and record["network"] == network:
            out[int(record["seed"])] = {**record, "_dir": f.parent}
    return out


def _network(record: dict) -> torch.nn.Module:
    from satgate_monai.bundle.checkpoint import load_weights
    from satgate_monai.experiments.cost import build_network

    net = build_network(record["network_def"])
    return load_weights(net, record["_dir"] / "models" / "model.pt").eval()


def _finest_maps(net: torch.nn.Module, images: Sequence[torch.Tensor]) -> list[np.ndarray]:
    from satgate_monai.experiments.attention import collect_attention_maps, padded_input, resize_map

    out = []
    for image in images:
        x, size, padded = padded_input(image, int(getattr(net, "size_divisor", 0) or 32))
        maps = collect_attention_maps(net, x)
        if not maps:
            raise ValueError(f"{type(net).__name__} has no attention map to compare.")
        crop = (slice(None), slice(None)) + tuple(slice(0, s) for s in size)
        out.append(resize_map(next(iter(maps.values())), tuple(padded))[crop][0, 0].numpy().astype(np.float64))
    return out


def _compare(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> dict[str, list[float]]:
    diff, corr = [], []
    for x, y in zip(a, b):
        diff.append(float(np.abs(x - y).mean()))
        corr.append(float(np.corrcoef(x.ravel(), y.ravel())[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan"))
    return {"mean_abs_difference": diff, "pearson_r": corr}


def _summary(per_seed: list[dict[str, list[float]]]) -> dict[str, Any]:
    """Per case averaged over the seed pairs, then mean ± std over cases (sample std)."""
    from satgate_monai.experiments.stats import describe

    out: dict[str, Any] = {"pairs": len(per_seed)}
    for key in ("mean_abs_difference", "pearson_r"):
        cases = np.nanmean(np.array([p[key] for p in per_seed]), axis=0) if per_seed else np.array([])
        out[key] = describe([float(v) for v in cases])
    return out


def map_difference(run: str | Path, a: str = "sat", b: str = "at", network: str = "unet",
                   a_run: str | Path | None = None, device: str = "cpu") -> dict[str, Any]:
    """Compare the finest attention maps of variants ``a`` and ``b`` on the test split of a finished run.

    Returns:
        ``{"a", "b", "a_run", "run", "cases", "seeds", "same_seed": {pairs, mean_abs_difference, pearson_r},
        "b_across_seeds": {...}}``; ``mean_abs_difference`` and ``pearson_r`` are ``{mean, std, n}`` over test cases.

    Raises:
        ValueError: no seed has both variants, or a variant has no attention map.
    """
    from satgate_monai.bundle.evaluation import case_name
    from satgate_monai.experiments.bundle_task import BundleTask

    run, a_run = Path(run), Path(a_run) if a_run is not None else Path(run)
    meta = read_json(run / "run.json")
    s = meta["settings"]
    task = BundleTask(meta["bundle"], meta["data"], device=device,
                      epochs=None if s["epochs"] == "bundle" else s["epochs"], overrides=s["overrides"])
    cells_a, cells_b = _cells(a_run, a, network), _cells(run, b, network)
    seeds = sorted(set(cells_a) & set(cells_b))
    if not seeds:
        raise ValueError(f"no seed has both {network}-{a} (in {a_run}) and {network}-{b} (in {run}).")
    parser = task._parser([task.train_config, task.eval_config],
                          {**task.common_overrides(), "bundle_root": str(run)})
    dataset = parser.get_parsed_content("validate#dataset")
    items = [dataset[i] for i in range(len(dataset))]
    items = [it[0] if isinstance(it, list) else it for it in items]
    images = [torch.as_tensor(it["image"]).float() for it in items]
    cases = [case_name(d["image"]) for d in dataset.data]
    maps_a = {seed: _finest_maps(_network(cells_a[seed]), images) for seed in seeds}
    maps_b = {seed: _finest_maps(_network(cells_b[seed]), images) for seed in sorted(cells_b)}
    same = [_compare(maps_a[seed], maps_b[seed]) for seed in seeds]
    across = [_compare(maps_b[i], maps_b[j]) for i, j in itertools.combinations(sorted(maps_b), 2)]
    return {"a": a, "b": b, "network": network, "run": str(run), "a_run": str(a_run), "cases": cases,
            "seeds": seeds, "same_seed": _summary(same), "b_across_seeds": _summary(across)}


def _fmt(d: dict) -> str:
    return "n/a" if d.get("mean") is None else f"{d['mean']:.3f} ± {d['std'] or 0:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m satgate_monai.experiments.map_difference", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a finished run folder (run.json, cells/)")
    p.add_argument("--a", default="sat", help="gate of variant a (default sat)")
    p.add_argument("--b", default="at", help="gate of variant b (default at)")
    p.add_argument("--network", default="unet", help="network of both variants (default unet)")
    p.add_argument("--a-run", type=Path, default=None, help="run folder holding variant a (default: RUN)")
    p.add_argument("--json", type=Path, default=None, help="also write the result to this JSON file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = map_difference(args.run, args.a, args.b, args.network, args.a_run)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json is not None:
        from satgate_monai.experiments.io import atomic_write_json

        atomic_write_json(args.json, result)
    same, across = result["same_seed"], result["b_across_seeds"]
    print(f"{args.network} {args.a.upper()} vs {args.b.upper()} (finest attention map, {len(result['cases'])} test "
          f"cases, seeds {', '.join(map(str, result['seeds']))}):")
    print("| Pair | Seed pairs | mean abs difference | Pearson r |\n|---|---|---|---|")
    print(f"| {args.a.upper()} vs {args.b.upper()}, same seed | {same['pairs']} | {_fmt(same['mean_abs_difference'])} "
          f"| {_fmt(same['pearson_r'])} |")
    print(f"| {args.b.upper()} vs {args.b.upper()}, other seed | {across['pairs']} "
          f"| {_fmt(across['mean_abs_difference'])} | {_fmt(across['pearson_r'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
