"""Resolved configuration of an image run: a profile (``paper`` for a GPU, ``cpu`` for this kind of machine)
filled in by the options the user gave.

``paper`` is Sec. V-A / Suppl. XI-D: WideResNet-50 layer 3 (timm ``wide_resnet50_2.tv_in1k``), 512^2 inputs,
U-Net NC = 768, AdamW lr 2e-4, weight decay 0.1, step decay x0.1 every 25 epochs (Sec. V-A; Suppl. XI-D says
every 20: ``--lr-step-fraction 0.2``), 100 epochs, batch 8, K = 20 steps for detection and K = 1 for
localisation, mean +- std over the last 10 epochs. ``cpu`` keeps the method and shrinks the sizes: the offline
EfficientNet-Lite0 at stride 16 (112 channels), 256^2 inputs (16 x 16 maps), NC = 32, 10 epochs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROFILES", "RunConfig", "resolve_config"]

PROFILES: dict[str, dict[str, Any]] = {
    "paper": {
        "backbone": "wide_resnet50_2",
        "layer": "layer3",
        "resolution": 512,
        "nc": 768,
        "epochs": 100,
        "eval_every": 10,
        "eval_last": 10,
        "amp": True,
    },
    "cpu": {
        "backbone": "efficientnet_lite0",
        "layer": "blocks.4",
        "resolution": 256,
        "nc": 32,
        "epochs": 10,
        "eval_every": 5,
        "eval_last": 3,
        "amp": False,
    },
}


@dataclass
class RunConfig:
    """Everything a run depends on; written to ``OUT/config.json`` and compared on resume.

    Attributes (options of ``python -m benchmarks.images run``):
        dataset, root, categories: reader name, dataset root and the categories (None: all found).
        methods: names from ``benchmarks.images.methods.METHODS``.
        profile: ``"paper"`` or ``"cpu"``; fills every size option left at None.
        backbone, layer, weights: feature extractor (weights: None for the backbone's default, or a file).
        pretrained: False gives a randomly initialised backbone (tests and smoke runs only).
        resolution: square input size in pixels; masks and anomaly maps are evaluated at this size.
        nc, pos_encoding: U-Net width NC and 2-D positional encoding.
        epochs, batch_size, lr, weight_decay, lr_step_fraction, lr_gamma, t_min: training (``wtflow.TrainConfig``).
        steps_det, steps_loc: Euler steps K for the image score (detection) and the anomaly maps (localisation).
        eval_every, eval_last: evaluate every this many epochs and at each of the last ``eval_last`` epochs;
            the reported value is the mean (and std) over those last evaluations, beside the last-epoch value.
        seeds: training seeds; results are averaged over them in ``summary.csv``.
        smoothing_sigma: optional Gaussian smoothing of the upsampled maps (the PatchCore/PaDiM convention, 4).
        top_fraction: the image score is the mean of this top fraction of the map (paper: 0.03).
        fpr_limit: AUPRO integration limit (0.3).
        coreset_ratio, gaussian_channels: PatchCore coreset fraction; channels kept by the Gaussian baseline.
        max_train, max_test: cap the images per split (quick runs; None: all).
        feature_dir: where feature stores are kept (None: ``OUT/features``).
    """

    dataset: str
    root: str
    out: str
    methods: list[str]
    categories: list[str] | None = None
    profile: str = "cpu"
    backbone: str | None = None
    layer: str | None = None
    weights: str | None = None
    pretrained: bool = True
    resolution: int | None = None
    nc: int | None = None
    pos_encoding: bool = False
    epochs: int | None = None
    batch_size: int = 8
    lr: float = 2e-4
    weight_decay: float = 0.1
    lr_step_fraction: float = 0.25
    lr_gamma: float = 0.1
    t_min: float = 0.0
    steps_det: int = 20
    steps_loc: int = 1
    eval_every: int | None = None
    eval_last: int | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    amp: bool | None = None
    smoothing_sigma: float | None = None
    top_fraction: float = 0.03
    fpr_limit: float = 0.3
    coreset_ratio: float = 0.1
    gaussian_channels: int | None = 100
    max_train: int | None = None
    max_test: int | None = None
    feature_dir: str | None = None
    num_workers: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_config(**options: Any) -> RunConfig:
    """A ``RunConfig`` with every None size option taken from its profile, after checking the values."""
    profile = options.get("profile") or "cpu"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    options["profile"] = profile
    for key, value in PROFILES[profile].items():
        if options.get(key) is None:
            options[key] = value
    cfg = RunConfig(**options)
    _check(cfg)
    return cfg


def _check(cfg: RunConfig) -> None:
    from .methods import resolve_methods

    resolve_methods(cfg.methods)
    for name in ("resolution", "nc", "epochs", "batch_size", "steps_det", "steps_loc", "eval_every", "eval_last"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
    if cfg.batch_size < 2 and "wtflow-bn" in cfg.methods:
        raise ValueError("--batch-size must be >= 2 for wtflow-bn: BatchNorm needs two samples per batch")
    if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds) or min(cfg.seeds) < 0:
        raise ValueError(f"--seeds must be distinct non-negative integers, got {cfg.seeds!r}")
    for name in ("max_train", "max_test"):
        value = getattr(cfg, name)
        if value is not None and value < 2:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 2 when given, got {value!r}")
    if not (0.0 < cfg.top_fraction <= 1.0):
        raise ValueError(f"--top-fraction must lie in (0, 1], got {cfg.top_fraction!r}")
    if not (0.0 < cfg.fpr_limit <= 1.0):
        raise ValueError(f"--fpr-limit must lie in (0, 1], got {cfg.fpr_limit!r}")
    if not (0.0 < cfg.coreset_ratio <= 1.0):
        raise ValueError(f"--coreset-ratio must lie in (0, 1], got {cfg.coreset_ratio!r}")
    if cfg.smoothing_sigma is not None and cfg.smoothing_sigma <= 0:
        raise ValueError(f"--smoothing-sigma must be > 0 when given, got {cfg.smoothing_sigma!r}")
