"""Threshold calibration and prediction confidence for the vector detectors (numpy and scipy only).

Why calibrate: a detector scores its own training samples lower than unseen normals (the network and, with
``preprocessing="whiten"``, the covariance are fitted on them), so the ``1 - contamination`` quantile of the
training scores flags more unseen normals than ``contamination`` says.

Cross-fitting: split the n training samples into k folds, fit a copy of the detector (same parameters, its own
preprocessing) on k - 1 folds and score the held-out fold, so every training sample gets a score from a model
that did not see it. Each fitted network has its own score scale, though: two fits on nearly the same data can
differ by more than the optimism being measured. So a held-out score is not used as it is but relative to its
fold model's own training scores, z = (s - median) / IQR, and mapped onto the main model's training scores with
their median and IQR (an affine transfer; ``transfer_scores``). ``threshold_`` is the ``1 - contamination``
quantile of these transferred out-of-fold scores. The main model, and hence every score and ranking, is the one
fitted on all n samples; the fold models only set the threshold and are discarded.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "CALIBRATIONS",
    "cross_fit_scores",
    "exceed_confidence",
    "fold_indices",
    "robust_scale",
    "transfer_scores",
]

CALIBRATIONS = ("cross-fit", "train")


def fold_indices(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """A seeded random partition of range(n) into ``folds`` near-equal index arrays (sorted within a fold)."""
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, folds)]


def robust_scale(scores: np.ndarray) -> tuple[float, float]:
    """(median, interquartile range) of (n,) scores; the range falls back to max - min, then to 1, when it is 0."""
    q25, median, q75 = np.percentile(scores, [25.0, 50.0, 75.0])
    spread = float(q75 - q25) or float(np.ptp(scores)) or 1.0
    return float(median), spread


def transfer_scores(scores: np.ndarray, source_train: np.ndarray, target_train: np.ndarray) -> np.ndarray:
    """Map ``scores`` of one model onto another's scale: standardise by the source model's training scores
    (median, IQR), then undo that with the target model's. (m,), (n_s,), (n_t,) -> (m,)."""
    s_median, s_spread = robust_scale(source_train)
    t_median, t_spread = robust_scale(target_train)
    return t_median + (np.asarray(scores, dtype=np.float64) - s_median) / s_spread * t_spread


def cross_fit_scores(
    fit_and_score: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    X: np.ndarray,
    train_scores: np.ndarray,
    folds: int,
    seed: int,
) -> np.ndarray:
    """Out-of-fold scores (n,) of X (n, d) on the scale of the main model's ``train_scores`` (n,).

    ``fit_and_score(X_fit, X_held_out)`` fits a fresh detector on ``X_fit`` and returns (its training scores,
    the scores of ``X_held_out``); each fold's held-out scores are mapped with ``transfer_scores``.
    """
    n = X.shape[0]
    if folds < 2 or n < 2 * folds:
        raise ValueError(
            f"cross-fit calibration with calibration_folds={folds} needs folds >= 2 and at least {2 * max(folds, 2)} "
            f"training samples, got {n}; use fewer folds or calibration='train'"
        )
    scores = np.empty(n, dtype=np.float64)
    for held_out in fold_indices(n, folds, seed):
        keep = np.ones(n, dtype=bool)
        keep[held_out] = False
        fold_train, fold_held_out = fit_and_score(X[keep], X[held_out])
        scores[held_out] = transfer_scores(fold_held_out, fold_train, train_scores)
    return scores


def exceed_confidence(scores: np.ndarray, reference: np.ndarray, contamination: float, threshold: float) -> np.ndarray:
    """Confidence in [0, 1] of each 0/1 prediction ``scores > threshold`` (ExCeeD; shapes (m,) -> (m,)).

    Perini, Vercruyssen and Davis, "Quantifying the confidence of anomaly detectors in their example-wise
    predictions", ECML-PKDD 2020 (the rule PyOD's ``predict_confidence`` implements): with k the number of
    the n reference scores <= s, the outlier probability has the Bayesian estimate p = (1 + k) / (2 + n);
    the confidence that s is an anomaly is P(Binomial(n, p) > n - floor(n * contamination)), and for a
    sample predicted normal the confidence is one minus that.
    """
    from scipy.stats import binom

    reference = np.sort(np.asarray(reference, dtype=np.float64))
    n = reference.size
    k = np.searchsorted(reference, scores, side="right")
    p = (1.0 + k) / (2.0 + n)
    anomalous = 1.0 - binom.cdf(n - int(n * contamination), n, p)
    return np.where(scores > threshold, anomalous, 1.0 - anomalous)
