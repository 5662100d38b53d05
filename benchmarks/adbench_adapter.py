"""Run the wtflow detectors inside ADBench's harness (its "Customized" model contract).

ADBench builds a custom model as ``Model(seed=..., model_name=...)``, calls
``fit(X_train=..., y_train=...)`` with keyword arguments and expects ``self`` back, then calls
``predict_score(X)`` for a 1-D array of anomaly scores (higher = more anomalous)::

    from adbench.run import RunPipeline
    from benchmarks.adbench_adapter import ADBenchAdapter
    RunPipeline(suffix="wtflow", parallel="unsupervise").run(clf=ADBenchAdapter)

``model_name`` picks the detector: ``"WTFlow"`` (LayerNorm WT map, the default), ``"WTFlow-BN"``,
``"RFM"``, ``"TCCM"`` or ``"FlowMismatch"``. ADBench's unsupervised setting passes a training set
that may contain anomalies and ignores the labels, so ``y_train`` is ignored unless
``normals_only=True``, which fits on the rows with ``y_train == 0`` (the one-class protocol).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import wtflow

__all__ = ["ADBENCH_MODELS", "ADBenchAdapter"]

ADBENCH_MODELS = {
    "WTFlow": (wtflow.WTFlow, {"wt": "layernorm"}),
    "WTFlow-BN": (wtflow.WTFlow, {"wt": "batchnorm"}),
    "RFM": (wtflow.RFM, {}),
    "TCCM": (wtflow.TCCM, {}),
    "FlowMismatch": (wtflow.FlowMismatch, {}),
}


class ADBenchAdapter:
    """ADBench's custom-model contract around a wtflow detector.

    Args:
        seed: ADBench's seed, passed on to the detector.
        model_name: one of ``ADBENCH_MODELS`` (None: ``"WTFlow"``).
        normals_only: fit on the rows with ``y_train == 0`` only.
        **params: detector parameters overriding the defaults.
    """

    def __init__(self, seed: int, model_name: str | None = None, normals_only: bool = False, **params: Any):
        name = model_name or "WTFlow"
        if name not in ADBENCH_MODELS:
            raise ValueError(f"unknown model_name {name!r}; expected one of {', '.join(ADBENCH_MODELS)}")
        klass, defaults = ADBENCH_MODELS[name]
        self.seed, self.model_name, self.normals_only = seed, name, normals_only
        self.detector = klass(seed=int(seed), **{**defaults, **params})

    def fit(self, X_train: Any, y_train: Any = None) -> ADBenchAdapter:
        """Fit the detector on ``X_train`` (n, d); ``y_train`` is used only with ``normals_only=True``."""
        X = np.asarray(X_train)
        if self.normals_only:
            if y_train is None:
                raise ValueError("normals_only=True needs y_train (0 = normal), got None")
            y = np.asarray(y_train).reshape(-1)
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"y_train must have {X.shape[0]} labels to match X_train, got {y.shape[0]}")
            X = X[y == 0]
        self.detector.fit(X)
        return self

    def predict_score(self, X: Any) -> np.ndarray:
        """(n,) anomaly scores, higher = more anomalous."""
        return self.detector.decision_function(X)
