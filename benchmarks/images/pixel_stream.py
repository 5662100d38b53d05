"""Pixel metrics of a whole category in constant memory: ``PixelMetricAccumulator.update(maps, masks)`` per batch.

How: every score is put in one of 2**20 bins by the top 20 bits of its float32 bit pattern (made monotone), so the
bins cover every float32 value with a relative width of 2**-11 (about 0.05 %) and need no range fixed in advance.
Per bin the accumulator keeps the count of normal pixels, the count of anomalous pixels, and the sum of the PRO and
sPRO increments (see ``benchmarks.images.metrics``) of the anomalous pixels: four arrays of 2**20 numbers, 32 MiB in
all, whatever the number of images.

The curves are then exact at every bin edge and linear in between, so each result comes with a bound on its
difference from the exact value, computed from the same histograms:

- AUROC: pixels sharing a bin count as ties (half a pair); error <= 0.5 * sum_b pos_b * neg_b / (P * N).
- AUPRO / AUsPRO: the exact curve crosses bin b inside the rectangle of its end points, the binned curve is the
  diagonal: error <= sum_b dFPR_b * dPRO_b / 2 (the bin that crosses the limit counted in full), / fpr_limit.
- F1-max: the binned value is the best bin-edge threshold; error <= the largest F1 a threshold inside a bin could
  reach (TP of the bin's lower edge, FP of its upper edge) minus that value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .metrics import DefectList, _as_numpy, area_under_limit, connected_regions, region_increments

__all__ = ["N_BINS", "PixelMetricAccumulator", "score_bins"]

_SHIFT = 12
N_BINS = 1 << (32 - _SHIFT)


def score_bins(scores: np.ndarray) -> np.ndarray:
    """Bin index in [0, N_BINS) of each score, non-decreasing in the score (float32 bit pattern, top 20 bits)."""
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.int32)
    monotone = np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits)
    return (monotone >> _SHIFT).astype(np.int64) + (N_BINS >> 1)


class PixelMetricAccumulator:
    """Streaming pixel AUROC, pixel F1-max, AUPRO and (with LOCO defects) sPRO over batches of maps.

    ``update(maps (B, H, W), masks (B, H, W) bool, defects=None)``; ``defects``: per image the (region, saturation)
    pairs of its defects, for sPRO. ``compute()`` returns the metrics and their error bounds (module docstring).
    """

    def __init__(self, fpr_limit: float = 0.3) -> None:
        self.fpr_limit = fpr_limit
        self.neg = np.zeros(N_BINS, dtype=np.int64)
        self.pos = np.zeros(N_BINS, dtype=np.int64)
        self.pro = np.zeros(N_BINS)
        self.spro_neg = np.zeros(N_BINS, dtype=np.int64)
        self.spro = np.zeros(N_BINS)
        self.n_regions = 0
        self.n_defects = 0

    def update(self, maps, masks, defects: Sequence[DefectList] | None = None) -> None:
        maps_np = _as_numpy(maps, "maps")
        masks_np = _as_numpy(masks, "masks", dtype=bool)
        if maps_np.shape != masks_np.shape or maps_np.ndim != 3:
            raise ValueError(f"maps and masks must both be (B, H, W), got {maps_np.shape} and {masks_np.shape}")
        if defects is not None and len(defects) != maps_np.shape[0]:
            raise ValueError(f"defects: one list per image expected, got {len(defects)} for {maps_np.shape[0]} maps")
        bins = score_bins(maps_np)
        self.neg += np.bincount(bins[~masks_np], minlength=N_BINS)
        self.pos += np.bincount(bins[masks_np], minlength=N_BINS)
        for i, (scores, mask) in enumerate(zip(maps_np, masks_np)):
            labels, count = connected_regions(mask)
            for r in range(1, count + 1):
                region = labels == r
                self._add(self.pro, scores, region, float(region.sum()))
            self.n_regions += count
            if defects is not None:
                anomalous = np.zeros(mask.shape, dtype=bool)
                for region, saturation in defects[i]:
                    region = np.asarray(region, dtype=bool)
                    self._add(self.spro, scores, region, float(saturation))
                    anomalous |= region
                    self.n_defects += 1
                self.spro_neg += np.bincount(bins[i][~anomalous], minlength=N_BINS)

    @staticmethod
    def _add(target: np.ndarray, scores: np.ndarray, region: np.ndarray, saturation: float) -> None:
        values, increments = region_increments(scores, region, saturation)
        np.add.at(target, score_bins(values), increments)

    def _curve(self, neg: np.ndarray, gain: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(FPR, overlap) at every bin edge from the top, starting at (0, 0)."""
        fpr = np.r_[0.0, np.cumsum(neg[::-1]) / max(int(neg.sum()), 1)]
        return fpr, np.r_[0.0, np.cumsum(gain[::-1]) / n]

    def _area_and_bound(self, fpr: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        value = area_under_limit(fpr, y, self.fpr_limit)
        d_fpr = np.diff(np.minimum(fpr, self.fpr_limit))
        d_y = np.diff(y)
        crossing = (fpr[:-1] < self.fpr_limit) & (fpr[1:] > self.fpr_limit)
        bound = np.sum(np.where(crossing, d_fpr * d_y, d_fpr * d_y / 2)) / self.fpr_limit
        return value, float(bound)

    def compute(self) -> dict[str, float]:
        """{pixel_auroc, pixel_auroc_error, pixel_f1_max, pixel_f1_max_error, aupro, aupro_error[, spro,
        spro_error]}; errors are upper bounds on |binned - exact|."""
        n_pos, n_neg = int(self.pos.sum()), int(self.neg.sum())
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"pixel metrics need anomalous and normal pixels, got {n_pos} and {n_neg}")
        tp = np.r_[0, np.cumsum(self.pos[::-1])]
        fp = np.r_[0, np.cumsum(self.neg[::-1])]
        auroc = float(np.trapezoid(tp / n_pos, fp / n_neg))
        out = {
            "pixel_auroc": auroc,
            "pixel_auroc_error": float(0.5 * np.dot(self.pos, self.neg.astype(np.float64)) / (n_pos * n_neg)),
        }
        f1 = 2 * tp / (tp + fp + n_pos)
        f1_inside = 2 * tp[1:] / (tp[1:] + fp[:-1] + n_pos)
        out["pixel_f1_max"] = float(f1.max())
        out["pixel_f1_max_error"] = float(max(f1_inside.max() - f1.max(), 0.0))
        out["aupro"], out["aupro_error"] = self._area_and_bound(*self._curve(self.neg, self.pro, self.n_regions))
        if self.n_defects:
            fpr, y = self._curve(self.spro_neg, self.spro, self.n_defects)
            out["spro"], out["spro_error"] = self._area_and_bound(fpr, y)
        return out
