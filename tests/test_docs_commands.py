"""The commands the documentation marks as runnable run: a doc cannot drift from the code.

A fenced ``bash`` block preceded by the line ``<!-- runnable -->`` in README.md or docs/*.md is run as one bash
script (``set -euo pipefail``) in an empty folder, with ``python`` this interpreter and the checkout importable. Mark
only fast commands on demo data (seconds each): ``--help``, ``bundle-path``, ``data_prep demo`` with few cases...
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

MARKER = "<!-- runnable -->"
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^" + re.escape(MARKER) + r"\n```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def runnable_blocks(paths: list[Path] = DOCS) -> list[tuple[str, str]]:
    """``[("README.md:123", "commands"), ...]``: every fenced bash block marked runnable, with where it starts."""
    blocks = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((f"{path.relative_to(REPO_ROOT)}:{line}", match.group(1)))
    return blocks


BLOCKS = runnable_blocks()


def test_the_marker_is_only_used_before_a_bash_block():
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        marked = text.count(MARKER + "\n")
        assert marked == len(_BLOCK.findall(text)), f"{path.name}: a {MARKER} line is not followed by a ```bash block"
    assert len(BLOCKS) >= 4 and any(where.startswith("docs/") for where, _ in BLOCKS)


@pytest.mark.slow
@pytest.mark.parametrize("where,script", BLOCKS, ids=[w for w, _ in BLOCKS])
def test_documented_commands_run(where, script, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"{where} failed:\n{script}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
