"""Input preprocessing of the vector detectors, fitted on the training data only.

``"raw"``: nothing. ``"standardize"``: per-feature mean and standard deviation (a feature constant in
training keeps scale 1, as scikit-learn's StandardScaler does). ``"whiten"``: ZCA whitening with the
Ledoit-Wolf shrunk covariance, z = (x - mean) Sigma^{-1/2}, Sigma = (1 - s) S + s mu I.

Why whitening with shrinkage: pooled CNN features of a few hundred images have many features that are
(almost) constant on the normals; per-feature standardisation divides them by a tiny std and lets them
dominate the distance, while the shrinkage floors every direction's variance
at s * mu (mu = mean variance), so rare directions are amplified boundedly. The squared norm of
whitened data is the Mahalanobis distance of the shrunk Gaussian fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PREPROCESSING", "Preprocessor", "fit_preprocessor", "ledoit_wolf"]

PREPROCESSING = ("raw", "standardize", "whiten")


@dataclass
class Preprocessor:
    """z = (x - mean) / scale, then z @ whitener when ``whitener`` is not None; float64 statistics."""

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    whitener: np.ndarray | None = None  # (d, d), symmetric

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, d) float64."""
        Z = (X - self.mean) / self.scale
        return Z if self.whitener is None else Z @ self.whitener


def ledoit_wolf(X: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of (n, d) samples: ((d, d) covariance, shrinkage s in [0, 1]).

    Sigma = (1 - s) S + s mu I with S the (1/n) sample covariance around the mean, mu = tr(S) / d and
    s = min(1, beta / delta): delta = ||S - mu I||_F^2, beta = (1/n^2) sum_k ||x_k x_k^T - S||_F^2
    (Ledoit & Wolf, J. Multivar. Anal. 2004, Lemma 3.2 / Theorem 3.1; the estimator scikit-learn uses).
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    S = Xc.T @ Xc / n
    mu = np.trace(S) / d
    delta = np.sum((S - mu * np.eye(d)) ** 2)
    # sum_k ||x_k x_k^T||_F^2 = sum_k ||x_k||^4, and sum_k <x_k x_k^T, S> = n ||S||_F^2.
    sq = np.sum(Xc**2, axis=1)
    beta = (np.sum(sq**2) - n * np.sum(S**2)) / n**2
    shrinkage = 0.0 if delta == 0 else float(min(1.0, max(beta, 0.0) / delta))
    return (1.0 - shrinkage) * S + shrinkage * mu * np.eye(d), shrinkage


def fit_preprocessor(X: np.ndarray, kind: str) -> Preprocessor:
    """Fit ``kind`` (one of ``PREPROCESSING``) on training data X (n, d) float64."""
    d = X.shape[1]
    if kind == "raw":
        return Preprocessor(np.zeros(d), np.ones(d))
    mean = X.mean(axis=0)
    if kind == "standardize":
        std = X.std(axis=0)
        return Preprocessor(mean, np.where(std > 0, std, 1.0))
    if kind == "whiten":
        cov, _ = ledoit_wolf(X)
        if not np.any(cov):
            return Preprocessor(mean, np.ones(d))  # all training samples equal: nothing to whiten
        evals, evecs = np.linalg.eigh(cov)
        floor = evals.max() * 1e-12  # only rounding can push a shrunk eigenvalue below s * mu > 0
        whitener = (evecs / np.sqrt(np.maximum(evals, floor))) @ evecs.T
        return Preprocessor(mean, np.ones(d), whitener)
    raise ValueError(f"unknown preprocessing {kind!r}; choose from {', '.join(PREPROCESSING)}")
