"""Deterministic batches and noise for exact resume and data parallelism.

Everything random in a run is a function of the run's ``seed`` and the position in the run, so a
checkpoint needs only (epoch, step) to continue bit-identically, never a dataset-sized permutation:

* the order of epoch ``e`` is ``randperm(n)`` from a generator seeded by (seed, "order", e);
  an epoch has ceil(n / batch_size) balanced batches: consecutive slices of that permutation whose
  sizes differ by at most one (no lone sample for BatchNorm, every batch weighs about the same);
* under data parallelism every process computes the same permutation and takes part ``rank`` of
  each batch (``tensor_split`` into ``world_size`` parts), so the processes together see exactly
  the batch a single process would;
* the target samples x_1 and times t of step s of epoch e on process ``rank`` come from a fresh
  generator seeded by (seed, "noise", rank, e, s).

A single process (no data parallelism) instead draws everything from one stream, ``SingleStream``: the
generator seeded by ``seed`` draws each epoch's permutation at the epoch's start and then the x_1 and t of
its steps. Checkpointing it takes two generator states (at the epoch's start and now), not a permutation,
and it keeps every model trained with a given seed identical to the ones trained before data parallelism
existed (the toys' cached models and the committed benchmark results).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["EpochBatches", "SingleStream", "derive_seed", "step_generator"]


def derive_seed(seed: int, *path: int | str) -> int:
    """A 63-bit seed for the stream named ``path`` of run ``seed`` (BLAKE2b of the names: cheap, well mixed)."""
    text = repr((int(seed), *path)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") & (2**63 - 1)


def step_generator(seed: int, rank: int, epoch: int, step: int) -> torch.Generator:
    """CPU generator for the x_1 and t draws of one optimiser step on one process."""
    return torch.Generator().manual_seed(derive_seed(seed, "noise", rank, epoch, step))


class EpochBatches:
    """Balanced, seeded batches of ``n`` samples; process ``rank`` of ``world_size`` takes its part of each.

    Args:
        n: training-set size.
        batch_size: largest global batch.
        seed: the run's seed.
        rank, world_size: this process and the number of processes (1 without data parallelism).
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, {world_size}), got {rank}")
        self.n, self.seed, self.rank, self.world_size = int(n), int(seed), int(rank), int(world_size)
        self.steps_per_epoch = math.ceil(self.n / int(batch_size))
        base, extra = divmod(self.n, self.steps_per_epoch)
        # tensor_split gives the first n % steps batches one sample more.
        self.global_sizes = [base + 1] * extra + [base] * (self.steps_per_epoch - extra)

    @property
    def smallest_batch(self) -> int:
        return min(self.global_sizes)

    def permutation(self, epoch: int) -> Tensor:
        """The order of epoch ``epoch`` (identical on every process)."""
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(derive_seed(self.seed, "order", epoch)))

    def local_batches(self, epoch: int, start_step: int = 0, permutation: Tensor | None = None) -> Iterator[Tensor]:
        """This process's indices for steps ``start_step .. steps_per_epoch - 1`` of ``epoch`` (of
        ``permutation`` when given, else of ``self.permutation(epoch)``)."""
        order = self.permutation(epoch) if permutation is None else permutation
        for batch in torch.tensor_split(order, self.steps_per_epoch)[start_step:]:
            yield torch.tensor_split(batch, self.world_size)[self.rank]

    def local_size(self, step: int) -> int:
        """Number of samples this process handles at ``step``."""
        base, extra = divmod(self.global_sizes[step], self.world_size)
        return base + (1 if self.rank < extra else 0)


class SingleStream:
    """One CPU generator for a single-process run: each epoch's permutation, then the x_1 and t of its steps.

    ``state()`` / ``restore(state)`` carry the generator's state at the start of the current epoch and now, so a
    run resumed mid-epoch redraws the same permutation and continues the same stream.
    """

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(int(seed))
        self.epoch_start: Tensor | None = None

    def permutation(self, n: int, resuming: bool) -> Tensor:
        """The current epoch's order; at a fresh epoch start it is drawn now, when resuming it is redrawn."""
        if not resuming or self.epoch_start is None:
            self.epoch_start = self.generator.get_state()
            return torch.randperm(n, generator=self.generator)
        now = self.generator.get_state()
        self.generator.set_state(self.epoch_start)
        order = torch.randperm(n, generator=self.generator)
        self.generator.set_state(now)
        return order

    def state(self) -> dict[str, Tensor]:
        start = self.epoch_start if self.epoch_start is not None else self.generator.get_state()
        return {"epoch_start": start, "current": self.generator.get_state()}

    def restore(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["current"])
        self.epoch_start = state["epoch_start"]
