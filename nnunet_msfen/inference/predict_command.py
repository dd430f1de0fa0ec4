"""Predict cases with any subset of the four MRI sequences (``nnunet-msfen predict``).

    nnunet-msfen predict -i IN -o OUT -d ID -c CONFIG -tr TRAINER [-p PLANS] [-f FOLDS] [-chk CHECKPOINT]
                         [--missing t1 t1ce t2 flair] [--save-attention] [-device cpu|cuda] [--disable_tta]
                         [--overwrite]

IN holds cases in nnU-Net's naming (CASE_0000.nii.gz ... _0003) or as BraTS case folders; any sequence file may be
absent. A missing sequence is replaced by an all-zero image of the case's geometry (nnU-Net's normalisation keeps it
zero), and the case is predicted by nnU-Net's own predictor (preprocessing, sliding window with Gaussian
weighting, test-time mirroring, ensembling over folds, export). ``--missing`` leaves named sequences out on purpose
(for studies). Every case with a missing sequence is listed, and ``OUT/missing_sequences.json`` records them.

--save-attention writes ``OUT/attention/CASE.json``: the MSFEN stem's weight per sequence (``last_modality_weights``),
averaged over the patches of the case: which sequences the model leaned on (0 for a missing one).
"""
import argparse
import tempfile
from pathlib import Path

from nnunet_msfen.errors import CommandError
from nnunet_msfen.inference.sequences import SEQUENCES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen predict`` (nnU-Net's spelling, as in nnUNetv2_predict, plus ours)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("-i", "--input", required=True, type=Path, help="folder of cases (nnU-Net or BraTS naming)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="folder for the segmentations")
    parser.add_argument("-d", "--dataset-id", dest="dataset", required=True, help="dataset id or name")
    parser.add_argument("-c", "--configuration", required=True, help="nnU-Net configuration, e.g. 3d_fullres")
    parser.add_argument("-tr", "--trainer", required=True, help="trainer class, e.g. nnUNetTrainerMSFEN")
    parser.add_argument("-p", "--plans", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-f", "--folds", nargs="+", default=["0", "1", "2", "3", "4"], help="folds (default 0-4)")
    parser.add_argument("-chk", "--checkpoint", default="checkpoint_final.pth", help="checkpoint file name")
    parser.add_argument("--missing", nargs="+", default=[], metavar="SEQUENCE",
                        help=f"leave these sequences out of every case ({', '.join(SEQUENCES)})")
    parser.add_argument("--save-attention", action="store_true",
                        help="write the stem's weight per sequence and case to OUT/attention/ (MSFEN only)")
    parser.add_argument("-device", "--device", dest="device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available")
    parser.add_argument("--disable_tta", "--disable-tta", dest="disable_tta", action="store_true",
                        help="no test-time mirroring")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen predict``."""
    from nnunet_msfen.inference.predictor import (AttentionRecorder, ModelSpec, has_modality_stem, load_predictor,
                                                  predict_case)
    from nnunet_msfen.inference.sequences import drop_sequences, find_cases, write_filled_case
    from nnunet_msfen.io.atomic import write_json
    from nnunet_msfen.io.outputs import claim_output

    if not args.input.is_dir():
        raise CommandError(f"input folder not found: {args.input}")
    out = claim_output(args.output, args.overwrite, folder=True)
    try:
        cases = find_cases(args.input)
        drop_sequences(cases, args.missing)
    except ValueError as e:
        raise CommandError(str(e)) from None
    incomplete = [c for c in cases if c.missing]
    with tempfile.TemporaryDirectory(prefix="nnunet_msfen_predict_") as scratch:
        inputs = {}
        for case in cases:  # every case checked and filled before the model loads: bad input fails fast
            try:
                inputs[case.case_id] = write_filled_case(case, Path(scratch) / case.case_id)
            except ValueError as e:
                raise CommandError(str(e)) from None
        for c in incomplete:
            how = f" (left out on purpose: {', '.join(c.dropped)})" if c.dropped else ""
            print(f"{c.case_id}: missing {', '.join(c.missing)}{how}; predicted with zeros in their place", flush=True)
        predictor = load_predictor(ModelSpec(args.dataset, args.trainer, args.plans, args.configuration,
                                             tuple(args.folds), args.checkpoint), args.device, not args.disable_tta)
        if args.save_attention and not has_modality_stem(predictor):
            raise CommandError(f"--save-attention: {args.trainer}'s network has no modality stem (MSFEN's have)")
        attention = AttentionRecorder(predictor.network) if args.save_attention else None
        out.mkdir(parents=True, exist_ok=True)
        for case in cases:
            weights = predict_case(predictor, case.case_id, inputs[case.case_id], out, attention)
            if weights is not None:
                write_json(out / "attention" / f"{case.case_id}.json",
                           {"case": case.case_id, "missing": case.missing, "weights": weights,
                            "forward_passes": attention.count})
            print(f"  {case.case_id}: done", flush=True)
    write_json(out / "missing_sequences.json", {c.case_id: {"missing": c.missing, "left_out": c.dropped}
                                                 for c in incomplete})
    print(f"{len(cases)} case(s) predicted into {out}; {len(incomplete)} with missing sequences", flush=True)
    return 0
