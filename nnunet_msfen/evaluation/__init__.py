"""Evaluation of BraTS-style segmentations: region metrics, BraTS 2023 lesion-wise metrics, cross-validation
comparison of two trainers with significance tests, and the BraTS enhancing-tumour postprocessing rule.

Command-line entry points: ``nnunet-msfen evaluate``, ``nnunet-msfen compare``, ``nnunet-msfen postprocess``.
"""
