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
import os
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


def run(cfg: RunConfig, progress: bool = True) -> Path:
    """Run every (category, method, seed) cell not finished yet; returns the path of ``summary.csv``."""
    from wtflow.distributed import process_group  # rank/world from torchrun's environment, or (0, 1)

    folder = RunFolder(cfg.out)
    rank, world = process_group()
    if rank == 0:
        folder.prepare(cfg.to_dict())
        _write_provenance(folder, cfg)
    _barrier(world)
    specs = resolve_methods(cfg.methods)
    categories = _categories(cfg)
    device = _device(cfg, rank)
    extractor = _extractor(cfg, device)
    for category in categories[rank::world]:
        _run_category(cfg, folder, extractor, category, specs, device, progress)
    _barrier(world)
    from .report import write_summary

    return write_summary(folder, cfg, categories, specs) if rank == 0 else folder.root / "summary.csv"


def _categories(cfg: RunConfig) -> list[str]:
    from .data import list_categories

    found = list_categories(cfg.dataset, cfg.root)
    if cfg.categories is None:
        return list(found)
    missing = [c for c in cfg.categories if c not in found]
    if missing:
        raise ValueError(f"category(ies) {', '.join(missing)} not found under {cfg.root}; found: {', '.join(found)}")
    return list(cfg.categories)


def _device(cfg: RunConfig, rank: int) -> torch.device:
    if cfg.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
        return torch.device("cpu")
    return torch.device(cfg.device)


def _extractor(cfg: RunConfig, device: torch.device):
    from .features import FeatureExtractor

    return FeatureExtractor(cfg.backbone, layer=cfg.layer, weights=cfg.weights, device=device)


def _run_category(cfg, folder: RunFolder, extractor, category: str, specs, device, progress: bool) -> None:
    cells = [(spec, seed) for seed in cfg.seeds for spec in specs if folder.finished(category, spec.name, seed) is None]
    if not cells:
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
    from .features import extract_to_store, feature_store_key

    splits = {}
    for split, cap in (("train", cfg.max_train), ("test", cfg.max_test)):
        samples = load_split(cfg.dataset, cfg.root, category, split)
        splits[split] = _cap(samples, cap, split)
    feature_dir = Path(cfg.feature_dir) if cfg.feature_dir else folder.root / "features"
    stores = {}
    for split, samples in splits.items():
        key = feature_store_key(extractor, cfg.resolution, [s.image_path for s in samples])
        stores[split] = extract_to_store(
            extractor, samples, feature_dir / category / key / split, resolution=cfg.resolution, progress=progress
        )
    test = splits["test"]
    size = (cfg.resolution, cfg.resolution)
    masks = torch.stack([read_mask(s.mask_paths, size) for s in test])
    labels = torch.tensor([int(s.label) for s in test], dtype=torch.long)
    if labels.min() == labels.max():
        raise ValueError(f"the test split of {category} has only {'anomalous' if labels[0] else 'normal'} images")
    return CategoryData(category, stores["train"], stores["test"], labels, masks, test)


def _cap(samples: list, cap: int | None, split: str) -> list:
    """At most ``cap`` samples, taken evenly over the sorted list so every defect type keeps its share."""
    if cap is None or len(samples) <= cap:
        return samples
    step = len(samples) / cap
    return [samples[math.floor(i * step)] for i in range(cap)]


def _run_cell(cfg, folder: RunFolder, data: CategoryData, spec: MethodSpec, seed: int, device, progress) -> list:
    if spec.kind == "flow":
        from .flows import run_flow_cell

        return run_flow_cell(cfg, folder, data, spec, seed, device, progress)
    from .baselines import make_baseline

    baseline = make_baseline(spec.kind, cfg, seed=seed, device=device)
    baseline.fit(data.train)
    evaluation = evaluate_maps(cfg, data, baseline.anomaly_maps, baseline.anomaly_maps)
    record = {"epoch": None, **evaluation.metrics}
    folder.append_metrics(data.name, spec.name, seed, record)
    save_examples(folder.cell(data.name, spec.name, seed), evaluation, data.labels)
    return [record]


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


def _write_provenance(folder: RunFolder, cfg: RunConfig) -> None:
    import json

    from wtflow.checkpoint import write_text_atomic
    from wtflow.utils.provenance import provenance

    record = provenance(command=sys.argv)
    write_text_atomic(folder.root / "provenance.json", json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
