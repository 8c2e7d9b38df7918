"""Benchmark: memory kept for backward by the folded vs the literal SAT gate.

Run::

    python benchmarks/gate_memory.py                      # 1x64x96x96x96 float32
    python benchmarks/gate_memory.py --shape 1 32 64 64   # any (N, C, *S), 2D or 3D

``SATGate(folded=True)`` computes ``sigmoid(conv(f, K ⊙ trelu(w)) + b)``; ``SATGate(folded=False)`` the literal
``sigmoid(K * (f ⊙ trelu(w)) + b)``, whose convolution keeps the C-channel selected tensor ``f ⊙ trelu(w)`` for
backward. The skip ``f`` requires grad, as inside a network. Bytes are the unique storages given to
``torch.autograd.graph.saved_tensors_hooks`` during the forward pass; the gate's parameters are excluded, and the
table shows the total with and without ``f`` itself (which the layer that produced ``f`` keeps anyway in a network).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from satgate_monai.networks.blocks.skip_gates import SATGate
from satgate_monai.report.memory import saved_tensor_bytes

MB = 2.0**20


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs="+", default=[1, 64, 96, 96, 96], help="(N, C, *S), 2D or 3D")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    shape = tuple(args.shape)
    if len(shape) not in (4, 5) or min(shape) < 1:
        parser.error(f"--shape must be N C H W [D] with positive sizes, got {shape}")
    dims, channels = len(shape) - 2, shape[1]
    torch.manual_seed(0)
    f = torch.randn(shape, device=args.device, requires_grad=True)
    folded = SATGate(dims, channels, folded=True).to(args.device)
    literal = SATGate(dims, channels, folded=False).to(args.device)
    literal.load_state_dict(folded.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(folded(f), literal(f))  # the same gate
    input_mb = f.numel() * f.element_size() / MB
    rows = []
    for name, gate in (("SATGate(folded=True)", folded), ("SATGate(folded=False)", literal)):
        without_f = saved_tensor_bytes(lambda gate=gate: gate(f).sum(), exclude=[f, *gate.parameters()]) / MB
        rows.append((name, without_f + input_mb, without_f))
    print(f"# Memory kept for backward by one SAT gate, input {'x'.join(map(str, shape))} float32 "
          f"({input_mb:.1f} MB)\n")
    print("| gate | kept for backward incl. f (MB) | kept beyond f (MB) |")
    print("|---|---|---|")
    for name, total, beyond in rows:
        print(f"| {name} | {total:.1f} | {beyond:.1f} |")
    (_, t_fold, b_fold), (_, t_lit, b_lit) = rows
    print(f"\nfolded / literal: {t_fold / t_lit:.3f} including f, {b_fold / b_lit:.4f} beyond f "
          f"(saves {t_lit - t_fold:.1f} MB per gate)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
