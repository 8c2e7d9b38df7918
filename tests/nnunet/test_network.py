"""SATPlainConvUNet against nnU-Net's PlainConvUNet, in the nnU-Net environment (``network_checks.py``): ``org`` is
PlainConvUNet exactly (state dicts load both ways, equal outputs with and without deep supervision), ``sat`` joins
``C + 1`` channels with nnU-Net's deep-supervision outputs, and nnU-Net's own builder resolves the class."""

from __future__ import annotations

from tests.conftest import REPO_ROOT
from tests.nnunet.nnunet_env import nnunet_environ, nnunet_python, run_checked


def test_sat_plain_conv_unet_in_nnunet_env(tmp_path):
    out = run_checked([str(nnunet_python()), str(REPO_ROOT / "tests" / "nnunet" / "network_checks.py")],
                      nnunet_environ(tmp_path))
    assert out.strip().splitlines()[-1] == "ok"
