"""Predict cases with any subset of the four MRI sequences (``nnunet-msfen predict``).

    nnunet-msfen predict -i IN -o OUT -d ID -c CONFIG -tr TRAINER [-p PLANS] [-f FOLDS] [-chk CHECKPOINT]
                         [--missing t1 t1ce t2 flair] [--save-attention] [-device cpu|cuda] [--disable_tta]
                         [--backend torch|onnxruntime|openvino] [--threads N] [--tile-workers N] [--overwrite]
    nnunet-msfen predict -i IN -o OUT -m EXPORT_DIR --backend onnxruntime|openvino [--int8] [...]

IN holds cases in nnU-Net's naming (CASE_0000.nii.gz ... _0003) or as BraTS case folders; any sequence file may be
absent. A missing sequence is replaced by an all-zero image of the case's geometry (nnU-Net's normalisation keeps it
zero), and the case is predicted by nnU-Net's own predictor (preprocessing, sliding window with Gaussian
weighting, test-time mirroring, ensembling over folds, export; its tile producer thread kept off OpenMP, which on a
CPU makes the network faster than in ``nnUNetv2_predict``: ``inference/tile_producer.py``). On a CPU, tiles of up to
64^3 voxels (2d plans) are predicted two at a time, each on half of the threads (``inference/parallel_tiles.py``;
larger tiles, e.g. 3d_fullres, one at a time; ``--tile-workers N`` or ``$NNUNET_MSFEN_TILE_WORKERS`` sets the number
for every tile size, 1 = nnU-Net's one tile at a time). ``--missing`` leaves
named sequences out on purpose (for studies). Every case with a missing sequence is listed, and
``OUT/missing_sequences.json`` records them.

--backend runs the network in ONNX Runtime or OpenVINO on the CPU (the folds exported and verified first, or taken
from an ``export-onnx`` folder with ``-m``, which needs no nnU-Net folder at all); everything around the network is
still nnU-Net's predictor. --threads sets the backend's CPU threads. --int8 runs the export's int8 models, which
``export-onnx --quantize`` keeps only where they held Dice.

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
    parser.add_argument("-d", "--dataset-id", dest="dataset", help="dataset id or name")
    parser.add_argument("-c", "--configuration", help="nnU-Net configuration, e.g. 3d_fullres")
    parser.add_argument("-tr", "--trainer", help="trainer class, e.g. nnUNetTrainerMSFEN")
    parser.add_argument("-m", "--model-export", type=Path, default=None,
                        help="an export-onnx folder instead of -d/-c/-tr/-p/-f (needs --backend onnxruntime|openvino)")
    parser.add_argument("--backend", choices=("torch", "onnxruntime", "openvino"), default="torch",
                        help="what runs the network (default torch)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of the onnxruntime/openvino backend")
    parser.add_argument("--tile-workers", type=int, default=None, metavar="N",
                        help="tiles predicted at once on the CPU with --backend torch (default: 2 for tiles of up to "
                             "64^3 voxels on two or more threads, else 1)")
    parser.add_argument("--int8", action="store_true",
                        help="the export's int8 models (with -m; only where export-onnx --quantize kept them)")
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
    from nnunet_msfen.inference.predictor import AttentionRecorder, has_modality_stem, predict_case
    from nnunet_msfen.inference.sequences import drop_sequences, find_cases, write_filled_case
    from nnunet_msfen.io.atomic import write_json
    from nnunet_msfen.io.outputs import claim_output

    _check_model_arguments(args)
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
        predictor = _predictor(args, Path(scratch) / "export")
        if args.save_attention and not has_modality_stem(predictor):
            raise CommandError(f"--save-attention needs MSFEN's stem in PyTorch (--backend torch and an MSFEN "
                               f"trainer), not {args.trainer or args.model_export} with --backend {args.backend}")
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


def _check_model_arguments(args: argparse.Namespace) -> None:
    """Either an export folder (-m, with an ONNX backend) or a trained model (-d, -c, -tr)."""
    if args.model_export is not None:
        named = [f for f, v in (("-d", args.dataset), ("-c", args.configuration), ("-tr", args.trainer)) if v]
        if named:
            raise CommandError(f"-m takes the place of -d/-c/-tr; remove {' '.join(named)}")
        if args.backend == "torch":
            raise CommandError("-m EXPORT_DIR holds ONNX models: pass --backend onnxruntime or --backend openvino")
        if not args.model_export.is_dir():
            raise CommandError(f"export folder not found: {args.model_export}")
    elif not (args.dataset and args.configuration and args.trainer):
        raise CommandError("give the trained model with -d DATASET -c CONFIGURATION -tr TRAINER, or an export "
                           "folder with -m EXPORT_DIR")
    if args.int8 and args.model_export is None:
        raise CommandError("--int8 runs the int8 models of an export folder: pass -m EXPORT_DIR (made with "
                           "export-onnx --quantize)")
    if args.threads is not None and args.threads < 1:
        raise CommandError(f"--threads must be >= 1, got {args.threads}")
    if args.tile_workers is not None and args.tile_workers < 1:
        raise CommandError(f"--tile-workers must be >= 1, got {args.tile_workers}")
    if args.tile_workers is not None and args.backend != "torch":
        raise CommandError(f"--tile-workers applies to --backend torch; --backend {args.backend} takes --threads")


def _predictor(args: argparse.Namespace, scratch_export: Path):
    """nnU-Net's predictor with the network run by ``args.backend``: from the trained model (exported and
    verified on the fly for an ONNX backend) or from an export folder."""
    from nnunet_msfen.deploy.backends import INSTALL_HINT
    from nnunet_msfen.deploy.export import ExportError, export_folds, load_export
    from nnunet_msfen.inference.predictor import ModelSpec, load_predictor, model_folder

    mirroring = not args.disable_tta
    try:
        if args.model_export is not None:
            return load_export(args.model_export, args.backend, args.threads, mirroring, int8=args.int8)
        spec = ModelSpec(args.dataset, args.trainer, args.plans, args.configuration, tuple(args.folds),
                         args.checkpoint)
        predictor = load_predictor(spec, args.device if args.backend == "torch" else "cpu", mirroring,
                                   args.tile_workers)
        if args.backend == "torch":
            return predictor
        export_folds(predictor, list(args.folds), model_folder(spec), scratch_export)
        return load_export(scratch_export, args.backend, args.threads, mirroring)
    except ExportError as e:
        raise CommandError(str(e)) from None
    except ImportError as e:
        raise CommandError(f"--backend {args.backend}: {e} ({INSTALL_HINT})") from None
