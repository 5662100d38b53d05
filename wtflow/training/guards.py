"""What keeps a run from losing work: deferred signals, a checked checkpoint folder, a checked resume."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError
from .config import config_differences

__all__ = ["DeferredSignals", "check_resume_state", "prepare_checkpoint_dir"]


class DeferredSignals:
    """Turn SIGINT (Ctrl-C) and SIGTERM (what schedulers send) into a flag checked between optimiser steps.

    The loop finishes the step in progress, writes a consistent checkpoint and then raises
    ``KeyboardInterrupt``, so a checkpoint is never half-updated. Only the main thread can install
    handlers; elsewhere signals keep their default behaviour.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        return False

    def describe(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else "an interruption"


def prepare_checkpoint_dir(
    directory: str | os.PathLike | None, resume: str | os.PathLike | None, overwrite: bool
) -> Path | None:
    """Create ``directory``, prove it writable and refuse to replace another run's ``last.pt``; returns that path.

    Done before any compute, so an unwritable folder or a forgotten ``resume=`` costs nothing.
    """
    if directory is None:
        return None
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as err:
        raise OSError(f"checkpoint_dir {directory} cannot be created or written to: {err}") from err
    last = directory / "last.pt"
    resuming_it = resume is not None and Path(resume).resolve() == last.resolve()
    if last.exists() and not resuming_it and not overwrite:
        raise FileExistsError(
            f"{last} holds a previous run's checkpoint and would be replaced. Continue that run with "
            f"train(..., resume={str(last)!r}), or start afresh with TrainConfig(overwrite=True) "
            "(or choose another checkpoint_dir)"
        )
    return last


def check_resume_state(path, state: dict[str, Any], expected: dict[str, Any]) -> None:
    """Refuse a checkpoint written for other data, another configuration or another number of processes.

    ``expected`` holds ``train_config``, ``model_config`` (canonical JSON), ``data_count``,
    ``data_digest`` and ``world_size`` of the current call.
    """
    for key, what in (("model_config", "model"), ("train_config", "training")):
        if state[key] != expected[key]:
            raise CheckpointError(
                f"{path} was written by a run with a different model or training configuration; "
                f"{what} configuration differs in {config_differences(state[key], expected[key])}"
            )
    data = state.get("data", {})
    if data.get("count") != expected["data_count"]:
        raise CheckpointError(
            f"{path} was written for a training set of {data.get('count')} samples, this data has "
            f"{expected['data_count']}: resume with the same data (or start a new run)"
        )
    if data.get("digest") != expected["data_digest"]:
        raise CheckpointError(
            f"{path} was written for different training data of the same size (data digest "
            f"{str(data.get('digest'))[:24]}... vs {expected['data_digest'][:24]}... now): resume with the same data"
        )
    if state.get("world_size", 1) != expected["world_size"]:
        raise CheckpointError(
            f"{path} was written by a run on {state.get('world_size', 1)} process(es), this run has "
            f"{expected['world_size']}: an exact resume needs the same number (torchrun --nproc_per_node)"
        )
