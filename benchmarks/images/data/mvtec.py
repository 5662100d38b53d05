"""MVTec AD layout: ``<category>/{train/good, test/good, test/<defect>, ground_truth/<defect>/<id>_mask.png}``.

MPDD ships the same layout and is read by this module too (``benchmarks.images.data.mpdd``).
"""

from __future__ import annotations

from pathlib import Path

from .core import ImageDataError, Sample, list_images, pair_masks_by_stem, require_dir

__all__ = ["CATEGORIES", "SPLITS", "list_categories", "load_split"]

CATEGORIES = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)  # fmt: skip
SPLITS = ("train", "test")
NORMAL = "good"


def list_categories(root: str | Path) -> list[str]:
    """Sorted names of the folders under ``root`` that hold a ``train`` or ``test`` folder."""
    root = require_dir(Path(root), "dataset root")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and ((p / "train").is_dir() or (p / "test").is_dir()))
    if not found:
        raise ImageDataError(f"no category under {root}: expected <category>/train and <category>/test folders")
    return found


def category_dir(root: str | Path, category: str, categories: list[str]) -> Path:
    """``root/category``, or an error listing the categories that exist."""
    path = Path(root) / category
    if not path.is_dir():
        raise ImageDataError(f"unknown category {category!r}: {path} is missing; found {', '.join(categories)}")
    return path


def load_split(root: str | Path, category: str, split: str) -> list[Sample]:
    """The samples of ``split`` ("train" or "test") of ``category``, sorted by defect type then file name."""
    if split not in SPLITS:
        raise ImageDataError(f"unknown split {split!r} for the MVTec layout; expected one of {', '.join(SPLITS)}")
    base = category_dir(root, category, list_categories(root))
    split_dir = require_dir(base / split, f"split {split!r} of category {category!r}")
    if split == "train":
        images = list_images(split_dir / NORMAL, f"training folder of {category!r}")
        return [Sample(p, (), 0, NORMAL, category, split) for p in images]
    samples = []
    defects = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not defects:
        raise ImageDataError(f"empty split: no defect-type folder in {split_dir}")
    for defect in defects:
        images = list_images(split_dir / defect, f"test folder {defect!r} of {category!r}")
        if defect == NORMAL:
            samples += [Sample(p, (), 0, NORMAL, category, split) for p in images]
            continue
        masks = list_images(base / "ground_truth" / defect, f"ground-truth folder of defect {defect!r}")
        paired = pair_masks_by_stem(images, masks, f"{split_dir / defect} vs {base / 'ground_truth' / defect}")
        samples += [Sample(p, (m,), 1, defect, category, split) for p, m in zip(images, paired)]
    return samples
