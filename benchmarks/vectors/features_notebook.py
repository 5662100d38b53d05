"""The computations and figures of notebook 07: the vector detectors on real feature vectors, step by step.

One MVTec AD category of the shared ResNet-18 embeddings (512-d, the data of ``python -m benchmarks.vectors``),
split by the benchmark's one-class protocol. When the embeddings are not on this machine, scikit-learn's digits
stand in (printed, never silent), so the notebook runs anywhere.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import wtflow

from ..data import DataError, Split, digits_datasets, load_folder, one_class_split, resolve_data

__all__ = [
    "DETECTORS",
    "Example",
    "fit_detectors",
    "load_example",
    "one_step_vs_exact",
    "plot_roc",
    "plot_scores",
    "plot_spectra",
    "score_table",
    "steps_table",
    "whitening_spectra",
]

# name -> constructor arguments (quick runs cut the training budget only).
DETECTORS: dict[str, tuple[str, dict[str, Any]]] = {
    "RFM (raw)": ("RFM", {}),
    "RFM-W (whitened)": ("RFM", {"preprocessing": "whiten"}),
    "WTFlow-LN": ("WTFlow", {"wt": "layernorm"}),
}


@dataclass
class Example:
    """A one-class split of one category and where it came from."""

    name: str
    source: str
    split: Split

    @property
    def normal(self) -> np.ndarray:
        return self.split.X_test[self.split.y_test == 0]

    @property
    def anomalous(self) -> np.ndarray:
        return self.split.X_test[self.split.y_test == 1]


def load_example(category: str = "bottle", seed: int = 0, data: str | None = None) -> Example:
    """The one-class split of ``category`` from the shared MVTec embeddings, or digit 3 when they are absent."""
    try:
        folder = resolve_data(data)
        if folder == "digits":
            raise DataError("digits requested")
        dataset = load_folder(folder, [category])[0]
        source = f"MVTec AD ResNet-18 embeddings ({folder})"
    except DataError as err:
        print(f"MVTec embeddings not used ({str(err).split('. ')[0]}); using scikit-learn digits, digit 3 as normal")
        dataset = digits_datasets(["digit_3"])[0]
        source = "scikit-learn digits (digit 3 normal)"
    return Example(dataset.name, source, one_class_split(dataset, seed))


def fit_detectors(example: Example, quick: bool = False, seed: int = 0) -> dict[str, wtflow.detectors.BaseDetector]:
    """Fit every detector of ``DETECTORS`` (cross-fitted thresholds, CPU) on the training normals."""
    budget = {"train_steps": 100, "calibration_folds": 3} if quick else {}
    out = {}
    for name, (kind, params) in DETECTORS.items():
        klass = getattr(wtflow, kind)
        out[name] = klass(seed=seed, device="cpu", **budget, **params).fit(example.split.X_train)
    return out


def score_table(example: Example, detectors: dict) -> list[dict[str, Any]]:
    """Per detector: AUROC and the fractions of test normals / anomalies flagged by ``predict``."""
    from sklearn.metrics import roc_auc_score

    rows = []
    for name, det in detectors.items():
        scores = det.decision_function(example.split.X_test)
        flagged = det.predict(example.split.X_test)
        y = example.split.y_test
        rows.append(
            {
                "detector": name,
                "AUROC": roc_auc_score(y, scores),
                "normals flagged": flagged[y == 0].mean(),
                "anomalies flagged": flagged[y == 1].mean(),
                "training-score threshold flags normals": float(
                    (scores[y == 0] > np.percentile(det.decision_scores_, 100 * (1 - det.contamination))).mean()
                ),
            }
        )
    return rows


def plot_scores(example: Example, detector, title: str = ""):
    """Histograms of training, test-normal and test-anomaly scores with both thresholds marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    groups = (
        ("training normals", detector.decision_scores_),
        ("test normals", detector.decision_function(example.normal)),
        ("test anomalies", detector.decision_function(example.anomalous)),
    )
    bins = np.histogram_bin_edges(np.concatenate([g for _, g in groups]), bins=40)
    for label, values in groups:
        ax.hist(values, bins=bins, alpha=0.5, density=True, label=label)
    train_rule = np.percentile(detector.decision_scores_, 100 * (1 - detector.contamination))
    ax.axvline(train_rule, color="k", ls=":", label="threshold from training scores")
    ax.axvline(detector.threshold_, color="k", ls="--", label="cross-fitted threshold_")
    ax.set_xlabel("anomaly score (decision_function)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def plot_roc(example: Example, detectors: dict):
    """ROC curves of the detectors on the test split."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    for name, det in detectors.items():
        scores = det.decision_function(example.split.X_test)
        fpr, tpr, _ = roc_curve(example.split.y_test, scores)
        ax.plot(fpr, tpr, label=f"{name} ({roc_auc_score(example.split.y_test, scores):.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", ls=":")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def whitening_spectra(example: Example) -> dict[str, np.ndarray]:
    """Sorted eigenvalues of the training covariance: raw, and after the detectors' Ledoit-Wolf whitening."""
    from wtflow.detectors.preprocessing import fit_preprocessor

    X = example.split.X_train
    prep = fit_preprocessor(X, "whiten")
    spectra = {}
    for name, Z in (("raw", X), ("whitened", prep(X))):
        spectra[name] = np.sort(np.linalg.eigvalsh(np.cov(Z, rowvar=False)))[::-1]
    return spectra


def plot_spectra(spectra: dict[str, np.ndarray]):
    """Log-scale eigenvalue spectra (largest first)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, values in spectra.items():
        ax.semilogy(np.maximum(values, 1e-12), label=name)
    ax.set_xlabel("eigenvalue index (largest first)")
    ax.set_ylabel("variance along the direction")
    ax.legend()
    fig.tight_layout()
    return fig


def steps_table(example: Example, detector, steps: tuple[int, ...] = (1, 2, 5, 20)) -> list[dict[str, Any]]:
    """AUROC and mean endpoint radius ||phi|| (normals / anomalies) for K Euler steps, with the weights fixed."""
    from sklearn.metrics import roc_auc_score

    rows = []
    for k in steps:
        det = copy.deepcopy(detector).set_params(ode_steps=k)
        rows.append(
            {
                "K": k,
                "AUROC": roc_auc_score(example.split.y_test, det.decision_function(example.split.X_test)),
                "radius normals": float(np.linalg.norm(det.transform(example.normal), axis=1).mean()),
                "radius anomalies": float(np.linalg.norm(det.transform(example.anomalous), axis=1).mean()),
                "sqrt(d)": float(np.sqrt(example.split.X_train.shape[1])),
            }
        )
    return rows


@torch.no_grad()
def one_step_vs_exact(example: Example, detector) -> list[dict[str, Any]]:
    """How far the learned v(x_0, 0) is from the exact rFM field -x_0 of a population source (eq. 12).

    x_0 is the detector's preprocessed input (whitened for RFM-W); the relative deviation
    ||v(x_0, 0) + x_0|| / ||x_0|| is 0 where the network has learned the exact t = 0 field.
    """
    rows = []
    for label, X in (
        ("training normals", example.split.X_train),
        ("test normals", example.normal),
        ("test anomalies", example.anomalous),
    ):
        Z = torch.from_numpy(detector.preprocess(X)).float()
        x_0 = detector.model_.map_data(Z)
        v = detector.model_(x_0, torch.zeros(len(x_0)))
        deviation = torch.linalg.vector_norm(v + x_0, dim=1) / torch.linalg.vector_norm(x_0, dim=1)
        rows.append({"samples": label, "mean ||v(x0, 0) + x0|| / ||x0||": float(deviation.mean())})
    return rows
