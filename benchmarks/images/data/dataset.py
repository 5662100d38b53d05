"""A torch ``Dataset`` over the samples of one split, and an up-front check of image/mask sizes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from .core import ImageDataError, Sample, image_size, read_image, read_mask

__all__ = ["AnomalyImageDataset", "check_mask_sizes"]


def check_mask_sizes(samples: Sequence[Sample]) -> None:
    """Raise ``ImageDataError`` naming the first masks whose size differs from their image's (headers only)."""
    bad = []
    for sample in samples:
        size = image_size(sample.image) if sample.masks else None
        bad += [(m, image_size(m), size) for m in sample.masks if image_size(m) != size]
    if bad:
        listed = "; ".join(f"{m} is {ms[0]}x{ms[1]} but its image is {s[0]}x{s[1]}" for m, ms, s in bad[:5])
        raise ImageDataError(f"{len(bad)} mask(s) differ in size from their image (HxW): {listed}")


class AnomalyImageDataset(Dataset):
    """Items ``(image (3, R, R) float32 in [0, 1], mask (R, R) bool, label int, index int)``.

    ``resolution``: side R (None keeps each file's size); ``mask_size``: mask side if different from R (e.g. the
    original size for evaluation at full resolution). ``check=True`` runs ``check_mask_sizes`` once up front so a
    bad mask fails before any long extraction.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        resolution: int | None = None,
        mask_size: int | None = None,
        check: bool = True,
    ) -> None:
        if not samples:
            raise ImageDataError("AnomalyImageDataset: no samples (an empty split?)")
        self.samples = list(samples)
        self.resolution = resolution
        self.mask_size = mask_size
        if check:
            check_mask_sizes(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        sample = self.samples[index]
        image = read_image(sample.image, self.resolution)
        original = image_size(sample.image)
        out_size = self.mask_size or self.resolution or original
        mask = read_mask(sample.masks, out_size, expected_size=original)
        return image, mask, sample.label, index

    @property
    def labels(self) -> torch.Tensor:
        """(N,) int64 image labels."""
        return torch.tensor([s.label for s in self.samples], dtype=torch.int64)
