"""The DDP worker of test_ddp.py, in a module of its own so that spawned processes can import it by name."""
import os
import socket

import torch
import torch.distributed as dist
from torch import nn

from nnunet_msfen import MSFENUNet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world_size: int, port: int, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.manual_seed(0)  # same initial weights on both ranks, as nnU-Net's DDP start gives
    net = MSFENUNet(4, 3, [8, 16, 24], nn.Conv3d, 3, [1, 2, 2], 2, 3, 2, conv_bias=True, norm_op=nn.InstanceNorm3d,
                    norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True},
                    deep_supervision=True)
    net.apply(net.initialize)
    ddp = nn.parallel.DistributedDataParallel(net, find_unused_parameters=False)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.99, nesterov=True)
    torch.manual_seed(rank + 1)  # different data per rank
    x = torch.randn(2, 4, 16, 16, 16)
    weights = [1 / 2 ** i for i in range(2)]
    for _ in range(2):
        outputs = ddp(x)
        loss = sum(w * o.sigmoid().mean() for w, o in zip(weights, outputs))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    flat = torch.cat([p.detach().flatten() for p in net.parameters()])
    results[rank] = flat
    dist.destroy_process_group()
