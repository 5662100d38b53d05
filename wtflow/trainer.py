"""Training loop for ``FlowModel`` on any device, with exact resume.

Defaults follow the paper's feature-map setting (Sec. V-A): AdamW, lr 2e-4,
weight decay 0.1, 100 epochs, batch 8, StepLR with gamma 0.1 every 25 epochs.
Suppl. XI-D says every 20 epochs instead; the step is expressed as a fraction
of the run (``lr_step_fraction=0.25`` reproduces Sec. V-A, 0.2 reproduces XI-D),
so toys and vectors can use their own budgets with the same schedule shape.

Reproducibility: one CPU ``torch.Generator`` seeded by ``seed`` drives the
shuffling, the target samples x_1 and the times t; its state, the model, the
optimiser, the scheduler, the position inside the epoch and the loss history are
checkpointed atomically. A CPU run interrupted (Ctrl-C, or an exception raised by
a callback) and resumed from its last checkpoint ends with bit-identical weights
to an uninterrupted run with the same seed.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ._validation import check_finite, check_positive_int
from .checkpoint import CheckpointError, dumps_config, load_checkpoint, save_checkpoint
from .model import FlowModel

__all__ = ["TrainConfig", "TrainResult", "train"]

TRAIN_KIND = "training-state"


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run (defaults: the paper's feature-map setting, Sec. V-A).

    Attributes:
        epochs: passes over the training set.
        batch_size: largest number of samples per step; an epoch has ceil(n / batch_size) balanced
            batches (sizes differ by at most one); >= n gives full-batch steps (the toys' "epoch").
        lr, weight_decay: AdamW parameters.
        lr_step_fraction: StepLR period as a fraction of ``epochs`` (0.25 -> every 25 of 100 epochs).
        lr_gamma: StepLR decay factor.
        seed: seeds the generator for shuffling, x_1 and t.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``...
        amp: bf16 autocast on CUDA (ignored on CPU).
        grad_clip: max gradient norm (None: no clipping).
        checkpoint_dir: where ``last.pt`` is written (None: no checkpoints).
        checkpoint_every: write a checkpoint every this many epochs (and on interruption and at the end).
        progress: show a tqdm progress bar.
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

    def __post_init__(self):
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("checkpoint_every", self.checkpoint_every)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not (0 < self.lr_step_fraction <= 1):
            raise ValueError(f"lr_step_fraction must lie in (0, 1], got {self.lr_step_fraction!r}")

    @property
    def lr_step_epochs(self) -> int:
        """StepLR period in epochs: max(1, round(lr_step_fraction * epochs))."""
        return max(1, round(self.lr_step_fraction * self.epochs))


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


class _DeferredInterrupt:
    """Turn SIGINT into a flag checked between optimiser steps, so a checkpoint is never half-updated."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _optimizer(model: FlowModel, cfg: TrainConfig):
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    return opt, sched


def train(
    model: FlowModel,
    data: Tensor,
    config: TrainConfig | None = None,
    resume: str | os.PathLike | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` (N, *event_shape) with the flow-matching loss (eq. 4).

    Args:
        model: a ``FlowModel``; moved to ``config.device``.
        data: training samples (kept on the CPU; batches are moved to the device).
        config: hyper-parameters (``TrainConfig()`` if None).
        resume: path of a checkpoint written by a previous run of the same configuration;
            training continues exactly where it stopped.
        callback: called as ``callback(epoch, mean_loss)`` after every epoch; an exception it
            raises (e.g. ``KeyboardInterrupt``) is treated as an interruption: a checkpoint of
            the state after that epoch is written first.

    Returns:
        ``TrainResult`` with the loss history and the last checkpoint path.
    """
    cfg = config or TrainConfig()
    if tuple(data.shape[1:]) != model.event_shape:
        raise ValueError(f"data must have shape (N, {', '.join(map(str, model.event_shape))}), got {tuple(data.shape)}")
    check_finite("data", data)
    n = data.shape[0]
    if n < 2 and model.config["wt"] == "batchnorm":
        raise ValueError(f"the batchnorm WT map needs at least 2 training samples, got {n}")
    device = resolve_device(cfg.device)
    data = data.detach().to("cpu", torch.float32)
    model.to(device).train()
    opt, sched = _optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    result = TrainResult()
    ckpt_path = Path(cfg.checkpoint_dir) / "last.pt" if cfg.checkpoint_dir else None

    epoch, step_in_epoch, perm, running = 0, 0, None, 0.0
    if resume is not None:
        state = load_checkpoint(resume, TRAIN_KIND, map_location="cpu")
        if state["train_config"] != _comparable(cfg) or state["model_config"] != dumps_config(model.config):
            raise CheckpointError(f"{resume} was written by a run with a different model or training configuration")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        epoch, step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        perm, running = state["perm"], float(state["running"])
        result.epoch_loss, result.step_loss = list(state["epoch_loss"]), list(state["step_loss"])
        model.to(device)

    def snapshot() -> Path | None:
        if ckpt_path is None:
            return None
        payload = {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": _to_cpu(opt.state_dict()),
            "scheduler": sched.state_dict(),
            "generator": gen.get_state(),
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "perm": perm if perm is not None else torch.empty(0, dtype=torch.long),
            "running": running,
            "epoch_loss": result.epoch_loss,
            "step_loss": result.step_loss,
            "train_config": _comparable(cfg),
            "model_config": dumps_config(model.config),
        }
        result.checkpoint = save_checkpoint(ckpt_path, TRAIN_KIND, payload)
        return result.checkpoint

    # Balanced batches: ceil(n / B) batches of near-equal size <= B, so no step sees a lone sample
    # (BatchNorm statistics need two) and every batch weighs about the same in the running statistics.
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if (cfg.amp and device.type == "cuda")
        else contextlib.nullcontext()
    )
    bar = _progress(cfg, initial=epoch)
    with _DeferredInterrupt() as interrupt:
        while epoch < cfg.epochs:
            if step_in_epoch == 0:
                perm, running = torch.randperm(n, generator=gen), 0.0
            while step_in_epoch < steps_per_epoch:
                idx = torch.tensor_split(perm, steps_per_epoch)[step_in_epoch]
                batch = data[idx].to(device, non_blocking=True)
                with autocast:
                    loss = model.loss(batch, generator=gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    snapshot()
                    raise FloatingPointError(f"training loss became {value} at epoch {epoch}, step {step_in_epoch}")
                result.step_loss.append(value)
                running += value * idx.numel()
                step_in_epoch += 1
                if interrupt.requested:
                    snapshot()
                    raise KeyboardInterrupt(f"training interrupted; resume from {result.checkpoint}")
            sched.step()
            result.epoch_loss.append(running / n)
            epoch, step_in_epoch = epoch + 1, 0
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{result.epoch_loss[-1]:.4f}")
            try:
                if callback is not None:
                    callback(epoch, result.epoch_loss[-1])
            except BaseException:
                snapshot()
                raise
            if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                snapshot()
    if bar is not None:
        bar.close()
    model.eval()
    return result


def _comparable(cfg: TrainConfig) -> str:
    """The parts of a config that must match for an exact resume (not checkpointing or display options)."""
    keep = {k: v for k, v in asdict(cfg).items() if k not in ("checkpoint_dir", "checkpoint_every", "progress")}
    return dumps_config(keep)


def _to_cpu(obj):
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _progress(cfg: TrainConfig, initial: int):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.epochs, initial=initial, desc="train", unit="epoch", leave=False)
