"""WT-Flow on (N, C, H, W) feature maps: one trained field, anomaly maps and image scores (paper Sec. III-IV).

Training (Algorithm 1, eq. 4): x_0 = WT(x) per map, x_1 ~ target, t ~ U(T, 1), the mini U-Net v(x_t, t)
regresses x_1 - x_0 (``wtflow.FlowModel`` with ``net="unet"``, trained by ``wtflow.train``).

Scoring with the rFM transport: phi = ODE(WT(x), v) from t = T to 1 in K Euler steps (K = 1 for
localisation, K = 20 for detection in the paper); the anomaly map is the channel mean of the density
proxy A(phi) = 1 - exp(-phi^2 / 2) / sqrt(2 pi) of eq. 2 at each position, and the image score the
mean of the top 3 % of the map (Suppl. XI-D).

Scoring with velocity mismatch (``score_mismatch``), the Flow-Mismatching rule (see
``wtflow.scores.velocity_mismatch``) applied to the same rFM field: along the straight path from the
test map x_0 = WT(x) at t = 0 to a target probe eps at t = 1, the learned velocity v(x_t, t) is compared
with the geometric velocity eps - x_0 of that path,

    m(x; eps, t)[h, w] = t^2 * mean_c (v(x_t, t) - (eps - x_0))_c^2[h, w],   x_t = (1 - t) x_0 + t eps,

(t^2 makes m the squared error of the one-step estimate x_t - t v of x_0; ``time_weighting="none"``
drops it). The map is the median over ``n_probes`` fixed probes of the mean over ``n_times`` equally
spaced t in [t_low, t_high]. For the Gaussian target the rFM field is the generative field run
backwards (t -> 1 - t), so this is Flow Mismatching's noise-to-image probe with its times mirrored:
rFM t in [0.1, 0.5] is generative time in [0.5, 0.9].
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._validation import check_choice
from ..checkpoint import CheckpointError, dumps_config, load_checkpoint, save_checkpoint
from ..distributions import TARGETS
from ..model import FlowModel
from ..scores import (
    MISMATCH_WEIGHTINGS,
    SCORES,
    aggregate_mismatch,
    anomaly_map,
    as_image_size,
    image_score,
    mismatch_times,
    upsample_map,
    velocity_mismatch,
)
from ..trainer import TrainConfig, resolve_device, train
from ..wt import WT_MAPS
from .base import NotFittedError, check_float, check_int, seeded
from .mismatch import PROBE_SEED_OFFSET

__all__ = ["FeatureMapDetector", "as_feature_maps"]

MAP_DETECTOR_KIND = "feature-map-detector"
MAP_NETWORKS = ("unet",)


def as_feature_maps(x: Any, name: str = "x", channels: int | None = None) -> Tensor:
    """A Tensor or numpy array (N, C, H, W) as a finite float32 CPU tensor; clear errors otherwise.

    Args:
        x: the maps; name: the argument name used in errors; channels: the C the detector was fitted on.
    """
    if isinstance(x, np.ndarray):
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise ValueError(f"{name} must be a numeric array (N, C, H, W), got dtype {x.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not torch.is_tensor(x):
        raise ValueError(f"{name} must be a torch Tensor or numpy array (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"{name} must hold at least one map of positive size, got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels, but the detector was fitted on {channels}")
    x = x.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        n_nan, n_inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise ValueError(f"{name} must be finite, got {n_nan} NaN and {n_inf} inf entries (shape {tuple(x.shape)})")
    return x


def _training_data(data: Any) -> tuple[Tensor | torch.utils.data.Dataset, tuple[int, ...]]:
    """(data for ``wtflow.train``, event shape (C, H, W)).

    Tensors and arrays are checked whole; a torch ``Dataset`` is passed on as it is (its first item gives
    the shape, the trainer reads it in batches); any other iterable is read as a sequence of (B, C, H, W)
    batches and concatenated in memory -- meant for small sets (use a Dataset for large ones).
    """
    if torch.is_tensor(data) or isinstance(data, np.ndarray):
        x = as_feature_maps(data, "data")
        return x, tuple(x.shape[1:])
    if isinstance(data, torch.utils.data.Dataset):
        if len(data) < 1:
            raise ValueError("data is an empty Dataset")
        first = data[0]
        if not torch.is_tensor(first) or first.ndim != 3:
            shape = tuple(first.shape) if torch.is_tensor(first) else type(first).__name__
            raise ValueError(f"data must be a Dataset of (C, H, W) tensors, got item 0 of {shape}")
        return data, tuple(first.shape)
    if isinstance(data, Iterable) and not isinstance(data, str | bytes):
        batches = [as_feature_maps(b, f"data batch {i}") for i, b in enumerate(data)]
        if not batches:
            raise ValueError("data is an empty iterable of batches")
        shapes = {tuple(b.shape[1:]) for b in batches}
        if len(shapes) > 1:
            raise ValueError(f"data batches must share one (C, H, W) shape, got {sorted(shapes)}")
        x = torch.cat(batches)
        return x, tuple(x.shape[1:])
    raise ValueError(f"data must be a Tensor, numpy array, torch Dataset or iterable of batches, got {type(data)}")


class FeatureMapDetector:
    """WT-Flow / rFM anomaly detector on (N, C, H, W) feature maps with the paper's mini U-Net.

    Args:
        wt: WT map ``"layernorm"`` / ``"batchnorm"`` (WT-Flow) or ``"none"`` (rFM).
        target: ``"gaussian"``, ``"sphere"`` or ``"point"`` (Table VIII).
        steps: Euler steps K at scoring time (1: localisation, 20: detection in the paper).
        t_min: truncation T of Theorem 2 (training t ~ U(T, 1), inference from T).
        score: ``"density"`` (eq. 2, channel mean) or ``"norm"`` (per-position ||phi||).
        net: ``"unet"``; ``base_channels`` (NC), ``pos_encoding``, ``input_norm`` (the "std" placement
            of Table XI), ``channel_mult`` and ``num_res_blocks`` go to ``wtflow.MiniUNet``.
        epochs, batch_size, lr, weight_decay, lr_step_fraction, lr_gamma, seed, device, amp, checkpoint_dir,
            progress: the ``wtflow.TrainConfig`` of ``fit`` (defaults: the paper's AdamW 2e-4, weight decay
            0.1, x0.1 every quarter of 100 epochs, batch 8); ``batch_size`` also bounds inference batches.
        image_size: upsample every anomaly map bilinearly to this (H', W') (or square) size before the
            image score, as the paper does with the image resolution; None keeps the feature resolution.
        top_fraction: share of the map averaged into the image score (0.03).
        n_probes, n_times, t_low, t_high, time_weighting: the velocity-mismatch scorer (module docstring).
    """

    def __init__(
        self,
        wt: str = "layernorm",
        target: str = "gaussian",
        steps: int = 1,
        t_min: float = 0.0,
        score: str = "density",
        net: str = "unet",
        base_channels: int = 128,
        pos_encoding: bool = False,
        input_norm: bool = False,
        channel_mult: tuple[int, ...] = (1, 2, 4),
        num_res_blocks: int = 2,
        epochs: int = 100,
        batch_size: int = 8,
        lr: float = 2e-4,
        weight_decay: float = 0.1,
        lr_step_fraction: float = 0.25,
        lr_gamma: float = 0.1,
        seed: int = 0,
        device: str = "auto",
        amp: bool = True,
        checkpoint_dir: str | None = None,
        progress: bool = True,
        image_size: int | tuple[int, int] | None = None,
        top_fraction: float = 0.03,
        n_probes: int = 8,
        n_times: int = 5,
        t_low: float = 0.1,
        t_high: float = 0.5,
        time_weighting: str = "denoise",
    ):
        params = {k: v for k, v in locals().items() if k != "self"}
        params["channel_mult"] = tuple(int(m) for m in channel_mult)
        if image_size is not None and not isinstance(image_size, int):
            params["image_size"] = tuple(image_size)
        for key, value in params.items():
            setattr(self, key, value)
        self._check_params()

    def _check_params(self) -> None:
        check_choice("wt", self.wt, WT_MAPS)
        check_choice("target", self.target, TARGETS)
        check_choice("score", self.score, SCORES)
        check_choice("net", self.net, MAP_NETWORKS)
        check_choice("time_weighting", self.time_weighting, MISMATCH_WEIGHTINGS)
        for name in ("steps", "base_channels", "num_res_blocks", "epochs", "batch_size", "n_probes", "n_times"):
            check_int(name, getattr(self, name))
        check_int("seed", self.seed, minimum=0)
        check_float("t_min", self.t_min, 0.0, 0.999)
        check_float("top_fraction", self.top_fraction, 0.0, 1.0, low_open=True)
        check_float("t_low", self.t_low, self.t_min, 1.0)
        check_float("t_high", self.t_high, self.t_low, 1.0)
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if self.image_size is not None:
            as_image_size(self.image_size)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` arguments as a dict (scikit-learn convention)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        return f"FeatureMapDetector({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    # ------------------------------------------------------------------ training
    def build_model(self, event_shape: tuple[int, ...]) -> FlowModel:
        """The untrained ``FlowModel`` (mini U-Net, WT map, target, T) for maps of shape (C, H, W), initialised
        under ``seed``."""
        net_kwargs = {
            "base_channels": self.base_channels,
            "pos_encoding": self.pos_encoding,
            "input_norm": self.input_norm,
            "channel_mult": list(self.channel_mult),
            "num_res_blocks": self.num_res_blocks,
        }
        with seeded(self.seed):
            return FlowModel(
                event_shape, net="unet", net_kwargs=net_kwargs, wt=self.wt, target=self.target, t_min=self.t_min
            )

    def train_config(self) -> TrainConfig:
        """The ``wtflow.TrainConfig`` that ``fit`` uses.

        Training runs in this process alone even under ``torchrun``: the image harness spreads categories over
        the processes, each training its own detector (data-parallel training of one model: ``wtflow.train`` or
        ``python -m wtflow.launch``)."""
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=float(self.lr),
            weight_decay=float(self.weight_decay),
            lr_step_fraction=float(self.lr_step_fraction),
            lr_gamma=float(self.lr_gamma),
            seed=self.seed,
            device=self.device,
            amp=bool(self.amp),
            checkpoint_dir=None if self.checkpoint_dir is None else str(self.checkpoint_dir),
            progress=bool(self.progress),
            data_parallel=False,
        )

    def fit(
        self,
        data: Any,
        resume: str | os.PathLike | None = None,
        callback: Callable[[int, float], None] | None = None,
    ) -> FeatureMapDetector:
        """Train on normal maps: a Tensor / numpy array (N, C, H, W), a torch Dataset of (C, H, W) tensors,
        or an iterable of (B, C, H, W) batches (concatenated in memory). ``resume``: a training checkpoint
        (``checkpoint_dir/last.pt``) of the same configuration to continue from. ``callback(epoch, mean_loss)``
        runs after every epoch with the detector usable for scoring (e.g. evaluation during training).
        Returns ``self``."""
        self._check_params()
        data, event_shape = _training_data(data)
        model = self.build_model(event_shape)
        self.model_, self.event_shape_ = model, tuple(event_shape)
        result = train(model, data, self.train_config(), resume=resume, callback=callback)
        self.model_ = model.eval()
        self.train_loss_ = np.asarray(result.step_loss)
        return self

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this FeatureMapDetector is not fitted yet; call fit(data) first")

    def _maps_in(self, x: Any) -> Tensor:
        self._check_fitted()
        x = as_feature_maps(x, "x", channels=self.event_shape_[0])
        if tuple(x.shape[2:]) != self.event_shape_[1:]:
            raise ValueError(
                f"x has maps of size {tuple(x.shape[2:])}, but the detector was fitted on {self.event_shape_[1:]}"
            )
        return x

    def transport(self, x: Any, steps: int | None = None) -> Tensor:
        """Endpoints phi (N, C, H, W), float32 on the CPU: WT(x) carried from t = T to 1 in ``steps`` Euler steps."""
        x = self._maps_in(x)
        k = self.steps if steps is None else check_int("steps", steps)
        return self.model_.transport(x, steps=k, batch_size=self.batch_size).x_end.float().cpu()

    def anomaly_maps(self, x: Any, steps: int | None = None) -> Tensor:
        """(N, H, W) float32 anomaly maps: eq. 2's density proxy (or ||phi||) per position, at ``image_size``."""
        x = self._maps_in(x)
        k = self.steps if steps is None else check_int("steps", steps)
        maps = []
        for chunk in torch.split(x, self.batch_size):
            phi = self.model_.transport(chunk, steps=k).x_end
            maps.append(anomaly_map(phi, self.score, self.image_size).float().cpu())
        return torch.cat(maps)

    def decision_function(self, x: Any, steps: int | None = None) -> Tensor:
        """(N,) float32 image scores: mean of the top ``top_fraction`` (3 %) of each anomaly map."""
        return image_score(self.anomaly_maps(x, steps), self.top_fraction)

    def probes(self) -> Tensor:
        """The fixed target probes eps, (n_probes, C, H, W) float32 (a function of ``seed`` and the shape only)."""
        self._check_fitted()
        gen = torch.Generator().manual_seed(int(self.seed) + PROBE_SEED_OFFSET)
        return self.model_.target.sample(self.n_probes, generator=gen, dtype=torch.float32)

    def probe_times(self) -> Tensor:
        """The probed rFM times, (n_times,) equally spaced in [t_low, t_high]."""
        return mismatch_times(self.t_low, self.t_high, self.n_times)

    @torch.no_grad()
    def score_mismatch(self, x: Any) -> tuple[Tensor, Tensor]:
        """Velocity-mismatch maps (N, H, W) and image scores (N,) of the trained field (module docstring)."""
        x = self._maps_in(x)
        device = next(self.model_.parameters()).device
        probes, times = self.probes().to(device), self.probe_times().to(device)
        self.model_.eval()
        maps = []
        for chunk in torch.split(x, self.batch_size):
            x_0 = self.model_.map_data(chunk.to(device))
            m = velocity_mismatch(
                self.model_.velocity, x_0, probes, times, 0.0, self.time_weighting, rows_per_call=self.batch_size
            )
            amap = aggregate_mismatch(m)
            maps.append((amap if self.image_size is None else upsample_map(amap, self.image_size)).float().cpu())
        maps = torch.cat(maps)
        return maps, image_score(maps, self.top_fraction)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write parameters, model config and weights (with the WT statistics) atomically; read with ``load``."""
        self._check_fitted()
        params = {**self.get_params(), "channel_mult": list(self.channel_mult)}
        if isinstance(self.image_size, tuple):
            params["image_size"] = list(self.image_size)
        payload = {
            "params": dumps_config(params),
            "model_config": dumps_config(self.model_.config),
            "state_dict": {k: v.detach().cpu() for k, v in self.model_.state_dict().items()},
            "train_loss": torch.from_numpy(np.asarray(self.train_loss_, dtype=np.float64)),
        }
        return save_checkpoint(path, MAP_DETECTOR_KIND, payload)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> FeatureMapDetector:
        """Load a detector written by ``save`` (``weights_only=True``); ``device`` overrides the saved one."""
        payload = load_checkpoint(path, MAP_DETECTOR_KIND, map_location="cpu")
        try:
            params = json.loads(payload["params"])
            if device is not None:
                params["device"] = device
            det = cls(**params)
            model = FlowModel.from_config(json.loads(payload["model_config"]))
            model.load_state_dict(payload["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{path} does not describe a valid FeatureMapDetector: {err}") from err
        det.model_ = model.to(resolve_device(det.device)).eval()
        det.event_shape_ = tuple(model.event_shape)
        det.train_loss_ = payload["train_loss"].numpy()
        return det
