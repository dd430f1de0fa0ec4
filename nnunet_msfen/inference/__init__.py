"""Prediction beyond nnUNetv2_predict: cases with missing MRI sequences (``nnunet-msfen predict``)."""
