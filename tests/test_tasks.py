"""The task registries (``data_prep.tasks``, ``satgate_monai.tasks``) against the bundles, importers and phantoms.

Adding a task is a bundle folder plus one entry in each registry: these tests check that the entries and the bundle
folders agree, and that everything that used to keep its own list of tasks reads the registry.
"""

from __future__ import annotations

import inspect
import json
import re

import pytest

import data_prep.tasks as data_tasks
from data_prep.cli import main as data_prep_main
from data_prep.importers import DATASETS as IMPORTERS
from satgate_monai.resources import bundle_names, bundle_path, bundles_dir
from satgate_monai.tasks import TASKS, get_task

TINY_PHANTOM = {3: {"shape": (48, 48, 16), "spacing": (3.2, 3.2, 8.0), "test_cases": 0}, 2: {"size": (48, 64)}}


def _config(bundle: str, name: str) -> dict:
    return json.loads((bundle_path(bundle) / "configs" / f"{name}.json").read_text())


def test_both_registries_name_the_same_tasks():
    assert list(TASKS) == list(data_tasks.TASKS)
    for name, task in TASKS.items():
        assert task.name == name and task.data.name == name and get_task(name) is task
    with pytest.raises(ValueError, match=re.escape(f"unknown task 'brain': expected one of {sorted(TASKS)}")):
        get_task("brain")
    with pytest.raises(ValueError, match="unknown task 'brain'"):
        data_tasks.get_task("brain")


@pytest.mark.parametrize("name", list(TASKS))
def test_each_task_has_its_bundle_with_the_registered_labels_dims_and_spacing(name):
    task = TASKS[name]
    assert task.bundle_dir == bundles_dir() / task.bundle and task.bundle in bundle_names()
    meta = _config(task.bundle, "metadata")
    pred, image = meta["network_data_format"]["outputs"]["pred"], meta["network_data_format"]["inputs"]["image"]
    assert pred["channel_def"] == task.data.labels, "the bundle's output channels are the task's labels"
    assert pred["num_channels"] == len(task.data.labels)
    assert len(image["spatial_shape"]) == task.data.spatial_dims
    for config in ("train", "inference"):
        cfg = _config(task.bundle, config)
        assert cfg["task"] == name and cfg["network_def"]["spatial_dims"] == task.data.spatial_dims
        assert cfg.get("pixdim") == (list(task.data.spacing) if task.data.spacing else None)


def test_every_bundle_folder_is_a_registered_task():
    names = bundle_names()
    assert names, f"no bundle found in {bundles_dir()}"
    for bundle in names:
        task = _config(bundle, "train")["task"]
        assert task in TASKS, f"bundles/{bundle} is for task {task!r}, which no registry entry names"
        channels = _config(bundle, "metadata")["network_data_format"]["outputs"]["pred"]["channel_def"]
        assert channels == TASKS[task].data.labels, f"bundles/{bundle}: output channels differ from task {task!r}"
    bundles = [t.bundle for t in TASKS.values()]
    assert len(set(bundles)) == len(bundles), "two tasks name the same bundle"


def test_one_spacing_source_for_data_prep_defaults_and_the_bundles():
    from data_prep import pipeline, resample
    from data_prep.cli import build_parser

    assert pipeline.DEFAULT_SPACING == data_tasks.TARGET_SPACING
    for fn in (resample.isotropic_grid, resample.resample_image, resample.resample_label):
        assert inspect.signature(fn).parameters["spacing"].default == data_tasks.TARGET_SPACING, fn.__name__
    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert f"(default {data_tasks.TARGET_SPACING})" in " ".join(subcommands["import"].format_help().split())
    spacings = {tuple(_config(t.bundle, "train")["pixdim"]) for t in TASKS.values() if t.data.spatial_dims == 3}
    assert spacings == {(data_tasks.TARGET_SPACING,) * 3}


def test_consumers_read_the_registry():
    from data_prep.commands.import_dataset import DATASETS
    from data_prep.phantoms import TASKS as PHANTOM_TASKS
    from satgate_monai.bundle.data import TASK_DATASETS
    from satgate_monai.demo import DEMOS
    from satgate_monai.experiments.cli import PROFILES, default_bundle_dir
    from satgate_monai.experiments.grid import TASK_BUNDLES

    assert tuple(DATASETS) == tuple(IMPORTERS), "the import command offers exactly the importers"
    assert PHANTOM_TASKS == tuple(TASKS)
    for name, task in TASKS.items():
        assert task.data.dataset in IMPORTERS and callable(task.data.phantom_writer())
        assert TASK_DATASETS[name] == task.data.dataset and TASK_BUNDLES[name] == task.bundle
        assert DEMOS[name]["bundle"] == task.bundle and DEMOS[name]["overrides"] == task.demo_overrides
        assert PROFILES["demo"][name]["epochs"] == task.experiment_epochs
        assert default_bundle_dir(name) == task.bundle_dir
    assert set(DEMOS) == set(PROFILES["demo"]) == set(PROFILES["bundle"]) == set(TASKS)


@pytest.mark.parametrize("name", list(TASKS))
def test_phantom_then_import_writes_the_registered_labels_and_spacing(name, tmp_path):
    """``data_prep demo --task T`` + ``data_prep import --dataset <T's importer>``, as the demo runs them."""
    task = TASKS[name].data
    task.phantom_writer()(tmp_path / "raw", 3, seed=0, **TINY_PHANTOM[task.spatial_dims])
    argv = ["import", "--dataset", task.dataset, *task.import_args, "--src", str(tmp_path / "raw"),
            "--out", str(tmp_path / "prep"), "--no-progress"]
    assert data_prep_main(argv) == 0
    datalist = json.loads((tmp_path / "prep" / "datalist.json").read_text())
    assert datalist["labels"] == task.labels
    assert datalist["spacing"] == (list(task.spacing) if task.spacing else None)
