"""nnU-Net trainers with fewer iterations, for smoke runs and CPU budgets (nnU-Net's own epoch is 250 training and
50 validation iterations; its documented ``nnUNetTrainer_1epoch`` keeps those 300 iterations).

nnU-Net finds them by name (``nnUNetv2_train ... -tr nnUNetTrainer_SATSmoke``, and ``nnUNetv2_predict`` from the
checkpoint) when ``nnUNet_extTrainer`` names this folder. Everything else is ``nnUNetTrainer``'s recipe: loss, deep
supervision, augmentation, optimiser and learning-rate schedule (over ``num_epochs``), final validation.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

__all__ = ["nnUNetTrainer_SATSmoke", "nnUNetTrainer_SATCPU", "nnUNetTrainer_SATCPU8"]


class nnUNetTrainer_SATSmoke(nnUNetTrainer):
    """One epoch of 4 training and 2 validation iterations: proves plan -> train -> predict runs, learns nothing."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 1
        self.num_iterations_per_epoch = 4
        self.num_val_iterations_per_epoch = 2


class nnUNetTrainer_SATCPU(nnUNetTrainer):
    """20 epochs of 25 training and 5 validation iterations (500 training iterations, 1/500 of nnU-Net's 1000 x 250):
    a SAT-against-ORG comparison a CPU can afford."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 20
        self.num_iterations_per_epoch = 25
        self.num_val_iterations_per_epoch = 5


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's (nnU-Net's data loader and augmentation with ``nnUNet_n_proc_DA=0``) and torch's RNGs."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - nnU-Net's loader and augmentation draw from NumPy's global RNG
    torch.manual_seed(seed)


class nnUNetTrainer_SATCPU8(nnUNetTrainer):
    """2 epochs of 4 training and 1 validation iterations (8 training iterations), seeds fixed (0; with
    ``nnUNet_n_proc_DA=0`` the batches and augmentation are then the same for every gate), and no test-time
    mirroring (the training augmentation keeps its mirroring): what one shared CPU thread affords in minutes."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        seed_everything(0)
        self.num_epochs = 2
        self.num_iterations_per_epoch = 4
        self.num_val_iterations_per_epoch = 1

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """nnU-Net's augmentation settings; only the mirroring axes of inference are dropped."""
        settings = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return settings
