"""Shared plumbing of the detectors built on ``wtflow.FlowModel`` and ``wtflow.train``."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

from ..checkpoint import dumps_config
from ..model import FlowModel
from ..trainer import TrainConfig, resolve_device, train
from .base import BaseDetector, check_float, check_int, seeded

__all__ = ["TorchFlowDetector", "balanced_batch_size"]

# Largest chunk pushed through the network at scoring time (bounds memory, not results).
SCORE_CHUNK = 8192


def balanced_batch_size(n: int, batch_size: int) -> int:
    """Batch size passed to ``wtflow.train`` for ``n`` samples: floor(n / batch_size) near-equal batches.

    ``wtflow.train`` splits an epoch into ceil(n / B) balanced batches of at most B; with
    B = ceil(n / floor(n / batch_size)) every batch holds at least ``min(batch_size, n)`` samples
    (a lower bound on the batch, as the vector detectors' step budgets assume), instead of at most ``batch_size``.
    """
    n_batches = max(1, n // batch_size)
    return math.ceil(n / n_batches)


class TorchFlowDetector(BaseDetector):
    """Base of detectors whose model is a ``FlowModel`` trained by ``wtflow.train``.

    Subclasses provide ``_build_model(d) -> FlowModel`` and ``_score_model``; this class handles
    the training budget, seeding, devices and saving of the weights.
    Training budget: ``train_steps`` optimiser steps, rounded up to whole epochs.
    """

    _fitted_attributes = (*BaseDetector._fitted_attributes, "model_")

    def _check_params(self) -> None:
        super()._check_params()
        check_int("batch_size", self.batch_size)
        check_float("lr", self.lr, 0.0, low_open=True)
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {self.device!r}")

    def _budget(self, n: int) -> tuple[int, int]:
        """(epochs, batch size) for ``n`` training samples: ``train_steps`` steps on balanced batches."""
        check_int("train_steps", self.train_steps)
        batch = balanced_batch_size(n, self.batch_size)
        return max(1, math.ceil(self.train_steps / math.ceil(n / batch))), batch

    def _train_config(self, n: int) -> TrainConfig:
        epochs, batch = self._budget(n)
        return TrainConfig(
            epochs=epochs,
            batch_size=batch,
            lr=float(self.lr),
            weight_decay=float(getattr(self, "weight_decay", 0.0)),
            # A constant learning rate: the budgets here are a few hundred steps.
            lr_step_fraction=1.0,
            lr_gamma=1.0,
            seed=int(self.seed),
            device=self.device,
            amp=False,
            progress=False,
        )

    def _build_model(self, d: int) -> FlowModel:
        raise NotImplementedError

    def _fit_model(self, Z: torch.Tensor) -> None:
        with seeded(self.seed):
            model = self._build_model(Z.shape[1])
        result = train(model, Z, self._train_config(Z.shape[0]))
        self.model_ = model.eval()
        self.train_loss_ = np.asarray(result.step_loss)

    @property
    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def _model_state(self) -> dict[str, Any]:
        state = {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}
        return {"config": dumps_config(self.model_.config), "state_dict": state}

    def _restore_model(self, state: dict[str, Any]) -> None:
        # Files written before the model config was stored rebuild it from the detector's parameters.
        if "config" in state:
            model = FlowModel.from_config(json.loads(state["config"]))
        else:
            model = self._build_model(self.n_features_in_)
        model.load_state_dict(state["state_dict"])
        self.model_ = model.to(self._device).eval()
