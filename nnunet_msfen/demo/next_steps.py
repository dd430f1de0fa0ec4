"""What to type after the demo: nnU-Net's own commands (and this package's) that continue from the demo's dataset
and model (a second fold, the choice of configuration, the ensemble's prediction, the BraTS export), as printed
at the end of ``nnunet-msfen demo`` (the slow demo test runs them)."""
from typing import Dict, List

from nnunet_msfen.demo.workdir import CONFIGURATION, DEMO_PLANS, FOLD, DemoWorkdir


def environment(wd: DemoWorkdir) -> Dict[str, str]:
    """The variables nnU-Net needs for the demo's folders (and the demo trainer's iteration count)."""
    return {"nnUNet_raw": str(wd.raw), "nnUNet_preprocessed": str(wd.preprocessed), "nnUNet_results": str(wd.results),
            "NNUNET_MSFEN_TRAIN_ITERATIONS": str(wd.settings.iterations)}


def commands(wd: DemoWorkdir) -> List[List[str]]:
    """Train the split's second fold, let nnU-Net pick the configuration from both folds' validation, predict the
    held-out cases with the two folds' ensemble, export them to BraTS labels and names (with volumes.csv) and
    score them."""
    s = wd.settings
    model = ["-c", CONFIGURATION, "-tr", s.trainer, "-p", DEMO_PLANS]
    again = wd.root / "predictions_two_folds"
    return [
        ["nnUNetv2_train", str(s.dataset_id), CONFIGURATION, str(FOLD + 1), "-tr", s.trainer, "-p", DEMO_PLANS,
         "-device", "cpu"],
        ["nnUNetv2_find_best_configuration", str(s.dataset_id), *model, "-f", str(FOLD), str(FOLD + 1)],
        ["nnUNetv2_predict", "-i", str(wd.dataset_raw / "imagesTs"), "-o", str(again), "-d", str(s.dataset_id),
         *model, "-f", str(FOLD), str(FOLD + 1), "-device", "cpu", "--disable_tta"],
        ["nnunet-msfen", "export-brats", str(again), str(wd.root / "submission"), "-d", str(s.dataset_id)],
        ["nnunet-msfen", "evaluate", str(again), str(wd.dataset_raw / "labelsTs"), "-o",
         str(wd.root / "metrics_two_folds.json")],
    ]


def text(wd: DemoWorkdir) -> str:
    """The lines the demo prints: the exports, then the commands."""
    lines = ["Continue from the demo's dataset and model with nnU-Net's commands (and this package's):"]
    lines += [f"  export {k}={v}" for k, v in environment(wd).items()]
    lines += ["  " + " ".join(c) for c in commands(wd)]
    lines.append(f"Your own data: convert it with `nnunet-msfen convert-brats`, then follow README.md, \"The nnU-Net "
                 f"workflow with MSFEN\" (plans -p nnUNetPlans or nnUNetMSFENPlans, not {DEMO_PLANS}).")
    return "\n".join(lines)
