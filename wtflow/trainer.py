"""The training entry points, kept at their historical import path (the code lives in ``wtflow.training``)."""

from .training import TRAIN_KIND, TrainConfig, TrainResult, resolve_device, train

__all__ = ["TRAIN_KIND", "TrainConfig", "TrainResult", "resolve_device", "train"]
