"""Image and pixel metrics of anomaly detection: image AUROC, F1-max, pixel AUROC, AUPRO and sPRO.

Conventions (higher score = more anomalous; masks: True = anomalous pixel):

- AUROC and image/pixel F1-max call scikit-learn (``roc_auc_score``, ``precision_recall_curve``).
- PRO (per-region overlap): the regions are the connected components of each image's mask (8-connectivity,
  ``scipy.ndimage.label`` with a 3 x 3 structure). At a threshold ``tau`` the PRO is the mean over all regions of
  the fraction of the region's pixels scoring >= ``tau``; the FPR is the fraction of normal pixels scoring >= ``tau``.
- sPRO (MVTec LOCO AD, Bergmann et al., IJCV 2022): every defect mask ``d`` has a saturation threshold ``s_d``
  (pixels); at ``tau`` the sPRO is the mean over defects of ``min(TP_d(tau) / s_d, 1)``. The FPR counts the pixels
  outside every defect mask. PRO is the special case ``s_d`` = area of ``d``.
- AUPRO / AUsPRO: the area under the (FPR, PRO) curve from FPR 0 to ``fpr_limit``, divided by ``fpr_limit`` so that a
  perfect detector scores 1. The curve is evaluated at every distinct score (duplicate thresholds merged), joined
  linearly, and interpolated linearly at the limit.

The exact functions hold every pixel: about 100 bytes per pixel at the peak (40 maps of 512 x 512 took 1.7 GB
and 38 s on one CPU core), too much for a whole category at 512 x 512. ``PixelMetricAccumulator`` in
``benchmarks.images.pixel_stream`` gives the same metrics in constant memory with a computed error bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "area_under_limit",
    "aupro",
    "connected_regions",
    "curve_from_increments",
    "f1_max",
    "image_auroc",
    "image_metrics",
    "pixel_auroc",
    "pixel_f1_max",
    "pro_curve",
    "region_increments",
    "spro",
    "spro_curve",
]

DefectList = Sequence[tuple[np.ndarray, float]]


def _as_numpy(x, name: str, dtype=np.float64) -> np.ndarray:
    array = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    array = array.astype(dtype, copy=False)
    if dtype == np.float64 and not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {int((~np.isfinite(array)).sum())} NaN/inf entries")
    return array


def _maps_and_masks(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    maps_np = _as_numpy(maps, "maps")
    masks_np = _as_numpy(masks, "masks", dtype=bool)
    if maps_np.shape != masks_np.shape or maps_np.ndim != 3:
        raise ValueError(f"maps and masks must both be (N, H, W), got {maps_np.shape} and {masks_np.shape}")
    return maps_np, masks_np


def _binary(scores, labels, what: str) -> tuple[np.ndarray, np.ndarray]:
    scores_np = _as_numpy(scores, f"{what} scores").ravel()
    labels_np = _as_numpy(labels, f"{what} labels", dtype=np.int64).ravel()
    if scores_np.shape != labels_np.shape:
        raise ValueError(f"{what}: {scores_np.size} scores but {labels_np.size} labels")
    if not np.isin(labels_np, (0, 1)).all():
        raise ValueError(f"{what} labels must be 0/1")
    if labels_np.min(initial=1) == labels_np.max(initial=0):
        raise ValueError(f"{what}: AUROC and F1 need both normal and anomalous examples, got only label {labels_np[0]}")
    return scores_np, labels_np


def image_auroc(scores, labels) -> float:
    """Area under the ROC curve of image scores (N,) against labels (N,) in {0, 1} (scikit-learn)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(*reversed(_binary(scores, labels, "image"))))


def f1_max(scores, labels) -> float:
    """The largest F1 score over all thresholds of ``scores`` (any shape) against 0/1 ``labels`` (same size)."""
    from sklearn.metrics import precision_recall_curve

    scores_np, labels_np = _binary(scores, labels, "F1")
    precision, recall, _ = precision_recall_curve(labels_np, scores_np)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(f1.max())


def image_metrics(scores, labels) -> dict[str, float]:
    """{"image_auroc", "image_f1_max"} of image scores (N,) against labels (N,) in {0, 1}."""
    return {"image_auroc": image_auroc(scores, labels), "image_f1_max": f1_max(scores, labels)}


def pixel_auroc(maps, masks) -> float:
    """AUROC over all pixels of anomaly maps (N, H, W) against boolean masks (N, H, W) (scikit-learn)."""
    maps_np, masks_np = _maps_and_masks(maps, masks)
    return image_auroc(maps_np.ravel(), masks_np.ravel())


def pixel_f1_max(maps, masks) -> float:
    """F1-max over all pixels of anomaly maps (N, H, W) against boolean masks (N, H, W)."""
    maps_np, masks_np = _maps_and_masks(maps, masks)
    return f1_max(maps_np.ravel(), masks_np.ravel())


def connected_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a boolean (H, W) mask with 8-connectivity: (labels (H, W) int, count)."""
    from scipy.ndimage import label

    labels, count = label(np.asarray(mask, dtype=bool), structure=np.ones((3, 3), dtype=bool))
    return labels, int(count)


def region_increments(scores: np.ndarray, region: np.ndarray, saturation: float) -> tuple[np.ndarray, np.ndarray]:
    """The scores of ``region``'s pixels and, per pixel, the rise of ``min(TP / saturation, 1)`` when the threshold
    passes it (pixels taken in decreasing score): (scores (k,), increments (k,)); the increments sum to
    min(area / saturation, 1)."""
    if not saturation > 0:
        raise ValueError(f"saturation must be positive, got {saturation!r}")
    values = np.sort(scores[region])[::-1]
    reached = np.minimum(np.arange(1, values.size + 1) / saturation, 1.0)
    return values, np.diff(reached, prepend=0.0)


def curve_from_increments(
    neg_scores: np.ndarray, pos_scores: np.ndarray, pos_increments: np.ndarray, n_regions: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (FPR, overlap) curve: FPR from the normal pixels' scores, overlap = cumulative increments / n_regions,
    one point per distinct threshold, starting at (0, 0). Returns two float64 arrays of equal length."""
    scores = np.concatenate([neg_scores, pos_scores])
    is_neg = np.concatenate([np.ones(neg_scores.size), np.zeros(pos_scores.size)])
    weights = np.concatenate([np.zeros(neg_scores.size), pos_increments])
    order = np.argsort(-scores, kind="stable")
    scores = scores[order]
    ends = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
    fpr = np.cumsum(is_neg[order])[ends] / max(neg_scores.size, 1)
    overlap = np.cumsum(weights[order])[ends] / n_regions
    return np.r_[0.0, fpr], np.r_[0.0, overlap]


def area_under_limit(fpr: np.ndarray, y: np.ndarray, fpr_limit: float) -> float:
    """Area under the piecewise-linear curve (fpr, y) (fpr non-decreasing) from 0 to ``fpr_limit``, divided by
    ``fpr_limit``; the curve is interpolated linearly at the limit."""
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must lie in (0, 1], got {fpr_limit!r}")
    inside = fpr <= fpr_limit
    x, v = fpr[inside], y[inside]
    if x[-1] < fpr_limit and inside.sum() < fpr.size:
        j = int(np.flatnonzero(~inside)[0])
        x0, x1, y0, y1 = fpr[j - 1], fpr[j], y[j - 1], y[j]
        x, v = np.r_[x, fpr_limit], np.r_[v, y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)]
    return float(np.trapezoid(v, x) / fpr_limit)


def pro_curve(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    """Exact (FPR, PRO) curve of anomaly maps (N, H, W) against masks (N, H, W); see the module docstring."""
    maps_np, masks_np = _maps_and_masks(maps, masks)
    pos_scores, pos_inc, n_regions = [], [], 0
    for scores, mask in zip(maps_np, masks_np):
        labels, count = connected_regions(mask)
        for r in range(1, count + 1):
            region = labels == r
            s, inc = region_increments(scores, region, float(region.sum()))
            pos_scores.append(s)
            pos_inc.append(inc)
        n_regions += count
    if n_regions == 0:
        raise ValueError("PRO needs at least one anomalous pixel in the masks")
    if masks_np.all():
        raise ValueError("PRO needs at least one normal pixel in the masks")
    return curve_from_increments(maps_np[~masks_np], np.concatenate(pos_scores), np.concatenate(pos_inc), n_regions)


def aupro(maps, masks, fpr_limit: float = 0.3) -> float:
    """Normalised area under the exact PRO curve up to ``fpr_limit`` (1 = perfect); maps and masks (N, H, W)."""
    return area_under_limit(*pro_curve(maps, masks), fpr_limit)


def spro_curve(maps, defects: Sequence[DefectList]) -> tuple[np.ndarray, np.ndarray]:
    """Exact (FPR, sPRO) curve. ``defects[i]``: the (region (H, W) bool, saturation pixels) pairs of image ``i``
    (empty for a normal image), e.g. from ``benchmarks.images.data.defect_regions``."""
    maps_np = _as_numpy(maps, "maps")
    if maps_np.ndim != 3 or len(defects) != maps_np.shape[0]:
        raise ValueError(f"maps must be (N, H, W) with one defect list per image, got {maps_np.shape}, {len(defects)}")
    neg, pos_scores, pos_inc, n_defects = [], [], [], 0
    for scores, image_defects in zip(maps_np, defects):
        anomalous = np.zeros(scores.shape, dtype=bool)
        for region, saturation in image_defects:
            region = np.asarray(region, dtype=bool)
            if region.shape != scores.shape:
                raise ValueError(f"a defect region is {region.shape} but its map is {scores.shape}")
            s, inc = region_increments(scores, region, float(saturation))
            pos_scores.append(s)
            pos_inc.append(inc)
            anomalous |= region
            n_defects += 1
        neg.append(scores[~anomalous])
    if n_defects == 0:
        raise ValueError("sPRO needs at least one defect region")
    return curve_from_increments(np.concatenate(neg), np.concatenate(pos_scores), np.concatenate(pos_inc), n_defects)


def spro(maps, defects: Sequence[DefectList], fpr_limit: float = 0.3) -> float:
    """Normalised area under the exact sPRO curve up to ``fpr_limit`` (1 = perfect)."""
    return area_under_limit(*spro_curve(maps, defects), fpr_limit)
