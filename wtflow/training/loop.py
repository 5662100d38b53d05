"""The training loop: ``train(model, data, config)`` over batches, with exact resume and data parallelism.

Reproducibility: a single process draws every epoch's order and the x_1/t draws of its steps from
one stream seeded by ``seed``; data-parallel processes draw them as functions of (seed, epoch, step)
(``wtflow.training.sampler``). A checkpoint stores the model, the optimiser, the scheduler, the position
(epoch, step), the stream's state and the loss history, written atomically. A CPU run
interrupted (Ctrl-C, SIGTERM, or an exception raised by a callback) and resumed from its last
checkpoint ends with bit-identical weights to an uninterrupted run with the same seed.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..checkpoint import dumps_config, load_checkpoint, save_checkpoint
from ..distributed import DistContext, context_from_env, synchronised_batchnorm, wrap_for_training
from .config import TrainConfig, TrainResult, resolve_device
from .data import TrainingData, as_training_data
from .guards import DeferredSignals, check_resume_state, prepare_checkpoint_dir
from .sampler import EpochBatches, SingleStream, derive_seed, step_generator

__all__ = ["TRAIN_KIND", "train"]

TRAIN_KIND = "training-state"
DIVERGED_FILE = "diverged.pt"


def train(
    model,
    data,
    config: TrainConfig | None = None,
    resume: str | os.PathLike | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` with the model's loss (eq. 4, Algorithm 1), optionally data-parallel.

    Args:
        model: an object with ``loss(batch, generator) -> scalar Tensor``, a JSON-able ``config`` dict, the
            usual ``nn.Module`` methods and optionally ``event_shape`` (a ``FlowModel``); moved to the device.
        data: (N, *event_shape) tensor or numpy array, a ``wtflow.store.FeatureStore`` or any map-style
            ``torch.utils.data.Dataset`` whose items are (*event_shape) tensors. Batches are read on demand.
        config: hyper-parameters (``TrainConfig()`` if None).
        resume: path of a checkpoint written by a previous run of the same configuration on the same data;
            training continues exactly where it stopped.
        callback: called as ``callback(epoch, mean_loss)`` after every epoch (on every process); an exception
            it raises (e.g. ``KeyboardInterrupt``) is an interruption: the state after that epoch is saved first.

    Returns:
        ``TrainResult`` with the loss history and the last checkpoint path.

    Raises:
        FileExistsError: ``checkpoint_dir`` holds another run's ``last.pt`` and neither ``resume`` nor
            ``TrainConfig.overwrite`` says what to do with it.
        FloatingPointError: the loss became NaN/inf; the optimiser step was skipped and ``last.pt`` keeps
            the last good state (the state at the failing step goes to ``diverged.pt``).
        KeyboardInterrupt: SIGINT/SIGTERM or a callback stopped the run after a consistent checkpoint.
    """
    cfg = config or TrainConfig()
    event_shape = tuple(model.event_shape) if hasattr(model, "event_shape") else None
    training_data = as_training_data(data, event_shape)
    ckpt_path = prepare_checkpoint_dir(cfg.checkpoint_dir, resume, cfg.overwrite)
    ctx = context_from_env(resolve_device(cfg.device)) if cfg.data_parallel else DistContext()
    device = ctx.device(resolve_device(cfg.device))
    batches = EpochBatches(training_data.count, cfg.batch_size, cfg.seed, ctx.rank, ctx.world_size)
    _check_batch_sizes(model, cfg, training_data.count, batches, ctx)
    run = _Run(model, cfg, training_data, batches, ctx, device, ckpt_path, callback)
    if resume is not None:
        run.restore(resume)
    with synchronised_batchnorm(model, ctx):
        run.loop()
    model.eval()
    return run.result


class _Run:
    """State of one training run: what is checkpointed, and the steps that change it."""

    def __init__(self, model, cfg, data: TrainingData, batches: EpochBatches, ctx: DistContext, device, ckpt, cb):
        self.model, self.cfg, self.data, self.batches, self.ctx, self.device = model, cfg, data, batches, ctx, device
        self.ckpt_path, self.callback = ckpt, cb
        model.to(device).train()
        self.module = wrap_for_training(model, ctx, device)
        self.opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
        self.result = TrainResult()
        self.epoch, self.step, self.running = 0, 0, 0.0
        # A single process draws from one continuous stream (see wtflow.training.sampler); data-parallel
        # processes draw from per-(rank, epoch, step) generators so that their union matches the global batch.
        self.stream = SingleStream(cfg.seed) if ctx.world_size == 1 else None
        self.resuming = False

    def identity(self) -> dict:
        return {
            "train_config": self.cfg.comparable(),
            "model_config": dumps_config(self.model.config),
            "data_count": self.data.count,
            "data_digest": self.data.digest,
            "world_size": self.ctx.world_size,
        }

    def restore(self, path) -> None:
        state = load_checkpoint(path, TRAIN_KIND, map_location="cpu")
        check_resume_state(path, state, self.identity())
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.epoch, self.step, self.running = int(state["epoch"]), int(state["step_in_epoch"]), float(state["running"])
        self.result.epoch_loss, self.result.step_loss = list(state["epoch_loss"]), list(state["step_loss"])
        if self.stream is not None:
            self.stream.restore(state["stream"])
            self.resuming = self.step > 0
        self.model.to(self.device)

    def snapshot(self, path: Path | None = None, wait: bool = True) -> Path | None:
        """Rank 0 writes the state atomically to ``path`` (default ``last.pt``); the others wait if ``wait``."""
        path = path or self.ckpt_path
        if path is None:
            return None
        if self.ctx.is_main:
            ident = self.identity()
            payload = {
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "optimizer": _to_cpu(self.opt.state_dict()),
                "scheduler": self.sched.state_dict(),
                "epoch": self.epoch,
                "step_in_epoch": self.step,
                "running": self.running,
                "epoch_loss": self.result.epoch_loss,
                "step_loss": self.result.step_loss,
                "train_config": ident["train_config"],
                "model_config": ident["model_config"],
                "data": {"count": ident["data_count"], "digest": ident["data_digest"]},
                "world_size": ident["world_size"],
                "sampler": {"seed": self.cfg.seed, "epoch": self.epoch, "step": self.step},
            }
            if self.stream is not None:
                payload["stream"] = self.stream.state()
            save_checkpoint(path, TRAIN_KIND, payload)
        if wait:
            self.ctx.barrier()
        if path == self.ckpt_path:
            self.result.checkpoint = path
        return path

    def loop(self) -> None:
        bar = _progress(self.cfg, initial=self.epoch) if self.ctx.is_main else None
        with DeferredSignals() as signals:
            while self.epoch < self.cfg.epochs:
                if self.step == 0:
                    self.running = 0.0
                for batch in self._loader():
                    self._step(batch.to(self.device, non_blocking=True), signals)
                self._end_epoch(bar)
        if bar is not None:
            bar.close()

    def _loader(self) -> Iterable[torch.Tensor]:
        """This process's remaining batches of the epoch: read in place, or by ``num_workers`` loader processes."""
        order = None
        if self.stream is not None:
            order = self.stream.permutation(self.data.count, resuming=self.resuming)
            self.resuming = False
        indices = self.batches.local_batches(self.epoch, self.step, order)
        workers = self.cfg.num_workers
        if workers == 0:
            return (self.data.source[idx] for idx in indices)
        return DataLoader(
            self.data.source,
            sampler=list(indices),
            batch_size=None,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            # The loader draws a worker base seed; from its own generator, so the global RNG stays untouched.
            generator=torch.Generator().manual_seed(derive_seed(self.cfg.seed, "loader", self.epoch)),
        )

    def _step(self, batch: torch.Tensor, signals: DeferredSignals) -> None:
        global_size = self.batches.global_sizes[self.step]
        share = batch.shape[0] / global_size
        # The forward pass updates buffers (BatchNorm running statistics); keep them to undo a failed step.
        buffers = [b.detach().clone() for b in self.model.buffers()]
        with self._autocast():
            # DDP averages gradients over processes; weighting by share * world_size makes that average the
            # gradient of the global batch's mean loss even when the processes' parts differ by one sample.
            generator = (
                self.stream.generator
                if self.stream is not None
                else step_generator(self.cfg.seed, self.ctx.rank, self.epoch, self.step)
            )
            loss = self.module(batch, generator, share * self.ctx.world_size)
        # One all-reduce per step gives every process the global loss and any process's stop request, so all
        # of them take the same branch below (a collective skipped by one process would hang the others).
        flag = loss.detach().new_tensor(float(signals.requested), dtype=torch.float32)
        value, stop = self.ctx.sum(torch.stack([loss.detach().float() / self.ctx.world_size, flag])).tolist()
        if not math.isfinite(value):
            self._diverged(value, buffers)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            if not torch.isfinite(norm):
                self._diverged(float(norm), buffers, what="gradient norm")
        self.opt.step()
        self.result.step_loss.append(value)
        self.running += value * global_size
        self.step += 1
        if stop:
            self.snapshot()
            where = f"resume from {self.result.checkpoint}" if self.ckpt_path else _NOTHING_SAVED
            raise KeyboardInterrupt(f"training interrupted by {signals.describe()}; {where}")

    def _diverged(self, value: float, buffers: list[torch.Tensor], what: str = "training loss") -> None:
        """Restore the state before the failing step, save it apart from ``last.pt`` and raise."""
        with torch.no_grad():
            for buffer, saved in zip(self.model.buffers(), buffers, strict=True):
                buffer.copy_(saved)
        where = f"epoch {self.epoch + 1} of {self.cfg.epochs}, step {self.step + 1} of {self.batches.steps_per_epoch}"
        if self.ckpt_path is None:
            saved = "nothing was saved (TrainConfig.checkpoint_dir is None)"
        else:
            last = self.result.checkpoint or (self.ckpt_path if self.ckpt_path.exists() else None)
            diverged = self.snapshot(self.ckpt_path.with_name(DIVERGED_FILE))
            saved = (
                f"the last good checkpoint {last or '(none written yet)'} is kept; the state at the failing "
                f"step is in {diverged}"
            )
        raise FloatingPointError(
            f"{what} became {value} at {where}; the optimiser step was skipped and {saved}. "
            "Lower lr, set grad_clip, or check the data"
        )

    def _end_epoch(self, bar) -> None:
        self.sched.step()
        self.result.epoch_loss.append(self.running / self.data.count)
        self.epoch, self.step = self.epoch + 1, 0
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{self.result.epoch_loss[-1]:.4f}")
        try:
            if self.callback is not None:
                self.callback(self.epoch, self.result.epoch_loss[-1])
        except BaseException:
            # Another process may be elsewhere; save without waiting for it.
            self.snapshot(wait=False)
            raise
        if self.epoch % self.cfg.checkpoint_every == 0 or self.epoch == self.cfg.epochs:
            self.snapshot()

    def _autocast(self):
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


_NOTHING_SAVED = "nothing was saved (TrainConfig.checkpoint_dir is None), so a rerun starts from the beginning"


def _check_batch_sizes(model, cfg: TrainConfig, n: int, batches: EpochBatches, ctx: DistContext) -> None:
    """Every batch must give BatchNorm two values per feature and every process at least one sample."""
    smallest = batches.smallest_batch
    cause = f"n = {n} training sample(s) with batch_size = {cfg.batch_size} give batches of {smallest}"
    if smallest < ctx.world_size:
        raise ValueError(f"{cause}, fewer than the {ctx.world_size} processes: raise batch_size (or n)")
    event_shape = tuple(getattr(model, "event_shape", ()))
    values_per_feature = smallest * math.prod(event_shape[1:])
    if model.config.get("wt") == "batchnorm" and values_per_feature < 2:
        culprit = "n" if n < 2 else "batch_size"
        raise ValueError(
            f"the batchnorm WT map needs at least 2 samples per batch to estimate its statistics, but {cause}: "
            f"{culprit} is the cause (raise it, or use wt='layernorm')"
        )


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
