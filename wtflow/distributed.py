"""Data-parallel training on torchrun: process-group detection, DDP wrapping, synchronised BatchNorm.

``wtflow.train`` calls ``context_from_env`` itself: under ``torchrun`` (which sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``) it joins the process group
(NCCL for CUDA tensors, gloo for CPU tensors) and trains data-parallel; without those variables it
is a single process. Every process computes the same shuffled order and takes its part of each
global batch (``wtflow.training.sampler``), draws its own x_1 and t from (seed, rank, epoch, step),
and DDP averages the gradients; the trainer weights each process's loss by its share of the batch,
so the averaged gradient is the gradient of the global batch's mean loss. Only rank 0 writes
checkpoints. ``BatchNormWT`` pools its statistics over all processes (SyncBatchNorm semantics).

``python -m wtflow.launch`` is a small launch target for torchrun (see its ``--help``).
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["DistContext", "LossModule", "context_from_env", "synchronised_batchnorm", "wrap_for_training"]

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel run (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, tensor: Tensor) -> Tensor:
        """All-reduce (sum) ``tensor`` in place over the processes; a no-op for a single process."""
        if self.active:
            dist.all_reduce(tensor)
        return tensor

    def device(self, device: torch.device) -> torch.device:
        """The device of this process: ``cuda:LOCAL_RANK`` for a CUDA run, ``device`` otherwise."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device


def context_from_env(device: torch.device) -> DistContext:
    """Join the process group described by torchrun's environment variables (if any) and describe this process.

    Raises ``RuntimeError`` naming the missing variables when ``WORLD_SIZE`` > 1 but the launch is incomplete.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not dist.is_initialized():
        return DistContext()
    if not dist.is_available():
        raise RuntimeError(
            f"WORLD_SIZE={world} asks for {world} processes, but this torch build lacks torch.distributed"
        )
    if not dist.is_initialized():
        missing = [k for k in _ENV if k not in os.environ]
        if missing:
            raise RuntimeError(
                f"WORLD_SIZE={world} but {', '.join(missing)} is not set: launch with torchrun "
                "(torchrun --nproc_per_node N -m ...), which sets all of them"
            )
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        atexit.register(_destroy)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class LossModule(nn.Module):
    """``forward(batch, generator, weight) = weight * model.loss(batch, generator)``: the unit DDP wraps.

    DDP synchronises gradients of what goes through its ``forward``; the trainer's contract with a
    model is ``model.loss``, so this module routes the loss through ``forward``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Tensor, generator: torch.Generator, weight: float = 1.0) -> Tensor:
        return self.model.loss(batch, generator=generator) * weight


def wrap_for_training(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``LossModule(model)``, wrapped in ``DistributedDataParallel`` when ``ctx`` is active.

    DDP broadcasts rank 0's parameters and buffers once at construction, so all processes start alike;
    buffers are not re-broadcast at every step because synchronised BatchNorm keeps them identical.
    """
    module = LossModule(model)
    if not ctx.active:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # Newer torch renames the option; both mean "sync buffers once at construction, not at every forward".
    if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters:
        return ddp(module, device_ids=device_ids, forward_sync_buffers=False)
    return ddp(module, device_ids=device_ids, broadcast_buffers=False)


@contextlib.contextmanager
def synchronised_batchnorm(model: nn.Module, ctx: DistContext) -> Iterator[None]:
    """Within the block, every ``BatchNormWT`` of ``model`` pools its batch statistics over the process group."""
    from .wt import BatchNormWT

    layers = [m for m in model.modules() if isinstance(m, BatchNormWT)]
    group = dist.group.WORLD if ctx.active else None
    for layer in layers:
        layer.process_group = group
    try:
        yield
    finally:
        for layer in layers:
            layer.process_group = None
