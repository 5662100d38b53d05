"""Synthetic defects with exact masks, their kinds, sizes and magnitudes fixed here before any detector ran.

Each maker takes a clean (S, S, 3) uint8 crop and returns (defective crop, mask (S, S) bool, info); pixels outside
the mask are left bit-identical, so the mask is exactly the set of pixels the defect may change.

Sizes: every defect is drawn in one of three size classes, with a characteristic extent (a fraction of the crop
side) uniform in ``SIZE_CLASSES[name]``. Kinds and magnitudes:

- ``patch``: a square of side = extent, pasted from another photo (foreign material).
- ``scratch``: a straight stroke of length 3 x extent (at most 0.9 S) and width 1 / 2 / 3 px by size class, set to
  near-white (0.95) or near-black (0.05).
- ``spot``: an ellipse (diameter = extent, aspect 0.6-1) whose colour is shifted by +0.25 in one channel and -0.15
  in the other two (a stain).
- ``smudge``: an ellipse (diameter 1.2 x extent) blurred (Gaussian, sigma 4 px at S = 128, scaled with S) and
  darkened to 80 %.
- ``hole``: an ellipse (diameter = extent) filled with the crop's mean colour times 0.25 (missing material).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFECTS", "SIZE_CLASSES", "make_defect"]

DEFECTS = ("patch", "scratch", "spot", "smudge", "hole")
SIZE_CLASSES = {"small": (0.06, 0.10), "medium": (0.12, 0.20), "large": (0.22, 0.32)}
_SCRATCH_WIDTH = {"small": 1, "medium": 2, "large": 3}


def _ellipse(rng, size: int, diameter: float) -> np.ndarray:
    from skimage.draw import ellipse

    radius = max(diameter / 2, 1.5)
    minor = radius * rng.uniform(0.6, 1.0)
    center = rng.uniform(radius + 1, size - radius - 1, size=2)
    rr, cc = ellipse(center[0], center[1], radius, minor, shape=(size, size), rotation=rng.uniform(0, np.pi))
    mask = np.zeros((size, size), dtype=bool)
    mask[rr, cc] = True
    return mask


def _stroke(rng, size: int, length: float, width: int) -> np.ndarray:
    from skimage.draw import polygon

    angle = rng.uniform(0, np.pi)
    half = np.array([np.sin(angle), np.cos(angle)]) * length / 2
    normal = np.array([np.cos(angle), -np.sin(angle)]) * width / 2
    center = rng.uniform(length / 2 + 2, size - length / 2 - 2, size=2) if length < size - 4 else np.full(2, size / 2)
    corners = np.array([center + half + normal, center + half - normal, center - half - normal, center - half + normal])
    rr, cc = polygon(corners[:, 0], corners[:, 1], shape=(size, size))
    mask = np.zeros((size, size), dtype=bool)
    mask[rr, cc] = True
    return mask


def _apply(crop: np.ndarray, mask: np.ndarray, new: np.ndarray) -> np.ndarray:
    out = crop.copy()
    out[mask] = np.clip(np.round(new[mask] * 255.0), 0, 255).astype(np.uint8)
    return out


def make_defect(
    kind: str, crop: np.ndarray, size_class: str, rng: np.random.Generator, foreign: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict]:
    """One defect of ``kind`` and ``size_class`` on ``crop`` (S, S, 3) uint8; ``foreign``: a same-size crop of
    another photo (used by ``patch``). Returns (defective uint8 crop, mask bool, info dict of drawn parameters)."""
    if kind not in DEFECTS:
        raise ValueError(f"unknown defect {kind!r}; expected one of {', '.join(DEFECTS)}")
    if size_class not in SIZE_CLASSES:
        raise ValueError(f"unknown size class {size_class!r}; expected one of {', '.join(SIZE_CLASSES)}")
    size = crop.shape[0]
    extent = rng.uniform(*SIZE_CLASSES[size_class]) * size
    image = crop.astype(np.float64) / 255.0
    info: dict = {"extent_px": round(float(extent), 2)}
    if kind == "patch":
        side = max(int(round(extent)), 2)
        r, c = rng.integers(1, size - side, size=2)
        mask = np.zeros((size, size), dtype=bool)
        mask[r : r + side, c : c + side] = True
        new = foreign.astype(np.float64) / 255.0
    elif kind == "scratch":
        mask = _stroke(rng, size, min(3 * extent, 0.9 * size), _SCRATCH_WIDTH[size_class])
        info["value"] = value = 0.95 if rng.random() < 0.5 else 0.05
        new = np.full_like(image, value)
    elif kind == "spot":
        mask = _ellipse(rng, size, extent)
        info["channel"] = channel = int(rng.integers(3))
        shift = np.full(3, -0.15)
        shift[channel] = 0.25
        new = image + shift
    elif kind == "smudge":
        from scipy.ndimage import gaussian_filter

        mask = _ellipse(rng, size, 1.2 * extent)
        sigma = 4.0 * size / 128
        new = 0.8 * gaussian_filter(image, sigma=(sigma, sigma, 0.0))
    else:  # hole
        mask = _ellipse(rng, size, extent)
        new = np.broadcast_to(0.25 * image.reshape(-1, 3).mean(axis=0), image.shape)
    return _apply(crop, mask, new), mask, info
