"""The source photos of the real-image set and the disjoint train/test regions cut from each.

All photos ship inside scikit-image's wheel (``skimage/data``; no download, no pooch fetch):

=====================  ===========  ==========================================================
category               size (HxW)   window used (rows, cols)
=====================  ===========  ==========================================================
brick                  512 x 512    whole photo (grey, repeated to RGB)
grass                  512 x 512    whole photo (grey)
gravel                 512 x 512    whole photo (grey)
immunohistochemistry   512 x 512    whole photo (colour)
moon                   512 x 512    whole photo (grey)
retina                 1411 x 1411  rows 300:1110, cols 300:1110 (inside the fundus disc; colour)
=====================  ===========  ==========================================================

Within a window the top ``TRAIN_FRACTION`` of the rows is the training region and the rows from
``TRAIN_FRACTION * h + GUARD`` to the bottom are the test region, so no pixel of a test crop appears in any training
crop. Crops overlap each other within a region (random positions).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["GUARD", "PHOTOS", "TRAIN_FRACTION", "load_photo", "random_origins", "split_regions"]

PHOTOS: dict[str, tuple[int, int, int, int] | None] = {
    "brick": None,
    "grass": None,
    "gravel": None,
    "immunohistochemistry": None,
    "moon": None,
    "retina": (300, 1110, 300, 1110),
}
TRAIN_FRACTION = 0.6
GUARD = 16


@lru_cache(maxsize=len(PHOTOS))
def load_photo(name: str) -> np.ndarray:
    """The window of photo ``name`` (see ``PHOTOS``) as (H, W, 3) uint8, read-only (cached: decoding is slow)."""
    import skimage.data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; expected one of {', '.join(PHOTOS)}")
    image = np.asarray(getattr(skimage.data, name)())
    image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    window = PHOTOS[name]
    if window is not None:
        r0, r1, c0, c1 = window
        image = image[r0:r1, c0:c1]
    image = np.ascontiguousarray(image, dtype=np.uint8)
    image.flags.writeable = False
    return image


def split_regions(height: int, crop: int) -> dict[str, tuple[int, int]]:
    """Row ranges [start, stop) of the train and test regions of a window of ``height`` rows."""
    boundary = int(TRAIN_FRACTION * height)
    regions = {"train": (0, boundary), "test": (boundary + GUARD, height)}
    for split, (start, stop) in regions.items():
        if stop - start < crop:
            raise ValueError(f"crop {crop} px does not fit the {split} region ({stop - start} rows of {height})")
    return regions


def random_origins(
    rng: np.random.Generator, rows: tuple[int, int], width: int, crop: int, n: int
) -> list[tuple[int, int]]:
    """``n`` random top-left corners (row, col) of ``crop`` x ``crop`` crops inside rows [start, stop)."""
    start, stop = rows
    r = rng.integers(start, stop - crop + 1, size=n)
    c = rng.integers(0, width - crop + 1, size=n)
    return [(int(a), int(b)) for a, b in zip(r, c)]
