"""WT-Flow as an anomalib 2.x model: ``Engine().fit / test / predict`` on any anomalib image datamodule.

    from anomalib.data import MVTecAD
    from anomalib.engine import Engine
    from wtflow.integrations.anomalib import WTFlow

    model = WTFlow(image_size=256, epochs=10)            # offline EfficientNet-Lite0, stage blocks.4
    engine = Engine(accelerator="cpu", default_root_dir="results")
    engine.fit(model=model, datamodule=MVTecAD(root="datasets/MVTecAD", category="bottle"))
    engine.test(model=model, datamodule=datamodule)      # image/pixel AUROC and F1 through anomalib's evaluator

The method is the engine's map-level WT-Flow (``wtflow.FlowModel`` with the mini U-Net, as in
``wtflow.FeatureMapDetector``), on the feature map of one frozen backbone stage:

* training: anomalib's loop calls ``training_step`` per batch; the loss is ``FlowModel.loss`` (eq. 4 with
  Algorithm 1) with randomness from a CPU generator seeded by ``seed``; AdamW and StepLR (x ``lr_gamma`` every
  ``lr_step_fraction`` of ``epochs``) as in ``wtflow.train``.
* inference: ``FlowModel.transport`` in ``steps`` Euler steps, the density proxy of eq. 2 averaged over channels
  and upsampled bilinearly to the input size (``wtflow.anomaly_map``), image score = mean of the top 3 % of the
  map (``wtflow.image_score``). anomalib's post-processor turns these into ``pred_label`` / ``pred_mask``.

The backbone is anomalib's ``TimmFeatureExtractor`` (a timm name, or an ``nn.Module`` traced with torch.fx);
ImageNet weights come from ``weights=PATH``, the offline Lite0 file for ``"efficientnet_lite0"``
(``wtflow.integrations.backbone``), or timm's hub for other names when ``weights`` is None.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from anomalib import LearningType
from anomalib.data import Batch, InferenceBatch
from anomalib.metrics import AUROC, Evaluator, F1Score
from anomalib.models.components import AnomalibModule
from anomalib.models.components.feature_extractors import TimmFeatureExtractor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from torch import nn
from torchvision.transforms.v2 import Compose, Normalize, Resize

from ..detectors.maps import FeatureMapDetector
from ..model import FlowModel
from ..scores import anomaly_map, as_image_size, image_score
from .backbone import OFFLINE_BACKBONE, BackboneError, input_normalisation, timm_name, transfer_weights

__all__ = ["MissingMasksError", "WTFlow", "WTFlowModel", "backbone_features", "check_masks", "make_pre_processor"]


class MissingMasksError(ValueError):
    """A pixel metric was asked for, but the datamodule's batches carry no ground-truth masks."""


def backbone_features(
    backbone: str | nn.Module = OFFLINE_BACKBONE,
    layers: Sequence[str] = ("blocks.4",),
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
) -> TimmFeatureExtractor:
    """anomalib's ``TimmFeatureExtractor`` for ``layers`` of ``backbone`` with ImageNet weights.

    A timm name is built with random weights and filled from ``weights`` (or the offline Lite0 file for
    ``"efficientnet_lite0"``); any other name without ``weights`` downloads from timm's hub; ``pretrained=False``
    keeps timm's random initialisation (tests). An ``nn.Module`` is used as given (its weights, torch.fx tracing).
    """
    layers = list(layers)
    if isinstance(backbone, nn.Module):
        if weights is not None:
            raise BackboneError("weights=PATH cannot be combined with a backbone passed as an nn.Module")
        try:
            return TimmFeatureExtractor(backbone, layers).requires_grad_(False)
        except Exception as err:  # torch.fx: unknown node names, untraceable control flow
            raise BackboneError(f"cannot take stages {layers} of the given {type(backbone).__name__}: {err}") from err
    arch = timm_name(backbone)
    offline = pretrained and (weights is not None or backbone == OFFLINE_BACKBONE)
    extractor = TimmFeatureExtractor(arch, list(layers), pre_trained=pretrained and not offline)
    if extractor.layers != layers:
        import timm

        stages = [i["module"] for i in timm.create_model(arch, pretrained=False, features_only=True).feature_info.info]
        raise BackboneError(f"backbone {backbone!r} has no stage {sorted(set(layers) - set(extractor.layers))}; "
                            f"its stages are {stages}")  # fmt: skip
    if offline:
        transfer_weights(extractor.feature_extractor, backbone, weights)
    return extractor.requires_grad_(False)


def make_pre_processor(image_size: int | tuple[int, int], mean: Sequence[float], std: Sequence[float]) -> PreProcessor:
    """anomalib ``PreProcessor``: resize to ``image_size`` and normalise with the backbone's (mean, std)."""
    return PreProcessor(transform=Compose([Resize(as_image_size(image_size), antialias=True), Normalize(mean, std)]))


def check_masks(batch: Batch, metrics: Sequence[nn.Module], stage: str) -> None:
    """``MissingMasksError`` if a metric reads ``gt_mask`` and ``batch`` has none (no silent skip)."""
    if batch.gt_mask is not None:
        return
    pixel = [getattr(m, "name", type(m).__name__) for m in metrics if "gt_mask" in getattr(m, "fields", ())]
    if pixel:
        raise MissingMasksError(
            f"the {stage} metrics {pixel} need ground-truth masks, but the datamodule's batches have gt_mask=None "
            "(e.g. a Folder datamodule without mask_dir); give the datamodule masks or pass "
            "evaluator=Evaluator(test_metrics=[...image metrics only...]) to WTFlow"
        )


class WTFlowModel(nn.Module):
    """Torch model: frozen backbone stage -> ``FlowModel``; in eval mode returns anomalib's ``InferenceBatch``.

    Args:
        extractor: a ``TimmFeatureExtractor`` of one stage ``layer``.
        flow: the map-level ``FlowModel`` (event shape = the stage's (C, h, w) at the input size).
        steps, score, top_fraction: Euler steps K, per-position score and image-score share (``FeatureMapDetector``).
    """

    def __init__(
        self, extractor: TimmFeatureExtractor, layer: str, flow: FlowModel, steps: int, score: str, top_fraction: float
    ):
        super().__init__()
        self.extractor, self.layer, self.flow = extractor, layer, flow
        self.steps, self.score, self.top_fraction = steps, score, top_fraction

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, C, h, w) float32 features of the frozen stage."""
        with torch.no_grad():
            return self.extractor(images)[self.layer].float()

    def forward(self, images: torch.Tensor) -> torch.Tensor | InferenceBatch:
        """Training: the features; eval: ``InferenceBatch(pred_score (B,), anomaly_map (B, H, W))``."""
        feats = self.features(images)
        if self.training:
            return feats
        phi = self.flow.transport(feats, steps=self.steps).x_end
        amap = anomaly_map(phi, self.score, tuple(images.shape[-2:]))
        return InferenceBatch(pred_score=image_score(amap, self.top_fraction), anomaly_map=amap)


class WTFlow(AnomalibModule):
    """WT-Flow (time-reversed flow matching with a WT map) as an anomalib model (module docstring).

    Args:
        backbone, layer, weights, pretrained: the frozen feature stage (``backbone_features``).
        image_size: input size after the pre-processor (int or (H, W)); fixes the feature-map shape.
        wt, target, steps, t_min, score, base_channels, pos_encoding, input_norm, channel_mult, num_res_blocks,
            epochs, lr, weight_decay, lr_step_fraction, lr_gamma, seed, top_fraction: as in
            ``wtflow.FeatureMapDetector`` (checked by it); ``epochs`` is the Trainer's ``max_epochs``.
        pre_processor: True builds resize + the backbone's normalisation; post_processor, evaluator, visualizer:
            anomalib's (the default evaluator: image AUROC / F1 and pixel AUROC / F1, which need masks).
    """

    def __init__(
        self,
        backbone: str | nn.Module = OFFLINE_BACKBONE,
        layer: str = "blocks.4",
        weights: str | None = None,
        pretrained: bool = True,
        image_size: int | tuple[int, int] = 256,
        wt: str = "layernorm",
        target: str = "gaussian",
        steps: int = 1,
        t_min: float = 0.0,
        score: str = "density",
        base_channels: int = 128,
        pos_encoding: bool = False,
        input_norm: bool = False,
        channel_mult: tuple[int, ...] = (1, 2, 4),
        num_res_blocks: int = 2,
        epochs: int = 100,
        lr: float = 2e-4,
        weight_decay: float = 0.1,
        lr_step_fraction: float = 0.25,
        lr_gamma: float = 0.1,
        seed: int = 0,
        top_fraction: float = 0.03,
        pre_processor: nn.Module | bool = True,
        post_processor: nn.Module | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        settings = FeatureMapDetector(
            wt=wt, target=target, steps=steps, t_min=t_min, score=score, base_channels=base_channels,
            pos_encoding=pos_encoding, input_norm=input_norm, channel_mult=channel_mult,
            num_res_blocks=num_res_blocks, epochs=epochs, lr=lr, weight_decay=weight_decay,
            lr_step_fraction=lr_step_fraction, lr_gamma=lr_gamma, seed=seed, top_fraction=top_fraction,
            device="cpu", amp=False, progress=False, image_size=image_size,
        )  # fmt: skip
        if pre_processor is True:
            pre_processor = make_pre_processor(image_size, *input_normalisation(backbone))
        super().__init__(pre_processor, post_processor, evaluator, visualizer)
        self.settings = settings
        self.train_config = settings.train_config()
        extractor = backbone_features(backbone, [layer], weights, pretrained)
        height, width = as_image_size(image_size)
        probe = extractor(torch.zeros(1, 3, height, width))[layer]
        self.model = WTFlowModel(
            extractor, layer, settings.build_model(tuple(probe.shape[1:])), steps, score, top_fraction
        )
        self._generator: torch.Generator | None = None

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """Image AUROC / F1 and pixel AUROC / F1, strict: a datamodule without masks is an error, not a skip."""
        metrics = [
            AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
            F1Score(fields=["pred_label", "gt_label"], prefix="image_"),
            AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_"),
            F1Score(fields=["pred_mask", "gt_mask"], prefix="pixel_"),
        ]
        return Evaluator(test_metrics=metrics)

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW on the flow's parameters with StepLR (the ``wtflow.TrainConfig`` schedule, in epochs)."""
        cfg = self.train_config
        optimizer = torch.optim.AdamW(self.model.flow.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def on_fit_start(self) -> None:
        """A fresh CPU generator seeded by ``seed`` draws the loss's targets and times (hardware-independent)."""
        self._generator = torch.Generator().manual_seed(int(self.settings.seed))

    def training_step(self, batch: Batch, *args, **kwargs) -> dict[str, torch.Tensor]:
        """Flow-matching loss (``FlowModel.loss``) of one batch of frozen features."""
        del args, kwargs
        if self._generator is None:
            self.on_fit_start()
        loss = self.model.flow.loss(self.model.features(batch.image), self._generator)
        self.log("train_loss", loss.detach(), on_epoch=True, prog_bar=True, batch_size=len(batch.image))
        return {"loss": loss}

    def validation_step(self, batch: Batch, *args, **kwargs) -> Batch:
        """Scores and maps of a validation batch (the post-processor fits its thresholds on them)."""
        del args, kwargs
        check_masks(batch, self.evaluator.val_metrics if self.evaluator else [], "validation")
        return batch.update(**self.model(batch.image)._asdict())

    def test_step(self, batch: Batch, batch_idx: int, *args, **kwargs) -> Batch:
        """Scores and maps of a test batch; a pixel metric without masks raises ``MissingMasksError``."""
        check_masks(batch, self.evaluator.test_metrics if self.evaluator else [], "test")
        return super().test_step(batch, batch_idx, *args, **kwargs)

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """``max_epochs`` = ``epochs`` (the StepLR schedule depends on it); no sanity validation."""
        return {"max_epochs": self.train_config.epochs, "num_sanity_val_steps": 0}

    @property
    def learning_type(self) -> LearningType:
        """One-class: trained on normal images only."""
        return LearningType.ONE_CLASS
