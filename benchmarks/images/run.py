"""One image run: per category, features once, then every method and seed on the same features and metrics.

Data path: reader (RGB image, mask) -> frozen backbone, once per split into a feature store -> per method either
a flow trained on the stored maps (``wtflow.FeatureMapDetector``, evaluated every ``eval_every`` epochs and at
each of the last ``eval_last``) or a baseline fitted on them -> anomaly maps at K = ``steps_loc``, upsampled to
the input resolution (optionally smoothed) -> pixel AUROC, AUPRO, pixel F1-max; image scores (mean of the top 3 %
of the K = ``steps_det`` maps) -> image AUROC, image F1-max.

Under ``torchrun --nproc_per_node N -m benchmarks.images run ...`` the categories are spread over the ranks
(rank r takes categories r, r + N, ...), each rank on its own GPU; rank 0 writes the summary after all finish.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig
from .evaluate import evaluate_maps, save_examples
from .methods import MethodSpec, resolve_methods
from .runfolder import RESULT_COLUMNS, RunFolder

__all__ = ["run"]

METRIC_KEYS = ("image_auroc", "pixel_auroc", "aupro", "image_f1_max", "pixel_f1_max")


@dataclass
class CategoryData:
    """Feature stores and ground truth of one category."""

    name: str
    train: Any  # wtflow.store.FeatureStore (N_train, C, h, w)
    test: Any  # wtflow.store.FeatureStore (N_test, C, h, w)
    labels: torch.Tensor  # (N_test,) int64, 1 = anomalous
    masks: torch.Tensor  # (N_test, R, R) bool
    test_samples: list  # reader samples, for the figures
    train_samples: list


def run(cfg: RunConfig, progress: bool = True) -> Path:
    """Run every (category, method, seed) cell not finished yet; returns the path of ``summary.csv``."""
    from wtflow.distributed import context_from_env

    folder = RunFolder(cfg.out)
    specs = resolve_methods(cfg.methods)
    categories = _categories(cfg)
    ctx = context_from_env(_device(cfg))
    if ctx.is_main:
        folder.prepare(cfg.to_dict())
        _write_provenance(folder)
    ctx.barrier()
    device = ctx.device(_device(cfg))
    extractor = _extractor(cfg, device)
    for category in categories[ctx.rank :: ctx.world_size]:
        _run_category(cfg, folder, extractor, category, specs, device, progress)
    ctx.barrier()
    from .report import write_summary

    return write_summary(folder, cfg, categories, specs) if ctx.is_main else folder.root / "summary.csv"


def _categories(cfg: RunConfig) -> list[str]:
    from .data import list_categories

    found = list_categories(cfg.dataset, cfg.root)
    if cfg.categories is None:
        return list(found)
    missing = [c for c in cfg.categories if c not in found]
    if missing:
        raise ValueError(f"category(ies) {', '.join(missing)} not found under {cfg.root}; found: {', '.join(found)}")
    return list(cfg.categories)


def _device(cfg: RunConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _extractor(cfg: RunConfig, device: torch.device):
    from .features import FeatureExtractor

    # A randomly initialised backbone is seeded, so a resumed run extracts the same features as the first.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return FeatureExtractor(
            cfg.backbone, layer=cfg.layer, weights=cfg.weights, device=device, pretrained=cfg.pretrained
        )


def _run_category(cfg, folder: RunFolder, extractor, category: str, specs, device, progress: bool) -> None:
    cells = [(spec, seed) for seed in cfg.seeds for spec in specs if folder.finished(category, spec.name, seed) is None]
    if not cells and (folder.root / category / "figures" / "bars.png").exists():
        print(f"[{category}] all {len(specs) * len(cfg.seeds)} cells finished; skipped", file=sys.stderr)
        return
    data = _category_data(cfg, folder, extractor, category, progress)
    for spec, seed in cells:
        start = time.perf_counter()
        records = _run_cell(cfg, folder, data, spec, seed, device, progress)
        result = _summarise_cell(category, spec, seed, records)
        result["seconds"] = round(time.perf_counter() - start, 2)
        folder.write_result(category, spec.name, seed, result)
        print(f"[{category}] {spec.name} seed {seed}: " + _short(result), file=sys.stderr)
    rows = folder.results([category], [s.name for s in specs], cfg.seeds)
    folder.write_table(folder.root / category / "results.csv", rows, RESULT_COLUMNS + _EXTRA_COLUMNS)
    from .report import category_figures

    category_figures(folder, cfg, data, specs)


def _category_data(cfg, folder: RunFolder, extractor, category: str, progress: bool) -> CategoryData:
    from .data import load_split, read_mask

    splits = {}
    for split, cap in (("train", cfg.max_train), ("test", cfg.max_test)):
        samples = load_split(cfg.dataset, cfg.root, category, split)
        splits[split] = _cap(samples, cap)
    feature_dir = Path(cfg.feature_dir) if cfg.feature_dir else folder.root / "features"
    stores = {
        split: _feature_store(extractor, samples, cfg.resolution, feature_dir / category / split, progress)
        for split, samples in splits.items()
    }
    test = splits["test"]
    size = (cfg.resolution, cfg.resolution)
    masks = torch.stack([read_mask(s.masks, size) for s in test])
    labels = torch.tensor([int(s.label) for s in test], dtype=torch.long)
    if labels.min() == labels.max():
        raise ValueError(f"the test split of {category} has only {'anomalous' if labels[0] else 'normal'} images")
    return CategoryData(category, stores["train"], stores["test"], labels, masks, test, splits["train"])


def _feature_store(extractor, samples: list, resolution: int, parent: Path, progress: bool):
    """The split's feature store, extracted once: reopened when complete, rebuilt when a run died mid-write."""
    from wtflow.store import FeatureStore, StoreError

    from .data import read_image
    from .features import extract_to_store

    path = parent / extractor.store_key(resolution, [s.image for s in samples])
    if path.exists():
        try:
            return FeatureStore.open(path)
        except StoreError as err:
            print(f"rebuilding the feature store {path}: {err}", file=sys.stderr)

    def batches():
        for start in range(0, len(samples), extractor.batch_size):
            chunk = samples[start : start + extractor.batch_size]
            yield torch.stack([read_image(s.image, resolution) for s in chunk])

    meta = {"files": [str(s.image) for s in samples]}
    return extract_to_store(extractor, batches(), path, len(samples), meta=meta, overwrite=True, progress=progress)


def _cap(samples: list, cap: int | None) -> list:
    """At most ``cap`` samples, taken evenly over the sorted list so every defect type keeps its share."""
    if cap is None or len(samples) <= cap:
        return samples
    step = len(samples) / cap
    return [samples[math.floor(i * step)] for i in range(cap)]


def _run_cell(cfg, folder: RunFolder, data: CategoryData, spec: MethodSpec, seed: int, device, progress) -> list:
    if spec.kind == "flow":
        from .flows import run_flow_cell

        return run_flow_cell(cfg, folder, data, spec, seed, device, progress)
    if spec.kind == "anomalib":
        evaluation = _anomalib_evaluation(cfg, folder, data, spec, seed, device)
    else:
        baseline = _baseline(spec.kind, cfg, seed)
        baseline.fit(data.train[torch.arange(len(data.train))].to(device))
        evaluation = evaluate_maps(cfg, data, lambda x: baseline.score_maps(x.to(device)))
    record = {"epoch": None, **evaluation.metrics}
    folder.append_metrics(data.name, spec.name, seed, record)
    save_examples(folder.cell(data.name, spec.name, seed), evaluation, data.labels)
    return [record]


def _anomalib_evaluation(cfg, folder: RunFolder, data: CategoryData, spec: MethodSpec, seed: int, device):
    """anomalib's model on the same images, resolution and metric code (its scores before its post-processor)."""
    from .anomalib_models import run_anomalib_model
    from .evaluate import metrics_of_maps

    maps, scores = run_anomalib_model(
        spec.name.removeprefix("anomalib-"),
        data.train_samples,
        data.test_samples,
        cfg.resolution,
        backbone=cfg.backbone,
        weights=cfg.weights,
        device=str(device),
        seed=seed,
        work_dir=folder.cell(data.name, spec.name, seed) / "anomalib",
        pretrained=cfg.pretrained,
    )
    return metrics_of_maps(cfg, data, torch.as_tensor(maps).float(), torch.as_tensor(scores).float())


def _baseline(kind: str, cfg, seed: int):
    from .baselines import GaussianBaseline, PatchCoreBaseline

    if kind == "gaussian":
        return GaussianBaseline(channels=cfg.gaussian_channels, seed=seed, top_fraction=cfg.top_fraction)
    return PatchCoreBaseline(coreset_ratio=cfg.coreset_ratio, seed=seed, top_fraction=cfg.top_fraction)


_EXTRA_COLUMNS = (
    "image_auroc_last",
    "pixel_auroc_last",
    "aupro_last",
    "image_auroc_std",
    "pixel_auroc_std",
    "aupro_std",
    "image_f1_max",
    "pixel_f1_max",
    "n_evaluations",
    "seconds",
)


def _summarise_cell(category: str, spec: MethodSpec, seed: int, records: list[dict]) -> dict[str, Any]:
    """Mean (and std) over the last evaluations, and the plain last-epoch value, of every metric."""
    if not records:
        raise RuntimeError(f"{category}/{spec.name}/seed{seed}: no evaluation was recorded")
    result: dict[str, Any] = {"category": category, "method": spec.name, "seed": seed}
    for key in METRIC_KEYS:
        values = [r[key] for r in records if r.get(key) is not None]
        result[key] = statistics.fmean(values) if values else None
        result[f"{key}_std"] = statistics.pstdev(values) if len(values) > 1 else 0.0
        result[f"{key}_last"] = values[-1] if values else None
    result["n_evaluations"] = len(records)
    return result


def _short(result: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {result[k]:.3f}" for k in ("image_auroc", "pixel_auroc", "aupro") if result.get(k) is not None
    )


def _write_provenance(folder: RunFolder) -> None:
    import json
    import platform

    from wtflow.checkpoint import write_text_atomic
    from wtflow.utils.provenance import git_state, package_versions

    record = {
        "command": sys.argv,
        "git": git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(("torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn")),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    write_text_atomic(folder.root / "provenance.json", json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
