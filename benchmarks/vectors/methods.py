"""The benchmark's method registry: which detectors run, how each is built, and how its preprocessing reads."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import wtflow
from wtflow.detectors.preprocessing import fit_preprocessor

__all__ = [
    "FLOW_METHODS",
    "METHODS",
    "PYOD_METHODS",
    "REFERENCE_METHODS",
    "Mahalanobis",
    "MethodSpec",
    "Standardized",
    "build_methods",
    "describe_preprocessing",
    "flow_factory",
    "pyod_factory",
]

DEFAULT_SEEDS = (0, 1, 2)
QUICK_CATEGORIES = 3
PYOD_METHODS = ("KNN", "LOF", "IForest", "OCSVM", "PCA", "ECOD", "DeepSVDD")
FLOW_METHODS = (
    "WTFlow-LN",
    "WTFlow-LN-K20",
    "WTFlow-BN",
    "WTFlow-BN-K20",
    "RFM",
    "RFM-K20",
    "RFM-W",
    "RFM-W-K20",
    "TCCM",
    "FlowMismatch",
)
# The whitening of RFM-W alone (its squared norm is the Ledoit-Wolf Mahalanobis distance): what the flow adds.
REFERENCE_METHODS = ("Mahalanobis",)
METHODS = FLOW_METHODS + REFERENCE_METHODS + PYOD_METHODS
SPEED_VECTORS = 10_000

# --quick budgets: enough to exercise every code path, not to reach the reported quality.
QUICK_FLOW_STEPS = 100
QUICK_TCCM_EPOCHS = 10
QUICK_DEEPSVDD_EPOCHS = 10


@dataclass
class MethodSpec:
    """How to build and run one benchmarked method.

    Attributes:
        name: row label, e.g. ``"WTFlow-LN"`` or ``"KNN (std)"``.
        family: ``"flow"``, ``"reference"`` (the flows' preprocessing alone) or ``"pyod"``.
        make: ``make(seed, d) -> detector`` with PyOD's ``fit`` / ``decision_function``.
        base: the method name the user selects (``"KNN"`` for both ``"KNN (raw)"`` and ``"KNN (std)"``).
        standardize: standardise inputs with training statistics before the detector (PyOD baselines).
        shares_fit: reuse the fitted detector of this method, changing only ``rescore`` parameters
            (e.g. the Euler steps): same weights, so only the scoring differs.
        rescore: parameters set on the copy of the shared detector.
    """

    name: str
    family: str
    make: Callable[[int, int], Any]
    base: str
    standardize: bool = False
    shares_fit: str | None = None
    rescore: dict[str, Any] = field(default_factory=dict)


class Mahalanobis:
    """Squared Mahalanobis distance under the Ledoit-Wolf shrunk Gaussian of the training data.

    It is the squared norm of the ``"whiten"`` preprocessing of the flow detectors, so the row shows how
    much of RFM-W's result the whitening alone gives.
    """

    preprocessing = "whiten"

    def fit(self, X):
        self.transform_ = fit_preprocessor(X, "whiten")
        return self

    def decision_function(self, X):
        return (self.transform_(X) ** 2).sum(axis=1)


class Standardized:
    """A PyOD detector behind a StandardScaler-style transform fitted on the training data."""

    def __init__(self, detector):
        self.detector = detector

    def fit(self, X):
        self.transform_ = fit_preprocessor(X, "standardize")
        self.detector.fit(self.transform_(X))
        return self

    def decision_function(self, X):
        return self.detector.decision_function(self.transform_(X))


@contextlib.contextmanager
def _isolated_global_rng(seed: int):
    """Seed numpy's and torch's global generators for code that draws from them, then restore them."""
    state = np.random.get_state()  # noqa: NPY002 (PyOD's DeepSVDD shuffles with the global generator)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


class _SeededDeepSVDD:
    """PyOD's DeepSVDD on the CPU with a fixed seed (it draws from the global torch and numpy generators)."""

    def __init__(self, seed: int, d: int, epochs: int | None):
        self.seed, self.d, self.epochs = seed, d, epochs

    def fit(self, X):
        from pyod.models.deep_svdd import DeepSVDD

        kwargs = {} if self.epochs is None else {"epochs": self.epochs}
        with _isolated_global_rng(self.seed):
            # preprocessing=False: the benchmark's raw / std variants decide the input scaling.
            self.detector = DeepSVDD(
                n_features=self.d, random_state=self.seed, verbose=0, preprocessing=False, **kwargs
            )
            self.detector.fit(X)
        return self

    def decision_function(self, X):
        return self.detector.decision_function(X)


def pyod_factory(name: str, quick: bool) -> Callable[[int, int], Any]:
    """``make(seed, d)`` for a PyOD baseline at its defaults (``quick``: fewer DeepSVDD epochs)."""

    def make(seed: int, d: int):
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest
        from pyod.models.knn import KNN
        from pyod.models.lof import LOF
        from pyod.models.ocsvm import OCSVM
        from pyod.models.pca import PCA

        if name == "KNN":
            return KNN()
        if name == "LOF":
            return LOF()
        if name == "IForest":
            return IForest(random_state=seed)
        if name == "OCSVM":
            return OCSVM()
        if name == "PCA":
            return PCA(random_state=seed)
        if name == "ECOD":
            return ECOD()
        return _SeededDeepSVDD(seed, d, QUICK_DEEPSVDD_EPOCHS if quick else None)

    return make


def flow_factory(name: str, quick: bool) -> Callable[[int, int], Any]:
    """``make(seed, d)`` for a flow method at its defaults (``quick``: the smoke-run budget)."""
    steps = {"train_steps": QUICK_FLOW_STEPS} if quick else {}
    # Rankings only: no threshold is used, so one fit instead of the cross-fitted threshold's k + 1; the CPU and
    # the benchmark's own --threads keep every run comparable with the committed one.
    rfm = {**steps, "calibration": "train", "device": "cpu", "threads": None}

    def make(seed: int, d: int):
        if name == "WTFlow-LN":
            return wtflow.WTFlow(wt="layernorm", seed=seed, **rfm)
        if name == "WTFlow-BN":
            return wtflow.WTFlow(wt="batchnorm", seed=seed, **rfm)
        if name == "RFM":
            return wtflow.RFM(seed=seed, **rfm)
        if name == "RFM-W":
            return wtflow.RFM(preprocessing="whiten", seed=seed, **rfm)
        if name == "TCCM":
            return wtflow.TCCM(seed=seed, **({"epochs": QUICK_TCCM_EPOCHS} if quick else {}))
        if name == "FlowMismatch":
            return wtflow.FlowMismatch(seed=seed, **steps)
        raise ValueError(f"unknown flow method {name!r}")

    return make


def build_methods(names: list[str] | None = None, quick: bool = False) -> list[MethodSpec]:
    """The method specs for ``names`` (default: all of ``METHODS``), in table order."""
    names = list(METHODS) if not names else list(names)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    specs = []
    for name in METHODS:
        if name not in names:
            continue
        if name in REFERENCE_METHODS:
            specs.append(MethodSpec(name, "reference", lambda seed, d: Mahalanobis(), base=name))
        elif name in PYOD_METHODS:
            make = pyod_factory(name, quick)
            specs.append(MethodSpec(f"{name} (raw)", "pyod", make, base=name))
            specs.append(MethodSpec(f"{name} (std)", "pyod", make, base=name, standardize=True))
        elif name.endswith("-K20"):
            base = name[: -len("-K20")]
            specs.append(
                MethodSpec(
                    name, "flow", flow_factory(base, quick), base=name, shares_fit=base, rescore={"ode_steps": 20}
                )
            )
        else:
            specs.append(MethodSpec(name, "flow", flow_factory(name, quick), base=name))
    return specs


def describe_preprocessing(spec: MethodSpec, detector: Any) -> str:
    """Input preprocessing of a method as stated in the tables, e.g. ``"standardize + LayerNorm WT"``."""
    if spec.family == "pyod":
        return "standardize" if spec.standardize else "raw"
    label = getattr(detector, "preprocessing", "raw")
    if label == "whiten":
        label = "whiten (Ledoit-Wolf)"
    wt = getattr(detector, "wt", None)
    if wt == "layernorm":
        label += " + LayerNorm WT"
    elif wt == "batchnorm":
        label += " + BatchNorm WT"
    return label
