"""TCCM: the one-step contraction detector of Li et al. (NeurIPS 2025), re-implemented from its description.

Method: an MLP f(x, t) sees the (standardised) data point x itself -- not an interpolant -- and
the 128-d sinusoidal embedding of t ~ U(0, 1); it is trained with the MSE to -x, i.e. to contract
every training point to the origin. Score: ||f(x, 1) + x||, the distance from the origin of the
one-step endpoint phi = x + f(x, 1). Defaults are the authors' published class defaults: a
256-256 ReLU MLP, Adam with lr 1e-3, batch 64, 100 epochs, standardised inputs.

No code of the authors' repository is used (it carries no licence). The model is
``wtflow.FlowModel(net="tccm-mlp", loss="contraction")`` (``wtflow.networks.ContractionMLP``,
``wtflow.losses.ContractionLoss``), trained by ``wtflow.train`` (the optimiser is AdamW with weight
decay 0, i.e. Adam; constant learning rate).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..model import FlowModel
from ..networks import ContractionMLP
from ._torch import SCORE_CHUNK, TorchFlowDetector
from .base import check_array, check_int

__all__ = ["TCCM", "ContractionMLP"]


class TCCM(TorchFlowDetector):
    """TCCM detector (Li et al., NeurIPS 2025) with the published defaults.

    Args:
        epochs: passes over the training data (100).
        batch_size: samples per step (64): ``wtflow.train`` splits an epoch into ceil(n / 64) balanced
            batches of at most 64, so the number of steps is that of the published loop.
        lr: Adam learning rate (1e-3).
        hidden, depth, time_dim: the ReLU MLP (256-256) and the sinusoidal time embedding (128).
        preprocessing: ``"standardize"`` (published), ``"raw"`` or ``"whiten"`` (see ``wtflow.RFM``).
        seed: seeds initialisation, shuffling and t.
        contamination: expected anomaly fraction in (0, 0.5].
        device: ``"cpu"`` (as published), ``"cuda"`` or ``"auto"``.
    """

    def __init__(
        self,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        hidden: int = 256,
        depth: int = 2,
        time_dim: int = 128,
        preprocessing: str = "standardize",
        seed: int = 0,
        contamination: float = 0.1,
        device: str = "cpu",
    ):
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.hidden = hidden
        self.depth = depth
        self.time_dim = time_dim
        self.preprocessing = preprocessing
        self.seed = seed
        self.contamination = contamination
        self.device = device
        self._check_params()

    def _check_params(self) -> None:
        super()._check_params()
        check_int("epochs", self.epochs)
        check_int("hidden", self.hidden)
        check_int("depth", self.depth)
        check_int("time_dim", self.time_dim, minimum=2)

    def _budget(self, n: int) -> tuple[int, int]:
        return self.epochs, self.batch_size

    def _build_model(self, d: int) -> FlowModel:
        net_kwargs = {"hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim}
        return FlowModel(d, net="tccm-mlp", net_kwargs=net_kwargs, wt="none", target="point", loss="contraction")

    @torch.no_grad()
    def _endpoints(self, Z: Tensor) -> Tensor:
        self.model_.eval()
        out = []
        for chunk in torch.split(Z.to(self._device), SCORE_CHUNK):
            out.append(chunk + self.model_.velocity(chunk, 1.0))
        return torch.cat(out)

    def _score_model(self, Z: Tensor) -> np.ndarray:
        return self._endpoints(Z).norm(dim=1).double().cpu().numpy()

    def transform(self, X) -> np.ndarray:
        """One-step endpoints phi = x + f(x, 1), shape (n, d); the score is ||phi||."""
        self._check_fitted()
        X = check_array(X, "X", n_features=self.n_features_in_)
        return self._endpoints(self._preprocess(X)).double().cpu().numpy()
