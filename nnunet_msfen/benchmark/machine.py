"""The machine a measurement ran on, for every figure that ``nnunet-msfen benchmark`` reports: the ratios between
network designs change with the CPU's instruction set and the libraries' kernels (a dense 3^3 convolution runs at
~110 GFLOP/s with oneDNN on AVX-512, far less elsewhere), so a figure without its machine is not comparable."""
import os
import platform
import re
from typing import Dict, List, Optional

import torch

# instruction-set flags (Linux /proc/cpuinfo names) that decide which convolution kernels oneDNN can use
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "neon", "asimd", "sve")


def _cpuinfo() -> Dict[str, str]:
    fields: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    key, value = (part.strip() for part in line.split(":", 1))
                    fields.setdefault(key, value)
    except OSError:
        pass
    return fields


def _onednn_version() -> Optional[str]:
    match = re.search(r"(?:MKL-DNN|oneDNN)\s+v([\d.]+)", torch.__config__.show())
    return match.group(1) if match else None


def describe(device: torch.device) -> Dict[str, object]:
    """CPU model and its instruction-set flags, core and thread counts, torch and its kernel libraries, the GPU."""
    info = _cpuinfo()
    flags = set(info.get("flags", info.get("Features", "")).split())
    out: Dict[str, object] = {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "isa": [f for f in ISA_FLAGS if f in flags],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onednn": _onednn_version(),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        out.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    return out


def one_line(machine: Dict[str, object]) -> str:
    """``AMD EPYC (avx2, fma; AVX2), 2 cores, 2 threads, torch 2.14.1, oneDNN 3.12.0`` (+ GPU, CUDA, cuDNN)."""
    isa: List[str] = list(machine.get("isa") or [])
    text = (f"{machine['cpu']} ({', '.join(isa) or 'no listed ISA flags'}; {machine.get('cpu_capability')}), "
            f"{machine['cores']} cores, {machine['threads']} threads, torch {machine['torch']}, "
            f"oneDNN {machine.get('onednn') or 'n/a'}")
    if machine.get("gpu"):
        text += f"; {machine['gpu']}, CUDA {machine.get('cuda')}, cuDNN {machine.get('cudnn')}"
    return text
