"""nnunet-msfen plan: fingerprint (if missing), plan MSFEN, preprocess.

    nnunet-msfen plan -d 501 [-pl nnUNetPlannerResEncM] [-c 2d 3d_fullres] [-gpu_memory_target 8] [-np 4] [--no_pp]
    nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerMSFEN -p nnUNetMSFENPlans

``-pl`` picks the topology MSFEN is planned on: nnU-Net's default U-Net (``nnUNetPlannerMSFEN``, plans
``nnUNetMSFENPlans``) or one of nnU-Net's residual-encoder presets, named as ``nnUNetv2_plan_experiment -pl`` names
them (``nnUNetPlannerResEnc{M,L,XL}`` -> plans ``nnUNetMSFENResEncUNet{M,L,XL}Plans``, sized to the preset's GPU
memory).

Configurations whose preprocessed data is shared with nnUNetPlans and already complete are not preprocessed again.
"""
import argparse
import os
from pathlib import Path

from nnunet_msfen.errors import CommandError

DEFAULT_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")
# -pl value -> (module, MSFEN planner class) in nnunet_msfen.plans
PLANNERS = {
    "nnUNetPlannerMSFEN": ("nnUNetPlannerMSFEN", "nnUNetPlannerMSFEN"),
    "nnUNetPlannerResEncM": ("nnUNetPlannerMSFENResEnc", "nnUNetPlannerMSFENResEncM"),
    "nnUNetPlannerResEncL": ("nnUNetPlannerMSFENResEnc", "nnUNetPlannerMSFENResEncL"),
    "nnUNetPlannerResEncXL": ("nnUNetPlannerMSFENResEnc", "nnUNetPlannerMSFENResEncXL"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen plan`` (nnU-Net's spelling, as in nnUNetv2_plan_and_preprocess)."""
    parser.add_argument("-d", "--dataset-id", dest="dataset_id", type=int, required=True, help="dataset id, e.g. 501")
    parser.add_argument("-c", "--configurations", dest="configurations", nargs="+", default=list(DEFAULT_CONFIGURATIONS),
                        help="configurations to preprocess (default: 2d 3d_fullres 3d_lowres)")
    parser.add_argument("-pl", "--planner", default="nnUNetPlannerMSFEN",
                        help="topology MSFEN is planned on: nnUNetPlannerMSFEN (nnU-Net's default U-Net, the default) "
                             "or nnU-Net's residual-encoder preset nnUNetPlannerResEncM, -L or -XL")
    parser.add_argument("-gpu_memory_target", "--gpu-memory-target", type=float, default=None,
                        help="GPU memory the plans target, in GB (default: the planner's, 8 as nnU-Net; 24 for "
                             "ResEnc-L, 40 for ResEnc-XL)")
    parser.add_argument("-np", "--num-processes", dest="num_processes", type=int, default=4, help="processes for fingerprint and preprocessing")
    parser.add_argument("--no_pp", "--no-pp", action="store_true", help="plan only, do not preprocess")
    parser.add_argument("--verify_dataset_integrity", "--verify-dataset-integrity", action="store_true",
                        help="run nnU-Net's dataset integrity check before fingerprinting")


def run(args: argparse.Namespace) -> int:
    """Fingerprint, plan and preprocess; returns 0 or raises ``CommandError``."""
    for var in ("nnUNet_raw", "nnUNet_preprocessed"):
        if not os.environ.get(var):
            raise CommandError(f"environment variable {var} is not set (see nnU-Net's setting_up_paths.md)")
    if args.num_processes < 1:
        raise CommandError(f"-np must be >= 1, got {args.num_processes}")
    if args.planner not in PLANNERS:
        raise CommandError(f"unknown planner -pl {args.planner!r}; choose from {', '.join(PLANNERS)}")
    if args.gpu_memory_target is not None and args.gpu_memory_target <= 0:
        raise CommandError(f"-gpu_memory_target must be > 0, got {args.gpu_memory_target}")
    bad = [c for c in args.configurations if c not in DEFAULT_CONFIGURATIONS]
    if bad:
        raise CommandError(f"unknown configuration(s) {bad}; choose from {list(DEFAULT_CONFIGURATIONS)}")

    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset, preprocess_dataset
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    import importlib
    module, class_name = PLANNERS[args.planner]
    planner_class = getattr(importlib.import_module(f"nnunet_msfen.plans.{module}"), class_name)

    try:
        dataset_name = convert_id_to_dataset_name(args.dataset_id)
    except RuntimeError as e:
        raise CommandError(f"dataset {args.dataset_id} not found in nnUNet_raw={os.environ['nnUNet_raw']}: {e}")
    preprocessed = Path(os.environ["nnUNet_preprocessed"]) / dataset_name
    if not (preprocessed / "dataset_fingerprint.json").is_file():
        extract_fingerprint_dataset(args.dataset_id, num_processes=args.num_processes,
                                    check_dataset_integrity=args.verify_dataset_integrity, clean=True)
    memory = {} if args.gpu_memory_target is None else {"gpu_memory_target_in_gb": args.gpu_memory_target}
    planner = planner_class(args.dataset_id, **memory)
    planner.plan_experiment()
    plans_name = planner.plans_identifier
    print(f"Plans written: {preprocessed / (plans_name + '.json')}\n"
          f"Train with: nnUNetv2_train {args.dataset_id} CONFIGURATION FOLD -tr nnUNetTrainerMSFEN -p {plans_name}")
    if args.no_pp:
        return 0

    plans = PlansManager(str(preprocessed / (plans_name + ".json")))
    todo = []
    for configuration in args.configurations:
        if configuration not in plans.available_configurations:
            print(f"Configuration {configuration} is not in the plans (nnU-Net planned none for this dataset): skipped")
        elif _preprocessed_data_complete(preprocessed / plans.get_configuration(configuration).data_identifier):
            print(f"Configuration {configuration}: preprocessed data already complete, reused")
        else:
            todo.append(configuration)
    if todo:
        preprocess_dataset(args.dataset_id, plans_name, todo, [args.num_processes])
    return 0


def _preprocessed_data_complete(folder: Path) -> bool:
    """True when ``folder`` holds nnU-Net's preprocessed files (a .pkl) for every training case of the dataset."""
    if not folder.is_dir():
        return False
    gt = folder.parent / "gt_segmentations"
    cases = {p.name.split(".")[0] for p in gt.iterdir()} if gt.is_dir() else set()
    done = {p.stem for p in folder.glob("*.pkl")}
    return bool(cases) and cases <= done
