"""MVTec 3D-AD, RGB only (as in the paper): ``<category>/{train,validation,test}/<label>/{rgb,gt,xyz}/NNN.*``.

The ``xyz`` point clouds are not read. Normal test images ship an all-zero ``gt`` mask; they get no mask here
(an all-zero mask is built on reading), like the other layouts.
"""

from __future__ import annotations

from pathlib import Path

from .core import ImageDataError, Sample, list_images, pair_masks_by_stem, require_dir
from .mvtec import category_dir, list_categories

__all__ = ["CATEGORIES", "SPLITS", "list_categories", "load_split"]

CATEGORIES = (
    "bagel", "cable_gland", "carrot", "cookie", "dowel", "foam", "peach", "potato", "rope", "tire",
)  # fmt: skip
SPLITS = ("train", "validation", "test")
NORMAL = "good"


def load_split(root: str | Path, category: str, split: str) -> list[Sample]:
    """The RGB samples of ``split`` ("train", "validation" or "test"), sorted by label folder then file name."""
    if split not in SPLITS:
        raise ImageDataError(f"unknown split {split!r} for MVTec 3D-AD; expected one of {', '.join(SPLITS)}")
    split_dir = require_dir(category_dir(root, category, list_categories(root)) / split, f"split {split!r}")
    labels = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not labels:
        raise ImageDataError(f"empty split: no label folder in {split_dir}")
    samples = []
    for label in labels:
        images = list_images(split_dir / label / "rgb", f"rgb folder of {label!r}")
        if label == NORMAL:
            samples += [Sample(p, (), 0, NORMAL, category, split) for p in images]
            continue
        masks = list_images(split_dir / label / "gt", f"gt folder of {label!r}")
        paired = pair_masks_by_stem(images, masks, f"{split_dir / label}: rgb vs gt")
        samples += [Sample(p, (m,), 1, label, category, split) for p, m in zip(images, paired)]
    return samples
