"""Peak tensor memory of a function: how much a training step needs, the same measure on a CPU and a GPU.

CUDA: ``torch.cuda.max_memory_allocated`` during the call, above what was allocated before it. CPU: the same
quantity from PyTorch's own allocator, read off the profiler's allocation events (each records the running total
of bytes PyTorch holds), so it counts the tensors the step holds at its worst moment, exactly, whatever the C
library's allocator does with freed memory and whether the process is fresh. Resident-set sampling, the measure
before, depended on both (allocator caching, untouched zero pages) and needed a subprocess per network.

The benchmark (``nnunet-msfen benchmark``) and the planner's calibration (``plans/calibrate_reference.py``) both
measure the first training step of a freshly built trainer with ``peak_tensor_memory``: activations, gradients,
the optimizer's momentum and the loss, as on a GPU.
"""
from typing import Callable

import torch


def peak_tensor_memory(fn: Callable[[], object], device: torch.device) -> float:
    """MiB of tensor memory that ``fn()`` holds at its peak above what was allocated before the call."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()

    def walk(events):
        for event in events:
            yield event
            yield from walk(event.children)

    allocations = sorted((e for e in walk(prof.profiler.kineto_results.experimental_event_tree())
                          if e.tag == _EventType.Allocation and e.extra_fields.device.type == "cpu"),
                         key=lambda e: e.start_time_ns)
    if not allocations:
        return 0.0
    # the running total counts from the profiler's start in this process: subtract the level before the first event
    first = allocations[0].extra_fields
    base = first.total_allocated - first.alloc_size
    return max(0, max(e.extra_fields.total_allocated for e in allocations) - base) / 2 ** 20
