"""Weight initialisation schemes for satgate-monai networks (the paper uses Glorot-uniform)."""

from __future__ import annotations

from torch import nn

from satgate_monai.networks.blocks.join import JoinConvolution

__all__ = ["INIT_SCHEMES", "init_weights"]

INIT_SCHEMES = ("glorot", "kaiming", "default")

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def init_weights(module: nn.Module, scheme: str = "glorot") -> nn.Module:
    """Initialise every convolution of ``module`` in place and return it.

    Args:
        module: a network.
        scheme: ``"glorot"`` (Glorot/Xavier-uniform weights, zero biases; the paper's choice), ``"kaiming"``
            (He-normal, fan-out, for ReLU) or ``"default"`` (leave PyTorch's initialisation).

    Raises:
        ValueError: for an unknown scheme.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {INIT_SCHEMES}, got {scheme!r}.")
    if scheme == "default":
        return module
    done: set[int] = set()
    for m in module.modules():
        if id(m) in done:
            continue
        if isinstance(m, JoinConvolution):  # one draw for the joined weight, as for a convolution of the concatenation
            m.init_weights(scheme)
            done.update(id(c) for c in m.modules())
        elif isinstance(m, _CONV_TYPES):
            if scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
