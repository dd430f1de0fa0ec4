"""nnU-Net's own commands find our trainers in a new shell with only nnU-Net's three path variables set."""
import subprocess
import sys
import textwrap
from pathlib import Path

import nnunet_msfen.discovery as discovery

BIN = Path(sys.executable).parent


def clean_env(tmp_path, **extra):
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / name).mkdir(exist_ok=True)
        env[name] = str(tmp_path / name)
    env.update(extra)
    return env


def test_a_new_interpreter_lists_our_folder_in_nnunet_exttrainer(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('nnUNet_extTrainer'))"],
                         env=clean_env(tmp_path), capture_output=True, text=True, check=True).stdout.strip()
    assert out == discovery.TRAINER_FOLDER


def test_nnunetv2_train_finds_the_trainer_in_a_new_shell(tmp_path):
    # dataset 999 does not exist: nnUNetv2_train looks the trainer up first, then fails on the missing plans
    result = subprocess.run(["nnUNetv2_train", "999", "3d_fullres", "0", "-tr", "nnUNetTrainerMSFEN", "-device", "cpu"],
                            env=clean_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert "Using trainer 'nnUNetTrainerMSFEN' from" in result.stdout, result.stdout + result.stderr
    assert result.returncode != 0 and "Could not find requested nnunet trainer" not in result.stderr
    bogus = subprocess.run(["nnUNetv2_train", "999", "3d_fullres", "0", "-tr", "nnUNetTrainerMSFEN_NoSuchThing",
                            "-device", "cpu"], env=clean_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert bogus.returncode != 0 and "Could not find requested nnunet trainer" in bogus.stderr


def test_users_own_ext_folder_keeps_working_beside_ours(tmp_path):
    user_folder = tmp_path / "my_trainers"
    user_folder.mkdir()
    (user_folder / "my_msfen_variants.py").write_text(textwrap.dedent("""
        from nnunet_msfen import nnUNetTrainerMSFEN

        class nnUNetTrainerMSFEN_Mine(nnUNetTrainerMSFEN):
            ce_weight, dice_weight = 0.5, 0.5
    """))
    probe = textwrap.dedent("""
        import os
        from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as find
        from nnunet_msfen import nnUNetTrainerMSFEN
        mine, ours = find("nnUNetTrainerMSFEN_Mine"), find("nnUNetTrainerMSFEN_Adam")
        assert issubclass(mine, nnUNetTrainerMSFEN) and mine.ce_weight == 0.5
        assert issubclass(ours, nnUNetTrainerMSFEN) and find("nnUNetTrainerMSFEN") is nnUNetTrainerMSFEN
        print("EXT=" + os.environ["nnUNet_extTrainer"])
    """)
    result = subprocess.run([sys.executable, "-c", probe], env=clean_env(tmp_path, nnUNet_extTrainer=str(user_folder)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = result.stdout.split("EXT=")[1].strip().split(":")
    assert listed == [str(user_folder), discovery.TRAINER_FOLDER]  # the user's folder first: his names win


def test_register_is_idempotent(monkeypatch):
    monkeypatch.setenv("nnUNet_extTrainer", "/a:" + discovery.TRAINER_FOLDER)
    discovery.register_external_trainers()
    assert discovery.TRAINER_FOLDER in __import__("os").environ["nnUNet_extTrainer"].split(":")
    assert __import__("os").environ["nnUNet_extTrainer"].count(discovery.TRAINER_FOLDER) == 1
