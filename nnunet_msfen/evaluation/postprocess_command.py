"""Postprocess a folder of predictions (``nnunet-msfen postprocess``): the BraTS enhancing-tumour rule, or the
lesion-wise component rules, chosen on cross-validation predictions and applied to new ones.

    # choose on the cross-validation predictions (against their references), apply, keep the choice with the model
    nnunet-msfen postprocess CV_PRED -o CV_PP --ref REF --lesion-wise [--task gli2024] [--save-to MODEL_FOLDER]
    # apply the stored choice to new predictions: one command
    nnunet-msfen postprocess TEST_PRED -o TEST_PP --from MODEL_FOLDER/postprocessing_lesion_wise.json

Without ``--lesion-wise`` the ET rule (``postprocessing``: an ET smaller than a threshold becomes necrosis) is
chosen (``--ref``) or applied (``--threshold N``, ``--from JSON``). With it, each region's minimum component size
or nnU-Net's largest-component rule (``component_postprocessing``) is chosen to maximise the task's lesion-wise
Dice without lowering any region's global Dice. Every file is checked (geometry, label values), processed into
a staging folder and moved into OUT only when all succeeded.
"""
import argparse
import os
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

from nnunet_msfen.errors import CommandError
from nnunet_msfen.evaluation.io import SEG_SUFFIX, list_cases, read_json
from nnunet_msfen.evaluation.scoring import LABEL_CHOICES, Scoring, scoring_for

STORED_NAMES = {"components": "postprocessing_lesion_wise.json", "et_rule": "postprocessing_et.json"}


def postprocess_folder(in_dir: str, out_dir: str, process: Callable[[np.ndarray], np.ndarray],
                       scoring: Scoring) -> List[str]:
    """``process`` every label map of ``in_dir`` (its labels checked against ``scoring``) into files of the same
    names in ``out_dir``, all or nothing; returns the changed cases."""
    from nnunet_msfen.io.atomic import staged_files, write_image
    from nnunet_msfen.io.images import read_image, to_image

    cases = list_cases(in_dir)
    if not cases:
        raise ValueError(f"no {SEG_SUFFIX} files in {in_dir}")
    if Path(in_dir).resolve() == Path(out_dir).resolve():
        raise ValueError(f"output folder must differ from the input folder {in_dir}: predictions are not overwritten")
    changed = []
    with staged_files(out_dir) as staging:  # a corrupt file half-way leaves nothing behind in out_dir
        for case in cases:
            path = os.path.join(in_dir, case + SEG_SUFFIX)
            seg, geometry = read_image(path, label=True)
            scoring.check_labels(seg, path)
            out = process(seg)
            if not np.array_equal(out, seg):
                changed.append(case)
            write_image(staging / (case + SEG_SUFFIX), to_image(out.astype(np.uint8), geometry))
    return changed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen postprocess``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("input", help="folder of predicted label maps (*.nii.gz)")
    parser.add_argument("-o", "--output", required=True, help="folder for the postprocessed label maps")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--threshold", type=int, help="ET voxel threshold to apply")
    how.add_argument("--from", "--threshold-from", dest="stored", metavar="JSON",
                     help="a postprocessing JSON written by --ref (or by `compare`): apply what it chose")
    how.add_argument("--ref", help="reference folder: choose on INPUT (cross-validation predictions), then apply")
    parser.add_argument("--lesion-wise", action="store_true",
                        help="with --ref: choose per-region component rules for the lesion-wise scores, not the ET rule")
    parser.add_argument("--labels", default="nnunet", choices=LABEL_CHOICES, help="label convention of the files")
    parser.add_argument("--task", default=None, help="a BraTS task since 2023 (its regions and lesion-wise rule)")
    parser.add_argument("--save-to", type=Path, default=None, metavar="MODEL_FOLDER",
                        help="with --ref: also store the choice in this folder (e.g. the trained model's)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")


def _stored(path: str) -> Dict:
    data = read_json(path)
    if isinstance(data, dict) and data.get("kind") == "components":
        from nnunet_msfen.evaluation.component_postprocessing import check_rule

        if not isinstance(data.get("rules"), dict):
            raise ValueError(f"{path}: no 'rules' of the lesion-wise postprocessing")
        data["rules"] = {region: check_rule(rule) for region, rule in data["rules"].items()}
        return data
    threshold = data.get("threshold") if isinstance(data, dict) else None
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
        raise ValueError(f"{path}: neither lesion-wise rules nor a valid ET 'threshold' (a voxel count >= 0), "
                         f"found {threshold!r}")
    return {"kind": "et_rule", "threshold": threshold, "label_convention": data.get("labels", "nnunet")}


def _choose(args: argparse.Namespace, scoring: Scoring) -> Dict:
    if args.lesion_wise:
        from nnunet_msfen.evaluation.component_postprocessing import choose_rules_on_pairs
        from nnunet_msfen.evaluation.evaluate import folder_pairs

        study = choose_rules_on_pairs(folder_pairs(args.input, args.ref), scoring)
        return {**study, "label_convention": args.labels, "task": args.task}
    if args.task is not None:
        raise ValueError("the ET rule is for the WT/TC/ET conventions without --task; with a task, add --lesion-wise")
    from nnunet_msfen.evaluation.evaluate import folder_pairs
    from nnunet_msfen.evaluation.postprocessing import threshold_study

    return {"kind": "et_rule", **threshold_study(folder_pairs(args.input, args.ref), args.labels),
            "label_convention": args.labels}


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen postprocess``."""
    from nnunet_msfen.evaluation.component_postprocessing import apply_rules
    from nnunet_msfen.evaluation.postprocessing import apply_et_rule
    from nnunet_msfen.io.atomic import write_json
    from nnunet_msfen.io.outputs import claim_output

    if not os.path.isdir(args.input):
        raise CommandError(f"input folder not found: {args.input}")
    if args.threshold is not None and args.threshold < 0:
        raise CommandError(f"threshold must be >= 0 voxels, got {args.threshold}")
    if args.ref is None and (args.lesion_wise or args.save_to):
        raise CommandError("--lesion-wise and --save-to choose on cross-validation predictions: add --ref REF")
    if Path(args.input).resolve() != Path(args.output).resolve():  # the same folder: postprocess_folder's error
        claim_output(args.output, args.overwrite, folder=True)
    stored_at = None
    if args.save_to is not None:  # claimed before the choice, which can take minutes
        if not args.save_to.is_dir():
            raise CommandError(f"--save-to folder not found: {args.save_to}")
        kind = "components" if args.lesion_wise else "et_rule"
        stored_at = claim_output(args.save_to / STORED_NAMES[kind], args.overwrite, folder=False)
    try:
        if args.threshold is not None:
            choice = {"kind": "et_rule", "threshold": args.threshold, "label_convention": args.labels}
        elif args.stored is not None:
            choice = _stored(args.stored)
        else:
            choice = _choose(args, scoring_for(args.labels, args.task))
        scoring = scoring_for(choice["label_convention"], choice.get("task"))
        if choice["kind"] == "components":
            changed = postprocess_folder(args.input, args.output, lambda s: apply_rules(s, scoring, choice["rules"]),
                                         scoring)
        else:
            changed = postprocess_folder(args.input, args.output,
                                         lambda s: apply_et_rule(s, choice["threshold"], choice["label_convention"]),
                                         scoring)
    except ValueError as e:
        raise CommandError(str(e)) from None
    if args.ref is not None:
        for path in [Path(args.output) / "postprocessing.json"] + ([stored_at] if stored_at else []):
            write_json(path, choice)
        _print_choice(choice)
    what = (f"lesion-wise rules {choice['rules']}" if choice["kind"] == "components"
            else f"ET rule (threshold {choice['threshold']} voxels)")
    print(f"{what} changed {len(changed)} case(s); wrote {args.output}")
    return 0


def _print_choice(choice: Dict) -> None:
    if choice["kind"] == "et_rule":
        print(f"chosen threshold {choice['threshold']} voxels: mean ET Dice {choice['et_dice_before']:.4f} -> "
              f"{choice['et_dice_after']:.4f} on {choice['n_cases']} cases")
        return
    print(f"chosen on {choice['n_cases']} cases: mean lesion-wise Dice {choice['lesion_dice_before']:.4f} -> "
          f"{choice['lesion_dice_after']:.4f}")
    for region, rule in choice["rules"].items():
        b, a = choice["before"][region], choice["after"][region]
        print(f"  {region}: {rule if rule else 'keep all'}; Dice {b['dice']:.4f} -> {a['dice']:.4f}, "
              f"lesion-wise Dice {b['lesion_dice']:.4f} -> {a['lesion_dice']:.4f}")
