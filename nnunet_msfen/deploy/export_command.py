"""Export a trained model's folds to ONNX, verified against PyTorch (``nnunet-msfen export-onnx``).

    nnunet-msfen export-onnx -d ID -c CONFIG -tr TRAINER [-p PLANS] [-f FOLDS] [-chk CHECKPOINT] -o DIR
                             [--quantize static|dynamic] [--overwrite]

DIR receives ``fold_F.onnx`` per fold (the full-resolution output only, a dynamic batch axis, the plans' patch
size), ``plans.json``, ``dataset.json`` and ``export.json``. Each fold is checked on a random patch and, when the
dataset's preprocessed data is in ``nnUNet_preprocessed``, on a real one: ONNX Runtime must give PyTorch's logits
within 1e-3, or the command fails naming the fold. Works for MSFEN's trainers and nnU-Net's own (PlainConvUNet,
ResidualEncoderUNet). Then: ``nnunet-msfen predict -i IN -o OUT -m DIR --backend onnxruntime``.

``--quantize`` adds int8 models (``fold_F.int8.onnx``), calibrated and checked on real preprocessed patches of the
dataset (``nnUNet_preprocessed`` must hold them); they are kept only where their Dice stays within 0.005 of the
float model's and their output agrees with the float output (``nnunet_msfen.deploy.quantize``), and ``predict
--int8`` uses them.
"""
import argparse
from pathlib import Path

from nnunet_msfen.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``nnunet-msfen export-onnx`` (nnU-Net's spelling where nnUNetv2_predict has the flag)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("-d", "--dataset-id", dest="dataset", required=True, help="dataset id or name")
    parser.add_argument("-c", "--configuration", required=True, help="nnU-Net configuration")
    parser.add_argument("-tr", "--trainer", required=True, help="trainer class of the model")
    parser.add_argument("-p", "--plans", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-f", "--folds", nargs="+", default=["0", "1", "2", "3", "4"], help="folds (default 0-4)")
    parser.add_argument("-chk", "--checkpoint", default="checkpoint_final.pth", help="checkpoint file name")
    parser.add_argument("-o", "--output", type=Path, required=True, help="export folder")
    parser.add_argument("--quantize", choices=("static", "dynamic"), default=None,
                        help="also write int8 models (ONNX Runtime's quantisation), kept only where Dice holds")
    parser.add_argument("--quantize-cases", type=int, default=8,
                        help="preprocessed cases whose patches calibrate (half) and check (half) the int8 models")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty export folder")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``nnunet-msfen export-onnx``."""
    import os

    from nnunet_msfen.deploy.backends import INSTALL_HINT
    from nnunet_msfen.deploy.export import ExportError, export_folds
    from nnunet_msfen.inference.predictor import ModelSpec, load_predictor, model_folder
    from nnunet_msfen.io.outputs import claim_output

    if args.quantize and args.quantize_cases < 2:
        raise CommandError(f"--quantize-cases must be >= 2 (half calibrate, half check), got {args.quantize_cases}")
    out = claim_output(args.output, args.overwrite, folder=True)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise CommandError(f"export-onnx needs {e.name}: {INSTALL_HINT}") from None
    spec = ModelSpec(args.dataset, args.trainer, args.plans, args.configuration, tuple(args.folds), args.checkpoint)
    predictor = load_predictor(spec, "cpu", mirroring=False)
    model = model_folder(spec)
    preprocessed = None
    if os.environ.get("nnUNet_preprocessed"):
        preprocessed = (Path(os.environ["nnUNet_preprocessed"]) / model.parent.name
                        / predictor.configuration_manager.data_identifier)
    try:
        record = export_folds(predictor, list(args.folds), model, out, preprocessed)
    except ExportError as e:
        raise CommandError(str(e)) from None
    if args.quantize:
        _quantize(out, record, predictor, preprocessed, args)
    for fold, checks in record["verification"].items():
        print(f"fold {fold}: {record['files'][fold]}, max |logit difference| to PyTorch "
              + ", ".join(f"{k} patch {v:.1e}" for k, v in checks.items()))
    print(f"exported {len(record['folds'])} fold(s) of {args.trainer} to {out}")
    return 0


def _quantize(out: Path, record: dict, predictor, preprocessed, args: argparse.Namespace) -> None:
    """Add the int8 models to the export (or the measurement that refused them) and say which."""
    from nnunet_msfen.deploy.export import EXPORT_JSON, preprocessed_patches
    from nnunet_msfen.deploy.quantize import quantize_export
    from nnunet_msfen.io.atomic import write_json

    patches = preprocessed_patches(preprocessed, record["patch_size"], record["input_channels"], args.quantize_cases)
    if len(patches) < 2:
        raise CommandError(f"--quantize calibrates and checks on real preprocessed cases, and found "
                           f"{len(patches)} in {preprocessed}: preprocess the dataset (nnUNet_preprocessed) first; "
                           f"the float export in {out} is complete")
    record["int8"] = entry = quantize_export(out, record, args.quantize, patches, predictor.label_manager)
    write_json(out / EXPORT_JSON, record)
    for fold, f in entry["folds"].items():
        print(f"fold {fold} int8 ({args.quantize}): {f['bytes']['int8'] / 2**20:.1f} MiB vs "
              f"{f['bytes']['float'] / 2**20:.1f} MiB, {f['seconds_per_patch']['int8']:.2f} s vs "
              f"{f['seconds_per_patch']['float']:.2f} s per patch, largest Dice loss {f['dice_loss']:+.4f}, lowest "
              f"agreement with the float output {f['worst_agreement']:.4f} (Dice) on {entry['checked_patches']} "
              f"held-out patch(es)")
    print("int8 models kept: predict with --int8" if entry["offered"] else
          f"int8 models NOT kept: a Dice loss above {entry['max_dice_loss']} or an agreement below "
          f"{1 - entry['max_dice_loss']} (measurement in {out / EXPORT_JSON})")
