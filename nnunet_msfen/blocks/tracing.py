"""Whether the code runs under a graph capture, where the hand-made CPU fast paths step aside."""
import torch


def tracing() -> bool:
    """Inside ``torch.compile``, ``torch.export``, an ONNX export or TorchScript tracing: the plain, portable
    operators are taken there (the compiler fuses what the fast CPU paths below do by hand, and ONNX has no
    ``mkldnn_convolution`` nor a convolution whose group count is the batch size)."""
    return torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
