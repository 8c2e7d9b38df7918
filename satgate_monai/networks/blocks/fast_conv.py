"""A stride-1 convolution that runs on oneDNN on a CPU whatever its shape.

PyTorch picks a CPU convolution kernel by a shape rule: with one thread, a batch of one and a small
``N * C * D * H`` (a one-channel map, a deep 3D level) it runs its own im2col kernel instead of oneDNN's. There it
is several times slower than oneDNN: a ``1 -> 16`` 3x3x3 convolution of a 96^3 map takes 88 ms instead of 51 ms on
one thread, a ``128 -> 128`` one at 12^3 19 ms instead of 6 ms (``benchmarks/join.py`` measures the decoder seam
both ways). :func:`convolution` calls oneDNN directly for float32 CPU tensors; on other devices and dtypes, under
autocast, and while scripting, tracing, exporting or compiling it is ``torch.nn.functional.conv2d``/``conv3d``, so
exported and scripted networks hold ordinary convolutions. The gradient goes through PyTorch's convolution backward
either way; the result equals ``conv2d``/``conv3d`` to float rounding.
"""

# No ``from __future__ import annotations`` here: TorchScript builds stubs of the ``@torch.jit.unused`` functions
# from their real annotation objects, which postponed (string) annotations are not.
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["convolution", "uses_onednn"]


@torch.jit.unused
def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled()


@torch.jit.unused
def uses_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`convolution` calls oneDNN directly for these operands (CPU, float32, eager, no autocast)."""
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    compiling = getattr(torch.compiler, "is_compiling", lambda: False)()
    if compiling or not torch.backends.mkldnn.is_available() or not torch.backends.mkldnn.enabled:
        return False
    return (x.device.type == "cpu" and weight.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32 and not _cpu_autocast())


@torch.jit.unused
def _onednn(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], padding: int) -> torch.Tensor:
    ones = [1] * (x.dim() - 2)
    return torch.mkldnn_convolution(x, weight, bias, [padding] * len(ones), ones, ones, 1)


def convolution(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], padding: int) -> torch.Tensor:
    """``conv2d``/``conv3d(x, weight, bias, stride=1, padding=padding)``, through oneDNN on a CPU (see the module).

    Shapes:
        ``x (N, C, *S)``, ``weight (C_out, C, *k)`` -> ``(N, C_out, *S')``.
    """
    if not torch.jit.is_scripting() and uses_onednn(x, weight):
        return _onednn(x, weight, bias, padding)
    if x.dim() == 4:
        return F.conv2d(x, weight, bias, padding=padding)
    return F.conv3d(x, weight, bias, padding=padding)
