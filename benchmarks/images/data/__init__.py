"""Dataset readers for the image pipeline: one API over MVTec AD, VisA, MVTec LOCO AD, MPDD, MVTec 3D-AD (RGB) and a
generic folder layout.

    from benchmarks.images.data import list_categories, load_split, AnomalyImageDataset
    samples = load_split("mvtec", root, "bottle", "test")      # list[Sample], sorted, validated
    dataset = AnomalyImageDataset(samples, resolution=256)     # (image, mask, label, index)

Decoding rules (RGB forcing, 16-bit, alpha, masks) are in ``core``; per-layout facts in each reader's docstring.
"""

from __future__ import annotations

from pathlib import Path

from . import folder, loco, mpdd, mvtec, mvtec3d, visa
from .core import (
    IMAGE_EXTENSIONS,
    DefectSpec,
    ImageDataError,
    Sample,
    image_size,
    pair_masks_by_stem,
    read_image,
    read_mask,
)
from .dataset import AnomalyImageDataset, check_mask_sizes
from .loco import defect_regions, read_defects_config
from .paper import PAPER_EXCEPTIONS, PAPER_LAYER, PAPER_RESOLUTION, paper_settings
from .tiny import make_tiny_tree

READERS = {"mvtec": mvtec, "visa": visa, "loco": loco, "mpdd": mpdd, "mvtec3d": mvtec3d, "folder": folder}
DATASETS = tuple(READERS)

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "PAPER_EXCEPTIONS",
    "PAPER_LAYER",
    "PAPER_RESOLUTION",
    "AnomalyImageDataset",
    "DefectSpec",
    "ImageDataError",
    "Sample",
    "check_mask_sizes",
    "defect_regions",
    "image_size",
    "list_categories",
    "load_split",
    "make_tiny_tree",
    "pair_masks_by_stem",
    "paper_settings",
    "read_defects_config",
    "read_image",
    "read_mask",
    "splits",
]


def _reader(dataset: str):
    if dataset not in READERS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(map(repr, DATASETS))}")
    return READERS[dataset]


def splits(dataset: str) -> tuple[str, ...]:
    """The split names ``dataset`` ships (e.g. ("train", "validation", "test") for MVTec LOCO)."""
    return _reader(dataset).SPLITS


def list_categories(dataset: str, root: str | Path, **options) -> list[str]:
    """Sorted category names found under ``root`` in ``dataset``'s layout."""
    return _reader(dataset).list_categories(root, **options)


def load_split(dataset: str, root: str | Path, category: str, split: str, **options) -> list[Sample]:
    """The samples of one split of one category; ``options`` go to the folder reader (``normal_dir``,
    ``abnormal_dir``, ``mask_dir``, ``normal_test_dir``, ``normal_split_ratio``)."""
    return _reader(dataset).load_split(root, category, split, **options)
