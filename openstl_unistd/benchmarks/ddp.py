"""Per-step cost of DDP's unused-parameter detection, the strategy our multi-task training runs under.

Each training step of a multi-task model uses one task's encoder and decoder, so DDP must either
find the parameters a step left unused (``find_unused_parameters=True``, a walk of the autograd
graph after every forward) or be told they are all used. This times a training step of the same
model under DDP in ``world_size`` processes (gloo on the CPU, NCCL on GPUs), with the detection on
and off: off is possible only when every step uses every parameter, i.e. on a one-task model,
so the comparison is made there; the multi-task figure (detection on) is the one a run pays.
Each step also all-reduces the loss's finiteness flag, as ``MultiTaskTraining.check_finite`` does.
"""
from __future__ import annotations

import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, cfg: dict, tasks: list[str], find_unused: bool, batch_size: int,
            warmup: int, repeats: int, device_type: str, out: str) -> None:
    from ..engine.config import build_model

    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    backend = 'nccl' if device_type == 'cuda' else 'gloo'
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        device = torch.device(device_type, rank) if device_type == 'cuda' else torch.device('cpu')
        if device_type == 'cpu':
            torch.set_num_threads(1)
        torch.manual_seed(0)
        model = build_model({**cfg, 'tasks': tasks}, load_pretrained=False).to(device).train()
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[rank] if device_type == 'cuda' else None, find_unused_parameters=find_unused)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        specs = [model.tasks[name] for name in tasks]
        batches = [(s.name, torch.randn(batch_size, *s.input_shape, device=device),
                    torch.randn(batch_size, *s.output_shape, device=device)) for s in specs]
        times = []
        for step in range(warmup + repeats):
            task, x, y = batches[step % len(batches)]          # the same task on every rank, as our sampler
            if device_type == 'cuda':
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            loss = F.mse_loss(ddp(x, task), y)
            finite = torch.isfinite(loss.detach()).to(torch.int32).reshape(1)
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
            assert bool(finite)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device_type == 'cuda':
                torch.cuda.synchronize(device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
        if rank == 0:
            Path(out).write_text(str(statistics.median(times)))
    finally:
        dist.destroy_process_group()


def ddp_step_seconds(cfg: dict, tasks: list[str], find_unused: bool, world_size: int = 2, batch_size: int = 4,
                     warmup: int = 3, repeats: int = 10, device_type: str = 'cpu') -> float:
    """Median wall time of one DDP training step (forward, backward with gradient all-reduce, AdamW)."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / 'seconds')
        mp.spawn(_worker, args=(world_size, _free_port(), cfg, list(tasks), find_unused, batch_size, warmup, repeats,
                                device_type, out), nprocs=world_size, join=True)
        return float(Path(out).read_text())
