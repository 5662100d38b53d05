"""PyOD-style anomaly detectors for feature vectors built on the wtflow engine.

``RFM`` and ``WTFlow`` (the paper's method), ``TCCM`` (one-step contraction baseline) and
``FlowMismatch`` (velocity discrepancy of a forward flow). All follow PyOD's conventions
(``fit`` / ``decision_function`` / ``predict``, ``decision_scores_``, ``threshold_``, ``labels_``)
without importing pyod.
"""

from .base import BaseDetector, NotFittedError, load_detector
from .flow import RFM, WTFlow
from .mismatch import FlowMismatch
from .tccm import TCCM

__all__ = ["RFM", "TCCM", "BaseDetector", "FlowMismatch", "NotFittedError", "WTFlow", "load_detector"]
