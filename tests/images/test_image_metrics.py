"""Image and pixel metrics: hand-computed cases, brute-force threshold sweeps, streaming vs exact, and anomalib's
AUPRO (anomalib >= 2.3 must be installed for the last test; it fails, not skips, without it)."""

import numpy as np
import pytest

from benchmarks.images.metrics import (
    aupro,
    connected_regions,
    f1_max,
    image_auroc,
    image_metrics,
    pixel_auroc,
    pixel_f1_max,
    pro_curve,
    spro,
)
from benchmarks.images.pixel_stream import PixelMetricAccumulator, score_bins


def _two_images():
    """A: a diagonal pair of anomalous pixels (one region under 8-connectivity); B: one anomalous pixel."""
    maps = np.array([[[0.9, 0.6], [0.1, 0.2]], [[0.3, 0.5], [0.0, 0.8]]])
    masks = np.array([[[1, 0], [0, 1]], [[0, 0], [0, 1]]], dtype=bool)
    return maps, masks


def test_aupro_two_images_by_hand():
    maps, masks = _two_images()
    # thresholds 0.9, 0.8 reach PRO (1/2)/2 = 0.25 then 0.75 at FPR 0; the normals 0.6, 0.5, 0.3 move FPR to 0.6;
    # 0.2 completes region A (PRO 1); the normals 0.1, 0.0 end at FPR 1.
    fpr, pro = pro_curve(maps, masks)
    assert fpr.tolist() == pytest.approx([0, 0, 0, 0.2, 0.4, 0.6, 0.6, 0.8, 1.0])
    assert pro.tolist() == pytest.approx([0, 0.25, 0.75, 0.75, 0.75, 0.75, 1, 1, 1])
    assert aupro(maps, masks, 0.3) == pytest.approx(0.75)
    assert aupro(maps, masks, 0.7) == pytest.approx((0.6 * 0.75 + 0.1) / 0.7)
    assert aupro(maps, masks, 1.0) == pytest.approx(0.85)
    assert connected_regions(masks[0])[1] == 1  # 8-connectivity: the diagonal pair is one region


def test_duplicate_thresholds_are_merged_and_the_limit_interpolated():
    maps = np.full((1, 4, 4), 0.5)
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, :2, :2] = True
    # one threshold: the curve is the straight line (0, 0) -> (1, 1); area to 0.3 is 0.045
    assert aupro(maps, masks, 0.3) == pytest.approx(0.15)
    assert pixel_auroc(maps, masks) == pytest.approx(0.5)


def test_spro_saturates_and_equals_aupro_at_full_saturation():
    maps = np.array([[[0.9, 0.7, 0.1, 0.5, 0.2]]])
    region = np.array([[[True, True, True, False, False]]])
    # PRO of the 3-pixel region: 1/3 at 0.9, 2/3 at 0.7 (FPR 0), stays 2/3 until FPR 1
    assert aupro(maps, region, 0.3) == pytest.approx(2 / 3)
    assert spro(maps, [[(region[0], 3.0)]], 0.3) == pytest.approx(2 / 3)
    # saturation 2 pixels: the defect counts as found once 2 of its pixels are above the threshold
    assert spro(maps, [[(region[0], 2.0)]], 0.3) == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    maps = rng.random((3, 12, 12))
    masks = np.zeros((3, 12, 12), dtype=bool)
    masks[0, 2:5, 2:6] = masks[0, 8:10, 8:11] = masks[2, 5:9, 1:3] = True
    defects = [[(labels == r, float((labels == r).sum())) for r in range(1, n + 1)] for labels, n in
               map(connected_regions, masks)]  # fmt: skip
    assert spro(maps, defects, 0.3) == pytest.approx(aupro(maps, masks, 0.3), abs=1e-12)


def _brute_force_aupro(maps, masks, limit):
    regions = [labels == r for labels, n in map(connected_regions, masks) for r in range(1, n + 1)]
    region_maps = [maps[i][regions_i] for i, (labels, n) in enumerate(map(connected_regions, masks))
                   for regions_i in (labels == r for r in range(1, n + 1))]  # fmt: skip
    assert len(region_maps) == len(regions)
    neg = maps[~masks]
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        points.append((np.mean(neg >= t), np.mean([np.mean(r >= t) for r in region_maps])))
    x, y = map(np.array, zip(*points))
    cut = np.searchsorted(x, limit, side="right")
    xs, ys = np.r_[x[:cut], limit], np.r_[y[:cut], np.interp(limit, x[cut - 1 :], y[cut - 1 :])]
    return np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2) / limit


def _brute_force_auroc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    return np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))


def _brute_force_f1(scores, labels):
    best = 0.0
    for t in np.unique(scores):
        predicted = scores >= t
        tp = np.sum(predicted & (labels == 1))
        best = max(best, 2 * tp / (predicted.sum() + labels.sum()))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_metrics_match_a_brute_force_threshold_sweep(seed):
    rng = np.random.default_rng(seed)
    maps = np.round(rng.random((4, 10, 10)), 2)  # rounding creates many tied scores
    masks = np.zeros((4, 10, 10), dtype=bool)
    for i in range(3):
        r, c = rng.integers(0, 7, size=2)
        masks[i, r : r + 3, c : c + int(rng.integers(1, 4))] = True
        maps[i][masks[i]] += rng.uniform(0, 0.5)
    masks[1, 0, 0] = masks[1, 9, 9] = True
    for limit in (0.05, 0.3, 1.0):
        assert aupro(maps, masks, limit) == pytest.approx(_brute_force_aupro(maps, masks, limit), abs=1e-12)
    flat, flat_labels = maps.ravel(), masks.ravel().astype(int)
    assert pixel_auroc(maps, masks) == pytest.approx(_brute_force_auroc(flat, flat_labels), abs=1e-12)
    assert pixel_f1_max(maps, masks) == pytest.approx(_brute_force_f1(flat, flat_labels), abs=1e-12)
    image_scores, image_labels = maps.max(axis=(1, 2)), masks.any(axis=(1, 2)).astype(int)
    assert image_auroc(image_scores, image_labels) == pytest.approx(_brute_force_auroc(image_scores, image_labels))
    assert f1_max(image_scores, image_labels) == pytest.approx(_brute_force_f1(image_scores, image_labels))
    assert image_metrics(image_scores, image_labels) == {
        "image_auroc": image_auroc(image_scores, image_labels),
        "image_f1_max": f1_max(image_scores, image_labels),
    }


def test_score_bins_are_monotone_over_signs_and_magnitudes():
    values = np.sort(np.r_[-1e30, -5.0, -1e-20, -0.0, 0.0, 1e-30, 0.5, 0.5002, 3.0, 1e30])
    bins = score_bins(values)
    assert np.all(np.diff(bins) >= 0) and bins[0] >= 0
    assert score_bins(np.array([1.0]))[0] != score_bins(np.array([1.001]))[0]  # relative bin width < 1e-3


def test_streaming_agrees_with_exact_within_its_bound():
    rng = np.random.default_rng(7)
    maps = rng.normal(size=(6, 40, 40)) * 3 + 10
    masks = np.zeros(maps.shape, dtype=bool)
    masks[0, 5:15, 5:9] = masks[2, 20:30, 20:35] = masks[4, 1:3, 1:3] = masks[4, 30:38, 2:5] = True
    maps[masks] += 2.0
    defects = [[(labels == r, 0.3 * (labels == r).sum()) for r in range(1, n + 1)] for labels, n in
               map(connected_regions, masks)]  # fmt: skip
    acc = PixelMetricAccumulator(fpr_limit=0.3)
    for i in range(0, 6, 2):
        acc.update(maps[i : i + 2], masks[i : i + 2], defects[i : i + 2])
    out = acc.compute()
    exact = {
        "pixel_auroc": pixel_auroc(maps, masks),
        "pixel_f1_max": pixel_f1_max(maps, masks),
        "aupro": aupro(maps, masks, 0.3),
        "spro": spro(maps, defects, 0.3),
    }
    for name, value in exact.items():
        assert abs(out[name] - value) <= out[f"{name}_error"] + 1e-12, name
        assert out[f"{name}_error"] < 2e-3, name
    # the exact curves differ from the binned ones only inside bins: equal scores land in one bin
    coarse = np.round(maps, 1)
    acc2 = PixelMetricAccumulator()
    acc2.update(coarse, masks)
    assert acc2.compute()["aupro"] == pytest.approx(aupro(coarse, masks), abs=1e-12)


def test_bad_inputs_are_refused():
    maps, masks = _two_images()
    with pytest.raises(ValueError, match="both normal and anomalous"):
        image_auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="finite"):
        aupro(np.where(masks, np.nan, maps), masks)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        aupro(maps[0], masks[0])
    with pytest.raises(ValueError, match="at least one anomalous pixel"):
        aupro(maps, np.zeros_like(masks))
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(maps, masks, 0.0)


def test_aupro_matches_anomalib():
    try:
        import anomalib
        import torch
        from anomalib.metrics.aupro import _AUPRO
    except ImportError as err:  # a hard failure on purpose: this cross-check must not vanish silently
        pytest.fail(f"the AUPRO cross-check needs anomalib >= 2.3: pip install 'anomalib>=2.3' ({err})")
    major, minor = (int(p) for p in anomalib.__version__.split(".")[:2])
    assert (major, minor) >= (2, 3), f"anomalib {anomalib.__version__} < 2.3 divides AUPRO by the wrong endpoint"
    rng = np.random.default_rng(11)
    maps = rng.random((5, 48, 48)).astype(np.float32)
    masks = np.zeros(maps.shape, dtype=bool)
    masks[0, 4:20, 4:9] = masks[1, 30:40, 10:40] = masks[3, 2:4, 2:4] = True
    masks[3, 4:6, 4:6] = True  # touches the block above at a corner: one region under 8-connectivity
    maps[masks] += np.float32(0.4)
    for limit in (0.05, 0.3):
        reference = _AUPRO(fpr_limit=limit)
        reference.update(torch.from_numpy(maps), torch.from_numpy(masks).int())
        assert aupro(maps, masks, limit) == pytest.approx(float(reference.compute()), abs=2e-6)
