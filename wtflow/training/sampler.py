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
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

__all__ = ["EpochBatches", "derive_seed", "step_generator"]


def derive_seed(seed: int, *path: int | str) -> int:
    """A 63-bit seed for the stream named ``path`` of run ``seed`` (numpy ``SeedSequence`` mixing)."""
    words = [int(seed)] + [int.from_bytes(p.encode(), "little") if isinstance(p, str) else int(p) for p in path]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0]) & (2**63 - 1)


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

    def local_batches(self, epoch: int, start_step: int = 0) -> Iterator[Tensor]:
        """This process's indices for steps ``start_step .. steps_per_epoch - 1`` of ``epoch``."""
        for batch in torch.tensor_split(self.permutation(epoch), self.steps_per_epoch)[start_step:]:
            yield torch.tensor_split(batch, self.world_size)[self.rank]

    def local_size(self, step: int) -> int:
        """Number of samples this process handles at ``step``."""
        base, extra = divmod(self.global_sizes[step], self.world_size)
        return base + (1 if self.rank < extra else 0)
