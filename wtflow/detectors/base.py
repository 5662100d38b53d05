"""A small PyOD-compatible base class for vector anomaly detectors (no dependency on pyod or scikit-learn).

The conventions follow PyOD's ``BaseDetector``: ``fit(X, y=None)`` returns ``self`` (``y`` is ignored);
``decision_function(X)`` returns (n,) scores, higher = more anomalous; after ``fit`` the detector holds
``decision_scores_`` (training scores), ``threshold_`` (their ``1 - contamination`` quantile) and
``labels_``; ``predict(X)`` returns 0/1 by comparing scores with ``threshold_``. Parameters are the
``__init__`` arguments, read and written with ``get_params`` / ``set_params`` as in scikit-learn, so
``sklearn.base.clone`` works. ``save`` / ``load`` go through ``wtflow.checkpoint`` (atomic write,
``weights_only=True`` read) and keep the input preprocessing statistics with the weights.

Subclasses implement ``_fit_model(Z)`` (Z: preprocessed training data, float32 tensor (n, d)),
``_score_model(Z)`` -> (n,) float64 numpy scores, and ``_model_state`` / ``_restore_model``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .._validation import check_choice
from ..checkpoint import CheckpointError, dumps_config, load_checkpoint, save_checkpoint
from .preprocessing import PREPROCESSING, Preprocessor, fit_preprocessor

__all__ = ["PREPROCESSING", "BaseDetector", "NotFittedError", "load_detector"]

DETECTOR_KIND = "detector"

_REGISTRY: dict[str, type[BaseDetector]] = {}


class NotFittedError(ValueError, AttributeError):
    """A fitted-only method was called before ``fit`` (a ValueError and an AttributeError, as in scikit-learn)."""


def check_contamination(contamination: float) -> float:
    """Raise ``ValueError`` unless ``contamination`` is a number in (0, 0.5] (PyOD's range)."""
    if isinstance(contamination, bool) or not isinstance(contamination, int | float):
        raise ValueError(f"contamination must be a float in (0, 0.5], got {contamination!r}")
    if not (0.0 < float(contamination) <= 0.5):
        raise ValueError(f"contamination must lie in (0, 0.5], got {contamination!r}")
    return float(contamination)


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """Raise ``ValueError`` unless ``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float = math.inf, low_open: bool = False) -> float:
    """Raise ``ValueError`` unless ``value`` is a real number in [low, high] (or (low, high] if ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if not math.isfinite(value) or too_low or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got {value!r}")
    return value


def check_array(X: Any, name: str = "X", n_features: int | None = None, min_samples: int = 1) -> np.ndarray:
    """Validate a 2-D finite numeric array (n_samples, n_features) and return it as float64.

    Args:
        X: array-like of shape (n, d).
        name: argument name used in error messages.
        n_features: if given, the number of columns the fitted detector expects.
        min_samples: smallest accepted n.
    """
    if torch.is_tensor(X):
        X = X.detach().cpu().numpy()
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a 2-D numeric array (n_samples, n_features), got {type(X).__name__}") from err
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] < min_samples:
        raise ValueError(f"{name} must have at least {min_samples} sample(s), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one feature, got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but the detector was fitted on {n_features}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
        raise ValueError(f"{name} must be finite, got {n_nan} NaN and {n_inf} inf entries (shape {arr.shape})")
    return arr


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block with torch's global CPU generator seeded, restoring the caller's state afterwards.

    Network initialisation draws from the global generator; forking keeps a detector's ``seed``
    from disturbing (or depending on) the user's random stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class BaseDetector:
    """PyOD-style base: parameters from ``__init__``, fitted attributes end with ``_``.

    Args (shared by all subclasses):
        contamination: expected fraction of anomalies in the training data, in (0, 0.5]; only
            ``threshold_``, ``labels_`` and ``predict`` use it.
        preprocessing: ``"raw"``, ``"standardize"`` (per-feature mean and standard deviation of the
            training data; a feature constant in training keeps scale 1, as in scikit-learn's StandardScaler)
            or ``"whiten"`` (ZCA whitening with the Ledoit-Wolf shrunk training covariance; see
            ``wtflow.detectors.preprocessing``).
    """

    _estimator_type = "outlier_detector"
    _fitted_attributes: ClassVar[tuple[str, ...]] = ("decision_scores_", "threshold_", "n_features_in_")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` arguments as a dict (scikit-learn convention; ``deep`` is accepted and unused)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> BaseDetector:
        """Set ``__init__`` arguments by name; unknown names and invalid values raise ``ValueError``.

        The detector keeps its fitted state: call ``fit`` again for parameters that change training
        (a new ``contamination`` re-derives ``threshold_`` and ``labels_`` at once). Returns ``self``.
        """
        valid = self._get_param_names()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))} for {type(self).__name__}; "
                f"valid parameters: {', '.join(valid)}"
            )
        old = self.get_params()
        for key, value in params.items():
            setattr(self, key, value)
        try:
            self._check_params()
        except ValueError:
            for key, value in old.items():
                setattr(self, key, value)
            raise
        if "contamination" in params and hasattr(self, "decision_scores_"):
            self._process_decision_scores()
        return self

    def _check_params(self) -> None:
        """Validate the parameters (called by ``__init__``, ``set_params`` and ``fit``)."""
        check_contamination(self.contamination)
        check_choice("preprocessing", self.preprocessing, PREPROCESSING)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ preprocessing
    def _fit_preprocessing(self, X: np.ndarray) -> None:
        prep = fit_preprocessor(X, self.preprocessing)
        self.mean_, self.scale_, self.whitener_ = prep.mean, prep.scale, prep.whitener

    def _preprocess(self, X: np.ndarray) -> torch.Tensor:
        """(n, d) float64 -> (n, d) float32 tensor on the CPU, with the training statistics."""
        prep = Preprocessor(self.mean_, self.scale_, self.whitener_)
        return torch.from_numpy(prep(X).astype(np.float32))

    # ------------------------------------------------------------------ PyOD API
    def fit(self, X: Any, y: Any = None) -> BaseDetector:
        """Fit on training data ``X`` (n, d); ``y`` is ignored (unsupervised). Returns ``self``."""
        self._check_params()
        X = check_array(X, "X", min_samples=2)
        self._fit_preprocessing(X)
        Z = self._preprocess(X)
        self.n_features_in_ = X.shape[1]
        self._fit_model(Z)
        self.decision_scores_ = self._score_model(Z)
        self._process_decision_scores()
        return self

    def _process_decision_scores(self) -> None:
        """threshold_ = the (1 - contamination) quantile of the training scores; labels_ = scores > threshold_."""
        scores = self.decision_scores_
        self.threshold_ = float(np.percentile(scores, 100.0 * (1.0 - self.contamination)))
        self.labels_ = (scores > self.threshold_).astype(int)
        self._mu, self._sigma = float(np.mean(scores)), float(np.std(scores))

    def refresh_threshold(self, X: Any) -> BaseDetector:
        """Recompute ``decision_scores_``, ``threshold_`` and ``labels_`` on ``X`` with the current parameters.

        For parameters that act only at scoring time (e.g. the Euler steps of a flow), this
        turns a fitted detector into the fitted detector of the new setting without retraining.
        """
        self._check_fitted()
        self.decision_scores_ = self.decision_function(X)
        self._process_decision_scores()
        return self

    def _check_fitted(self) -> None:
        if not all(hasattr(self, name) for name in self._fitted_attributes):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores of ``X`` (n, d) -> (n,) float64, higher = more anomalous."""
        self._check_fitted()
        self._check_params()
        X = check_array(X, "X", n_features=self.n_features_in_)
        return self._score_model(self._preprocess(X))

    def predict(self, X: Any) -> np.ndarray:
        """0/1 labels (1 = anomaly): ``decision_function(X) > threshold_``, shape (n,)."""
        return (self.decision_function(X) > self.threshold_).astype(int)

    def predict_proba(self, X: Any, method: str = "linear") -> np.ndarray:
        """(n, 2) probabilities of [normal, anomalous], scaled against the training scores as in PyOD.

        ``"linear"``: min-max scaling by the training scores, clipped to [0, 1];
        ``"unify"``: erf of the z-score against the training scores, clipped to [0, 1].
        """
        check_choice("method", method, ("linear", "unify"))
        scores = self.decision_function(X)
        train = self.decision_scores_
        if method == "linear":
            span = float(train.max() - train.min())
            p = (scores - train.min()) / (span if span > 0 else 1.0)
        else:
            from scipy.special import erf

            sigma = float(train.std())
            p = erf((scores - train.mean()) / ((sigma if sigma > 0 else 1.0) * math.sqrt(2.0)))
        p = np.clip(p, 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write parameters, preprocessing statistics, training scores and weights atomically to ``path``."""
        self._check_fitted()
        tensors = {
            "mean": torch.from_numpy(np.asarray(self.mean_, dtype=np.float64)),
            "scale": torch.from_numpy(np.asarray(self.scale_, dtype=np.float64)),
            "decision_scores": torch.from_numpy(np.asarray(self.decision_scores_, dtype=np.float64)),
        }
        if self.whitener_ is not None:
            tensors["whitener"] = torch.from_numpy(np.asarray(self.whitener_, dtype=np.float64))
        payload = {
            "class": type(self).__name__,
            "params": dumps_config(self.get_params()),
            "n_features_in": int(self.n_features_in_),
            "tensors": tensors,
            "model": self._model_state(),
        }
        return save_checkpoint(path, DETECTOR_KIND, payload)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BaseDetector:
        """Load a detector written by ``save`` (read with ``weights_only=True``); its scores are identical."""
        payload = load_checkpoint(path, DETECTOR_KIND, map_location="cpu")
        name = payload.get("class")
        klass = _REGISTRY.get(name)
        if klass is None:
            raise CheckpointError(f"{path} holds an unknown detector class {name!r}")
        if not issubclass(klass, cls):
            raise CheckpointError(f"{path} holds a {name}, not a {cls.__name__}")
        try:
            detector = klass(**json.loads(payload["params"]))
            detector.n_features_in_ = int(payload["n_features_in"])
            detector.mean_ = payload["tensors"]["mean"].numpy()
            detector.scale_ = payload["tensors"]["scale"].numpy()
            whitener = payload["tensors"].get("whitener")
            detector.whitener_ = None if whitener is None else whitener.numpy()
            detector._restore_model(payload["model"])
            detector.decision_scores_ = payload["tensors"]["decision_scores"].numpy()
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{path} does not describe a valid {name}: {err}") from err
        detector._process_decision_scores()
        return detector

    # ------------------------------------------------------------------ subclass hooks
    def _fit_model(self, Z: torch.Tensor) -> None:
        raise NotImplementedError

    def _score_model(self, Z: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def _model_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore_model(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


def load_detector(path: str | os.PathLike) -> BaseDetector:
    """Load any detector written by ``BaseDetector.save``."""
    return BaseDetector.load(path)
