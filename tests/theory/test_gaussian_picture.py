"""theory.gaussian_picture on synthetic Gaussian features (where the Gaussian picture is exact) and on the
committed vector-benchmark table."""

from pathlib import Path

import numpy as np
import pytest

from theory.gaussian_picture import compare_with_gaussian_picture, read_per_category

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "vectors" / "mvtec_ad_resnet18"


def test_on_gaussian_features_the_many_step_flow_is_the_mahalanobis_distance():
    rng = np.random.default_rng(0)
    dim = 8
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim) + np.eye(dim)
    train = rng.standard_normal((300, dim)) @ mix.T + 1.0
    normals = rng.standard_normal((100, dim)) @ mix.T + 1.0
    anomalies = 1.8 * rng.standard_normal((50, dim)) @ mix.T + 1.0
    y = np.r_[np.zeros(100), np.ones(50)]
    r = compare_with_gaussian_picture(train, np.vstack([normals, anomalies]), y, train_steps=200)
    # Exact flow map = whitening: a learned field close to the exact one ends near ||z|| after many steps.
    assert r["spearman_k20_vs_mahalanobis"] > 0.9
    assert r["k20_norm_mean_normal"] == pytest.approx(r["mahalanobis_mean_normal"], rel=0.15)
    assert r["auroc_mahalanobis"] > 0.9 and r["auroc_rfm_w_k20"] > 0.85
    # One step: the residual from -z is far shorter than z (the exact residual is 0) but still ranks like ||z||.
    assert r["k1_norm_mean_normal"] < 0.8 * r["mahalanobis_mean_normal"]
    assert r["spearman_k1_vs_mahalanobis"] > 0.7
    assert abs(r["whitened_train_median_abs_excess_kurtosis"]) < 0.5


def test_committed_table_is_read_and_bad_requests_raise(tmp_path):
    table = read_per_category(RESULTS / "per_category.csv", ("RFM-W", "Mahalanobis"))
    assert len(table["RFM-W"]) == 15 and all(0.5 < v <= 1 for v in table["Mahalanobis"].values())
    with pytest.raises(ValueError, match="no 'auroc' rows"):
        read_per_category(RESULTS / "per_category.csv", ("nope",))
    with pytest.raises(FileNotFoundError):
        read_per_category(tmp_path / "missing.csv", ("RFM-W",))
    with pytest.raises(ValueError, match="both normals"):
        compare_with_gaussian_picture(np.zeros((4, 2)), np.zeros((3, 2)), np.zeros(3))
