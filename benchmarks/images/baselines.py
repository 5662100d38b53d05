"""Feature-map baselines on the same (N, C, h, w) maps as the flow, and the shared map post-processing.

* ``GaussianBaseline`` (PaDiM-style): per map position, the mean and Ledoit-Wolf shrunk covariance of the
  training patch features (optionally a random subset of d channels, as PaDiM does for C in the
  hundreds); a test patch scores its Mahalanobis distance sqrt((x - mu)^T Sigma^-1 (x - mu)). It is the
  map analogue of the vector benchmark's Mahalanobis row: what second-order statistics alone achieve.
* ``PatchCoreBaseline``: every training patch feature (after a 3 x 3 neighbourhood average, PatchCore's
  local aggregation) goes into a memory bank, reduced by greedy k-center selection (on a random
  projection to 128 dimensions, as PatchCore does); a test patch scores its Euclidean distance to the
  nearest bank entry.

Both return anomaly maps (B, h, w), higher = more anomalous, and image scores: the mean of the top 3 %
of the map (as for the flow, ``wtflow.scores.image_score``) or its maximum. ``upsample_maps`` brings
maps of any method to the mask size, with the optional Gaussian smoothing (sigma = 4 in PaDiM and
PatchCore) as a named option. Memory: the covariance fit and the scoring run over chunks of positions,
the nearest-neighbour search over chunks of test and bank patches (``torch.cdist`` blocks bounded by
``max_block_elements``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from wtflow.detectors.preprocessing import ledoit_wolf
from wtflow.scores import TOP_FRACTION, image_score

__all__ = [
    "AGGREGATIONS",
    "GaussianBaseline",
    "PatchCoreBaseline",
    "aggregate_maps",
    "greedy_coreset",
    "nearest_distances",
    "upsample_maps",
]

AGGREGATIONS = ("top", "max")


def _check_maps(name: str, maps: Tensor, channels: int | None = None, grid: tuple[int, int] | None = None) -> Tensor:
    maps = torch.as_tensor(maps)
    if maps.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, h, w), got {tuple(maps.shape)}")
    if channels is not None and (maps.shape[1] != channels or tuple(maps.shape[2:]) != grid):
        raise ValueError(f"{name} must have shape (N, {channels}, {grid[0]}, {grid[1]}), got {tuple(maps.shape)}")
    if maps.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(maps).all():
        raise ValueError(f"{name} contains NaN or inf")
    return maps.float()


def aggregate_maps(maps: Tensor, aggregation: str = "top", top_fraction: float = TOP_FRACTION) -> Tensor:
    """Image scores (B,) of anomaly maps (B, h, w): ``"top"`` = mean of the top ``top_fraction``, or ``"max"``."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose from {', '.join(AGGREGATIONS)}")
    if aggregation == "max":
        return maps.flatten(1).amax(dim=1)
    return image_score(maps, top_fraction)


def _gaussian_kernel(sigma: float) -> Tensor:
    radius = int(4.0 * sigma + 0.5)  # kernel 2 * int(4 sigma + 0.5) + 1 = 33 at sigma = 4, as anomalib's blur
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).float()


def upsample_maps(maps: Tensor, size: int | tuple[int, int], sigma: float | None = None) -> Tensor:
    """Bilinear upsampling (align_corners=False) of maps (B, h, w) to ``size``, then optionally a Gaussian
    blur of standard deviation ``sigma`` pixels (reflect padding, truncated at 4 sigma) -> (B, H, W)."""
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (B, h, w), got {tuple(maps.shape)}")
    size = (size, size) if isinstance(size, int) else tuple(size)
    out = F.interpolate(maps.unsqueeze(1).float(), size=size, mode="bilinear", align_corners=False)
    if sigma is not None:
        if not sigma > 0:
            raise ValueError(f"sigma must be positive or None, got {sigma!r}")
        kernel = _gaussian_kernel(sigma).to(out.device)
        radius = len(kernel) // 2
        if radius >= min(size):
            raise ValueError(f"sigma={sigma} needs maps larger than {radius} pixels for reflect padding, got {size}")
        out = F.conv2d(F.pad(out, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
        out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return out.squeeze(1)


class GaussianBaseline:
    """Per-position Gaussian of patch features, scored by Mahalanobis distance (PaDiM-style).

    The precisions take h * w * d^2 * 4 bytes: 13 MB for (112, 16, 16), 4 GiB for WideResNet-50's
    (1024, 32, 32) with all channels, 41 MB with ``channels=100``.

    Args:
        channels: keep a random subset of this many channels (None: all C).
        seed: seed of the channel subset.
        aggregation, top_fraction: image score from the map (see ``aggregate_maps``).
        position_chunk: positions whose (d, d) precisions are formed at once while scoring.
    """

    def __init__(
        self,
        channels: int | None = None,
        seed: int = 0,
        aggregation: str = "top",
        top_fraction: float = TOP_FRACTION,
        position_chunk: int = 64,
    ):
        if channels is not None and not (isinstance(channels, int) and channels >= 1):
            raise ValueError(f"channels must be a positive integer or None, got {channels!r}")
        aggregate_maps(torch.zeros(1, 1, 1), aggregation, top_fraction)  # validates both
        self.channels, self.seed = channels, seed
        self.aggregation, self.top_fraction, self.position_chunk = aggregation, top_fraction, position_chunk

    def fit(self, train_maps: Tensor) -> GaussianBaseline:
        """Fit on (N, C, h, w) maps of normal images; stores mean (h w, d) and precision (h w, d, d) float32."""
        train_maps = _check_maps("train_maps", train_maps)
        n, c, h, w = train_maps.shape
        if self.channels is None or self.channels >= c:
            index = torch.arange(c)
        else:
            index = torch.randperm(c, generator=torch.Generator().manual_seed(self.seed))[: self.channels].sort().values
        self.index, self.grid, self.in_channels = index, (h, w), c
        patches = train_maps[:, index].flatten(2)  # (N, d, h w) float32; one position at a time in float64
        d = len(index)
        self.mean = patches.double().mean(dim=0).T.float()  # (h w, d)
        self.precision = torch.empty(h * w, d, d)
        for p in range(h * w):
            cov, _ = ledoit_wolf(patches[:, :, p].double().numpy())
            if not np.trace(cov) > 0:  # every training patch equal here: Euclidean distance to the mean
                cov = np.eye(d)
            self.precision[p] = torch.from_numpy(np.linalg.inv(cov)).float()
        return self

    def score_maps(self, test_maps: Tensor) -> Tensor:
        """Mahalanobis distance maps (B, h, w) of test maps (B, C, h, w)."""
        if not hasattr(self, "precision"):
            raise RuntimeError("GaussianBaseline.score_maps called before fit")
        test_maps = _check_maps("test_maps", test_maps, self.in_channels, self.grid)
        diff = test_maps[:, self.index].flatten(2).permute(2, 0, 1) - self.mean[:, None]  # (h w, B, d)
        sq = torch.empty(diff.shape[:2])
        for start in range(0, diff.shape[0], self.position_chunk):
            part = slice(start, start + self.position_chunk)
            sq[part] = torch.einsum("pbi,pij,pbj->pb", diff[part], self.precision[part], diff[part])
        return sq.clamp_min(0).sqrt().T.reshape(-1, *self.grid)

    def score(self, test_maps: Tensor) -> tuple[Tensor, Tensor]:
        """(anomaly maps (B, h, w), image scores (B,)); higher = more anomalous."""
        maps = self.score_maps(test_maps)
        return maps, aggregate_maps(maps, self.aggregation, self.top_fraction)


def _projected(bank: Tensor, dim: int | None, seed: int) -> Tensor:
    if dim is None or bank.shape[1] <= dim:
        return bank
    generator = torch.Generator().manual_seed(seed)
    projection = torch.randn(bank.shape[1], dim, generator=generator) / math.sqrt(dim)  # Johnson-Lindenstrauss
    return bank @ projection


def greedy_coreset(
    bank: Tensor, ratio: float, projection_dim: int | None = 128, seed: int = 0, progress: bool = False
) -> Tensor:
    """Indices (k,) of a greedy k-center coreset of ``bank`` (M, D), k = max(1, ceil(ratio M)).

    Starting from a random point, each step adds the point farthest from the points chosen so far
    (Sener & Savarese 2018; PatchCore's selection). Distances are taken on a Gaussian random projection
    to ``projection_dim`` dimensions (None: none), which preserves them up to a small relative error.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"coreset ratio must lie in (0, 1], got {ratio!r}")
    m = bank.shape[0]
    k = max(1, math.ceil(ratio * m))
    if k >= m:
        return torch.arange(m)
    points = _projected(bank.float(), projection_dim, seed)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.empty(k, dtype=torch.long)
    chosen[0] = int(torch.randint(m, (1,), generator=generator))
    sq_norms = points.pow(2).sum(1)
    min_sq = torch.full((m,), math.inf)
    for i in tqdm(range(1, k), desc="coreset", disable=not progress, mininterval=1.0):
        last = points[chosen[i - 1]]
        # ||a - b||^2 = |a|^2 + |b|^2 - 2 a.b: one matrix-vector product per step.
        dist = sq_norms + sq_norms[chosen[i - 1]] - 2.0 * (points @ last)
        min_sq = torch.minimum(min_sq, dist)
        chosen[i] = int(min_sq.argmax())
    return chosen


def nearest_distances(queries: Tensor, bank: Tensor, max_block_elements: int = 2**24) -> Tensor:
    """Euclidean distance (Q,) of each query (Q, D) to its nearest row of bank (M, D), in blocks of at
    most ``max_block_elements`` distances (64 MiB of float32 by default)."""
    q_chunk = max(1, min(queries.shape[0], max_block_elements // max(1, min(bank.shape[0], 4096))))
    m_chunk = max(1, max_block_elements // q_chunk)
    out = torch.empty(queries.shape[0])
    for qs in range(0, queries.shape[0], q_chunk):
        q = queries[qs : qs + q_chunk]
        best = torch.full((q.shape[0],), math.inf)
        for ms in range(0, bank.shape[0], m_chunk):
            best = torch.minimum(best, torch.cdist(q, bank[ms : ms + m_chunk]).amin(dim=1))
        out[qs : qs + q_chunk] = best
    return out


class PatchCoreBaseline:
    """Nearest-neighbour patch scorer with a greedy k-center memory bank (PatchCore-style).

    Args:
        coreset_ratio: fraction of training patches kept in the bank (1.0: all).
        patch_size: neighbourhood averaged around each patch before banking/scoring (1: none; 3 as PatchCore).
        projection_dim: dimension of the random projection used for the coreset selection only.
        seed: seed of the projection and the first coreset point.
        aggregation, top_fraction: image score from the map (see ``aggregate_maps``).
        progress: progress bar over the coreset selection.
    """

    def __init__(
        self,
        coreset_ratio: float = 0.1,
        patch_size: int = 3,
        projection_dim: int | None = 128,
        seed: int = 0,
        aggregation: str = "top",
        top_fraction: float = TOP_FRACTION,
        progress: bool = False,
    ):
        if not (isinstance(patch_size, int) and patch_size >= 1 and patch_size % 2 == 1):
            raise ValueError(f"patch_size must be an odd positive integer, got {patch_size!r}")
        if not 0.0 < coreset_ratio <= 1.0:
            raise ValueError(f"coreset_ratio must lie in (0, 1], got {coreset_ratio!r}")
        aggregate_maps(torch.zeros(1, 1, 1), aggregation, top_fraction)
        self.coreset_ratio, self.patch_size, self.projection_dim, self.seed = (
            coreset_ratio,
            patch_size,
            projection_dim,
            seed,
        )
        self.aggregation, self.top_fraction, self.progress = aggregation, top_fraction, progress

    def _patches(self, maps: Tensor) -> Tensor:
        if self.patch_size > 1:
            pad = self.patch_size // 2
            # Zero padding at the border, as PatchCore's zero-padded unfold; the same for training and test patches.
            maps = F.avg_pool2d(maps, self.patch_size, stride=1, padding=pad, count_include_pad=True)
        return maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1])

    def fit(self, train_maps: Tensor) -> PatchCoreBaseline:
        """Build the memory bank (k, C) from (N, C, h, w) maps of normal images."""
        train_maps = _check_maps("train_maps", train_maps)
        self.in_channels, self.grid = train_maps.shape[1], tuple(train_maps.shape[2:])
        patches = self._patches(train_maps)
        index = greedy_coreset(patches, self.coreset_ratio, self.projection_dim, self.seed, self.progress)
        self.bank = patches[index].contiguous()
        return self

    def score_maps(self, test_maps: Tensor) -> Tensor:
        """Nearest-neighbour distance maps (B, h, w) of test maps (B, C, h, w)."""
        if not hasattr(self, "bank"):
            raise RuntimeError("PatchCoreBaseline.score_maps called before fit")
        test_maps = _check_maps("test_maps", test_maps, self.in_channels, self.grid)
        dist = nearest_distances(self._patches(test_maps), self.bank)
        return dist.reshape(test_maps.shape[0], *self.grid)

    def score(self, test_maps: Tensor) -> tuple[Tensor, Tensor]:
        """(anomaly maps (B, h, w), image scores (B,)); higher = more anomalous."""
        maps = self.score_maps(test_maps)
        return maps, aggregate_maps(maps, self.aggregation, self.top_fraction)
