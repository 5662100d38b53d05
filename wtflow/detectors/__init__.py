"""PyOD-style anomaly detectors for feature vectors built on the wtflow engine.

``RFM`` and ``WTFlow`` (the paper's method), ``TCCM`` (one-step contraction baseline) and
``FlowMismatch`` (velocity discrepancy of a forward flow). All follow PyOD's conventions
(``fit`` / ``decision_function`` / ``predict``, ``decision_scores_``, ``threshold_``, ``labels_``)
without importing pyod.

``FeatureMapDetector`` is the map-level counterpart on (N, C, H, W) feature maps: anomaly maps,
top-3 % image scores and the velocity-mismatch scorer of one trained field.
"""

from .base import BaseDetector, NotFittedError, load_detector
from .flow import RFM, WTFlow
from .maps import FeatureMapDetector
from .mismatch import FlowMismatch
from .tccm import TCCM

__all__ = [
    "RFM",
    "TCCM",
    "BaseDetector",
    "FeatureMapDetector",
    "FlowMismatch",
    "NotFittedError",
    "WTFlow",
    "load_detector",
]
