"""The task registry: each segmentation task's bundle, data (importer, phantom, labels, spacing) and demo settings.

The data-side facts of a task live in :mod:`data_prep.tasks` (data_prep stands alone and cannot import this
package); a :class:`Task` adds what only satgate-monai knows: the bundle that segments it and the CPU-sized settings
of ``python -m satgate_monai.demo`` and of the experiments' ``--profile demo``. The demo, the experiments, the
bundles' data loading and the tests read this module, so adding a task is a bundle folder plus an entry here and
in :data:`data_prep.tasks.TASKS`.

Standard library (and :mod:`data_prep.tasks`) only: importing it is cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from data_prep.tasks import TASKS as DATA_TASKS
from data_prep.tasks import DataTask
from data_prep.tasks import get_task as get_data_task

__all__ = ["Task", "TASKS", "get_task"]

# the demo's CPU-sized U-Net: written into the bundle copy's train.json and inference.json (they must agree)
_CPU_UNET = {"network_def#channels": [8, 16, 32, 64], "network_def#strides": [2, 2, 2]}
# the experiments' demo profile of a 3D task: every grid cell (U-Net x 4 gates x 3 seeds) on small patches, so the
# default grid finishes within an hour on 2 CPU cores with one thread per process
_EXPERIMENT_3D_NET = {**_CPU_UNET, "batch_size": 1, "num_samples": 2}


@dataclass(frozen=True)
class Task:
    """One task as satgate-monai runs it.

    Attributes:
        name: the task name (a key of :data:`data_prep.tasks.TASKS`).
        bundle: the folder name of its bundle under ``bundles/`` (see :mod:`satgate_monai.resources`).
        demo_overrides: config ids written into the demo's copy of ``train.json`` and ``inference.json``.
        demo_train_overrides: config ids written into the demo copy's ``train.json`` only (e.g. the batch size).
        demo_epochs: training epochs of ``python -m satgate_monai.demo``.
        experiment_epochs: epochs of ``python -m satgate_monai.experiments run --profile demo``.
        experiment_overrides: config overrides of that profile.
    """

    name: str
    bundle: str
    demo_overrides: Mapping[str, Any]
    demo_train_overrides: Mapping[str, Any] = field(default_factory=dict)
    demo_epochs: int = 20
    experiment_epochs: int = 10
    experiment_overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> DataTask:
        """The task's data-side facts: importer ``dataset``, ``phantom``, ``labels``, ``spatial_dims``, ``spacing``."""
        return DATA_TASKS[self.name]

    @property
    def bundle_dir(self) -> Path:
        """The shipped bundle's folder (``bundles/<bundle>`` in a checkout, inside the package when installed)."""
        from satgate_monai.resources import bundle_path

        return bundle_path(self.bundle)


#: task name -> :class:`Task`, the same names as :data:`data_prep.tasks.TASKS`
TASKS: Mapping[str, Task] = MappingProxyType({
    "liver": Task("liver", bundle="liver_ct_sat", demo_overrides={**_CPU_UNET, "roi_size": [48, 48, 48]},
                  demo_train_overrides={"batch_size": 1},
                  experiment_overrides={**_EXPERIMENT_3D_NET, "roi_size": [32, 32, 32]}),
    "prostate": Task("prostate", bundle="prostate_mri_sat", demo_overrides={**_CPU_UNET, "roi_size": [48, 48, 32]},
                     demo_train_overrides={"batch_size": 1},
                     experiment_overrides={**_EXPERIMENT_3D_NET, "roi_size": [32, 32, 32]}),
    "skin": Task("skin", bundle="skin_lesion_sat", demo_overrides=_CPU_UNET, demo_train_overrides={"batch_size": 2},
                 experiment_epochs=20, experiment_overrides={"image_size": [64, 64]}),
})

def get_task(name: str) -> Task:
    """The :class:`Task` called ``name``.

    Raises:
        ValueError: no task has that name (the message lists the names).
    """
    return TASKS[get_data_task(name).name]
