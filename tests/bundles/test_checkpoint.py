"""The one checkpoint loader (satgate_monai.bundle.checkpoint): weights only, NaN refused, a mismatch in one line.

Every entry point reads checkpoints through it; the last test checks that no other module of the package calls
``torch.load`` itself.
"""

from __future__ import annotations

import ast

import pytest
import torch

from satgate_monai.bundle.checkpoint import CheckpointError, load_state_dict, load_weights, read_checkpoint
from tests.conftest import REPO_ROOT


class _RunsCode:
    """Unpickling this writes a marker file: what a malicious checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_would_run_code_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"model": torch.nn.Linear(2, 2).state_dict(), "payload": _RunsCode(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"refused checkpoint .*evil\.pt.*weights_only=True") as e:
        read_checkpoint(tmp_path / "evil.pt")
    assert "\n" not in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, value):
    state = torch.nn.Linear(2, 2).state_dict()
    state["weight"][0, 1] = value
    torch.save({"model": state, "epoch": 1}, tmp_path / "diverged.pt")
    with pytest.raises(CheckpointError, match=r"diverged\.pt: 1 tensor\(s\) hold NaN or infinite weights \(weight\)"):
        load_state_dict(tmp_path / "diverged.pt")


def test_a_mismatch_is_one_line_naming_the_file_and_the_keys(tmp_path):
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).state_dict(), tmp_path / "other.pt")
    net = torch.nn.Sequential(torch.nn.Linear(3, 5))
    with pytest.raises(CheckpointError) as e:
        load_weights(net, tmp_path / "other.pt")
    message = str(e.value)
    assert "\n" not in message and len(message) < 300, message
    assert "other.pt does not fit the network (Sequential)" in message
    assert "2 unexpected key(s) (1.weight, 1.bias)" in message and "2 shape mismatch(es)" in message, message


def test_no_other_module_calls_torch_load():
    """One loader: ``torch.load`` appears in the package only in ``satgate_monai/bundle/checkpoint.py``."""
    calls = []
    for path in sorted((REPO_ROOT / "satgate_monai").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                calls.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    calls = [c for c in calls if not c.startswith("satgate_monai/bundle/checkpoint.py")]
    assert not calls, f"read checkpoints with satgate_monai.bundle.checkpoint instead: {calls}"
