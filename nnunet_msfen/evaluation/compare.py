"""Compare two models case by case (``nnunet-msfen compare``): nnU-Net cross-validation results of two
trainers, or two plain prediction folders against a reference folder.

The regions scored are WT, TC, ET of the label convention (``--labels``), or with ``--task`` (a BraTS task since
2023) the regions the challenge reports for that task, with its lesion-wise parameters.

Writes to the output folder: report.md and report.html (self-contained, figures embedded), figures/*.png,
compare.json (every number of the report), metrics_A.json/.csv and metrics_B.json/.csv (``evaluate`` output),
postprocessing_A.json and postprocessing_B.json (the ET threshold chosen on each model's predictions; not with
``--task``: the ET rule is defined for the WT/TC/ET conventions only), postprocessing_lesion_wise_A.json and
postprocessing_lesion_wise_B.json (the component rules per region chosen on each model's predictions for the
lesion-wise Dice; ``nnunet-msfen postprocess --from`` applies them to new predictions).
"""
import argparse
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from nnunet_msfen.evaluation.scoring import add_scoring_arguments

SEG = ".nii.gz"
Pairs = Dict[str, Tuple[Optional[str], str]]


def dataset_folder(root: Path, dataset: str) -> Path:
    """``root/DatasetXXX_NAME`` for an id (``4``, ``004``) or a full name.

    nnunetv2's ``maybe_convert_to_dataset_name`` reads the nnUNet_* variables once, when ``nnunetv2.paths`` is
    first imported; the lookup is done here, from the environment at call time, so that it sees what is set now.
    """
    if not root.is_dir():
        raise ValueError(f"folder not found: {root}")
    if dataset.startswith("Dataset"):
        matches = [root / dataset] if (root / dataset).is_dir() else []
    elif dataset.isdigit():
        matches = sorted(p for p in root.glob(f"Dataset{int(dataset):03d}_*") if p.is_dir())
    else:
        raise ValueError(f"invalid dataset {dataset!r}: give an id such as 4 or a name such as Dataset004_BraTS")
    if len(matches) != 1:
        raise ValueError(f"dataset {dataset!r}: expected one folder in {root}, found {[m.name for m in matches]}")
    return matches[0]


def env_folder(name: str) -> Path:
    """The folder an nnU-Net environment variable names; ``ValueError`` when it is unset."""
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return Path(value)


def cv_predictions(trainer_dir: Path) -> Tuple[Dict[str, str], List[Path]]:
    """``{case: path}`` from ``fold_*/validation`` of a trainer output folder, and the fold folders."""
    if not trainer_dir.is_dir():
        siblings = sorted(p.name for p in trainer_dir.parent.iterdir()) if trainer_dir.parent.is_dir() else []
        raise ValueError(f"trainer output folder not found: {trainer_dir} (present: {siblings})")
    folds = sorted((p for p in trainer_dir.glob("fold_*") if re.fullmatch(r"fold_\d+", p.name)),
                   key=lambda p: int(p.name[5:]))
    preds: Dict[str, str] = {}
    for fold in folds:
        for f in sorted((fold / "validation").glob("*" + SEG)):
            case = f.name[: -len(SEG)]
            if case in preds:
                raise ValueError(f"case {case} is in the validation of two folds: {preds[case]} and {f}")
            preds[case] = str(f)
    if not preds:
        raise ValueError(f"no cross-validation predictions in {trainer_dir}/fold_*/validation")
    return preds, folds


def pair_up(pred_a: Dict[str, str], pred_b: Dict[str, str], ref_dir: Path) -> Tuple[Pairs, Pairs]:
    """Pairs over the cases either model predicted; a case one model lacks is scored as empty for it."""
    pairs_a, pairs_b = {}, {}
    for case in sorted(set(pred_a) | set(pred_b)):
        ref = ref_dir / (case + SEG)
        if not ref.is_file():
            raise ValueError(f"no reference for case {case}: {ref} not found")
        pairs_a[case], pairs_b[case] = (pred_a.get(case), str(ref)), (pred_b.get(case), str(ref))
    return pairs_a, pairs_b


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen compare``."""
    parser.add_argument("-d", "--dataset", "--dataset-id", dest="dataset", help="dataset id or name (cross-validation mode)")
    parser.add_argument("-tr", "--trainers", nargs=2, metavar=("A", "B"), help="the two trainers; B is the candidate")
    parser.add_argument("-c", "--configuration", default="3d_fullres", help="configuration (default 3d_fullres)")
    parser.add_argument("-p", "--plans", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("--plans-b", help="plans of trainer B when they differ (e.g. nnUNetMSFENPlans)")
    parser.add_argument("--pred-a", help="prediction folder of model A (plain-folder mode)")
    parser.add_argument("--pred-b", help="prediction folder of model B (plain-folder mode)")
    parser.add_argument("--ref", help="reference folder (plain-folder mode)")
    parser.add_argument("--names", nargs=2, metavar=("A", "B"), help="display names in plain-folder mode")
    parser.add_argument("-o", "--output", help="output folder (default in cross-validation mode: "
                                               "$nnUNet_results/DATASET/compare__A__vs__B__PLANS__CONFIG)")
    add_scoring_arguments(parser, "all folders")
    parser.add_argument("-np", "--num-processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--inference-device", default="cpu", choices=["cpu", "cuda"],
                        help="cross-validation mode: device of the timed prediction of one case per model (cpu)")
    parser.add_argument("--no-inference-timing", action="store_true",
                        help="do not time a prediction (the cost table then says 'not measured')")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")


def _resolve(args: argparse.Namespace) -> Dict:
    """Turn the arguments into the two sides (names, pairs, fold folders) and the output folder."""
    plain = [args.pred_a, args.pred_b, args.ref]
    if args.dataset is not None or args.trainers is not None:
        if any(plain):
            raise ValueError("give either -d/-tr (cross-validation) or --pred-a/--pred-b/--ref (folders), not both")
        if args.dataset is None or args.trainers is None:
            raise ValueError("cross-validation mode needs both -d DATASET and -tr A B")
        results = dataset_folder(env_folder("nnUNet_results"), args.dataset)
        ref_dir = dataset_folder(env_folder("nnUNet_preprocessed"), results.name) / "gt_segmentations"
        if not ref_dir.is_dir():
            raise ValueError(f"reference folder not found: {ref_dir}")
        (a, b), plans_b = args.trainers, args.plans_b or args.plans
        pred_a, folds_a = cv_predictions(results / f"{a}__{args.plans}__{args.configuration}")
        pred_b, folds_b = cv_predictions(results / f"{b}__{plans_b}__{args.configuration}")
        pairs_a, pairs_b = pair_up(pred_a, pred_b, ref_dir)
        out = Path(args.output) if args.output else results / f"compare__{a}__vs__{b}__{args.plans}__{args.configuration}"
        source = f"{results.name}, {args.configuration}, 5-fold cross-validation ({len(pairs_a)} cases)"
        return {"names": (a, b), "pairs": (pairs_a, pairs_b), "folds": (folds_a, folds_b), "out": out,
                "source": source, "raw_images": env_raw_images(results.name)}
    if not all(plain):
        raise ValueError("give -d DATASET -tr A B, or all of --pred-a, --pred-b and --ref")
    if not args.output:
        raise ValueError("plain-folder mode needs -o OUTPUT")
    from nnunet_msfen.evaluation.evaluate import folder_pairs

    pairs_a, pairs_b = folder_pairs(args.pred_a, args.ref), folder_pairs(args.pred_b, args.ref)
    names = tuple(args.names) if args.names else (Path(args.pred_a).name, Path(args.pred_b).name)
    if names[0] == names[1]:
        names = (names[0] + " (A)", names[1] + " (B)")
    return {"names": names, "pairs": (pairs_a, pairs_b), "folds": ([], []), "out": Path(args.output),
            "source": f"folders {args.pred_a} and {args.pred_b} against {args.ref} ({len(pairs_a)} cases)",
            "raw_images": None}


def env_raw_images(dataset_name: str) -> Optional[Path]:
    """``$nnUNet_raw/DATASET/imagesTr`` when present: the overlays are drawn on the first modality."""
    raw = os.environ.get("nnUNet_raw")
    folder = Path(raw) / dataset_name / "imagesTr" if raw else None
    return folder if folder is not None and folder.is_dir() else None


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen compare``."""
    from nnunet_msfen.errors import CommandError
    from nnunet_msfen.evaluation.comparison import compare_and_report
    from nnunet_msfen.evaluation.scoring import scoring_for

    if args.num_processes < 1:
        raise CommandError(f"-np must be >= 1, got {args.num_processes}")
    from nnunet_msfen.io.outputs import claim_output

    try:
        scoring = scoring_for(args.labels, args.task)  # an unknown task or label set fails before any work
        # labels and task travel with the setup: the lesion-wise choice stores them for `postprocess --from`
        setup = {**_resolve(args), "labels": args.labels, "task": args.task}
        claim_output(setup["out"], args.overwrite, folder=True)
        summary = compare_and_report(setup, scoring, args.num_processes,
                                     None if args.no_inference_timing else args.inference_device)
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(summary["verdict"])
    print(f"wrote {summary['report_html']} and {summary['report_md']}")
    return 0
