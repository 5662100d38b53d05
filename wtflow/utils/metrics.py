"""Detection metrics used by more than one script, computed by scikit-learn (imported on first use)."""

from __future__ import annotations

import numpy as np

__all__ = ["auroc", "separation_auroc"]


def auroc(labels, scores) -> float:
    """Area under the ROC curve, ``sklearn.metrics.roc_auc_score``; labels 1 = anomaly, higher score = more
    anomalous. Both (N,) array-likes; raises ``ValueError`` naming the problem if a class is missing or a score
    is not finite."""
    from sklearn.metrics import roc_auc_score

    labels, scores = np.asarray(labels).reshape(-1), np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"auroc: {labels.shape[0]} labels but {scores.shape[0]} scores")
    if len(np.unique(labels)) != 2:
        raise ValueError(f"auroc needs both classes among the labels, got {np.unique(labels).tolist()}")
    if not np.isfinite(scores).all():
        raise ValueError(f"auroc: {int((~np.isfinite(scores)).sum())} scores are NaN or infinite")
    return float(roc_auc_score(labels, scores))


def separation_auroc(normal_scores, anomaly_scores) -> float:
    """AUROC of normals (label 0) against anomalies (label 1): the probability that an anomaly scores higher."""
    normal, anomaly = np.asarray(normal_scores).reshape(-1), np.asarray(anomaly_scores).reshape(-1)
    return auroc(np.r_[np.zeros(len(normal)), np.ones(len(anomaly))], np.r_[normal, anomaly])
