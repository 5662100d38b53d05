"""The toolkit's image AUROC, F1-max, pixel AUROC, pixel F1-max and AUPRO@0.3 against anomalib's (>= 2.3).

Both sides compute every metric exactly (all distinct thresholds; anomalib's AUPRO is exact from 2.3 on, and it
divides by the FPR limit as ours does), so the only difference is anomalib's float32 arithmetic (torchmetrics
curves in float32; ours in float64): tolerance 1e-6, about ten float32 ulps at 1. The streamed, binned pixel
metrics (``benchmarks.images.pixel_stream``) must agree within their own stated error bound plus that tolerance.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from anomalib import __version__ as anomalib_version
from anomalib.metrics import AUPRO, AUROC, F1Max

from benchmarks.images import metrics
from benchmarks.images.pixel_stream import PixelMetricAccumulator

TOLERANCE = 1e-6


def _masks(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n // 2):
        for _ in range(2):
            r, c = rng.integers(0, size - 8, 2)
            side = rng.integers(2, 8)
            masks[i, r : r + side, c : c + side] = True
    masks[0, 20, 20] = masks[0, 21, 21] = True  # touching only diagonally: one region under 8-connectivity
    return masks


def _maps(kind: str, rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    maps = rng.random(masks.shape).astype(np.float32)
    if kind != "random":  # regions lifted by a per-image amount: partly separable, as real maps are
        maps = maps + 1.5 * masks * rng.random((len(masks), 1, 1)).astype(np.float32)
    if kind == "ties":  # a quantised map: many equal scores across normal and anomalous pixels
        maps = np.round(maps * 4) / 4
    return maps


def _anomalib_value(metric, **fields) -> float:
    metric.update(SimpleNamespace(**{k: torch.from_numpy(np.asarray(v)) for k, v in fields.items()}))
    return float(metric.compute())


@pytest.mark.parametrize("kind", ["random", "structured", "ties"])
def test_metrics_agree_with_anomalib(kind):
    major, minor = (int(v) for v in anomalib_version.split(".")[:2])
    assert (major, minor) >= (2, 3), f"anomalib {anomalib_version}: AUPRO before 2.3 used another normalisation"
    rng = np.random.default_rng({"random": 0, "structured": 1, "ties": 2}[kind])
    masks = _masks(rng, 8, 32)
    maps = _maps(kind, rng, masks)
    labels = masks.reshape(len(masks), -1).any(axis=1).astype(np.int64)
    scores = maps.reshape(len(maps), -1).max(axis=1)
    image = {"pred_score": scores, "gt_label": labels}
    pixel = {"anomaly_map": maps, "gt_mask": masks}
    checks = {  # name: (toolkit value, anomalib metric class, the batch fields it reads, its options)
        "image_auroc": (metrics.image_auroc(scores, labels), AUROC, image, {}),
        "image_f1_max": (metrics.f1_max(scores, labels), F1Max, image, {}),
        "pixel_auroc": (metrics.pixel_auroc(maps, masks), AUROC, pixel, {}),
        "pixel_f1_max": (metrics.pixel_f1_max(maps, masks), F1Max, pixel, {}),
        "aupro_0.3": (metrics.aupro(maps, masks, fpr_limit=0.3), AUPRO, pixel, {"fpr_limit": 0.3}),
    }
    pairs = {
        name: (ours, _anomalib_value(cls(fields=list(fields), **options), **fields))
        for name, (ours, cls, fields, options) in checks.items()
    }
    diffs = {name: abs(ours - theirs) for name, (ours, theirs) in pairs.items()}
    worst = max(diffs, key=diffs.get)
    print(f"{kind}: largest |toolkit - anomalib {anomalib_version}| = {diffs[worst]:.2e} ({worst}); all: {diffs}")
    if kind != "random":  # the comparison is not between two trivial values
        assert 0.0 < pairs["aupro_0.3"][0] < 1.0 and 0.5 < pairs["pixel_auroc"][0] < 1.0
    for name, (ours, theirs) in pairs.items():
        assert ours == pytest.approx(theirs, abs=TOLERANCE), f"{kind} {name}: toolkit {ours}, anomalib {theirs}"


@pytest.mark.parametrize("kind", ["structured", "ties"])
def test_streamed_pixel_metrics_agree_with_anomalib_within_their_bound(kind):
    """The constant-memory binned metrics differ from anomalib's exact ones by at most their own stated error bound
    (plus the float32 tolerance); with 2**20 float32-pattern bins the bound is tiny."""
    rng = np.random.default_rng({"structured": 3, "ties": 4}[kind])
    masks = _masks(rng, 8, 32)
    maps = _maps(kind, rng, masks)
    stream = PixelMetricAccumulator(fpr_limit=0.3)
    for part in (slice(0, 3), slice(3, None)):  # two batches, as a category is streamed
        stream.update(maps[part], masks[part])
    streamed = stream.compute()
    pixel = {"anomaly_map": maps, "gt_mask": masks}
    theirs = {
        "pixel_auroc": _anomalib_value(AUROC(fields=list(pixel)), **pixel),
        "pixel_f1_max": _anomalib_value(F1Max(fields=list(pixel)), **pixel),
        "aupro": _anomalib_value(AUPRO(fields=list(pixel), fpr_limit=0.3), **pixel),
    }
    for name, value in theirs.items():
        gap, bound = abs(streamed[name] - value), streamed[f"{name}_error"]
        print(f"{kind} {name}: |streamed - anomalib| = {gap:.2e}, stated bound {bound:.2e}")
        assert gap <= bound + TOLERANCE, f"{kind} {name}: streamed {streamed[name]}, anomalib {value}, bound {bound}"
