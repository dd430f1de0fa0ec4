"""One training step exactly as nnU-Net runs it: ``nnUNetTrainer.train_step`` of the trainer class that trains the
network (zero grad, forward under CUDA autocast, the trainer's own loss with deep supervision, backward with the
grad scaler on CUDA, clipping at 12, the trainer's optimizer), on a synthetic BraTS batch.

The trainer is built from plans written here for BraTS (4 MRI sequences in, WT/TC/ET regions out) with the
topology to measure. ``nnUNetTrainer.initialize`` would also open the preprocessed dataset, which a benchmark does
not have, so ``build_trainer`` runs the three lines of it that matter here (network, optimizer, loss) itself,
through the trainer's own hooks (nnunetv2 2.8.1). The benchmark, its memory measurement and the planner's
calibration all use this one step.
"""
import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Type

import numpy as np
import torch

INPUT_CHANNELS, NUM_CLASSES = 4, 3  # BraTS: T1, T1ce, T2, FLAIR -> whole tumour, tumour core, enhancing tumour
BRATS_DATASET_JSON = {
    "channel_names": {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"},
    "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]},
    "regions_class_order": [1, 2, 3], "numTraining": 0, "file_ending": ".nii.gz",
}


def brats_plans(config: str, network_class_name: str, arch_kwargs: dict, patch: Sequence[int],
                batch: int) -> dict:
    """nnU-Net plans with one configuration, ``config``, holding the given architecture, patch and batch size."""
    dim = len(patch)
    return {
        "dataset_name": "Dataset999_Benchmark", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0] * 3, "original_median_shape_after_transp": [155, 240, 240],
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
        "configurations": {config: {
            "data_identifier": f"nnUNetPlans_{config}", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": batch, "patch_size": list(patch), "spacing": [1.0] * dim,
            "normalization_schemes": ["ZScoreNormalization"] * INPUT_CHANNELS,
            "use_mask_for_norm": [True] * INPUT_CHANNELS, "batch_dice": True,
            "architecture": {"network_class_name": network_class_name, "arch_kwargs": dict(arch_kwargs),
                             "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
        }},
    }


def build_trainer(trainer_class: Type, plans: dict, config: str, device: torch.device, results_dir: Path):
    """An initialised ``trainer_class`` (network, optimizer, loss; no dataset) for ``plans``. nnU-Net's trainer
    writes its log under ``nnUNet_results``: ``results_dir`` stands in for it and must outlive the trainer."""
    previous = os.environ.get("nnUNet_results")
    os.environ["nnUNet_results"] = str(results_dir)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net prints the device and a banner
            trainer = trainer_class(plans=dict(plans, continue_training=False), configuration=config, fold=0,
                                    dataset_json=dict(BRATS_DATASET_JSON), device=device)
    finally:
        if previous is None:
            del os.environ["nnUNet_results"]
        else:
            os.environ["nnUNet_results"] = previous
    trainer.network = trainer.build_network_architecture(
        trainer.plans_manager, trainer.configuration_manager, INPUT_CHANNELS,
        trainer.label_manager.num_segmentation_heads, trainer.enable_deep_supervision).to(trainer.device)
    trainer.optimizer, trainer.lr_scheduler = trainer.configure_optimizers()
    trainer.loss = trainer._build_loss()
    return trainer


def make_batch(batch: int, patch: Sequence[int], strides: Sequence[Sequence[int]], seed: int = 0) -> Dict[str, object]:
    """Random images and region targets at every deep-supervision resolution nnU-Net trains with (its
    ``_get_deep_supervision_scales``: the cumulative strides, the lowest resolution left out)."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randn(batch, INPUT_CHANNELS, *patch, generator=g)
    scale = np.ones(len(patch), dtype=int)
    targets: List[torch.Tensor] = []
    for stride in strides[:-1]:
        scale = scale * np.array(stride)
        shape = [max(1, p // int(s)) for p, s in zip(patch, scale)]
        targets.append((torch.rand(batch, NUM_CLASSES, *shape, generator=g) > 0.7).float())
    return {"data": data, "target": targets}


class NnUNetTrainStep:
    """``trainer.train_step`` on a fixed batch; ``step()`` runs it and returns the loss."""

    def __init__(self, trainer_class: Type, config: str, network_class_name: str, arch_kwargs: dict,
                 patch: Sequence[int], batch: int, device: torch.device):
        self.device = device
        self._results = tempfile.TemporaryDirectory(prefix="nnunet_msfen_step_")  # the trainer's log goes there
        self.trainer = build_trainer(trainer_class, brats_plans(config, network_class_name, arch_kwargs, patch, batch),
                                     config, device, Path(self._results.name))
        self.net = self.trainer.network
        self.batch = make_batch(batch, patch, arch_kwargs["strides"])
        if not self.trainer.enable_deep_supervision:
            self.batch["target"] = self.batch["target"][0]

    def step(self) -> float:
        return float(self.trainer.train_step(self.batch)["loss"])

