"""A tiny BraTS-like nnU-Net dataset, built once per test session: phantom cases in the BraTS 2021 layout,
converted with our converter, planned and preprocessed with nnU-Net's own command. Tests that train or predict
run nnU-Net's real command-line tools on it, in subprocesses with ``env``."""
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

TRAIN_ID, TEST_ID = 990, 991
CASE_SHAPE = (32, 32, 32)


@dataclass
class TinyDataset:
    env: Dict[str, str]
    raw: Path
    preprocessed: Path
    results: Path
    dataset_name: str
    test_images: Path
    test_labels: Path

    def run(self, *command: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command (an nnU-Net tool from the venv) with this dataset's environment."""
        exe = Path(sys.executable).parent / command[0]
        result = subprocess.run([str(exe), *command[1:]], env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result


def nnunet_env(root: Path) -> Dict[str, str]:
    """A clean environment: PATH and HOME, nnU-Net's three folders, one thread per process, no extTrainer set."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir(parents=True, exist_ok=True)
        env[name] = str(root / name)
    # few processes: CI has 2 cores
    env.update({"nnUNet_n_proc_DA": "1", "nnUNet_def_n_proc": "1", "OMP_NUM_THREADS": "2",
                "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"})
    return env


def build_tiny_dataset(root: Path, n_train: int = 5, n_test: int = 2) -> TinyDataset:
    """Phantoms -> convert-brats -> nnUNetv2_plan_and_preprocess (3d_fullres). 5 training cases: one validation
    case per fold keeps the 5-fold end-to-end test within CI's budget."""
    from nnunet_msfen.dataset_conversion.convert_brats import convert_brats
    from nnunet_msfen.dataset_conversion.phantom import generate_phantom_dataset

    env = nnunet_env(root)
    generate_phantom_dataset(root / "src_train", n_train, layout="2021", shape=CASE_SHAPE, seed=1)
    generate_phantom_dataset(root / "src_test", n_test, layout="2021", shape=CASE_SHAPE, seed=1000)
    old = {k: os.environ.get(k) for k in ("nnUNet_raw",)}
    os.environ["nnUNet_raw"] = env["nnUNet_raw"]
    try:
        train = convert_brats(root / "src_train", TRAIN_ID, "TinyPhantom", progress=False)
        test = convert_brats(root / "src_test", TEST_ID, "TinyPhantomTest", progress=False)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    ds = TinyDataset(env, Path(env["nnUNet_raw"]), Path(env["nnUNet_preprocessed"]), Path(env["nnUNet_results"]),
                     train.name, test / "imagesTr", test / "labelsTr")
    ds.run("nnUNetv2_plan_and_preprocess", "-d", str(TRAIN_ID), "-c", "3d_fullres", "-np", "1", "-npfp", "1")
    return ds


def copy_tiny_dataset(built: Path, dataset_name: str, root: Path) -> TinyDataset:
    """A copy in ``root`` of the dataset ``build_tiny_dataset`` made in ``built`` (its nnU-Net folders only)."""
    env = nnunet_env(root)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        shutil.copytree(built / name, root / name, dirs_exist_ok=True)
    raw = Path(env["nnUNet_raw"])
    (test,) = raw.glob(f"Dataset{TEST_ID:03d}_*")
    return TinyDataset(env, raw, Path(env["nnUNet_preprocessed"]), Path(env["nnUNet_results"]), dataset_name,
                       test / "imagesTr", test / "labelsTr")


def case_ids(folder: Path) -> List[str]:
    """Case identifiers of the ``.nii.gz`` label (or prediction) files in ``folder``."""
    return sorted(p.name[:-len(".nii.gz")] for p in folder.glob("*.nii.gz"))
