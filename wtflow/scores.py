"""Anomaly scores from the transported endpoint phi = x_1-hat (Algorithm 1, "Anomaly Score").

* ``"density"``: the density proxy A(phi) = 1 - exp(-phi^2 / 2) / sqrt(2 pi) of eq. 2,
  element-wise; for vectors averaged over the D entries, for feature maps
  averaged over channels into an anomaly map, upsampled to the image size,
  and reduced to an image score by the mean of the top 3 % of the map (Suppl. XI-D).
* ``"norm"``: ||phi|| (per sample for vectors; per pixel over channels for feature maps).

``velocity_mismatch`` / ``aggregate_mismatch`` implement the Flow-Mismatching scorer (velocity
disagreement along probe paths toward the test point), for any trained field and either path direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._validation import check_choice, check_finite

__all__ = [
    "MISMATCH_WEIGHTINGS",
    "SCORES",
    "aggregate_mismatch",
    "anomaly_map",
    "as_image_size",
    "density_proxy",
    "image_score",
    "mismatch_times",
    "score_endpoints",
    "upsample_map",
    "velocity_mismatch",
]

SCORES = ("density", "norm")
MISMATCH_WEIGHTINGS = ("none", "denoise")

TOP_FRACTION = 0.03


def density_proxy(phi: Tensor) -> Tensor:
    """Element-wise A(phi) = 1 - exp(-phi^2/2)/sqrt(2 pi) (eq. 2); same shape as ``phi``."""
    return 1.0 - torch.exp(-0.5 * phi.pow(2)) / math.sqrt(2.0 * math.pi)


def anomaly_map(phi: Tensor, score: str = "density", image_size: tuple[int, int] | int | None = None) -> Tensor:
    """Pixel anomaly map of feature-map endpoints.

    Args:
        phi: (B, C, H, W) endpoints.
        score: ``"density"`` (channel mean of eq. 2) or ``"norm"`` (channel-wise L2 norm per pixel).
        image_size: if given, bilinear upsampling (align_corners=False) to this (H', W').

    Returns:
        (B, H, W) or (B, H', W').
    """
    check_choice("score", score, SCORES)
    if phi.ndim != 4:
        raise ValueError(f"phi must have shape (B, C, H, W), got {tuple(phi.shape)}")
    check_finite("phi", phi)
    amap = density_proxy(phi).mean(dim=1) if score == "density" else phi.norm(dim=1)
    return amap if image_size is None else upsample_map(amap, image_size)


def as_image_size(image_size: tuple[int, int] | int) -> tuple[int, int]:
    """``image_size`` as an (H', W') pair of positive ints (an int means a square); ``ValueError`` otherwise."""
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    try:
        size = tuple(size)
    except TypeError:
        size = ()
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size):
        raise ValueError(f"image_size must be a positive int or a pair of them, got {image_size!r}")
    return size


def upsample_map(amap: Tensor, image_size: tuple[int, int] | int) -> Tensor:
    """Bilinear upsampling (align_corners=False) of (B, H, W) maps to (B, H', W') = ``image_size``."""
    if amap.ndim != 3:
        raise ValueError(f"amap must have shape (B, H, W), got {tuple(amap.shape)}")
    size = as_image_size(image_size)
    return F.interpolate(amap.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def image_score(amap: Tensor, top_fraction: float = TOP_FRACTION) -> Tensor:
    """Mean of the top ``top_fraction`` of each map (Suppl. XI-D: K = 0.03).

    The number of pixels kept is k = max(1, floor(top_fraction * H * W)).

    Args:
        amap: (B, H, W) anomaly maps.

    Returns:
        (B,) image scores.
    """
    if not (0.0 < top_fraction <= 1.0):
        raise ValueError(f"top_fraction must lie in (0, 1], got {top_fraction!r}")
    if amap.ndim != 3:
        raise ValueError(f"amap must have shape (B, H, W), got {tuple(amap.shape)}")
    flat = amap.flatten(1)
    k = max(1, math.floor(top_fraction * flat.shape[1]))
    return flat.topk(k, dim=1).values.mean(dim=1)


def score_endpoints(
    phi: Tensor,
    score: str = "density",
    image_size: tuple[int, int] | int | None = None,
    top_fraction: float = TOP_FRACTION,
) -> Tensor:
    """Per-sample anomaly scores (higher = more anomalous) of endpoints ``phi``.

    Args:
        phi: (N, D) vectors, or (B, C, H, W) feature maps.
        score: ``"density"`` (eq. 2) or ``"norm"`` (||phi||).
        image_size, top_fraction: feature maps only (see ``anomaly_map`` / ``image_score``).

    Returns:
        (N,) scores.
    """
    check_choice("score", score, SCORES)
    check_finite("phi", phi)
    if phi.ndim == 4:
        return image_score(anomaly_map(phi, score, image_size), top_fraction)
    if phi.ndim < 2:
        raise ValueError(f"phi must have shape (N, D) or (B, C, H, W), got {tuple(phi.shape)}")
    flat = phi.flatten(1)
    return density_proxy(flat).mean(dim=1) if score == "density" else flat.norm(dim=1)


def velocity_mismatch(
    velocity: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    probes: Tensor,
    times: Tensor,
    data_time: float,
    weighting: str = "denoise",
    rows_per_call: int | None = None,
) -> Tensor:
    """Flow-Mismatching discrepancy of a field along straight paths between probes and test points.

    For every test point x_i, probe eps_m and time t_j, with the data end of the path at ``data_time``
    (1 for a forward flow, noise -> data; 0 for rFM, data -> target):

        x_t = (1 - t) a + t b,   (a, b) = (eps, x) if data_time = 1 else (x, eps),
        m_ijm = w(t) * mean_c (v(x_t, t) - (b - a))_c^2,

    the squared difference between the learned velocity and the geometric velocity of the path through
    x, averaged over axis 1 (features of a vector, channels of a feature map). w(t) = (t - data_time)^2
    for ``"denoise"`` turns m into the squared error of the one-step estimate x_t + (data_time - t) v of
    x; ``"none"`` keeps w = 1.

    Args:
        velocity: v(x_t, t) with x_t (R, *event_shape) and t (R,).
        x: (N, *event_shape) test points; probes: (M, *event_shape); times: (J,).
        rows_per_call: largest number of path points per call of ``velocity`` (None: all N M J at once).

    Returns:
        (N, M, J) for vectors, (N, M, J, H, W) for (C, H, W) feature maps.
    """
    check_choice("weighting", weighting, MISMATCH_WEIGHTINGS)
    if data_time not in (0.0, 1.0):
        raise ValueError(f"data_time must be 0.0 or 1.0, got {data_time!r}")
    if probes.shape[1:] != x.shape[1:]:
        raise ValueError(f"probes must have shape (M, {', '.join(map(str, x.shape[1:]))}), got {tuple(probes.shape)}")
    n, m, j = x.shape[0], probes.shape[0], times.shape[0]
    rows = n * m * j
    chunk = rows if rows_per_call is None else rows_per_call
    weights = (times - data_time).pow(2) if weighting == "denoise" else None
    out = []
    # Rows enumerate (i, m, j) in C order; each chunk builds only its own path points.
    for start in range(0, rows, chunk):
        r = torch.arange(start, min(start + chunk, rows), device=x.device)
        xi, ei, t = x[r // (m * j)], probes[(r // j) % m], times[r % j]
        a, b = (ei, xi) if data_time == 1.0 else (xi, ei)
        tt = t.view(-1, *([1] * (x.ndim - 1)))
        v = velocity((1.0 - tt) * a + tt * b, t)
        mismatch = (v - (b - a)).pow(2).mean(dim=1)
        out.append(mismatch)
    mismatch = torch.cat(out).reshape(n, m, j, *out[0].shape[1:])
    if weights is not None:
        mismatch = mismatch * weights.view(1, 1, j, *([1] * (mismatch.ndim - 3)))
    return mismatch


def mismatch_times(t_low: float, t_high: float, n_times: int) -> Tensor:
    """(n_times,) float32 probe times equally spaced in [t_low, t_high]; one time is the midpoint."""
    if n_times == 1:
        return torch.tensor([0.5 * (t_low + t_high)], dtype=torch.float32)
    return torch.linspace(t_low, t_high, n_times, dtype=torch.float32)


def aggregate_mismatch(mismatch: Tensor) -> Tensor:
    """Median over probes of the mean over times: (N, M, J, ...) -> (N, ...).

    The mean over t pools coarse and fine scales; the median over probes is robust to the occasional
    probe whose path crosses a poorly learned region (a heavy tail a mean would let dominate). For
    an even number of probes torch's lower median is taken.
    """
    if mismatch.ndim < 3:
        raise ValueError(f"mismatch must have shape (N, M, J, ...), got {tuple(mismatch.shape)}")
    return mismatch.mean(dim=2).median(dim=1).values
