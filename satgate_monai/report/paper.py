"""The SAT paper's own figures (Taghanaki et al., "Select, Attend, and Transfer: Light, Learnable Skip Connections",
MLMI 2019, arXiv:1804.05181), transcribed from its text, and the reading of our counts beside them.

This module is the one place the paper's numbers live in the package: the parameter report
(``python -m satgate_monai.report params``) and the experiment report (``report.md``) both quote them from here.

* :data:`TABLE1`: Dice / FPR / FNR (mean, std) of U-Net and V-Net with ORG/AT/ST/SAT skips, prostate MRI and skin.
* :data:`TABLE2`: the same for the One Hundred Layers Tiramisu (FC-DenseNet), ORG and SAT.
* :data:`TABLE3`: total parameters, original vs SAT, per network and dataset. The paper's text states other
  percentages than its table's counts give (:data:`TABLE3_TEXT_PERCENTAGES`); the report shows the counts.
* :data:`DI2IN`: the liver figures given in the text (Yang et al.'s DI2IN, Dice and parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CITATION",
    "MetricRow",
    "TABLE1",
    "TABLE2",
    "Table3Row",
    "TABLE3",
    "TABLE3_TEXT_PERCENTAGES",
    "TABLE3_NOTE",
    "DI2IN",
    "SWITCHED_OFF",
    "PAPER_CLAIMS",
    "HONEST_NOTE",
    "paper_metrics",
]

CITATION = "Taghanaki et al., MLMI 2019 (arXiv:1804.05181)"

MetricRow = dict[str, tuple[float, float]]
"""``{"dice": (mean, std), "fpr": (mean, std), "fnr": (mean, std)}``."""


def _row(dice: tuple[float, float], fpr: tuple[float, float], fnr: tuple[float, float]) -> MetricRow:
    return {"dice": dice, "fpr": fpr, "fnr": fnr}


# (task, network, gate) -> metrics; task: "prostate" (3D MRI) or "skin" (ISIC 2017, 2D RGB)
TABLE1: dict[tuple[str, str, str], MetricRow] = {
    ("prostate", "unet", "org"): _row((0.87, 0.05), (0.002, 0.004), (0.17, 0.09)),
    ("prostate", "unet", "at"): _row((0.88, 0.05), (0.004, 0.003), (0.09, 0.09)),
    ("prostate", "unet", "st"): _row((0.88, 0.05), (0.003, 0.003), (0.12, 0.09)),
    ("prostate", "unet", "sat"): _row((0.88, 0.05), (0.003, 0.004), (0.11, 0.09)),
    ("prostate", "vnet", "org"): _row((0.85, 0.05), (0.005, 0.004), (0.09, 0.07)),
    ("prostate", "vnet", "at"): _row((0.86, 0.05), (0.004, 0.004), (0.12, 0.07)),
    ("prostate", "vnet", "st"): _row((0.86, 0.05), (0.005, 0.003), (0.09, 0.07)),
    ("prostate", "vnet", "sat"): _row((0.87, 0.04), (0.004, 0.003), (0.11, 0.07)),
    ("skin", "unet", "org"): _row((0.79, 0.22), (0.040, 0.070), (0.16, 0.22)),
    ("skin", "unet", "at"): _row((0.79, 0.20), (0.030, 0.050), (0.20, 0.22)),
    ("skin", "unet", "st"): _row((0.79, 0.22), (0.020, 0.040), (0.22, 0.24)),
    ("skin", "unet", "sat"): _row((0.81, 0.20), (0.030, 0.050), (0.18, 0.23)),
    ("skin", "vnet", "org"): _row((0.81, 0.21), (0.020, 0.040), (0.20, 0.24)),
    ("skin", "vnet", "at"): _row((0.82, 0.23), (0.020, 0.040), (0.16, 0.25)),
    ("skin", "vnet", "st"): _row((0.82, 0.22), (0.020, 0.040), (0.18, 0.22)),
    ("skin", "vnet", "sat"): _row((0.83, 0.20), (0.030, 0.050), (0.13, 0.21)),
}
"""Paper Table 1 (test sets)."""

TABLE2: dict[tuple[str, str, str], MetricRow] = {
    ("prostate", "fcdensenet", "org"): _row((0.79, 0.12), (0.006, 0.009), (0.21, 0.17)),
    ("prostate", "fcdensenet", "sat"): _row((0.82, 0.07), (0.004, 0.003), (0.17, 0.13)),
    ("skin", "fcdensenet", "org"): _row((0.79, 0.24), (0.020, 0.050), (0.19, 0.27)),
    ("skin", "fcdensenet", "sat"): _row((0.81, 0.20), (0.030, 0.050), (0.15, 0.23)),
}
"""Paper Table 2: the Tiramisu with gates on the long skips and inside the dense blocks."""


@dataclass(frozen=True)
class Table3Row:
    """One count of paper Table 3.

    Attributes:
        network: our network key (``unet``, ``vnet``, ``fcdensenet``).
        label: the paper's row label.
        setting: the report's setting it corresponds to (``"3D MRI"`` or ``"2D skin"``).
        original: total parameters with the original skips.
        sat: total parameters with SAT skips.
    """

    network: str
    label: str
    setting: str
    original: int
    sat: int

    @property
    def saving(self) -> int:
        return self.original - self.sat

    @property
    def change_pct(self) -> float:
        """SAT vs original in percent, from the table's own counts."""
        return 100.0 * (self.sat - self.original) / self.original


TABLE3: tuple[Table3Row, ...] = (
    Table3Row("unet", "2D/3D U-Net", "3D MRI", 2_188_289, 1_614_186),
    Table3Row("unet", "2D/3D U-Net", "2D skin", 772_401, 531_338),
    Table3Row("vnet", "2D/3D V-Net", "3D MRI", 76_224_513, 70_846_893),
    Table3Row("vnet", "2D/3D V-Net", "2D skin", 13_923_041, 12_849_421),
    Table3Row("fcdensenet", "2D/3D Tiramisu", "3D MRI", 10_202_993, 8_453_632),
    Table3Row("fcdensenet", "2D/3D Tiramisu", "2D skin", 3_459_185, 2_869_312),
)
"""Paper Table 3 ("MRI" is the prostate data, "Skin" ISIC 2017)."""

TABLE3_TEXT_PERCENTAGES = {
    ("unet", "3D MRI"): 30.2, ("vnet", "3D MRI"): 7.3, ("unet", "2D skin"): 30.6, ("vnet", "2D skin"): 8.02,
    ("fcdensenet", "3D MRI"): 20.7, ("fcdensenet", "2D skin"): 20.7,
}
"""The reductions the paper's text states next to Table 3 (percent)."""

TABLE3_NOTE = (
    "The paper's text says the parameters are 'reduced by 30.2 % and 7.3 % and 30.6 % and 8.02 %, for U-Net and "
    "V-Net, respectively for MRI and Skin' and by '~20.7 %' for the Tiramisu; its Table 3's own counts give 26.2 %, "
    "7.1 %, 31.2 %, 7.7 % and 17.1 %. The comparison below uses the table's counts. The paper also notes that it "
    "reduced the layers and/or channels per dataset to fit memory, without giving them, so its original totals are "
    "not those of one published architecture."
)

DI2IN = {
    "network": "di2in",
    "setting": "3D liver CT",
    "original": 2_353_089,
    "sat": 2_063_053,
    "dice": {"org": 0.96, "sat": 0.96},
}
"""The liver figures of the paper's text: DI2IN (Yang et al., MICCAI 2017) at 2 mm, same Dice 0.96 with SAT."""

SWITCHED_OFF = {
    ("prostate", "unet"): (55.7, 5.0), ("skin", "unet"): (66.7, 7.0),
    ("prostate", "vnet"): (57.0, 12.9), ("skin", "vnet"): (54.5, 6.9),
}
"""Percent of skip channels switched off (``w_i = 0``) after training, mean and std."""

PAPER_CLAIMS = (
    "Abstract (MLMI 2019 version): the SAT skips beat the original ones 'in terms of segmentation accuracy (2% Dice), "
    "memory usage (at least 50%), and the number of network parameters (up to 70%)'.",
    "Text: DI2IN for liver CT keeps Dice 0.96 with SAT while its parameters fall from 2,353,089 to 2,063,053.",
)

HONEST_NOTE = (
    "Counting shows the paper's savings follow sum over skips of [(C - 1) * C_out * k^d - (2C + 1)] (C: skip "
    "channels, C_out and k: the first convolution after the concatenation, 2C + 1: the gate's w, K and bias). "
    "For FC-DenseNet the skip channels reach every layer of the decoder dense block (and, for the shallowest skip, "
    "the classifier), so the per-channel cost is L * (2 + growth * k^d) instead of C_out * k^d."
)


def paper_metrics(task: str, network: str, gate: str) -> MetricRow | None:
    """The paper's Table 1 or 2 row for ``(task, network, gate)``, or None when the paper has none.

    Args:
        task: ``"prostate"``, ``"skin"`` or ``"liver"`` (the paper gives liver Dice only, for DI2IN).
        network: ``unet``, ``vnet``, ``fcdensenet`` or ``di2in``.
        gate: ``org``, ``at``, ``st`` or ``sat``.
    """
    if task == "liver" and network == DI2IN["network"] and gate in DI2IN["dice"]:
        return {"dice": (DI2IN["dice"][gate], float("nan"))}
    return TABLE1.get((task, network, gate)) or TABLE2.get((task, network, gate))
