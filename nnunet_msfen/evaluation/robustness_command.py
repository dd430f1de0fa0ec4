"""Predict a labelled test folder under all 15 subsets of the MRI sequences, per trainer, and report how each holds
up (``nnunet-msfen robustness``).

    nnunet-msfen robustness -d ID -c CONFIG -tr A [B ...] -i IMAGES -r LABELS -o DIR [-p PLANS] [-f FOLDS]
                            [--subsets NAME ...] [-device cpu|cuda] [--disable_tta] [--labels nnunet] [--overwrite]

IMAGES holds complete cases (nnU-Net or BraTS naming, as ``nnunet-msfen predict`` reads them), LABELS their label
maps (``CASE.nii.gz``). For every trainer and subset, the missing sequences are zero images, the cases are predicted
with nnU-Net's predictor (``DIR/predictions/TRAINER/SUBSET``) and scored (``DIR/evaluation/TRAINER/SUBSET.json``).
The report (``DIR/report.md``, ``report.html``, ``summary.json``) has per trainer a table of Dice and HD95 per
region per subset with the paired difference to the full input (bootstrap CI), the share of the full input's mean
Dice each subset keeps, the MSFEN stem's mean weight per sequence per subset, and a heat-map of subsets x regions.
``--subsets`` limits the study to some subsets (names as ``t1+t2``, ``all`` for the full input, always included).
"""
import argparse
import tempfile
from pathlib import Path
from typing import Dict, List

from nnunet_msfen.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen robustness``."""
    from nnunet_msfen.labels import CONVENTIONS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("-d", "--dataset-id", dest="dataset", required=True, help="dataset id or name")
    parser.add_argument("-c", "--configuration", required=True, help="nnU-Net configuration")
    parser.add_argument("-tr", "--trainers", nargs="+", required=True, help="trainers to study")
    parser.add_argument("-i", "--input", type=Path, required=True, help="folder of complete test cases")
    parser.add_argument("-r", "--ref", type=Path, required=True, help="folder of their label maps")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for predictions and report")
    parser.add_argument("-p", "--plans", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-f", "--folds", nargs="+", default=["0", "1", "2", "3", "4"], help="folds (default 0-4)")
    parser.add_argument("-chk", "--checkpoint", default="checkpoint_final.pth", help="checkpoint file name")
    parser.add_argument("--subsets", nargs="+", default=None, metavar="NAME",
                        help="only these subsets (e.g. t1+t1ce+t2, all); default: all 15")
    parser.add_argument("--labels", default="nnunet", choices=sorted(CONVENTIONS), help="label convention")
    parser.add_argument("-device", "--device", dest="device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available")
    parser.add_argument("--disable_tta", "--disable-tta", dest="disable_tta", action="store_true",
                        help="no test-time mirroring")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")


def _chosen_subsets(names) -> List[tuple]:
    from nnunet_msfen.evaluation.robustness import FULL, subset_name, subsets

    every = {subset_name(s): s for s in subsets()}
    if names is None:
        return list(every.values())
    unknown = [n for n in names if n not in every]
    if unknown:
        raise CommandError(f"unknown subset(s) {unknown}; names are {list(every)}")
    return [s for n, s in every.items() if n == FULL or n in names]


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen robustness``."""
    import copy

    from nnunet_msfen.evaluation.evaluate import evaluate_folders, save_results
    from nnunet_msfen.evaluation.robustness import missing_of, subset_name, summarise, write_study
    from nnunet_msfen.inference.predictor import (AttentionRecorder, ModelSpec, has_modality_stem, load_predictor,
                                                  predict_case)
    from nnunet_msfen.inference.sequences import drop_sequences, find_cases, write_filled_case
    from nnunet_msfen.io.outputs import claim_output

    for folder, what in ((args.input, "input"), (args.ref, "label")):
        if not folder.is_dir():
            raise CommandError(f"{what} folder not found: {folder}")
    out = claim_output(args.output, args.overwrite, folder=True)
    chosen = _chosen_subsets(args.subsets)
    try:
        cases = find_cases(args.input)
    except ValueError as e:
        raise CommandError(str(e)) from None
    incomplete = [c.case_id for c in cases if c.missing]
    if incomplete:
        raise CommandError(f"the study needs complete cases; missing sequences in {incomplete}")
    results: Dict[str, Dict[str, dict]] = {}
    attention: Dict[str, Dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="nnunet_msfen_robustness_") as scratch:
        for trainer in args.trainers:
            spec = ModelSpec(args.dataset, trainer, args.plans, args.configuration, tuple(args.folds), args.checkpoint)
            predictor = load_predictor(spec, args.device, not args.disable_tta)
            recorder = AttentionRecorder(predictor.network) if has_modality_stem(predictor) else None
            results[trainer], attention[trainer] = {}, {}
            for subset in chosen:
                name = subset_name(subset)
                print(f"{trainer}: {name} ({len(cases)} cases)", flush=True)
                subset_cases = copy.deepcopy(cases)
                drop_sequences(subset_cases, missing_of(subset))
                pred_dir = out / "predictions" / trainer / name
                pred_dir.mkdir(parents=True, exist_ok=True)
                weights = []
                for case in subset_cases:
                    files = write_filled_case(case, Path(scratch) / trainer / name / case.case_id)
                    w = predict_case(predictor, case.case_id, files, pred_dir, recorder)
                    if w:
                        weights.append(w)
                try:
                    results[trainer][name] = evaluate_folders(str(pred_dir), str(args.ref), args.labels)
                except ValueError as e:
                    raise CommandError(str(e)) from None
                save_results(results[trainer][name], str(out / "evaluation" / trainer / f"{name}.json"))
                if weights:
                    attention[trainer][name] = {s: sum(w[s] for w in weights) / len(weights) for s in weights[0]}
    data = (f"{len(cases)} test cases from {args.input}, labels {args.ref} ({args.labels}); dataset {args.dataset}, "
            f"{args.configuration}, plans {args.plans}, folds {' '.join(args.folds)}, "
            f"{'without' if args.disable_tta else 'with'} test-time mirroring.")
    summary = summarise(results, attention)
    md, page = write_study(out, summary, data)
    print(f"wrote {md}, {page} and {out / 'summary.json'}")
    return 0
