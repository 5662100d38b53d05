"""The trained-model cache of the toys: one training run per configuration, observed at several epochs.

Models are cached by a SHA-256 of their full configuration (model, training, initialisation seed and the bytes of
the training set) in ``$WTFLOW_CACHE`` (default ``toys/_cache``) with ``FlowModel.save`` (atomic), so figures,
notebooks and tests train each model once. A lock file next to the entry (``fcntl.flock``) makes a second process
that needs the same model wait for the first and then load its files instead of training it again.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wtflow import FlowModel, TrainConfig, train
from wtflow.checkpoint import CheckpointError, load_checkpoint
from wtflow.utils import config_hash, tensor_digest

try:
    import fcntl
except ImportError:  # not POSIX: no lock, two processes may both train
    fcntl = None

__all__ = ["CACHE_ENV", "CacheRebuildWarning", "Snapshots", "cache_dir", "cache_key", "trained_snapshots"]

CACHE_ENV = "WTFLOW_CACHE"
CACHE_VERSION = 1
DEFAULT_CACHE = Path(__file__).resolve().parent / "_cache"


class CacheRebuildWarning(UserWarning):
    """A cache entry existed but could not be read (truncated or corrupt) and is trained again."""


def cache_dir() -> Path:
    """Directory of cached trained models: ``$WTFLOW_CACHE`` if set, else ``toys/_cache``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else DEFAULT_CACHE


def cache_key(model_config: Mapping[str, Any], train_config: Mapping[str, Any], data: Tensor, init_seed: int) -> str:
    """SHA-256 of everything that determines a trained run: model and training configuration, the seed of the
    weight initialisation and the exact bytes of the training set."""
    return config_hash(
        {
            "cache_version": CACHE_VERSION,
            "model": dict(model_config),
            "train": dict(train_config),
            "init_seed": int(init_seed),
            "data_sha256": tensor_digest(data),
        }
    )


@dataclass
class Snapshots:
    """Trained models of one run at the requested epochs, with where they came from.

    Attributes:
        models: epoch -> ``FlowModel`` (eval mode, CPU).
        epoch_loss: mean training loss of every epoch of the whole run (len = epochs).
        key: the cache key (SHA-256 of the full configuration).
        trained: True if this call trained the run, False if every snapshot came from the cache.
        seconds: wall time of this call.
    """

    models: dict[int, FlowModel]
    epoch_loss: list[float]
    key: str
    trained: bool
    seconds: float

    @property
    def cache_info(self) -> dict[str, Any]:
        """``{"key", "trained", "seconds"}``: what a simulator records about the run in ``ToyResult.info``."""
        return {"key": self.key, "trained": self.trained, "seconds": self.seconds}


def _snapshot_path(name: str, key: str, epoch: int) -> Path:
    return cache_dir() / f"{name}-{key[:20]}-e{epoch}.pt"


@contextlib.contextmanager
def _entry_lock(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (created if needed); say so when another process holds it."""
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"toys: waiting for another process that trains the model of {path.name}", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_cached(paths: dict[int, Path]) -> tuple[dict[int, FlowModel], list[float]] | None:
    """The cached snapshots, or None if any is missing; an unreadable file is reported and deleted."""
    if not all(p.exists() for p in paths.values()):
        return None
    models, losses = {}, []
    for epoch, path in paths.items():
        try:
            models[epoch] = FlowModel.load(path).eval()
            losses = list(json.loads(load_checkpoint(path, "flow-model")["extra"]).get("epoch_loss", []))
        except (CheckpointError, json.JSONDecodeError) as err:
            message = f"toys cache entry {path} is unreadable ({err}); training the model again"
            warnings.warn(message, CacheRebuildWarning, stacklevel=3)
            path.unlink(missing_ok=True)
            return None
    return models, losses


def _train_run(model_config, train_config, data, snaps, init_seed, progress) -> tuple[dict, dict, list[float]]:
    """Train one run; returns the model's config, epoch -> state dict at that epoch, and every epoch's loss."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(init_seed))
        model = FlowModel(**model_config)
    cfg = TrainConfig(**train_config, device="cpu", progress=progress)
    states: dict[int, dict[str, Tensor]] = {}

    def keep(epoch: int, loss: float) -> None:
        if epoch in snaps:
            states[epoch] = copy.deepcopy(model.state_dict())

    result = train(model, data.detach().cpu().float(), cfg, callback=keep)
    return model.config, {e: states[e] for e in snaps}, list(result.epoch_loss)


def trained_snapshots(
    name: str,
    model_config: Mapping[str, Any],
    train_config: Mapping[str, Any],
    data: Tensor,
    snapshots: Sequence[int],
    init_seed: int,
    progress: bool = False,
    use_cache: bool = True,
) -> Snapshots:
    """Train ``FlowModel(**model_config)`` on ``data`` with ``TrainConfig(**train_config)`` and return the
    models after the epochs in ``snapshots`` (one run, observed along the way), using the cache when possible.

    An epoch is one pass over ``data``; the toys use full-batch epochs (``batch_size >= len(data)``).
    The cache key (``cache_key``) covers the model and training configuration, ``init_seed`` and the exact bytes
    of ``data``; the snapshot epochs only select files of that run. An unreadable cache file is retrained with a
    ``CacheRebuildWarning``.

    Args:
        name: file-name prefix in the cache (e.g. ``"ring"``).
        model_config: keyword arguments of ``FlowModel``.
        train_config: keyword arguments of ``TrainConfig`` (``device``/``progress``/checkpointing are set here).
        data: (n, *event_shape) training set.
        snapshots: epochs in [1, train_config["epochs"]] at which to keep the model.
        init_seed: seed of the weight initialisation.
        progress: show the trainer's progress bar.
        use_cache: read and write the cache (False: always train, write nothing).
    """
    start = time.perf_counter()
    train_config = dict(train_config)
    for key in ("device", "progress", "checkpoint_dir", "checkpoint_every"):
        train_config.pop(key, None)
    epochs = int(train_config.get("epochs", TrainConfig.epochs))
    snaps = sorted({int(e) for e in snapshots})
    if not snaps or snaps[0] < 1 or snaps[-1] > epochs:
        raise ValueError(f"snapshots must be epochs in [1, {epochs}], got {list(snapshots)!r}")
    key = cache_key(model_config, train_config, data, init_seed)
    paths = {e: _snapshot_path(name, key, e) for e in snaps}
    lock = _entry_lock(cache_dir() / f"{name}-{key[:20]}.lock") if use_cache else contextlib.nullcontext()
    with lock:
        cached = _load_cached(paths) if use_cache else None
        if cached is not None:
            return Snapshots(*cached, key, trained=False, seconds=time.perf_counter() - start)
        config, states, epoch_loss = _train_run(model_config, train_config, data, snaps, init_seed, progress)
        models = {}
        for e in snaps:
            models[e] = FlowModel.from_config(config)
            models[e].load_state_dict(states[e])
            models[e].eval()
            if use_cache:
                extra = {"key": key, "epoch": e, "epoch_loss": epoch_loss, "train_config": train_config}
                models[e].save(paths[e], extra=extra)
    return Snapshots(models, epoch_loss, key, trained=True, seconds=time.perf_counter() - start)


def full_batch_train(cfg, epochs: int) -> dict:
    """``TrainConfig`` fields of a toy run: one full-batch step per epoch over ``cfg.n_train`` points.

    ``cfg`` is a toy config with ``n_train``, ``lr``, ``weight_decay``, ``lr_step_fraction`` and ``lr_gamma``;
    the dict is part of each cached model's key, so every toy must build it here.
    """
    return {
        "epochs": epochs,
        "batch_size": cfg.n_train,
        "lr": cfg.lr,
        "weight_decay": cfg.weight_decay,
        "lr_step_fraction": cfg.lr_step_fraction,
        "lr_gamma": cfg.lr_gamma,
        "seed": 0,
        "amp": False,
    }
