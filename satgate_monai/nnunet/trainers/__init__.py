"""Short nnU-Net trainers for CPU smoke runs. nnU-Net imports the module beside this file by itself when
``nnUNet_extTrainer`` names this folder (``python -m satgate_monai.nnunet trainer-path``); nothing else imports it."""
