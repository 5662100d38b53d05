"""Anomaly scores from the transported endpoint phi = x_1-hat (Algorithm 1, "Anomaly Score").

* ``"density"``: the density proxy A(phi) = 1 - exp(-phi^2 / 2) / sqrt(2 pi) of eq. 2,
  element-wise; for vectors averaged over the D entries, for feature maps
  averaged over channels into an anomaly map, upsampled to the image size,
  and reduced to an image score by the mean of the top 3 % of the map (Suppl. XI-D).
* ``"norm"``: ||phi|| (per sample for vectors; per pixel over channels for feature maps).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._validation import check_choice, check_finite

__all__ = ["SCORES", "anomaly_map", "density_proxy", "image_score", "score_endpoints"]

SCORES = ("density", "norm")

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
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        amap = F.interpolate(amap.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
    return amap


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
