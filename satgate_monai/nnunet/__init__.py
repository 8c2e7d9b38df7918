"""SAT in nnU-Net v2: the network class nnU-Net's plans name, the plans variant command, short trainers.

* :mod:`satgate_monai.nnunet.network`: ``SATPlainConvUNet`` (needs the ``[nnunet]`` extra; nnU-Net imports it by the
  dotted path a plans file names);
* :mod:`satgate_monai.nnunet.plans`: ``python -m satgate_monai.nnunet plans DATASET_ID --gate sat`` writes
  ``nnUNetPlans_SAT.json`` beside nnU-Net's own plans (standard library only);
* ``satgate_monai/nnunet/trainers/``: short trainers for a CPU smoke run, found by nnU-Net through
  ``nnUNet_extTrainer`` (``python -m satgate_monai.nnunet trainer-path`` prints the folder).

Importing this package imports neither nnunetv2 nor dynamic-network-architectures.
"""
