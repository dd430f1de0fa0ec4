"""Multi-GPU training goes through DistributedDataParallel(find_unused_parameters=False): every parameter of
MSFENUNet must take part in the loss with deep supervision, or DDP fails. Two CPU processes, gloo backend."""
import torch
import torch.multiprocessing as mp

from ddp_worker import free_port, worker


def test_two_process_ddp_step_keeps_replicas_identical():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(worker, args=(2, free_port(), results), nprocs=2, join=True)
    assert torch.equal(results[0], results[1])  # gradients were all-reduced over every parameter
