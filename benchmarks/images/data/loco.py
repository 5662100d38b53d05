"""MVTec LOCO AD: ``<category>/{train/good, validation/good, test/<type>, ground_truth/<type>/<id>/000.png ...}``
with ``defects_config.json`` per category.

An anomalous image may have several masks (one folder per image, one file per defect); each mask's pixel value
says which defect type it is, and ``defects_config.json`` gives that type's sPRO saturation threshold.
``defect_regions`` turns a sample's masks into the (region, saturation) pairs that ``metrics.spro`` scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .core import DefectSpec, ImageDataError, Sample, list_images, read_mask, require_dir
from .mvtec import category_dir, list_categories

__all__ = ["CATEGORIES", "SPLITS", "defect_regions", "list_categories", "load_split", "read_defects_config"]

CATEGORIES = ("breakfast_box", "juice_bottle", "pushpins", "screw_bag", "splicing_connectors")
SPLITS = ("train", "validation", "test")
NORMAL = "good"
CONFIG = "defects_config.json"


def read_defects_config(path: str | Path) -> tuple[DefectSpec, ...]:
    """The entries of a ``defects_config.json`` (a list of {defect_name, pixel_value, saturation_threshold,
    relative_saturation})."""
    path = Path(path)
    if not path.is_file():
        raise ImageDataError(f"missing {path}: MVTec LOCO needs it for the sPRO saturation thresholds")
    try:
        entries = json.loads(path.read_text())
        specs = tuple(
            DefectSpec(
                str(e["defect_name"]),
                int(e["pixel_value"]),
                float(e["saturation_threshold"]),
                bool(e["relative_saturation"]),
            )
            for e in entries
        )
    except (ValueError, KeyError, TypeError) as err:
        raise ImageDataError(f"{path}: not a list of defect entries ({type(err).__name__}: {err})") from err
    values = [s.pixel_value for s in specs]
    if len(set(values)) != len(values):
        raise ImageDataError(f"{path}: two defect types share a pixel value")
    return specs


def load_split(root: str | Path, category: str, split: str) -> list[Sample]:
    """The samples of ``split`` ("train", "validation" or "test"); test samples carry every mask of their image
    (sorted) and the category's defect table."""
    if split not in SPLITS:
        raise ImageDataError(f"unknown split {split!r} for MVTec LOCO; expected one of {', '.join(SPLITS)}")
    base = category_dir(root, category, list_categories(root))
    split_dir = require_dir(base / split, f"split {split!r} of category {category!r}")
    if split != "test":
        return [Sample(p, (), 0, NORMAL, category, split) for p in list_images(split_dir / NORMAL, f"{split} folder")]
    specs = read_defects_config(base / CONFIG)
    kinds = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not kinds:
        raise ImageDataError(f"empty split: no anomaly-type folder in {split_dir}")
    samples = []
    for kind in kinds:
        images = list_images(split_dir / kind, f"test folder {kind!r}")
        if kind == NORMAL:
            samples += [Sample(p, (), 0, NORMAL, category, split, specs) for p in images]
            continue
        gt_dir = require_dir(base / "ground_truth" / kind, f"ground-truth folder of {kind!r}")
        lonely = [p for p in images if not (gt_dir / p.stem).is_dir()]
        if lonely:
            raise ImageDataError(f"{split_dir / kind}: {len(lonely)} image(s) without a mask folder in {gt_dir}, "
                                 f"first: {', '.join(map(str, lonely[:5]))}")  # fmt: skip
        for p in images:
            masks = tuple(list_images(gt_dir / p.stem, f"mask folder of {p}"))
            samples.append(Sample(p, masks, 1, kind, category, split, specs))
    return samples


def defect_regions(sample: Sample, size: tuple[int, int] | None = None) -> list[tuple[np.ndarray, float]]:
    """One (region (H, W) bool, saturation in pixels) pair per mask file of ``sample``.

    The mask's non-zero value selects its ``DefectSpec``; a relative threshold is multiplied by the region's area.
    At another ``size`` than the original, regions are resized by nearest neighbour and absolute thresholds are
    scaled by the area ratio so that the same fraction of the defect saturates. A threshold larger than the
    region's area is capped at the area (it could never be reached; anomalib's sPRO draft, PR #1686, does the
    same), so every defect can count as fully found.
    """
    from PIL import Image

    by_value = {s.pixel_value: s for s in sample.defects}
    out = []
    for path in sample.masks:
        with Image.open(path) as img:
            raw = np.asarray(img.convert("L"))
        values = np.unique(raw[raw != 0])
        if len(values) != 1 or int(values[0]) not in by_value:
            raise ImageDataError(f"{path}: mask values {values.tolist()} do not name one entry of {CONFIG} "
                                 f"(pixel values {sorted(by_value)})")  # fmt: skip
        spec = by_value[int(values[0])]
        region = read_mask([path], size).numpy()
        area_ratio = region.size / raw.size
        if spec.relative_saturation:
            saturation = spec.saturation_threshold * float(region.sum())
        else:
            saturation = spec.saturation_threshold * area_ratio
        out.append((region, min(saturation, float(region.sum()))))
    return out
