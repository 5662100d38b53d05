"""Streaming numerics of the exact fields: squared distances (expanded or direct), the online log-sum-exp over
component chunks and the centred sums of the second-order passes."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import _limits
from ._setup import _chunks, _Components


def _needs_direct_distances(x: Tensor, one_minus_t: Tensor, comps: _Components, min_variance: Tensor) -> bool:
    scale = x.pow(2).sum(1) + one_minus_t.pow(2) * comps.sq_norms.max()
    err = torch.finfo(torch.float64).eps * scale / (2 * min_variance)
    return bool((err > _limits.EXPANSION_TOLERANCE).any())


def _sq_distances(x: Tensor, x_sq: Tensor, one_minus_t: Tensor, m: Tensor, m_sq: Tensor, direct: bool) -> Tensor:
    """(n, k) matrix ||x_n - (1 - t_n) m_k||^2."""
    if not direct:
        cross = x @ m.T
        return (x_sq[:, None] - 2 * one_minus_t[:, None] * cross + one_minus_t.pow(2)[:, None] * m_sq[None]).clamp_min_(
            0
        )
    out = torch.empty(x.shape[0], m.shape[0], dtype=x.dtype, device=x.device)
    step = max(1, _limits.TENSOR_BUDGET // max(1, x.shape[0] * x.shape[1]))
    for ks in _chunks(m.shape[0], step):
        diff = x[:, None, :] - one_minus_t[:, None, None] * m[None, ks]
        out[:, ks] = diff.pow(2).sum(-1)
    return out


class _OnlineLogSumExp:
    """Running log-sum-exp over component chunks with weighted accumulators rescaled on the fly."""

    def __init__(self, n: int, dtype, device):
        self.max = torch.full((n,), -math.inf, dtype=dtype, device=device)
        self.total = torch.zeros(n, dtype=dtype, device=device)
        self.sums: dict[str, Tensor] = {}

    def _advance(self, new_max: Tensor) -> Tensor:
        safe = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))
        scale = torch.exp(self.max - safe)
        self.max = new_max
        self.total.mul_(scale)
        for value in self.sums.values():
            value.mul_(scale.view(-1, *([1] * (value.ndim - 1))))
        return safe

    def weights(self, logits: Tensor) -> Tensor:
        """Update with a chunk of logits; returns exp(logits - running max) (in place) and rescales the sums."""
        safe = self._advance(torch.maximum(self.max, logits.max(1).values))
        weights = logits.sub_(safe[:, None]).exp_()
        self.total.add_(weights.sum(1))
        return weights

    def column_weights(self, logits: Tensor, cutoff: float, max_columns: int):
        """Like ``weights`` but only for the components (columns) that matter to some query of the chunk.

        A column is skipped when all its logits are more than ``cutoff`` below the running maximum: each
        skipped term is below exp(-cutoff) times the final normaliser, and with cutoff = -log(eps) + log(K)
        all of them together stay below float64 resolution, so the sums do not change.
        Returns (columns, exp(logits[:, columns] - running max)) if at most ``max_columns`` columns remain,
        else None (nothing updated; use ``weights``).
        """
        new_max = torch.maximum(self.max, logits.max(1).values)
        keep = (logits >= (new_max - cutoff)[:, None]).any(0)
        columns = keep.nonzero().squeeze(1)
        if columns.numel() > max_columns:
            return None
        safe = self._advance(new_max)
        weights = logits[:, columns].sub_(safe[:, None]).exp_()
        self.total.add_(weights.sum(1))
        return columns, weights

    def add(self, name: str, value: Tensor) -> None:
        if name in self.sums:
            self.sums[name].add_(value)
        else:
            self.sums[name] = value.clone()

    def log_normaliser(self) -> Tensor:
        safe = torch.where(torch.isfinite(self.max), self.max, torch.zeros_like(self.max))
        return safe + self.total.log()

    def mean(self, name: str) -> Tensor:
        value = self.sums[name]
        return value / self.total.view(-1, *([1] * (value.ndim - 1)))


def _component_chunk_size(n: int, budget: int = _limits.ENTRY_BUDGET) -> int:
    return max(1, budget // max(1, n))


class _CenteredSums:
    """sum_k pi_k (f_k - f)(g_k - g)^T with the first-order correction of the corrected two-pass algorithm."""

    def __init__(self):
        self.outer: Tensor | None = None
        self.left: Tensor | None = None
        self.right: Tensor | None = None

    def add(self, weights: Tensor, left: Tensor, right: Tensor, vector_right: bool) -> None:
        # weights (n, k); left (n, k, D) centred; right (n, k, D) or (n, k) centred
        if vector_right:
            outer = torch.einsum("nk,nki,nkj->nij", weights, left, right)
        else:
            outer = torch.einsum("nk,nki,nk->ni", weights, left, right)
        lsum = torch.einsum("nk,nki->ni", weights, left)
        rsum = torch.einsum("nk,nk...->n...", weights, right)
        self.outer = outer if self.outer is None else self.outer + outer
        self.left = lsum if self.left is None else self.left + lsum
        self.right = rsum if self.right is None else self.right + rsum

    def result(self, total: Tensor) -> Tensor:
        left = self.left / total[:, None]
        right = self.right / total.view(-1, *([1] * (self.right.ndim - 1)))
        outer = self.outer / total.view(-1, *([1] * (self.outer.ndim - 1)))
        if outer.ndim == 3:
            return outer - left[:, :, None] * right[:, None, :]
        return outer - left * right[:, None]


def _pass2_sizes(n: int, dim: int) -> tuple[int, int]:
    nq = max(1, min(n, _limits.TENSOR_BUDGET // max(1, dim * dim)))
    kc = max(1, _limits.TENSOR_BUDGET // max(1, nq * dim))
    return nq, kc
