"""Build glue that pyproject.toml cannot express.

1. The repository keeps the planner in ``plans/`` and the BraTS conversion in ``dataset_conversion/`` (top-level
   folders, so a newcomer finds them), but they install as ``nnunet_msfen.plans`` and
   ``nnunet_msfen.dataset_conversion``: no generic top-level module lands in site-packages.
2. ``nnunet_msfen_discovery.pth`` is copied (regular and editable installs alike) to the root of site-packages. Python runs its single ``import`` line at
   start-up, which appends our trainer folder to ``nnUNet_extTrainer``: nnU-Net's own commands then find
   ``nnUNetTrainerMSFEN`` in any new shell, next to whatever folders the user lists there himself.
"""
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HOOK = "nnunet_msfen_discovery.pth"
MAPPED = {"nnunet_msfen.plans": "plans", "nnunet_msfen.dataset_conversion": "dataset_conversion"}


def _packages() -> list:
    packages = ["nnunet_msfen"] + [f"nnunet_msfen.{p}" for p in find_packages("nnunet_msfen")]
    for name, folder in MAPPED.items():
        packages += [name] + [f"{name}.{p}" for p in find_packages(folder)]
    return packages


class BuildPyWithDiscoveryHook(build_py):
    def run(self):
        super().run()
        shutil.copyfile(os.path.join("nnunet_msfen", "discovery", HOOK), os.path.join(self.build_lib, HOOK))

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, HOOK)]


class EditableWheelWithDiscoveryHook(editable_wheel):
    # `pip install -e .` builds no build_py outputs into the wheel; this is the one step that writes files to the
    # root of the editable wheel (setuptools' namespace .pth files), so the hook goes there too.
    def _install_namespaces(self, installation_dir, pth_prefix):
        super()._install_namespaces(installation_dir, pth_prefix)
        shutil.copyfile(os.path.join("nnunet_msfen", "discovery", HOOK), os.path.join(installation_dir, HOOK))


setup(
    packages=_packages(),
    package_dir={"nnunet_msfen": "nnunet_msfen", **MAPPED},
    package_data={"nnunet_msfen": ["discovery/*.pth"]},
    cmdclass={"build_py": BuildPyWithDiscoveryHook, "editable_wheel": EditableWheelWithDiscoveryHook},
)
