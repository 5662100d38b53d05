"""``TrainConfig`` (validated up front), ``TrainResult`` and the device choice of a training run.

Defaults follow the paper's feature-map setting (Sec. V-A): AdamW, lr 2e-4, weight decay 0.1,
100 epochs, batch 8, StepLR with gamma 0.1 every 25 epochs. Suppl. XI-D says every 20 epochs
instead; the step is expressed as a fraction of the run (``lr_step_fraction=0.25`` reproduces
Sec. V-A, 0.2 reproduces XI-D), so toys and vectors can use their own budgets with the same
schedule shape.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .._validation import check_positive_int
from ..checkpoint import dumps_config

__all__ = ["RUN_ONLY_OPTIONS", "TrainConfig", "TrainResult", "config_differences", "resolve_device"]

# Options that change how a run is observed or stored, not what it computes: they may differ on resume.
RUN_ONLY_OPTIONS = ("checkpoint_dir", "checkpoint_every", "progress", "num_workers", "overwrite", "data_parallel")


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (defaults: the paper's feature-map setting, Sec. V-A).

    Attributes:
        epochs: passes over the training set.
        batch_size: largest number of samples per optimiser step over all processes; an epoch has
            ceil(n / batch_size) balanced batches (sizes differ by at most one); >= n gives full-batch
            steps (the toys' "epoch"). Under DDP each process takes its share of every batch, so a run's
            result does not depend on the number of processes.
        lr, weight_decay: AdamW parameters (lr > 0, weight_decay >= 0).
        lr_step_fraction: StepLR period as a fraction of ``epochs`` (0.25 -> every 25 of 100 epochs).
        lr_gamma: StepLR decay factor (> 0).
        seed: seeds the per-epoch shuffling and the per-step draws of x_1 and t.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``...
        amp: bf16 autocast on CUDA (ignored on CPU).
        grad_clip: max gradient norm (> 0; None: no clipping).
        checkpoint_dir: where ``last.pt`` is written (None: no checkpoints).
        checkpoint_every: write a checkpoint every this many epochs (and on interruption and at the end).
        progress: show a tqdm progress bar.
        num_workers: DataLoader worker processes reading batches (0: read in the training process).
        overwrite: allow replacing a previous run's ``last.pt`` in ``checkpoint_dir`` without resuming it.
        data_parallel: under ``torchrun``, train data-parallel over the processes (True) or in this process
            alone (False: when the processes run independent jobs, e.g. one category each).
    """

    epochs: int = 100
    batch_size: int = 8
    lr: float = 2e-4
    weight_decay: float = 0.1
    lr_step_fraction: float = 0.25
    lr_gamma: float = 0.1
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    grad_clip: float | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 10
    progress: bool = True
    num_workers: int = 0
    overwrite: bool = False
    data_parallel: bool = True

    def __post_init__(self):
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("checkpoint_every", self.checkpoint_every)
        check_positive_int("num_workers", self.num_workers, minimum=0)
        check_positive_int("seed", self.seed, minimum=0)
        _check_number("lr", self.lr, "> 0", lambda v: v > 0)
        _check_number("weight_decay", self.weight_decay, ">= 0", lambda v: v >= 0)
        _check_number("lr_gamma", self.lr_gamma, "> 0", lambda v: v > 0)
        _check_number("lr_step_fraction", self.lr_step_fraction, "in (0, 1]", lambda v: 0 < v <= 1)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, "> 0 (or None for no clipping)", lambda v: v > 0)
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, str | Path):
            raise ValueError(f"checkpoint_dir must be a path or None, got {self.checkpoint_dir!r}")

    @property
    def lr_step_epochs(self) -> int:
        """StepLR period in epochs: max(1, round(lr_step_fraction * epochs))."""
        return max(1, round(self.lr_step_fraction * self.epochs))

    def comparable(self) -> str:
        """Canonical JSON of the options that must match for an exact resume."""
        return dumps_config({k: v for k, v in asdict(self).items() if k not in RUN_ONLY_OPTIONS})


def _check_number(name: str, value, rule: str, ok) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not ok(value):
        raise ValueError(f"TrainConfig.{name} must be a finite number {rule}, got {value!r}")


@dataclass
class TrainResult:
    """What a run returns: per-epoch mean losses, per-step losses and the checkpoint written last."""

    epoch_loss: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    checkpoint: Path | None = None


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def config_differences(stored: str, current: str, limit: int = 8) -> str:
    """Name the keys on which two canonical-JSON configurations differ: ``"lr: 0.001 (checkpoint) vs 1.0 (now)"``."""
    old, new = json.loads(stored), json.loads(current)

    def shown(config: dict, key: str) -> str:
        return repr(config[key]) if key in config else "absent"

    diffs = [
        f"{k}: {shown(old, k)} (checkpoint) vs {shown(new, k)} (now)"
        for k in sorted(set(old) | set(new))
        if k not in old or k not in new or old[k] != new[k]
    ]
    more = f" and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more
