"""The segmentation tasks data_prep prepares data for, and the voxel spacing it prepares 3D data at.

One :class:`DataTask` per task holds its data-side facts: the public dataset it is imported from (the
``python -m data_prep import --dataset`` name), the phantom dataset writer of ``python -m data_prep demo``, the label
names the import writes with its default options, and its dimensionality (3D volumes are resampled to
:data:`TARGET_SPACING`; 2D images are resized in pixels and have no physical spacing). ``satgate_monai.tasks`` adds
each task's bundle and demo settings; data_prep itself never imports ``satgate_monai``.

:data:`TARGET_SPACING` is the one place the 2 mm isotropic voxel size is written in code: ``prepare``/``import``
defaults and the resampling functions read it, and the tests check every 3D bundle's ``pixdim`` against it.

Standard library only (the resampling module imports it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["TARGET_SPACING", "DataTask", "TASKS", "get_task"]

#: isotropic voxel size in mm that 3D images are resampled to (the paper's 2 mm)
TARGET_SPACING = 2.0


@dataclass(frozen=True)
class DataTask:
    """The data-side facts of one task.

    Attributes:
        name: task name on the command lines (``--task liver``).
        dataset: the ``python -m data_prep import --dataset`` name its data is imported with.
        phantom: ``"module:function"`` of the writer of its phantom dataset (in ``dataset``'s own layout), called as
            ``writer(out_root, cases, seed=seed, **options)``.
        labels: label value (a string) -> name, as the import writes them to ``datalist.json`` by default.
        spatial_dims: 3 (volumes at :attr:`spacing`) or 2 (images in pixels).
        import_args: extra ``python -m data_prep import`` arguments the task's data needs.
    """

    name: str
    dataset: str
    phantom: str
    labels: Mapping[str, str]
    spatial_dims: int
    import_args: tuple[str, ...] = field(default=())

    @property
    def spacing(self) -> tuple[float, ...] | None:
        """The voxel size in mm its data is prepared at: :data:`TARGET_SPACING` per axis in 3D, ``None`` in 2D."""
        return (TARGET_SPACING,) * 3 if self.spatial_dims == 3 else None

    def phantom_writer(self) -> Callable:
        """The phantom dataset writer named by :attr:`phantom` (imported on first use)."""
        module, _, function = self.phantom.partition(":")
        return getattr(importlib.import_module(module), function)


#: task name -> its data-side facts; ``satgate_monai.tasks.TASKS`` has an entry for each
TASKS: Mapping[str, DataTask] = MappingProxyType({
    "liver": DataTask("liver", dataset="msd-liver", phantom="data_prep.phantoms.layouts:write_msd_liver",
                      labels={"0": "background", "1": "liver"}, spatial_dims=3),
    "prostate": DataTask("prostate", dataset="msd-prostate", phantom="data_prep.phantoms.layouts:write_msd_prostate",
                         labels={"0": "background", "1": "prostate"}, spatial_dims=3),
    "skin": DataTask("skin", dataset="isic2017", phantom="data_prep.phantoms.layouts:write_isic2017",
                     labels={"0": "background", "1": "lesion"}, spatial_dims=2),
})


def get_task(name: str) -> DataTask:
    """The :class:`DataTask` called ``name``.

    Raises:
        ValueError: no task has that name (the message lists the names).
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: expected one of {sorted(TASKS)}")
    return TASKS[name]
