"""What the SAT paper (Taghanaki et al., MLMI 2019, arXiv:1804.05181) says about parameters, and our honest note."""

from __future__ import annotations

__all__ = ["PAPER_CLAIMS", "TABLE3_STATUS", "HONEST_NOTE"]

PAPER_CLAIMS = (
    "Abstract (MLMI 2019 version): the SAT skips beat the original ones 'in terms of segmentation accuracy (2% Dice), "
    "memory usage (at least 50%), and the number of network parameters (up to 70%)'.",
    "Table 3 (as counted for issue #3): the U-Net rows report 26-31 % fewer parameters with SAT; the DI2IN and V-Net "
    "rows match the skip formula below exactly.",
)

TABLE3_STATUS = (
    "The per-row figures of arXiv:1804.05181 Table 3 are NOT reproduced here: they could not be checked offline and "
    "we do not quote numbers from memory. Compare against the paper itself."
)

HONEST_NOTE = (
    "Counting shows the paper's savings follow sum over skips of [(C - 1) * C_out * k^d - (2C + 1)] (C: skip "
    "channels, C_out and k: the first convolution after the concatenation, 2C + 1: the gate's w, K and bias), which "
    "reproduces its DI2IN and V-Net rows exactly. Its U-Net totals imply a network lighter outside the skips: a "
    "faithful U-Net (two convolutions per level, widths doubling) saves about 10 % with SAT, not 26-31 %. "
    "For FC-DenseNet the skip channels reach every layer of the decoder dense block (and, for the shallowest skip, "
    "the classifier), so the per-channel cost is L * (2 + growth * k^d) instead of C_out * k^d."
)
