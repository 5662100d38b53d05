"""How far real feature vectors are from the Gaussian picture of rFM on whitened inputs (``theory.gaussian_source``).

If the training features were Gaussian, N(mu, Sigma), whitening z = Sigma^{-1/2}(x - mu) would make the exact rFM flow
map the identity, the exact K-step endpoint norm ||x_1|| = ||z|| the Mahalanobis distance (K -> infinity), and the
exact one-step endpoint z + u(z, 0) = 0. A learned field v gives the one-step endpoint r = z + v(z, 0), its residual
from the centripetal field -z: if v(z, 0) = -c z (a radial rescaling) the one-step score ranks exactly like the
Mahalanobis distance. ``compare_with_gaussian_picture`` fits ``wtflow.RFM(preprocessing="whiten")`` and measures:

* the rank correlation (Spearman) of the K = 1 and K = many scores with the Mahalanobis distance of the same
  Ledoit-Wolf whitening, and the three AUROCs;
* the mean endpoint norms of test normals and anomalies (K = 1, K = many) next to their Mahalanobis distances;
* the cosine between the K = 1 endpoint r and z (1 for a radial residual: nothing beyond the Gaussian picture);
* Gaussianity of the whitened features: mean ||z||^2 / D of unseen normals and the median |excess kurtosis| of the
  whitened training coordinates (0 for Gaussian data).

``read_per_category`` reads a committed vector-benchmark table (``benchmarks/results/vectors/*/per_category.csv``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

__all__ = ["compare_with_gaussian_picture", "gaussian_picture_scores", "read_per_category"]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)


def _median_abs_kurtosis(z: np.ndarray) -> float:
    """Median |excess kurtosis| over the coordinates that vary (constant ones have none): 0 for Gaussian data."""
    varying = z.std(axis=0) > 1e-12 * max(1.0, float(np.abs(z).max()))
    if not varying.any():
        raise ValueError("every whitened training coordinate is constant: no kurtosis to measure")
    return float(np.median(np.abs(stats.kurtosis(z[:, varying], axis=0))))


def gaussian_picture_scores(
    X_train: np.ndarray, X_test: np.ndarray, train_steps: int = 400, many_steps: int = 20, seed: int = 0
) -> dict[str, np.ndarray]:
    """Per test vector: the whitened input z (m, D), the Mahalanobis distance ||z|| (m,), the K = 1 endpoint
    r = z + v(z, 0) (m, D) and the norms of the K = 1 and K = ``many_steps`` endpoints (m,) of
    ``wtflow.RFM(preprocessing="whiten", train_steps=..., seed=...)`` fitted on ``X_train`` (n, D).
    Also "z_train" (n, D)."""
    from wtflow import RFM
    from wtflow.detectors.preprocessing import fit_preprocessor

    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    whiten = fit_preprocessor(X_train, "whiten")
    z_train, z_test = whiten(X_train), whiten(X_test)
    detector = RFM(preprocessing="whiten", train_steps=train_steps, seed=seed).fit(X_train)
    end_one = detector.transform(X_test)
    detector.ode_steps = many_steps
    end_many = detector.transform(X_test)
    return {
        "z_train": z_train,
        "z": z_test,
        "mahalanobis": np.linalg.norm(z_test, axis=1),
        "end_k1": end_one,
        "norm_k1": np.linalg.norm(end_one, axis=1),
        "norm_many": np.linalg.norm(end_many, axis=1),
    }


def compare_with_gaussian_picture(
    X_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    train_steps: int = 400,
    many_steps: int = 20,
    seed: int = 0,
) -> dict[str, float]:
    """Fit RFM on whitened inputs and compare it with the Gaussian picture (module docstring).

    Args:
        X_train: (n, D) training normals; X_test: (m, D) test vectors; y_test: (m,) 1 = anomaly, 0 = normal.
        train_steps, seed: of ``wtflow.RFM`` (other settings: the library defaults, one Euler step).
        many_steps: K of the many-step endpoint (the benchmark's K = 20).

    Returns: name -> float (AUROCs, Spearman correlations, mean norms, cosines, Gaussianity measures).
    """
    y_test = np.asarray(y_test)
    if set(np.unique(y_test)) != {0, 1}:
        raise ValueError("y_test must contain both normals (0) and anomalies (1)")
    s = gaussian_picture_scores(X_train, X_test, train_steps, many_steps, seed)
    mahal, one, many = s["mahalanobis"], s["norm_k1"], s["norm_many"]
    normal, anomal = y_test == 0, y_test == 1
    cos = _cosine(s["end_k1"], s["z"])
    out = {
        "auroc_mahalanobis": roc_auc_score(y_test, mahal),
        "auroc_rfm_w_k1": roc_auc_score(y_test, one),
        f"auroc_rfm_w_k{many_steps}": roc_auc_score(y_test, many),
        "spearman_k1_vs_mahalanobis": stats.spearmanr(one, mahal).statistic,
        f"spearman_k{many_steps}_vs_mahalanobis": stats.spearmanr(many, mahal).statistic,
        "cosine_k1_endpoint_vs_z_normal": float(np.median(cos[normal])),
        "cosine_k1_endpoint_vs_z_anomaly": float(np.median(cos[anomal])),
        "whitened_test_normal_sq_norm_over_d": float(np.mean(mahal[normal] ** 2) / s["z"].shape[1]),
        "whitened_train_median_abs_excess_kurtosis": _median_abs_kurtosis(s["z_train"]),
    }
    for label, mask in (("normal", normal), ("anomaly", anomal)):
        out[f"mahalanobis_mean_{label}"] = float(mahal[mask].mean())
        out[f"k1_norm_mean_{label}"] = float(one[mask].mean())
        out[f"k{many_steps}_norm_mean_{label}"] = float(many[mask].mean())
    return {k: float(v) for k, v in out.items()}


def read_per_category(path: str | Path, methods: tuple[str, ...], metric: str = "auroc") -> dict[str, dict[str, float]]:
    """method -> {category: value} from a vector-benchmark ``per_category.csv`` (rows: method, metric, categories)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such per-category table (run benchmarks/vectors.py to produce one)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = {}
    for row in rows:
        if row["method"] in methods and row["metric"] == metric:
            out[row["method"]] = {k: float(v) for k, v in row.items() if k not in ("method", "metric")}
    missing = [m for m in methods if m not in out]
    if missing:
        raise ValueError(
            f"{path}: no {metric!r} rows for {missing}; methods there: {sorted({r['method'] for r in rows})}"
        )
    return out
