"""Detector input preprocessing: Ledoit-Wolf shrinkage against scikit-learn, whitening identities, persistence."""

import numpy as np
import pytest

import wtflow
from wtflow.detectors.preprocessing import PREPROCESSING, fit_preprocessor, ledoit_wolf


def _features(n, d, seed=0, dead=5):
    """Non-negative features with very different scales and ``dead`` columns constant 0, like pooled CNN output."""
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(size=(n, d))) * rng.uniform(1e-4, 3.0, size=d)
    X[:, :dead] = 0.0
    return X


@pytest.mark.parametrize("n, d", [(40, 120), (300, 12), (175, 512)])
def test_ledoit_wolf_matches_scikit_learn(n, d):
    sk_cov = pytest.importorskip("sklearn.covariance")
    X = _features(n, d, seed=n)
    cov, shrinkage = ledoit_wolf(X)
    ref_cov, ref_shrinkage = sk_cov.ledoit_wolf(X)
    assert shrinkage == pytest.approx(ref_shrinkage, rel=1e-10)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-9, atol=1e-12 * np.abs(ref_cov).max())


def test_whitening_inverts_the_shrunk_covariance_and_gives_its_mahalanobis_distance():
    X, X_new = _features(60, 40), _features(7, 40, seed=9, dead=0)
    prep = fit_preprocessor(X, "whiten")
    cov, shrinkage = ledoit_wolf(X)
    assert 0 < shrinkage < 1
    W = prep.whitener
    np.testing.assert_allclose(W, W.T, atol=1e-10)  # ZCA: symmetric, keeps the feature axes
    np.testing.assert_allclose(W @ cov @ W, np.eye(40), atol=1e-8)
    diff = X_new - X.mean(0)
    mahalanobis = np.einsum("ij,ij->i", diff, np.linalg.solve(cov, diff.T).T)
    np.testing.assert_allclose((prep(X_new) ** 2).sum(1), mahalanobis, rtol=1e-8)
    # Dead features are amplified only up to 1 / sqrt(s * mu), not 1 / (tiny std) as in standardisation.
    mu = np.trace(np.cov(X.T, bias=True)) / 40
    assert np.abs(W).max() <= 1.0 / np.sqrt(shrinkage * mu) * (1 + 1e-9)


def test_whitening_of_identical_samples_only_centres():
    X = np.tile(np.arange(4.0), (5, 1))
    prep = fit_preprocessor(X, "whiten")
    np.testing.assert_array_equal(prep(X), np.zeros_like(X))


def test_unknown_preprocessing_is_rejected():
    assert PREPROCESSING == ("raw", "standardize", "whiten")
    with pytest.raises(ValueError, match="unknown preprocessing 'pca'"):
        fit_preprocessor(np.ones((3, 2)), "pca")


@pytest.mark.parametrize("kind", ["RFM", "WTFlow", "TCCM"])
def test_whitened_detectors_round_trip_and_use_training_statistics(kind, tmp_path):
    X, X_test = _features(80, 10), _features(20, 10, seed=4, dead=0)
    tiny = {"hidden": 16, "depth": 2, "time_dim": 8, "batch_size": 32}
    budget = {"epochs": 5} if kind == "TCCM" else {"train_steps": 10}
    det = getattr(wtflow, kind)(preprocessing="whiten", **tiny, **budget).fit(X)
    np.testing.assert_allclose(det.whitener_, fit_preprocessor(X, "whiten").whitener)
    loaded = type(det).load(det.save(tmp_path / "det.pt"))
    np.testing.assert_array_equal(loaded.whitener_, det.whitener_)
    np.testing.assert_array_equal(loaded.decision_function(X_test), det.decision_function(X_test))
    raw = getattr(wtflow, kind)(preprocessing="raw", **tiny, **budget).fit(X)
    assert raw.whitener_ is None
    assert type(raw).load(raw.save(tmp_path / "raw.pt")).whitener_ is None
