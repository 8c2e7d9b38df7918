"""Dependencies match the extras: the module -> extra table equals setup.cfg, a plain install (no extras) imports
both packages, and a command missing an extra says in one line which extra to install."""

from __future__ import annotations

import configparser
import logging
import subprocess
import sys

import pytest

from data_prep.console import NoiseFilter, configure_output, reset_output
from data_prep.errors import run_command
from data_prep.extras import MODULE_EXTRAS, missing_extra, missing_modules, require_extras
from tests.bundles.helpers import python_env
from tests.conftest import REPO_ROOT


def _extras() -> dict[str, set[str]]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    section = cfg["options.extras_require"]
    return {name: {line.split(">")[0].split("=")[0].split("<")[0].strip().lower()
                   for line in section[name].splitlines() if line.strip() and not line.strip().startswith("#")}
            for name in section}


def test_table_matches_setup_cfg():
    extras = _extras()
    for module, (dist, extra) in MODULE_EXTRAS.items():
        assert dist.lower() in extras[extra], f"{module}: {dist} is not in setup.cfg's [{extra}] extra"
        assert dist.lower() in extras["all"] or extra == "cluster", f"{dist} ([{extra}]) is not in [all]"
    listed = {d.lower() for d, _ in MODULE_EXTRAS.values()}
    runtime = set().union(*(extras[e] for e in ("io", "train", "dicomseg", "pacs", "report", "onnx")))
    assert runtime <= listed, f"setup.cfg extras not in data_prep.extras.MODULE_EXTRAS: {runtime - listed}"
    assert "scikit-image" in extras["all"], "the bundles' post-processing (KeepLargestConnectedComponent) needs it"


def test_missing_extra_is_one_line(capsys):
    def needs_skimage() -> int:
        try:
            raise RuntimeError("Skimage.measure required.")
        except RuntimeError as e:
            raise RuntimeError("Failed to evaluate ConfigExpression") from e

    assert run_command(needs_skimage, command="python -m x") == 2
    err = capsys.readouterr().err
    assert err == 'error: python -m x needs scikit-image (module skimage): pip install "satgate-monai[train]"\n'
    assert missing_extra(ModuleNotFoundError("No module named 'ignite'", name="ignite"), "c").endswith("[train]\"")
    assert missing_extra(ValueError("bad value"), "c") is None
    assert missing_modules("io", "train") == []
    require_extras("c", "io", "train")
    with pytest.raises(ValueError, match="unknown extra"):
        missing_modules("nope")


_BLOCK = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(','))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[2:]
import runpy
runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
"""


def _without(blocked: list[str], *argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK, ",".join(blocked), *argv], capture_output=True, text=True,
                          env=python_env(), cwd=cwd, timeout=300)


def test_plain_install_imports_both_packages_and_commands_name_their_extra(tmp_path):
    """With every extra's module unimportable (a plain ``pip install``): both packages import, and the commands
    end with one line naming the extra (no traceback)."""
    extras_modules = list(MODULE_EXTRAS)
    script = tmp_path / "imports.py"
    script.write_text("import satgate_monai, data_prep, satgate_monai.resources\nprint('ok')\n")
    proc = _without(extras_modules, "imports", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    for argv, extra in ((["data_prep", "demo", "--task", "skin", "--out", str(tmp_path / "raw")], "io"),
                        (["satgate_monai.demo", "--task", "skin", "--out", str(tmp_path / "demo")], "io")):
        proc = _without(extras_modules, *argv)
        assert proc.returncode == 2, proc.stderr[-2000:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f'pip install "satgate-monai[{extra}]"' in lines[0], proc.stderr[-2000:]
    proc = _without(["skimage"], "satgate_monai.demo", "--task", "skin", "--out", str(tmp_path / "demo2"))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        'error: python -m satgate_monai.demo needs scikit-image (module skimage): pip install "satgate-monai[train]"')
    assert not (tmp_path / "raw").exists(), "a command missing its extra must not write its output folder"


def test_output_routes_library_lines_to_the_file_only(tmp_path, capsys):
    log = tmp_path / "out" / "run.log"
    try:
        configure_output(log)
        logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").warning("nvImageCodec is not available; x")
        logging.getLogger("ignite.engine.engine.SupervisedTrainer").info("Epoch[1] Complete.")
        logging.getLogger("ignite.engine.engine.SupervisedTrainer").warning("a library warning")
        logging.getLogger("satgate_monai.demo").warning("our warning")
        logging.getLogger("satgate_monai.demo").warning("our warning")
        (tmp_path / "out").mkdir()
        logging.getLogger("satgate_monai.demo").info("after the folder exists")
    finally:
        reset_output()
    err = capsys.readouterr().err
    assert err.count("our warning") == 1 and "Epoch" not in err and "library warning" not in err
    assert "nvImageCodec" not in err
    text = log.read_text()
    assert "Epoch[1] Complete." in text and "a library warning" in text and "after the folder exists" in text
    assert "nvImageCodec" not in text and text.count("our warning") == 1
    assert NoiseFilter().filter(logging.makeLogRecord({"name": "x", "msg": "y"}))
