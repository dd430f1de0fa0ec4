"""nnUNetTrainerMSFEN: nnU-Net's trainer with MSFENUNet as the network and MSFEN's loss weighting.

    nnUNetv2_train DATASET 3d_fullres FOLD -tr nnUNetTrainerMSFEN

Everything else is nnU-Net's: SGD (momentum 0.99, Nesterov) with the poly schedule, augmentation, deep
supervision, 5-fold cross-validation, region-based training, ignore label, ``--c``, ``--val``, ``--npz``, DDP.
Only SGD's initial learning rate is MSFEN's own (4e-2 instead of 1e-2): the paper tunes its hyperparameters by grid
search, and at nnU-Net's 1e-2 MSFEN learned far more slowly per iteration than nnU-Net's U-Net on the real BraTS
cases (docs/history_0.1.0.md, section 6). On a CPU the trainer keeps freed memory in the process
(``nnunet_msfen.runtime.cpu_allocator``; ``NNUNET_MSFEN_CPU_ALLOCATOR=system`` turns that off), and its final
validation predicts with the tile producer thread kept off OpenMP (``nnunet_msfen.inference.tile_producer``).
"""
from types import MappingProxyType
from typing import Mapping

import torch
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn

from nnunet_msfen.inference.tile_producer import single_threaded_tile_producer
from nnunet_msfen.network.from_plans import MSFEN_CLASS_NAME, UnsupportedPlansError, msfen_arch_kwargs
from nnunet_msfen.runtime.cpu_allocator import retain_freed_memory


class nnUNetTrainerMSFEN(nnUNetTrainer):
    """Builds ``MSFENUNet`` from the U-Net topology the plans hold (nnU-Net's default ``nnUNetPlans``, its
    residual-encoder presets ``nnUNetResEncUNet{M,L,XL}Plans`` or our ``nnUNetMSFENPlans``; see
    ``network/from_plans.py``) and weighs the loss ``ce_weight * CE + dice_weight * Dice``.

    Class attributes (override them in a subclass for a variant):
        ce_weight: the paper's lambda; binary cross-entropy for region-based datasets such as BraTS.
        dice_weight: ``1 - lambda``.
        learning_rate: SGD's initial learning rate (nnU-Net: 1e-2); the poly schedule anneals it as in nnU-Net.
        bottleneck_dropout: dropout probability at the bottleneck (the paper's 0.5).
        network_kwargs: further ``MSFENUNet`` keyword arguments (ablation switches, branch mode, ...).
    """

    ce_weight = 0.3
    dice_weight = 0.7
    learning_rate = 4e-2
    bottleneck_dropout = 0.5
    network_kwargs: Mapping[str, object] = MappingProxyType({})  # read-only: a variant assigns its own

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        if not self.learning_rate > 0:
            raise ValueError(f"{type(self).__name__}.learning_rate must be > 0, got {self.learning_rate!r}")
        self._check_plans(plans, configuration)  # before nnU-Net creates the results folder: nothing left behind
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr = self.learning_rate
        if self.device.type == "cpu" and retain_freed_memory():
            self.print_to_log_file("CPU: freed memory stays in the process (nnunet_msfen.runtime.cpu_allocator)")

    @classmethod
    def _check_plans(cls, plans: dict, configuration: str) -> None:
        """``RuntimeError`` (nnU-Net's type for unusable plans) naming the configuration, its network and the plans
        that work, for plans MSFEN cannot take; unknown configurations are left to nnU-Net's own error."""
        manager = PlansManager(plans)
        if configuration not in manager.available_configurations:
            return
        config = manager.get_configuration(configuration)
        try:
            msfen_arch_kwargs(config.network_arch_class_name, config.network_arch_init_kwargs)
        except UnsupportedPlansError as e:
            raise RuntimeError(f"{cls.__name__} cannot train configuration '{configuration}' of plans "
                               f"'{manager.plans_name}': {e}") from None

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        # a classmethod (nnU-Net declares a staticmethod) so that variants change the network through class
        # attributes; nnU-Net calls it as trainer_class.build_network_architecture(...) in inference too.
        try:
            arch_kwargs = msfen_arch_kwargs(configuration_manager.network_arch_class_name,
                                            configuration_manager.network_arch_init_kwargs)
        except UnsupportedPlansError as e:
            name = next((n for n in plans_manager.available_configurations
                         if plans_manager.get_configuration(n).configuration == configuration_manager.configuration),
                        configuration_manager.data_identifier)
            raise RuntimeError(f"{cls.__name__} cannot build configuration '{name}' of plans "
                               f"'{plans_manager.plans_name}': {e}") from None
        arch_kwargs.update({"bottleneck_dropout": cls.bottleneck_dropout, **cls.network_kwargs})
        return get_network_from_plans(MSFEN_CLASS_NAME, arch_kwargs,
                                      configuration_manager.network_arch_init_kwargs_req_import,
                                      num_input_channels, num_output_channels, allow_init=True,
                                      deep_supervision=enable_deep_supervision)

    def _build_loss(self) -> nn.Module:
        loss = super()._build_loss()
        compound = loss.loss if isinstance(loss, DeepSupervisionWrapper) else loss
        compound.weight_ce, compound.weight_dice = self.ce_weight, self.dice_weight
        return loss

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        # nnU-Net's predictor copies tiles in a thread whose OpenMP team makes every operator of the network pay a
        # wake-up on a CPU (nnunet_msfen/inference/tile_producer.py); the outputs are the same without it.
        with single_threaded_tile_producer():
            super().perform_actual_validation(save_probabilities)
