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
from typing import Dict, List, Optional

import numpy as np
import torch

EXPORT_JSON = "export.json"
OPSET = 17
TOLERANCE = 1e-3  # max |logit difference|, absolute, ONNX Runtime vs PyTorch in float32 on the CPU


class ExportError(ValueError):
    """An export that failed its verification, or an export folder that cannot be used."""


def real_patch(preprocessed_folder: Optional[Path], patch_size: List[int], channels: int) -> Optional[np.ndarray]:
    """A (1, channels, *patch) patch from the centre of the first preprocessed case of ``preprocessed_folder``
    (a 2D patch from its middle slice), zero-padded where the case is smaller; ``None`` when there is none."""
    if preprocessed_folder is None or not Path(preprocessed_folder).is_dir():
        return None
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

    try:
        dataset = infer_dataset_class(str(preprocessed_folder))(str(preprocessed_folder))
        keys = sorted(dataset.identifiers)
    except (RuntimeError, ValueError, FileNotFoundError):
        return None
    if not keys:
        return None
    data = np.asarray(dataset.load_case(keys[0])[0])
    if len(patch_size) == 2:
        data = data[:, data.shape[1] // 2]
    patch = np.zeros((channels, *patch_size), np.float32)
    src, dst = [slice(None)], [slice(None)]
    for size, want in zip(data.shape[1:], patch_size):
        n = min(size, want)
        start = (size - n) // 2
        src.append(slice(start, start + n))
        dst.append(slice(0, n))
    patch[tuple(dst)] = data[tuple(src)][:channels]
    return patch[None]


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
    real = real_patch(preprocessed_folder, patch, channels)
    if real is not None:
        inputs["real"] = torch.from_numpy(real)
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


def _configuration_name(predictor) -> str:
    plans = predictor.plans_manager
    return next(n for n in plans.available_configurations
                if plans.get_configuration(n).configuration == predictor.configuration_manager.configuration)


def load_export(folder: Path, backend: str, threads: Optional[int] = None, mirroring: bool = True):
    """nnU-Net's predictor over the exported folds in ``folder``, run by ``backend`` (no nnU-Net folder needed).

    Raises:
        ExportError: naming the file when ``export.json``, ``plans.json``, ``dataset.json`` or a fold's model is
            missing or unreadable.
    """
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nnunet_msfen.deploy.backends import BackendNetwork
    from nnunet_msfen.evaluation.io import read_json

    folder = Path(folder)
    try:
        record, plans, dataset_json = (read_json(folder / n) for n in (EXPORT_JSON, "plans.json", "dataset.json"))
        models = [folder / record["files"][f] for f in record["folds"]]
        configuration = PlansManager(plans).get_configuration(record["configuration"])
    except (ValueError, KeyError, TypeError) as e:
        raise ExportError(f"{folder} is not a usable export folder: {e}") from None
    missing = [str(m) for m in models if not m.is_file()]
    if missing:
        raise ExportError(f"exported model(s) missing: {', '.join(missing)}")
    try:
        network = BackendNetwork(models, backend, threads)
    except ValueError as e:  # a corrupt model file (BackendNetwork names it)
        raise ExportError(str(e)) from None
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                perform_everything_on_device=False, device=torch.device("cpu"), verbose=False,
                                allow_tqdm=False)
    predictor.manual_initialization(network, PlansManager(plans), configuration,
                                    BackendNetwork.fold_parameters(len(models)), dataset_json, record["trainer"],
                                    tuple(record["mirroring_axes"]))
    return predictor
