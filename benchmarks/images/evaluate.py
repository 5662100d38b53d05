"""Scoring a category's test maps with any scorer and turning the maps into the harness's metrics.

A scorer is a callable ``maps(x) -> (B, h, w)`` on a batch of feature maps ``x`` (B, C, h, w): the flow's density
maps at K steps, the Flow-Mismatching maps, or a baseline's. Localisation maps are upsampled bilinearly to the
input resolution (optional Gaussian smoothing); the image score is the mean of the top ``top_fraction`` of the
upsampled detection map (Suppl. XI-D, K = 0.03).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "EXAMPLE_NAMES",
    "Evaluation",
    "evaluate_maps",
    "example_indices",
    "metrics_of_maps",
    "load_examples",
    "save_examples",
]

EXAMPLES_KIND = "image-examples"
EXAMPLE_NAMES = ("best", "median", "worst")


@dataclass
class Evaluation:
    """Metrics of one scorer on one category, with what the figures need.

    Attributes:
        metrics: image_auroc, image_f1_max, pixel_auroc, aupro, pixel_f1_max, and the bounds of the binned
            pixel metrics (``*_error``: |binned - exact|, ``benchmarks.images.pixel_stream``).
        image_scores: (N,) float32.
        maps: (N, R, R) float16 localisation maps at the input resolution.
    """

    metrics: dict[str, float]
    image_scores: Tensor
    maps: Tensor


def evaluate_maps(
    cfg,
    data,
    loc_maps: Callable[[Tensor], Tensor],
    det_maps: Callable[[Tensor], Tensor] | None = None,
    chunk: int = 32,
) -> Evaluation:
    """Score every test map of ``data`` (a ``CategoryData``) in chunks and compute the metrics.

    Args:
        cfg: the ``RunConfig`` (resolution, smoothing_sigma, top_fraction, fpr_limit).
        loc_maps: scorer for localisation (K = ``steps_loc`` for a flow).
        det_maps: scorer for the image score (K = ``steps_det``); None: reuse the localisation maps.

    Pixel metrics are accumulated in a fixed-size histogram (bounded memory at any resolution); the maps are
    kept in float16 only for the figures.
    """
    from wtflow.scores import image_score

    from .baselines import upsample_maps
    from .metrics import image_metrics
    from .pixel_stream import PixelMetricAccumulator

    size = (cfg.resolution, cfg.resolution)
    pixels = PixelMetricAccumulator(fpr_limit=cfg.fpr_limit)
    maps, scores = [], []
    n = len(data.test)
    for start in range(0, n, chunk):
        x = data.test[torch.arange(start, min(n, start + chunk))]
        loc = upsample_maps(loc_maps(x).float().cpu(), size, sigma=cfg.smoothing_sigma)
        det = loc if det_maps is None else upsample_maps(det_maps(x).float().cpu(), size, sigma=cfg.smoothing_sigma)
        pixels.update(loc, data.masks[start : start + len(x)])
        maps.append(loc.to(torch.float16))
        scores.append(image_score(det, cfg.top_fraction))
    all_scores = torch.cat(scores).float()
    metrics = {**image_metrics(all_scores, data.labels), **pixels.compute()}
    return Evaluation({k: float(v) for k, v in metrics.items()}, all_scores, torch.cat(maps))


def metrics_of_maps(cfg, data, maps: Tensor, image_scores: Tensor, chunk: int = 32) -> Evaluation:
    """Metrics of finished maps (N, R, R) at the input resolution and image scores (N,) from another tool."""
    from .metrics import image_metrics
    from .pixel_stream import PixelMetricAccumulator

    pixels = PixelMetricAccumulator(fpr_limit=cfg.fpr_limit)
    for start in range(0, len(maps), chunk):
        pixels.update(maps[start : start + chunk], data.masks[start : start + chunk])
    metrics = {**image_metrics(image_scores, data.labels), **pixels.compute()}
    return Evaluation({k: float(v) for k, v in metrics.items()}, image_scores, maps.to(torch.float16))


def example_indices(labels: Tensor, scores: Tensor) -> dict[str, int]:
    """Test indices of the best, median and worst anomalous image, ranked by image score (highest = best)."""
    anomalous = torch.nonzero(labels == 1).flatten()
    order = anomalous[torch.argsort(scores[anomalous], descending=True, stable=True)]
    return {"best": int(order[0]), "median": int(order[len(order) // 2]), "worst": int(order[-1])}


def save_examples(cell: Path, evaluation: Evaluation, labels: Tensor) -> Path:
    """Store the image scores and the maps of the best, median and worst anomalous test images."""
    from wtflow.checkpoint import save_checkpoint

    picks = example_indices(labels, evaluation.image_scores)
    payload = {
        "image_scores": evaluation.image_scores.clone(),
        "indices": torch.tensor([picks[k] for k in EXAMPLE_NAMES]),
        "maps": evaluation.maps[[picks[k] for k in EXAMPLE_NAMES]].clone(),
    }
    return save_checkpoint(Path(cell) / "examples.pt", EXAMPLES_KIND, payload)


def load_examples(cell: Path) -> dict[str, Tensor]:
    from wtflow.checkpoint import load_checkpoint

    return load_checkpoint(Path(cell) / "examples.pt", EXAMPLES_KIND)
