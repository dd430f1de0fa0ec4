"""Lets nnU-Net's own commands find our trainers without any set-up by the user.

nnunetv2 >= 2.8 looks for trainers outside its package only in the folders listed in the ``nnUNet_extTrainer``
environment variable (``os.pathsep``-separated), importing every module there as a top-level module. The file
``nnunet_msfen_discovery.pth``, installed at the root of site-packages, calls :func:`register_external_trainers`
at every interpreter start-up; it appends our folder to the variable and keeps the user's own folders first,
so a user's trainer of the same name wins and his subclasses of ``nnUNetTrainerMSFEN`` keep working.

Keep this module free of heavy imports: it runs in every Python process of the environment.
"""
import os

ENV_VAR = "nnUNet_extTrainer"
TRAINER_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nnunet_ext")


def register_external_trainers() -> None:
    """Append this package's trainer folder to ``nnUNet_extTrainer`` unless it is listed already."""
    listed = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    if TRAINER_FOLDER not in listed:
        os.environ[ENV_VAR] = os.pathsep.join(listed + [TRAINER_FOLDER])
