"""Where the memory goes: the peak RSS of each stage of one case through the case engine (the CLI's path).

Run::

    python benchmarks/engine_memory.py [--size 512 512 700] [--set 'network_def#channels=[4,8,16]' ...]

The synthetic CT of ``benchmarks/infer.py`` (int16, 0.7 x 0.7 x 0.8 mm) goes through ``BundleRunner`` (liver
bundle, random weights) stage by stage; before each stage the process's peak RSS is reset (``/proc/self/clear_refs``,
Linux), after it the stage's own peak (``VmHWM``) and what stays resident (``VmRSS``) are printed in MB. Peak RSS
does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs=3, default=(512, 512, 700))
    p.add_argument("--bundle", type=Path, default=HERE.parent / "bundles" / "liver_ct_sat")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON")
    args = p.parse_args(argv)
    import torch

    from satgate_monai.infer.bundle import BundleRunner
    from satgate_monai.infer.cli import parse_overrides

    spec = importlib.util.spec_from_file_location("benchmark_infer", HERE / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.set_num_threads(2)
    rows = []

    def stage(name, fn):
        Path("/proc/self/clear_refs").write_text("5")
        out = fn()
        rows.append((name, _status("VmHWM"), _status("VmRSS")))
        return out

    import tempfile

    parser_sets = parse_overrides(args.set)
    runner = stage("load bundle, network, libraries", lambda: _runner(BundleRunner, args.bundle, parser_sets))
    image = stage("source volume (int16, SimpleITK)", lambda: module.synthetic_ct(tuple(args.size), (0.7, 0.7, 0.8)))
    data = stage("working grid + intensity (slabs)", lambda: runner.preprocess(image, source="ct"))
    inferred = stage("network (sliding window)", lambda: runner.infer(data))
    data = None  # the inferred output holds what is still needed
    out = stage("back to source grid (slabs) + label steps", lambda: runner.finish(inferred))
    inferred = None
    with tempfile.TemporaryDirectory() as td:
        import SimpleITK as sitk

        stage("write NIfTI (gzip)", lambda: sitk.WriteImage(out.label, str(Path(td) / "seg.nii.gz"), True))
    print(f"# Peak RSS per stage, volume {'x'.join(map(str, args.size))}, bundle {args.bundle.name}, "
          f"overrides {args.set or 'none'}\n")
    print("| stage | peak RSS during the stage (MB) | resident after it (MB) |\n|---|---|---|")
    for name, peak, rss in rows:
        print(f"| {name} | {peak:.0f} | {rss:.0f} |")
    return 0


def _runner(cls, bundle, overrides):
    import torch

    torch.manual_seed(0)
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update(overrides)
    import tempfile

    ckpt = Path(tempfile.mkdtemp()) / "random.pt"
    torch.save(parser.get_parsed_content("network_def").state_dict(), ckpt)
    return cls(bundle, device="cpu", ckpt=ckpt, overrides=overrides)


if __name__ == "__main__":
    sys.exit(main())
