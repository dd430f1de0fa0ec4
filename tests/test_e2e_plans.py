"""End to end through nnU-Net's real command-line tools on plans other than nnUNetPlans: our planner's
nnUNetMSFENPlans and nnU-Net's residual-encoder plans. Kept apart from tests/test_e2e_nnunet.py (which needs the
5-fold cross-validation) so that ``make test``'s second process runs these while the first trains the folds."""
import json

import pytest

from nnunet_fixtures import SMOKE_TRAINER as TRAINER
from nnunet_fixtures import TRAIN, TRAIN_ID, assert_predictions_match_inputs, model_folder

pytestmark = pytest.mark.slow


def test_training_on_msfen_plans(tiny_dataset):
    tiny_dataset.run("nnunet-msfen", "plan", "-d", str(TRAIN_ID), "-c", "3d_fullres", "-np", "1")
    tiny_dataset.run(*TRAIN, "0", "-tr", TRAINER, "-p", "nnUNetMSFENPlans", "-device", "cpu")
    fold_dir = model_folder(tiny_dataset, plans="nnUNetMSFENPlans") / "fold_0"
    assert (fold_dir / "checkpoint_final.pth").is_file() and (fold_dir / "validation" / "summary.json").is_file()
    plans = json.loads((fold_dir.parent / "plans.json").read_text())
    assert plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"].endswith("MSFENUNet")


def test_training_and_prediction_on_residual_encoder_plans(tiny_dataset, tmp_path):
    ds = tiny_dataset
    ds.run("nnUNetv2_plan_experiment", "-d", str(TRAIN_ID), "-pl", "nnUNetPlannerResEncM")
    ds.run(*TRAIN, "0", "-tr", TRAINER, "-p", "nnUNetResEncUNetMPlans", "-device", "cpu")
    fold_dir = model_folder(ds, plans="nnUNetResEncUNetMPlans") / "fold_0"
    assert (fold_dir / "checkpoint_final.pth").is_file() and (fold_dir / "validation" / "summary.json").is_file()
    out = tmp_path / "pred"
    ds.run("nnUNetv2_predict", "-i", str(ds.test_images), "-o", str(out), "-d", str(TRAIN_ID), "-c", "3d_fullres",
           "-tr", TRAINER, "-p", "nnUNetResEncUNetMPlans", "-f", "0", "-device", "cpu", "-npp", "1", "-nps", "1")
    assert_predictions_match_inputs(ds, out)
