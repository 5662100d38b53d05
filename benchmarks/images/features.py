"""Frozen-backbone feature maps for the image pipeline: images (B, 3, R, R) in [0, 1] -> (B, C, h, w).

A stage is chosen by its module name in timm's ``feature_info`` (``"layer3"`` of a ResNet, ``"blocks.4"``
of an EfficientNet); its output is taken with a forward hook and the forward pass stops there, so the
later stages cost nothing. Several stages are resized to the first one's grid (bilinear) and
concatenated along channels; ``pool=k`` averages k x k blocks afterwards. Weights come from
``benchmarks.backbones.load_backbone`` (offline EfficientNet-Lite0, timm hub, a local file, an
``nn.Module`` or random initialisation).

Map size of the paper's setting. The paper states 512 x 512 inputs and "the output from the third
residual stage" of WideResNet-50 (paper text lines 302 and 911 of
``wt-flow_time-reversed-flow-matching_arxiv-2508.05461v2.txt``), but speaks of (8, 1024, 16, 16)
maps and a Gaussian radius sqrt(CHW) = 512 (lines 892-894, 915, and the captions of Tables XII-XIV,
lines 1013, 1030, 1047), and of radius 256 for the 256 x 256 "transistor" inputs (lines 896, 898).
WideResNet-50's ``layer3`` has stride 16 (timm ``feature_info`` reduction 16, 1024 channels), so
512^2 inputs give (1024, 32, 32) (radius 1024) and 256^2 inputs give (1024, 16, 16) (radius 512). The
stated sizes are consistent with each other only for an effective stride of 32 at 1024 channels,
which no stage of WideResNet-50 has. We follow the architecture: ``layer3`` at the run's resolution,
i.e. (1024, 32, 32) at 512^2; the paper's (1024, 16, 16) is obtained either with 256^2 inputs or
with ``pool=2`` at 512^2 (a 2 x 2 average of the stride-16 map).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.backbones import Backbone, BackboneError, load_backbone

__all__ = [
    "DEFAULT_LAYERS",
    "FeatureExtractor",
    "dataset_digest",
    "extract_to_store",
    "feature_store_key",
    "stage_names",
]

# The stride-16 stage of each short name: WideResNet-50 layer 3 as in the paper (1024 ch), ResNet-18/34
# layer 3 (256 ch) for Suppl. Table VII, EfficientNet blocks.4 (112 ch for Lite0).
DEFAULT_LAYERS = {
    "wide_resnet50_2": "layer3",
    "resnet18": "layer3",
    "resnet34": "layer3",
    "efficientnet_lite0": "blocks.4",
}


class _StopForward(Exception):
    """Raised by the last hook: the stages after it are not needed."""


def stage_names(model: nn.Module) -> list[str]:
    """Module names of the stages timm lists in ``model.feature_info`` (every named module otherwise)."""
    info = getattr(model, "feature_info", None)
    if isinstance(info, list) and info and isinstance(info[0], dict) and "module" in info[0]:
        return [entry["module"] for entry in info]
    if info is not None and hasattr(info, "module_name"):  # a features_only wrapper's FeatureInfo
        return list(info.module_name())
    return [name for name, _ in model.named_modules() if name]


def _resolve_layers(backbone: Backbone, layer: str | Sequence[str] | None) -> tuple[str, ...]:
    if layer is None:
        if backbone.name not in DEFAULT_LAYERS:
            raise BackboneError(
                f"backbone {backbone.name!r} has no default stage; pass layer= one of {stage_names(backbone.model)}"
            )
        layer = DEFAULT_LAYERS[backbone.name]
    layers = (layer,) if isinstance(layer, str) else tuple(layer)
    if not layers:
        raise BackboneError("layer must name at least one stage, got an empty list")
    modules = dict(backbone.model.named_modules())
    for name in layers:
        if name not in modules or not name:
            listed = stage_names(backbone.model)
            raise BackboneError(f"backbone {backbone.name!r} has no stage {name!r}; stages: {', '.join(listed[:40])}")
    return layers


class FeatureExtractor:
    """Frozen backbone stage(s) as a feature-map extractor.

    Args:
        backbone: a name of ``benchmarks.backbones.BACKBONES``, any timm name, or an ``nn.Module``.
        layer: stage name(s) (default ``DEFAULT_LAYERS[backbone]``); several are concatenated on the
            first one's grid.
        weights: local weights file (None: the backbone's default source).
        pretrained: False for timm's random initialisation (tests).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        pool: average k x k blocks of the map (1 = none; 2 turns stride 16 into stride 32).
        batch_size: images per backbone forward in ``extract``.
    """

    def __init__(
        self,
        backbone: str | nn.Module = "efficientnet_lite0",
        layer: str | Sequence[str] | None = None,
        weights: str | os.PathLike | None = None,
        pretrained: bool = True,
        device: str | torch.device = "auto",
        pool: int = 1,
        batch_size: int = 16,
    ):
        if not (isinstance(pool, int) and pool >= 1):
            raise ValueError(f"pool must be an integer >= 1, got {pool!r}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.backbone = load_backbone(backbone, weights, pretrained=pretrained)
        self.layers = _resolve_layers(self.backbone, layer)
        self.pool = pool
        self.batch_size = batch_size
        self.model = self.backbone.model.to(self.device).eval().requires_grad_(False)
        self._mean = torch.tensor(self.backbone.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.backbone.std, device=self.device).view(1, 3, 1, 1)
        self._shapes: dict[tuple[int, int], tuple[int, int, int]] = {}

    def describe(self) -> dict[str, Any]:
        """The settings that determine the features (for run configs and cache keys)."""
        return {
            "backbone": self.backbone.name,
            "layer": list(self.layers),
            "weights": self.backbone.weights,
            "weights_digest": self.backbone.digest,
            "pool": self.pool,
            "mean": list(self.backbone.mean),
            "std": list(self.backbone.std),
        }

    def store_key(self, resolution: int | tuple[int, int], files: Iterable[str | os.PathLike]) -> str:
        """``feature_store_key`` of this extractor's features of ``files`` at ``resolution``."""
        return feature_store_key(self.backbone.name, self.layers, self.backbone.digest, resolution, files, self.pool)

    @torch.inference_mode()
    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        outputs: dict[str, torch.Tensor] = {}
        modules = dict(self.model.named_modules())

        def hook(name):
            def store(_module, _inputs, output):
                outputs[name] = output
                if len(outputs) == len(set(self.layers)):
                    raise _StopForward

            return store

        handles = [modules[name].register_forward_hook(hook(name)) for name in dict.fromkeys(self.layers)]
        try:
            self.model((images - self._mean) / self._std)
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [name for name in self.layers if name not in outputs]
        if missing:
            raise BackboneError(f"stage(s) {missing} of {self.backbone.name!r} were not reached by the forward pass")
        maps = [outputs[name] for name in self.layers]
        size = maps[0].shape[-2:]
        maps = [m if m.shape[-2:] == size else F.interpolate(m, size=size, mode="bilinear") for m in maps]
        fmap = torch.cat(maps, dim=1) if len(maps) > 1 else maps[0]
        if self.pool > 1:
            fmap = F.avg_pool2d(fmap, self.pool, ceil_mode=True)
        return fmap.float()

    def event_shape(self, resolution: int | tuple[int, int]) -> tuple[int, int, int]:
        """(C, h, w) of the maps of (R, R) (or (H, W)) inputs; one dummy forward per resolution, cached."""
        size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"resolution must be a positive int or (H, W), got {resolution!r}")
        if size not in self._shapes:
            dummy = torch.zeros(1, 3, *size, device=self.device)
            self._shapes[size] = tuple(self._forward(dummy).shape[1:])
        return self._shapes[size]

    def extract(self, images: torch.Tensor | np.ndarray, to_cpu: bool = True) -> torch.Tensor:
        """Feature maps of RGB images (B, 3, H, W) in [0, 1] -> (B, C, h, w) float32, on the CPU unless
        ``to_cpu=False`` (then on the extractor's device)."""
        images = torch.as_tensor(images)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype}")
        if images.numel() and not torch.isfinite(images).all():
            raise ValueError("images contain NaN or inf")
        if images.numel() and (images.min() < -1e-6 or images.max() > 1 + 1e-6):
            raise ValueError(
                f"images must lie in [0, 1], got values in [{float(images.min()):.3g}, {float(images.max()):.3g}]"
            )
        out = [self._forward(chunk.to(self.device, torch.float32)) for chunk in images.split(self.batch_size)]
        if not out:
            return torch.empty(0, *self.event_shape(tuple(images.shape[-2:])))
        out = torch.cat(out)
        return out.cpu() if to_cpu else out


def dataset_digest(files: Iterable[str | os.PathLike]) -> str:
    """SHA-256 (16 hex digits) of a file list in its order, with each file's size and mtime (ns).

    The order is part of the digest because row i of a feature store belongs to file i.
    """
    h = hashlib.sha256()
    count = 0
    for file in files:
        path = Path(file)
        try:
            st = path.stat()
        except OSError as err:
            raise FileNotFoundError(f"dataset file {path} cannot be read: {err}") from err
        h.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        count += 1
    if count == 0:
        raise ValueError("dataset_digest needs at least one file, got none")
    return h.hexdigest()[:16]


def feature_store_key(
    backbone: str,
    layer: str | Sequence[str],
    weights: str,
    resolution: int | tuple[int, int],
    files: Iterable[str | os.PathLike],
    pool: int = 1,
) -> str:
    """Cache key (16 hex digits) of the features of ``files``: backbone, stage(s), weights digest or name,
    input resolution, pooling and ``dataset_digest(files)``. Any change of one of them changes the key."""
    layers = [layer] if isinstance(layer, str) else list(layer)
    size = [resolution, resolution] if isinstance(resolution, int) else list(resolution)
    text = f"{backbone}|{','.join(layers)}|{weights}|{size[0]}x{size[1]}|pool{pool}|{dataset_digest(files)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def extract_to_store(
    extractor: FeatureExtractor,
    images: Iterable[torch.Tensor | np.ndarray],
    store_path: str | os.PathLike,
    count: int,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
):
    """Run the backbone once over ``images`` (an iterable of (B, 3, R, R) batches in [0, 1]) and write the
    ``count`` maps, in order, to a new ``wtflow.store.FeatureStore`` at ``store_path``.

    The store is created when the first batch gives the resolution; its meta holds
    ``extractor.describe()``, the resolution and ``meta``. A batch count other than ``count`` raises
    before the store is finalised. Returns ``FeatureStore.open(store_path)``.
    """
    from tqdm.auto import tqdm

    from wtflow.store import FeatureStore

    if not (isinstance(count, int) and count >= 1):
        raise ValueError(f"count must be a positive integer, got {count!r}")
    store, written = None, 0
    with tqdm(total=count, unit="img", desc=f"features {extractor.backbone.name}", disable=not progress) as bar:
        for batch in images:
            batch = torch.as_tensor(batch)
            if store is None:
                resolution = tuple(int(s) for s in batch.shape[-2:])
                info = {**extractor.describe(), "resolution": list(resolution), **dict(meta or {})}
                shape = extractor.event_shape(resolution)
                store = FeatureStore.create(store_path, count, shape, meta=info, overwrite=overwrite)
            if written + batch.shape[0] > count:
                raise ValueError(f"{store_path}: the images yield more than count={count} samples")
            store.write(written, extractor.extract(batch))
            written += batch.shape[0]
            bar.update(batch.shape[0])
    if written != count:
        raise ValueError(f"{store_path}: the images yielded {written} samples, expected count={count}")
    store.finalize()
    return FeatureStore.open(store_path)
