"""Run an exported fold network in ONNX Runtime or OpenVINO behind the interface nnU-Net's predictor expects.

nnU-Net's ``nnUNetPredictor`` ensembles folds by loading each fold's ``state_dict`` into one network and running
its sliding window (``predict_logits_from_preprocessed_data``, nnunetv2 2.8.1). ``BackendNetwork`` keeps one
compiled model per fold; its ``load_state_dict({"fold": i})`` selects fold ``i``, and its ``forward`` runs the
selected model on the CPU. So the predictor's own preprocessing, Gaussian-weighted sliding window, mirroring, fold
ensembling and export run unchanged around a network that is not PyTorch.
"""
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

BACKENDS = ("torch", "onnxruntime", "openvino")
INSTALL_HINT = "pip install 'nnunet-msfen[deploy]' (or: pip install onnx onnxruntime openvino)"


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"the {module} backend needs the package {module!r}: {INSTALL_HINT}") from None


def _loaded(load: Callable[[], object], model: Path):
    """``load()``, with the backend's own exception types (ONNX Runtime's derive from ``Exception`` directly)
    turned into a ``ValueError`` naming the model file."""
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - only the backend's loader runs here
        raise ValueError(f"cannot load {model}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None


def onnxruntime_runner(model: Path, threads: Optional[int] = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``image -> logits`` running ``model`` in ONNX Runtime on the CPU (``threads``: intra-op
    threads; default: ONNX Runtime's)."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = _loaded(lambda: ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"]), model)
    name = session.get_inputs()[0].name
    return lambda image: session.run(None, {name: image})[0]


def openvino_runner(model: Path, threads: Optional[int] = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``image -> logits`` running ``model`` (ONNX) compiled by OpenVINO for the CPU."""
    ov = _require("openvino")
    core = ov.Core()
    # float32 as exported: on CPUs with AVX512_BF16 or AMX OpenVINO otherwise infers in bfloat16 (measured 0.02-0.5
    # off the PyTorch logits on an AVX-512 EPYC)
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = _loaded(lambda: core.compile_model(core.read_model(str(model)), "CPU", config), model)
    output = compiled.output(0)
    return lambda image: compiled(image)[output]


RUNNERS = {"onnxruntime": onnxruntime_runner, "openvino": openvino_runner}


class BackendNetwork(nn.Module):
    """The exported folds as one network for nnU-Net's predictor (see the module docstring).

    Args:
        models: one ONNX file per fold, in the predictor's fold order.
        backend: ``onnxruntime`` or ``openvino``.
        threads: CPU threads of the backend (default: the backend's own choice).

    Raises:
        ValueError: for an unknown backend or no model; ImportError naming the package to install.
    """

    def __init__(self, models: Sequence[Path], backend: str, threads: Optional[int] = None):
        super().__init__()
        if backend not in RUNNERS:
            raise ValueError(f"backend must be one of {sorted(RUNNERS)}, got {backend!r}")
        if not models:
            raise ValueError("no exported model given")
        self.runners: List[Callable[[np.ndarray], np.ndarray]] = [RUNNERS[backend](Path(m), threads) for m in models]
        self.selected = 0

    @staticmethod
    def fold_parameters(n_folds: int) -> List[dict]:
        """What the predictor's ``list_of_parameters`` holds for this network: one marker per fold."""
        return [{"fold": i} for i in range(n_folds)]

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Select the fold ``state_dict["fold"]`` (nnU-Net's predictor calls this once per fold)."""
        fold = state_dict.get("fold") if isinstance(state_dict, dict) else None
        if not isinstance(fold, int) or not 0 <= fold < len(self.runners):
            raise ValueError(f"BackendNetwork takes {{'fold': 0 ... {len(self.runners) - 1}}}, got {state_dict!r}")
        self.selected = fold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.runners[self.selected](np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32))
        return torch.from_numpy(np.asarray(logits)).to(x.device)
