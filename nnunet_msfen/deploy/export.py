"""Export a trained nnU-Net model (MSFEN or nnU-Net's own U-Nets) to ONNX, fold by fold, verified against PyTorch.

An export folder holds, beside one ``fold_F.onnx`` per fold (the full-resolution output only: no deep-supervision
heads; a dynamic batch axis; the plans' patch size), everything prediction needs without nnU-Net's folders:
``plans.json`` and ``dataset.json`` of the model (preprocessing, normalisation per channel, labels or regions) and
``export.json`` (trainer, configuration, folds, patch size, spacing, mirroring axes, the package version and the
verification). Every fold verifies itself: on a random patch and, when the dataset's preprocessed data is at
hand, on a real patch, ONNX Runtime's logits must equal PyTorch's within ``TOLERANCE``, or the export fails naming
the fold.
"""
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

EXPORT_JSON = "export.json"
OPSET = 17
TOLERANCE = 1e-3  # max |logit difference|, absolute, ONNX Runtime vs PyTorch in float32 on the CPU


class ExportError(ValueError):
    """An export that failed its verification, or an export folder that cannot be used."""


def preprocessed_patches(preprocessed_folder: Optional[Path], patch_size: List[int], channels: int,
                         n_cases: int = 1) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``(image, reference)`` pairs, a (1, channels, *patch) image and its (*patch) segmentation, from the first
    ``n_cases`` preprocessed cases of ``preprocessed_folder``, centred on each case's foreground (a 2D patch from
    the slice through it), zero-padded where the case is smaller; empty when there is no preprocessed data."""
    if preprocessed_folder is None or not Path(preprocessed_folder).is_dir():
        return []
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

    try:
        dataset = infer_dataset_class(str(preprocessed_folder))(str(preprocessed_folder))
        keys = sorted(dataset.identifiers)[:n_cases]
    except (RuntimeError, ValueError, FileNotFoundError):
        return []
    return [_centred_patch(*dataset.load_case(key)[:2], patch_size, channels) for key in keys]


def _centred_patch(data, seg, patch_size: List[int], channels: int) -> Tuple[np.ndarray, np.ndarray]:
    data, seg = np.asarray(data), np.asarray(seg)[0]
    foreground = np.argwhere(seg > 0)
    centre = foreground.mean(0).astype(int) if len(foreground) else np.array(seg.shape) // 2
    if len(patch_size) == 2:  # the slice through the foreground's centre
        data, seg, centre = data[:, centre[0]], seg[centre[0]], centre[1:]
    image = np.zeros((channels, *patch_size), np.float32)
    reference = np.zeros(patch_size, np.int16)
    src, dst = [], []
    for size, want, c in zip(seg.shape, patch_size, centre):
        n = min(size, want)
        start = int(np.clip(c - n // 2, 0, size - n))
        src.append(slice(start, start + n))
        dst.append(slice(0, n))
    image[(slice(None), *dst)] = data[(slice(None), *src)][:channels]
    reference[tuple(dst)] = np.maximum(seg[tuple(src)], 0)  # -1 (outside the brain) is background
    return image[None], reference


def export_folds(predictor, folds: List[str], model_folder: Path, out: Path,
                 preprocessed_folder: Optional[Path] = None) -> Dict[str, object]:
    """Export every fold of ``predictor`` (initialised from ``model_folder``) into ``out`` and verify it; returns
    the content of ``export.json``, which is written too.

    Raises:
        ExportError: naming the fold whose ONNX logits differ from PyTorch's by more than ``TOLERANCE``.
    """
    import onnxruntime as ort

    from nnunet_msfen import __version__
    from nnunet_msfen.io.atomic import atomic_path, copy_file, write_json

    config = predictor.configuration_manager
    patch = [int(p) for p in config.patch_size]
    channels = len(predictor.dataset_json["channel_names"])
    net = predictor.network.eval()
    torch.manual_seed(0)
    inputs = {"random": torch.randn(1, channels, *patch)}
    real = preprocessed_patches(preprocessed_folder, patch, channels)
    if real:
        inputs["real"] = torch.from_numpy(real[0][0])
    out.mkdir(parents=True, exist_ok=True)
    verification, files = {}, {}
    for fold, params in zip(folds, predictor.list_of_parameters):
        net.load_state_dict(params)
        path = out / f"fold_{fold}.onnx"
        with atomic_path(path) as tmp, torch.no_grad():
            torch.onnx.export(net, (inputs["random"],), str(tmp), input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET,
                              dynamo=False)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        verification[str(fold)] = {}
        for name, x in inputs.items():
            with torch.no_grad():
                expected = net(x).numpy()
            got = session.run(None, {"image": x.numpy()})[0]
            diff = float(np.abs(got - expected).max())
            verification[str(fold)][name] = diff
            if not diff <= TOLERANCE:
                raise ExportError(f"fold {fold}: ONNX Runtime's logits differ from PyTorch's by {diff:.2e} on the "
                                  f"{name} patch (tolerance {TOLERANCE:g}); the export in {out} is not usable")
        files[str(fold)] = path.name
    for name in ("plans.json", "dataset.json"):
        copy_file(model_folder / name, out / name)
    record = {"format": 1, "nnunet_msfen": __version__, "trainer": predictor.trainer_name,
              "plans": predictor.plans_manager.plans_name, "configuration": _configuration_name(predictor),
              "folds": [str(f) for f in folds], "files": files, "patch_size": patch,
              "spacing": [float(s) for s in config.spacing], "input_channels": channels,
              "normalization": config.normalization_schemes, "use_mask_for_norm": config.use_mask_for_norm,
              "mirroring_axes": list(predictor.allowed_mirroring_axes or ()), "opset": OPSET,
              "tolerance": TOLERANCE, "verification": verification}
    write_json(out / EXPORT_JSON, record)
    return record


def _int8_files(folder: Path, record: Dict) -> Dict[str, str]:
    entry = record.get("int8")
    if not entry:
        raise ExportError(f"{folder} has no int8 models: export with --quantize static|dynamic")
    if not entry.get("offered"):
        checks = ", ".join(f"fold {f}: Dice loss {v['dice_loss']:+.4f}, agreement {v.get('worst_agreement', 1.0):.4f}"
                           for f, v in entry["folds"].items())
        raise ExportError(f"{folder}: the int8 models lost more than {entry['max_dice_loss']} Dice or agreed with the "
                          f"float ones below {1 - entry['max_dice_loss']} ({checks}) and were not kept; predict "
                          f"without --int8")
    return entry["files"]


def _configuration_name(predictor) -> str:
    plans = predictor.plans_manager
    return next(n for n in plans.available_configurations
                if plans.get_configuration(n).configuration == predictor.configuration_manager.configuration)


def load_export(folder: Path, backend: str, threads: Optional[int] = None, mirroring: bool = True,
                int8: bool = False):
    """nnU-Net's predictor over the exported folds in ``folder``, run by ``backend`` (no nnU-Net folder needed);
    ``int8``: the quantised folds, which exist only where they kept Dice (``export-onnx --quantize``).

    Raises:
        ExportError: naming the file when ``export.json``, ``plans.json``, ``dataset.json`` or a fold's model is
            missing or unreadable, or when ``int8`` is asked of an export without offered int8 models.
    """
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nnunet_msfen.deploy.backends import BackendNetwork
    from nnunet_msfen.evaluation.io import read_json
    from nnunet_msfen.inference.tile_producer import nnUNetPredictorSingleThreadedProducer

    folder = Path(folder)
    try:
        record, plans, dataset_json = (read_json(folder / n) for n in (EXPORT_JSON, "plans.json", "dataset.json"))
        files = _int8_files(folder, record) if int8 else record["files"]
        models = [folder / files[f] for f in record["folds"]]
        configuration = PlansManager(plans).get_configuration(record["configuration"])
    except ExportError:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise ExportError(f"{folder} is not a usable export folder: {e}") from None
    missing = [str(m) for m in models if not m.is_file()]
    if missing:
        raise ExportError(f"exported model(s) missing: {', '.join(missing)}")
    try:
        network = BackendNetwork(models, backend, threads)
    except ValueError as e:  # a corrupt model file (BackendNetwork names it)
        raise ExportError(str(e)) from None
    predictor = nnUNetPredictorSingleThreadedProducer(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                                      perform_everything_on_device=False, device=torch.device("cpu"),
                                                      verbose=False, allow_tqdm=False)
    predictor.manual_initialization(network, PlansManager(plans), configuration,
                                    BackendNetwork.fold_parameters(len(models)), dataset_json, record["trainer"],
                                    tuple(record["mirroring_axes"]))
    return predictor
