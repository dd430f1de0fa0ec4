"""The speed and memory benchmark (``nnunet-msfen benchmark``): MSFENUNet against nnU-Net's U-Nets on parameters,
FLOPs, peak memory and the time of nnU-Net's training step and prediction. Accuracy comparisons are in
``nnunet_msfen.experiments``.
"""
