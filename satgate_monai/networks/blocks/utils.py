"""Small helpers shared by the network blocks and nets: argument checks, per-channel activations, up-sampling padding.

:func:`check_spatial_shape` is TorchScript-compatible, so scripted networks still reject input sizes they cannot take.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai.networks.layers.factories import split_args

__all__ = [
    "ActSpec",
    "channel_act",
    "check_spatial_shape",
    "check_positive_int",
    "check_positive_ints",
    "check_network_args",
    "check_channels",
    "check_strides",
    "check_kernel_size",
    "check_dropout",
    "transposed_padding",
]

ActSpec = Any
"""An activation or normalisation given as a name (``"prelu"``) or ``(name, kwargs)``, as in MONAI."""


def channel_act(act: ActSpec, channels: int) -> ActSpec:
    """``act`` with a per-channel PReLU when it names ``"prelu"`` without ``num_parameters`` (as V-Net's Caffe PReLU).

    Args:
        act: an activation name or ``(name, kwargs)``, or None.
        channels: the channels the activation sees.

    Returns:
        the spec to hand to MONAI's ``Act`` factory (unchanged unless it is an unsized PReLU).
    """
    if act is None:
        return None
    name, kwargs = split_args(tuple(act) if isinstance(act, list) else act)
    if isinstance(name, str) and name.lower() == "prelu" and "num_parameters" not in kwargs:
        return name, {**kwargs, "num_parameters": channels}
    return act


def check_spatial_shape(spatial_shape: list[int], spatial_dims: int, divisor: int, network: str) -> None:
    """Raise ``ValueError`` unless there are ``spatial_dims`` sizes, each a positive multiple of ``divisor``.

    Written for TorchScript: networks call it in ``forward`` so scripted networks check their input too (a scripted
    network raises it as ``torch.jit.Error`` whose message starts with ``ValueError``).
    """
    ok = len(spatial_shape) == spatial_dims
    for size in spatial_shape:
        if size < divisor or size % divisor != 0:
            ok = False
    if not ok:
        raise ValueError(
            network + " takes " + str(spatial_dims) + "D inputs whose spatial sizes are positive multiples of "
            + str(divisor) + " (the product of its strides), got spatial shape " + str(spatial_shape) + "."
        )


def check_positive_ints(name: str, values: Sequence[int], length: int | None = None, minimum: int = 1) -> tuple:
    """Validate a sequence of ints (each ``>= minimum``, optionally of a given length) and return it as a tuple."""
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of ints, got {values!r}.") from None
    bad_type = any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values)
    if bad_type or (length is not None and len(values) != length):
        wanted = f"{length} " if length is not None else ""
        raise ValueError(f"{name} must hold {wanted}ints >= {minimum}, got {values!r}.")
    return values


def check_positive_int(name: str, value: int) -> int:
    """``value`` if it is an int >= 1 (not a bool), else ``ValueError`` naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return value


def check_network_args(spatial_dims: int, in_channels: int, out_channels: int) -> None:
    """The checks every network starts with: ``spatial_dims`` in (2, 3), positive channel counts."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    check_positive_int("in_channels", in_channels)
    check_positive_int("out_channels", out_channels)


def check_channels(channels: Sequence[int], minimum: int = 1) -> tuple:
    """The per-level widths of an encoder: at least two ints, each ``>= minimum``; returned as a tuple."""
    channels = check_positive_ints("channels", channels, minimum=minimum)
    if len(channels) < 2:
        raise ValueError(f"channels must hold at least two widths, got {channels!r}.")
    return channels


def check_strides(strides: Sequence[int] | None, count: int) -> tuple:
    """``count`` positive down-sampling strides, one per level below the first; None means 2 everywhere."""
    return check_positive_ints("strides", strides if strides is not None else (2,) * count, count)


def check_kernel_size(kernel_size: int) -> int:
    """``kernel_size`` if it is a positive odd int (so ``kernel_size // 2`` padding keeps the size)."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}.")
    return kernel_size


def check_dropout(dropout: float) -> None:
    """A dropout probability must lie in [0, 1)."""
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}.")


def transposed_padding(kernel_size: int, stride: int) -> tuple[int, int]:
    """``(padding, output_padding)`` making a transposed convolution output exactly ``stride`` times its input.

    Raises:
        ValueError: when ``kernel_size < stride`` (the up-sampling would leave holes).
    """
    if kernel_size < stride:
        raise ValueError(f"up_kernel_size must be >= the stride {stride}, got {kernel_size!r}.")
    padding = (kernel_size - stride + 1) // 2
    return padding, stride - kernel_size + 2 * padding
