"""One code path for 1 CPU, 1 GPU and N GPUs (torchrun sets RANK / WORLD_SIZE / LOCAL_RANK)."""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from core.device import select_device


@dataclass(frozen=True)
class Context:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Context:
    """Pick the device for this rank (render's rule: a device this machine lacks is refused with
    the ones it has); join the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = select_device(device)
    if chosen.type == "cuda":
        if chosen.index is None:  # "auto" or "cuda": each rank its own GPU
            chosen = torch.device("cuda", local)
        torch.cuda.set_device(chosen)
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels once
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Context(rank, world, chosen)


def wrap(model: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """DistributedDataParallel when there are several processes, the model itself otherwise."""
    model = model.to(ctx.device)
    if ctx.world == 1:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def mean_across(value: float, ctx: Context) -> float:
    """Average a scalar metric over all ranks."""
    if ctx.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world


def average_gradients(params, ctx: Context) -> None:
    """Average the gradients of parameters that DDP does not hold (training-only heads used
    outside the wrapped model) over all ranks, so they stay identical everywhere. A parameter
    without a gradient on this rank takes part as zeros: every rank makes the same calls."""
    if ctx.world == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= ctx.world


def teardown():
    if dist.is_initialized():
        # every rank finishes its last work first: a rank that destroys the group while rank 0
        # is still checkpointing can abort in gloo's threads ("terminate called without an
        # active exception"), seen once in CI
        dist.barrier()
        dist.destroy_process_group()
