"""Training: ``train(model, data, config)`` over tensors, datasets and feature stores, on one process or many.

Modules: ``config`` (``TrainConfig``, ``TrainResult``), ``data`` (what can be trained on), ``sampler``
(seeded balanced batches and per-step noise), ``guards`` (signals, checkpoint folder, resume checks),
``loop`` (the loop itself); data parallelism lives in ``wtflow.distributed``.
"""

from .config import TrainConfig, TrainResult, resolve_device
from .loop import TRAIN_KIND, train

__all__ = ["TRAIN_KIND", "TrainConfig", "TrainResult", "resolve_device", "train"]
