"""The one-line error hook of ``monai.bundle run``: installed by the configs' entry module, not by a plain import."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

_CHECK = ("import sys; import {module}; from satgate_monai.bundle.errors import excepthook; "
          "print(sys.excepthook is excepthook)")


def _installed(module: str) -> bool:
    out = subprocess.run([sys.executable, "-c", _CHECK.format(module=module)], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True, timeout=120)
    return out.stdout.strip() == "True"


def test_importing_the_bundle_layer_leaves_the_excepthook_alone():
    assert not _installed("satgate_monai.bundle")


def test_the_bundle_configs_entry_module_installs_it():
    assert _installed("satgate_monai.bundle.entry")
