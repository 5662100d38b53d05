"""A PyOD- and scikit-learn-compatible base class for vector anomaly detectors (imports neither at load time).

The conventions follow PyOD's ``BaseDetector``: ``fit(X, y=None)`` returns ``self`` (``y`` is ignored);
``decision_function(X)`` returns (n,) scores, higher = more anomalous; after ``fit`` the detector holds
``decision_scores_`` (training scores), ``threshold_`` (the ``1 - contamination`` quantile of the
calibration scores, see ``wtflow.detectors.calibration``) and ``labels_``; ``predict(X)`` returns 0/1 by
comparing scores with ``threshold_``, ``predict_confidence`` / ``predict(X, return_confidence=True)`` add
PyOD's ExCeeD confidence. Parameters are the ``__init__`` arguments, read and written with ``get_params`` /
``set_params`` as in scikit-learn, so ``sklearn.base.clone`` works.

For scikit-learn (>= 1.6) the detectors are outlier detectors (``__sklearn_tags__``), so they sit at the
end of a ``Pipeline``; ``score_samples(X) = -decision_function(X)`` follows scikit-learn's sign (higher =
more normal) and ``offset_ = -threshold_``, so ``score_samples(X) - offset_ < 0`` exactly where ``predict``
says 1. ``predict`` keeps PyOD's 0/1 labels (scikit-learn's outlier detectors return -1/+1).
``save`` / ``load`` go through ``wtflow.checkpoint`` (atomic write, ``weights_only=True`` read) and keep
the input preprocessing statistics with the weights.

Subclasses implement ``_fit_model(Z)`` (Z: preprocessed training data, float32 tensor (n, d)),
``_score_model(Z)`` -> (n,) float64 numpy scores, and ``_model_state`` / ``_restore_model``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .._validation import check_choice
from ..checkpoint import CheckpointError, dumps_config, load_checkpoint, save_checkpoint
from ..utils.threads import torch_threads
from .calibration import CALIBRATIONS, cross_fit_scores, exceed_confidence
from .preprocessing import PREPROCESSING, Preprocessor, fit_preprocessor

__all__ = ["PREPROCESSING", "BaseDetector", "NotFittedError", "load_detector"]

DETECTOR_KIND = "detector"

_REGISTRY: dict[str, type[BaseDetector]] = {}


class NotFittedError(ValueError, AttributeError):
    """A fitted-only method was called before ``fit`` (a ValueError and an AttributeError, as in scikit-learn)."""


@functools.cache
def _with_sklearn_base(sklearn_error: type) -> type:
    return type("NotFittedError", (NotFittedError, sklearn_error), {"__module__": __name__})


def not_fitted_error(message: str) -> NotFittedError:
    """A ``NotFittedError``; also a ``sklearn.exceptions.NotFittedError`` when scikit-learn is loaded.

    scikit-learn is never imported here (it is optional and slow to import): a caller who catches
    scikit-learn's class has imported it already.
    """
    if "sklearn" not in sys.modules:
        return NotFittedError(message)
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    return _with_sklearn_base(SklearnNotFittedError)(message)


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


def check_array(
    X: Any, name: str = "X", n_features: int | None = None, min_samples: int = 1, owner: str = "the detector"
) -> np.ndarray:
    """Validate a 2-D finite numeric array (n_samples, n_features) and return it as float64.

    Args:
        X: array-like of shape (n, d) (numpy, torch, pandas, nested lists; not sparse, not complex).
        name: argument name used in error messages.
        n_features: if given, the number of columns the fitted detector expects.
        min_samples: smallest accepted n.
        owner: who expects ``n_features`` (a class name), for the error message.
    """
    if torch.is_tensor(X):
        X = X.detach().cpu().numpy()
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise TypeError(f"{name} is a sparse matrix; the detectors need dense input: pass {name}.toarray()")
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a 2-D numeric array (n_samples, n_features), got {type(X).__name__}") from err
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{name} must be a numeric array: {err}") from err
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}. Reshape your data with "
            f"{name}.reshape(-1, 1) for a single feature or {name}.reshape(1, -1) for a single sample"
        )
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"{name} must have at least {min_samples} sample{'s' if min_samples > 1 else ''}, "
            f"got {arr.shape[0]} sample{'' if arr.shape[0] == 1 else 's'} (shape {arr.shape})"
        )
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but {owner} is expecting {n_features} features as input "
            f"(it was fitted on {n_features})"
        )
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

    Optional arguments a subclass may take (read with these defaults when it does not):
        calibration: ``"cross-fit"`` (threshold from out-of-fold scores of ``calibration_folds`` extra fits)
            or ``"train"`` (PyOD's rule: the training scores; optimistic); scores are the same either way.
        calibration_folds: folds k of the cross-fit (default 5).
        threads: torch intra-op threads during ``fit`` and scoring, restored afterwards (None: leave them).
        verbose: show a progress bar while training.
    """

    calibration = "train"
    calibration_folds = 5
    threads = None
    verbose = False

    _estimator_type = "outlier_detector"
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        "decision_scores_",
        "calibration_scores_",
        "threshold_",
        "n_features_in_",
    )

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
        if "contamination" in params and hasattr(self, "calibration_scores_"):
            self._process_decision_scores()
        return self

    def _check_params(self) -> None:
        """Validate the parameters (called by ``__init__``, ``set_params`` and ``fit``)."""
        check_contamination(self.contamination)
        check_choice("preprocessing", self.preprocessing, PREPROCESSING)
        check_choice("calibration", self.calibration, CALIBRATIONS)
        check_int("calibration_folds", self.calibration_folds, minimum=2)
        if self.threads is not None:
            check_int("threads", self.threads)
        if not isinstance(self.verbose, bool | int | np.integer):
            raise ValueError(f"verbose must be a bool, got {self.verbose!r}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ preprocessing
    def _fit_preprocessing(self, X: np.ndarray) -> None:
        prep = fit_preprocessor(X, self.preprocessing)
        self.mean_, self.scale_, self.whitener_ = prep.mean, prep.scale, prep.whitener

    def preprocess(self, X: Any) -> np.ndarray:
        """The fitted input preprocessing applied to ``X`` (n, d) -> (n, d) float64 (what the model sees)."""
        self._check_fitted()
        X = check_array(X, "X", n_features=self.n_features_in_, owner=type(self).__name__)
        return Preprocessor(self.mean_, self.scale_, self.whitener_)(X)

    def _preprocess(self, X: np.ndarray) -> torch.Tensor:
        """(n, d) float64 -> (n, d) float32 tensor on the CPU, with the training statistics."""
        prep = Preprocessor(self.mean_, self.scale_, self.whitener_)
        return torch.from_numpy(prep(X).astype(np.float32))

    # ------------------------------------------------------------------ PyOD API
    def fit(self, X: Any, y: Any = None) -> BaseDetector:
        """Fit on training data ``X`` (n, d); ``y`` is ignored (unsupervised). Returns ``self``.

        With ``calibration="cross-fit"`` the detector is fitted ``calibration_folds`` more times on parts of
        ``X`` to set ``threshold_``; the model that scores is always the one fitted on all of ``X``.
        """
        self._check_params()
        X = check_array(X, "X", min_samples=2)
        if self.calibration == "cross-fit" and X.shape[0] < 2 * self.calibration_folds:
            raise ValueError(
                f"calibration='cross-fit' with calibration_folds={self.calibration_folds} needs at least "
                f"{2 * self.calibration_folds} training samples, got {X.shape[0]}; "
                "use fewer folds or calibration='train'"
            )
        with torch_threads(self.threads):
            self._fit_preprocessing(X)
            Z = self._preprocess(X)
            self.n_features_in_ = X.shape[1]
            self._fit_model(Z)
            self.decision_scores_ = self._score_model(Z)
            self.calibration_scores_ = self._calibration_scores(X)
        self._process_decision_scores()
        return self

    def _calibration_scores(self, X: np.ndarray) -> np.ndarray:
        """Scores whose ``1 - contamination`` quantile is ``threshold_``: out-of-fold or training scores (n,)."""
        if self.calibration == "train":
            return self.decision_scores_
        params = self.get_params() | {"calibration": "train", "verbose": False}
        params = {key: value for key, value in params.items() if key in self._get_param_names()}

        def fit_and_score(X_fit: np.ndarray, X_held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            fold = type(self)(**params).fit(X_fit)
            return fold.decision_scores_, fold.decision_function(X_held_out)

        seed = int(getattr(self, "seed", 0))
        return cross_fit_scores(fit_and_score, X, self.decision_scores_, self.calibration_folds, seed=seed)

    def _process_decision_scores(self) -> None:
        """threshold_ = (1 - contamination) quantile of calibration_scores_; labels_ = decision_scores_ > threshold_."""
        self.threshold_ = float(np.percentile(self.calibration_scores_, 100.0 * (1.0 - self.contamination)))
        self.offset_ = -self.threshold_
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)

    def refresh_threshold(self, X: Any) -> BaseDetector:
        """Set ``threshold_`` from the scores of ``X`` with the current parameters, without retraining.

        Pass held-out normals (an honest calibration set) or, for PyOD's rule, the training data. For
        parameters that act only at scoring time (e.g. the Euler steps of a flow), this turns a fitted
        detector into the fitted detector of the new setting; ``decision_scores_`` and
        ``calibration_scores_`` both become the scores of ``X``.
        """
        self._check_fitted()
        self.decision_scores_ = self.decision_function(X)
        self.calibration_scores_ = self.decision_scores_
        self._process_decision_scores()
        return self

    def _check_fitted(self) -> None:
        if not all(hasattr(self, name) for name in self._fitted_attributes):
            raise not_fitted_error(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores of ``X`` (n, d) -> (n,) float64, higher = more anomalous (PyOD's sign)."""
        self._check_fitted()
        self._check_params()
        X = check_array(X, "X", n_features=self.n_features_in_, owner=type(self).__name__)
        with torch_threads(self.threads):
            return self._score_model(self._preprocess(X))

    def score_samples(self, X: Any) -> np.ndarray:
        """scikit-learn's sign: ``-decision_function(X)``, (n,) float64, higher = more normal."""
        return -self.decision_function(X)

    def predict(self, X: Any, return_confidence: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """0/1 labels (1 = anomaly): ``decision_function(X) > threshold_``, shape (n,).

        With ``return_confidence=True`` also returns ``predict_confidence(X)`` (n,), as PyOD does.
        """
        scores = self.decision_function(X)
        labels = (scores > self.threshold_).astype(int)
        if return_confidence:
            return labels, self._confidence(scores)
        return labels

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X)`` and return ``labels_`` (n,), the 0/1 labels of the training data."""
        return self.fit(X).labels_

    def predict_confidence(self, X: Any) -> np.ndarray:
        """Confidence in [0, 1] of each ``predict(X)`` label, (n,) (ExCeeD, as PyOD's ``predict_confidence``).

        The reference scores are ``calibration_scores_`` (those that set ``threshold_``); see
        ``wtflow.detectors.calibration.exceed_confidence``.
        """
        return self._confidence(self.decision_function(X))

    def _confidence(self, scores: np.ndarray) -> np.ndarray:
        return exceed_confidence(scores, self.calibration_scores_, self.contamination, self.threshold_)

    def __sklearn_tags__(self):
        """scikit-learn (>= 1.6) tags: an unsupervised outlier detector on dense finite 2-D input."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type="outlier_detector",
            target_tags=TargetTags(required=False),
            # Detectors with ``transform`` (flow endpoints) return float64 whatever the input dtype.
            transformer_tags=TransformerTags(preserves_dtype=["float64"]) if hasattr(self, "transform") else None,
            input_tags=InputTags(two_d_array=True, allow_nan=False, sparse=False),
            requires_fit=True,
        )

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
            "calibration_scores": torch.from_numpy(np.asarray(self.calibration_scores_, dtype=np.float64)),
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
            # Files written before threshold calibration existed hold training scores only.
            calibration = payload["tensors"].get("calibration_scores")
            detector.calibration_scores_ = detector.decision_scores_ if calibration is None else calibration.numpy()
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
