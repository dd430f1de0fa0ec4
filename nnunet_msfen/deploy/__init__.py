"""MSFEN (and any nnU-Net model) where the patients are: ONNX export verified against PyTorch, and prediction with
ONNX Runtime or OpenVINO on a CPU through nnU-Net's own predictor (``export-onnx``, ``predict --backend``)."""
