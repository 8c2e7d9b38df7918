"""Which checkpoint file the MONAI Label server serves (satgate_monai.label.checkpoints)."""

from __future__ import annotations

import pytest
import torch

from satgate_monai.bundle.checkpoint import CheckpointError
from satgate_monai.label.checkpoints import choose_checkpoint, file_signature, servable_checkpoints


@pytest.fixture
def models(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.Conv3d(4, 2, 1))
    reference = net.state_dict()
    torch.save(reference, tmp_path / "model.pt")
    torch.save({"model": reference, "optimizer": {}, "epoch": 3}, tmp_path / "last.pt")  # the resume checkpoint
    torch.save(torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3)).state_dict(), tmp_path / "other_net.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    (tmp_path / "a_copy.pt").write_bytes((tmp_path / "model.pt").read_bytes())
    return tmp_path, reference


def test_only_servable_files_are_offered_best_first(models):
    folder, reference = models
    assert servable_checkpoints(folder, reference) == ["model.pt", "a_copy.pt", "last.pt"]


def test_model_pt_is_the_default_and_a_named_file_is_served(models):
    served = servable_checkpoints(*models)
    for echoed in (None, "", [], served, list(reversed(served))):
        assert choose_checkpoint(echoed, served) == "model.pt", echoed
    assert choose_checkpoint("last.pt", served) == "last.pt"
    assert choose_checkpoint(["last.pt"], served) == "last.pt"


@pytest.mark.parametrize("name", ["notes.pt", "other_net.pt", "missing.pt", "../model.pt", 3])
def test_a_file_that_cannot_be_served_is_refused_with_the_choices(models, name):
    served = servable_checkpoints(*models)
    with pytest.raises(CheckpointError, match=r"is not a servable checkpoint of this model: \['model.pt'"):
        choose_checkpoint(name, served)


def test_without_model_pt_the_default_is_refused(models):
    folder, reference = models
    (folder / "model.pt").unlink()
    served = servable_checkpoints(folder, reference)
    assert served == ["a_copy.pt", "last.pt"]
    with pytest.raises(CheckpointError, match="models/model.pt is missing"):
        choose_checkpoint(None, served)
    with pytest.raises(CheckpointError, match="no checkpoint to serve"):
        choose_checkpoint(None, [])


def test_signature_changes_when_the_file_is_replaced(models):
    folder, reference = models
    before = file_signature(folder / "model.pt")
    tmp = folder / "model.pt.tmp"
    torch.save({k: v + 1 for k, v in reference.items()}, tmp)
    tmp.replace(folder / "model.pt")
    assert file_signature(folder / "model.pt") != before
    assert file_signature(folder / "gone.pt") is None
