"""rFM and WT-Flow as PyOD-style detectors for feature vectors (Algorithm 1 on (N, D) inputs).

Training (Algorithm 1, eq. 4): x_0 = WT(preprocessed x), x_1 ~ target, t ~ U(T, 1),
x_t = (1 - t) x_0 + t x_1, loss ||v(x_t, t) - (x_1 - x_0)||^2, through ``wtflow.FlowModel`` and
``wtflow.train`` (the same engine as for toys and feature maps). Scoring: phi = Euler(WT(x), v, K
steps) from t = T to 1, then the density proxy of eq. 2 averaged over the D entries, or ||phi||
(``wtflow.score_endpoints``).

One-step inference (K = 1) has a closed reading: at t = 0 the optimal field is
v*(x_0, 0) = E[x_1] - x_0 = -x_0 for the Gaussian target, so phi = x_0 + v(x_0, 0) is close to 0 on
the support of the training data and grows where the network extrapolates -- a learned contraction
(compare TCCM). With K = 20 the flow follows the learned transport to the target.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .._validation import check_choice
from ..distributions import TARGETS
from ..model import FlowModel
from ..scores import SCORES, score_endpoints
from ..trainer import TrainConfig
from ..utils.threads import torch_threads
from ._torch import SCORE_CHUNK, TorchFlowDetector
from .base import check_array, check_float, check_int

__all__ = ["RFM", "WTFlow"]

WTFLOW_MAPS = ("layernorm", "batchnorm")


class _RFMBase(TorchFlowDetector):
    """Common code of ``RFM`` (no WT map) and ``WTFlow`` (LayerNorm / BatchNorm WT map)."""

    _wt = "none"

    def _check_params(self) -> None:
        super()._check_params()
        check_choice("target", self.target, TARGETS)
        check_choice("score", self.score, SCORES)
        check_int("ode_steps", self.ode_steps)
        check_int("hidden", self.hidden)
        check_int("depth", self.depth)
        check_int("time_dim", self.time_dim, minimum=2)
        check_float("t_min", self.t_min, 0.0, 0.999)
        check_int("train_steps", self.train_steps)
        check_float("weight_decay", self.weight_decay, 0.0)

    def _build_model(self, d: int) -> FlowModel:
        return FlowModel(
            d,
            net="mlp",
            net_kwargs={"hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim},
            wt=self._wt,
            target=self.target,
            t_min=float(self.t_min),
        )

    def _train_config(self, n: int) -> TrainConfig:
        return replace(super()._train_config(n), progress=bool(self.verbose))

    def _endpoints(self, Z: torch.Tensor) -> torch.Tensor:
        return self.model_.transport(Z.to(self._device), steps=self.ode_steps, batch_size=SCORE_CHUNK).x_end

    def _score_model(self, Z: torch.Tensor) -> np.ndarray:
        return score_endpoints(self._endpoints(Z), self.score).double().cpu().numpy()

    def transform(self, X) -> np.ndarray:
        """Endpoints phi (n, d) of the learned flow from WT(x) (``ode_steps`` Euler steps); ||phi|| vs sqrt(d)."""
        self._check_fitted()
        X = check_array(X, "X", n_features=self.n_features_in_, owner=type(self).__name__)
        with torch_threads(self.threads):
            return self._endpoints(self._preprocess(X)).double().cpu().numpy()

    def fit_transform(self, X, y=None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``: the (n, d) endpoints of the training data."""
        return self.fit(X).transform(X)


_COMMON_DOC = """
    Args:
        target: rFM target x_1: ``"gaussian"`` N(0, I), ``"sphere"`` (uniform, radius sqrt(D)) or ``"point"``
            (Table VIII).
        ode_steps: Euler steps K at scoring time (1 = one-step inference, Table VII; the paper detects with 20).
        score: ``"norm"`` (||phi||) or ``"density"`` (eq. 2, mean over the D entries).
        hidden, depth, time_dim: the velocity MLP (``wtflow.VelocityMLP``: depth x Linear(hidden) + SiLU).
        train_steps: optimiser steps (AdamW, constant learning rate ``lr``), rounded up to whole epochs.
        batch_size: samples per step (floor(n / batch_size) equal batches per epoch, see ``balanced_batch_size``).
        lr, weight_decay: AdamW parameters.
        t_min: truncation T of Theorem 2 (training t ~ U(T, 1), inference from T).
        preprocessing: ``"raw"``, ``"standardize"`` (training mean / std per feature) or ``"whiten"``
            (ZCA with the Ledoit-Wolf shrunk training covariance) before the WT map. ``RFM(preprocessing=
            "whiten")`` is the "RFM-W" configuration of the vector benchmark. With whitening the training
            vectors score lower than unseen normals (the covariance is fitted on them), which is why the
            threshold is cross-fitted by default (``calibration``).

        seed: seeds the network initialisation, the shuffling, x_1 and t: equal seeds give equal scores.
        contamination: expected anomaly fraction in (0, 0.5] for ``threshold_`` / ``predict``.
        calibration: ``"cross-fit"``: ``threshold_`` is the ``1 - contamination`` quantile of out-of-fold
            scores from ``calibration_folds`` extra fits on (k - 1) / k of the data, each mapped onto the main
            model's score scale (``wtflow.detectors.calibration``), so that roughly ``contamination`` of unseen
            normals are flagged (the fold models' smaller training sets make it err low); ``"train"``: the
            quantile of the training scores (PyOD's rule, one fit, optimistic: flags more unseen normals).
            Scores, rankings and the model are identical under both.
        calibration_folds: k of the cross-fit (the fit costs k + 1 trainings).
        threads: torch intra-op threads during fit and scoring, restored afterwards; None leaves torch's
            setting. Small networks on a few hundred vectors gain little from more threads and lose much to
            oversubscription on a busy machine.
        verbose: show a progress bar over the training epochs.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.

    Defaults for vectors (a few hundred samples of a few hundred dimensions), chosen without MVTec labels on
    the digits one-class protocol and on held-out training normals: raw inputs (standardising blows up
    features that are almost constant in training, so unseen normals score like anomalies), the norm score,
    400 AdamW steps at a constant lr 3e-3, one Euler step.
"""


class RFM(_RFMBase):
    __doc__ = (
        """Time-reversed flow matching (rFM) detector: data -> target without a WT map (paper Sec. III-B).
"""
        + _COMMON_DOC
    )

    _wt = "none"

    def __init__(
        self,
        target: str = "gaussian",
        ode_steps: int = 1,
        score: str = "norm",
        hidden: int = 256,
        depth: int = 3,
        time_dim: int = 64,
        train_steps: int = 400,
        batch_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        t_min: float = 0.0,
        preprocessing: str = "raw",
        seed: int = 0,
        contamination: float = 0.1,
        calibration: str = "cross-fit",
        calibration_folds: int = 5,
        threads: int | None = 1,
        verbose: bool = False,
        device: str = "auto",
    ):
        self.target = target
        self.ode_steps = ode_steps
        self.score = score
        self.hidden = hidden
        self.depth = depth
        self.time_dim = time_dim
        self.train_steps = train_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.t_min = t_min
        self.preprocessing = preprocessing
        self.seed = seed
        self.contamination = contamination
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.threads = threads
        self.verbose = verbose
        self.device = device
        self._check_params()


class WTFlow(_RFMBase):
    __doc__ = (
        """WT-Flow detector: rFM from the WT-mapped data x_0 = WT(x) (Algorithm 1, Sec. IV).

    wt: ``"layernorm"`` (per-sample, Lemma 5: ||x_0|| = sqrt(D)) or ``"batchnorm"`` (per feature with
        the training statistics at test time, Lemma 6).
"""
        + _COMMON_DOC
    )

    def __init__(
        self,
        wt: str = "layernorm",
        target: str = "gaussian",
        ode_steps: int = 1,
        score: str = "norm",
        hidden: int = 256,
        depth: int = 3,
        time_dim: int = 64,
        train_steps: int = 400,
        batch_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        t_min: float = 0.0,
        preprocessing: str = "raw",
        seed: int = 0,
        contamination: float = 0.1,
        calibration: str = "cross-fit",
        calibration_folds: int = 5,
        threads: int | None = 1,
        verbose: bool = False,
        device: str = "auto",
    ):
        self.wt = wt
        self.target = target
        self.ode_steps = ode_steps
        self.score = score
        self.hidden = hidden
        self.depth = depth
        self.time_dim = time_dim
        self.train_steps = train_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.t_min = t_min
        self.preprocessing = preprocessing
        self.seed = seed
        self.contamination = contamination
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.threads = threads
        self.verbose = verbose
        self.device = device
        self._check_params()

    @property
    def _wt(self) -> str:
        return self.wt

    def _check_params(self) -> None:
        check_choice("wt", self.wt, WTFLOW_MAPS)
        super()._check_params()
