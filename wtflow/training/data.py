"""Training data as a batch source: an in-memory tensor, any map-style ``Dataset`` or a ``FeatureStore``.

``as_training_data`` checks the data once (shape, size, dtype range, finiteness of a tensor) and
returns a ``BatchSource``: a Dataset whose item is a whole batch, ``source[index_tensor] ->
(k, *event_shape)`` float32, so a ``DataLoader`` with ``batch_size=None`` and our own sampler reads
one batch per request (rows of a tensor or memory-mapped store in one gather, not k item calls).
Memory is bounded by the batch size and the loader's workers, except for a tensor, which is
already in memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, IterableDataset

from .._validation import check_finite
from ..store import FeatureStore

__all__ = ["BatchSource", "TrainingData", "as_training_data", "tensor_digest_sample"]

# Tensor digests hash at most this many evenly strided entries (plus dtype and shape).
DIGEST_ENTRIES = 2**20
# Dataset digests hash this many evenly spaced items (plus the length).
DIGEST_ITEMS = 8


class BatchSource(Dataset):
    """Map-style dataset over batches: ``source[indices]`` -> float32 (len(indices), *event_shape)."""

    def __init__(self, data: Tensor | Dataset, event_shape: tuple[int, ...] | None, check_each_batch: bool):
        self.data, self.event_shape, self.check_each_batch = data, event_shape, check_each_batch

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, indices: Tensor) -> Tensor:
        if torch.is_tensor(self.data) or isinstance(self.data, FeatureStore):
            batch = self.data[indices]
        else:
            batch = torch.stack([_item(self.data, int(i), self.event_shape) for i in indices])
        batch = batch.float()
        if self.check_each_batch and not torch.isfinite(batch).all():
            bad = indices[~torch.isfinite(batch.flatten(1)).all(dim=1)][:5].tolist()
            raise ValueError(f"training data must be finite: sample(s) {bad} hold NaN or inf")
        return batch


@dataclass
class TrainingData:
    """A checked training set: the batch source, its size and a digest that identifies it for resume."""

    source: BatchSource
    count: int
    digest: str
    description: str


def as_training_data(data, event_shape: tuple[int, ...] | None) -> TrainingData:
    """Check ``data`` (tensor, numpy array, ``FeatureStore`` or map-style ``Dataset``) and wrap it.

    Raises ``ValueError``/``TypeError`` naming the problem: an empty set, a sample shape that is not
    ``event_shape``, float64 values beyond float32's range, NaN/inf in a tensor, an iterable dataset.
    """
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if torch.is_tensor(data):
        return _tensor_data(data, event_shape)
    if isinstance(data, IterableDataset) or not isinstance(data, Dataset):
        raise TypeError(
            "data must be a tensor, a numpy array, a wtflow.store.FeatureStore or a map-style "
            f"torch.utils.data.Dataset (random access is needed for shuffling and exact resume), got {type(data)!r}"
        )
    n = len(data)
    if n == 0:
        raise ValueError("the training set is empty (the dataset has 0 samples)")
    if isinstance(data, FeatureStore):
        if event_shape is not None and data.event_shape != event_shape:
            raise ValueError(
                f"the feature store {data.path} holds samples of shape {data.event_shape}, "
                f"the model expects {event_shape}"
            )
        digest = "store:" + (data.digest or "unfinished")
        return TrainingData(BatchSource(data, event_shape, True), n, digest, f"feature store {data.path}")
    _item(data, 0, event_shape)  # fail now, not inside a loader worker, if items have the wrong form
    h = hashlib.sha256(f"dataset{n}".encode())
    for i in sorted({round(k * (n - 1) / (DIGEST_ITEMS - 1)) for k in range(DIGEST_ITEMS)}):
        h.update(_item(data, i, event_shape).float().contiguous().numpy().tobytes())
    return TrainingData(BatchSource(data, event_shape, True), n, "dataset:" + h.hexdigest(), type(data).__name__)


def _tensor_data(data: Tensor, event_shape: tuple[int, ...] | None) -> TrainingData:
    if event_shape is not None and tuple(data.shape[1:]) != event_shape:
        raise ValueError(f"data must have shape (N, {', '.join(map(str, event_shape))}), got {tuple(data.shape)}")
    if data.shape[0] == 0:
        raise ValueError(f"the training set is empty (data has shape {tuple(data.shape)})")
    if not (data.is_floating_point() or data.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32)):
        raise TypeError(f"data must hold real numbers, got dtype {data.dtype}")
    check_finite("data", data)
    if data.dtype == torch.float64:
        largest = float(data.abs().max())
        if largest > torch.finfo(torch.float32).max:
            raise ValueError(
                f"data holds float64 values up to {largest:.3g}, beyond float32's range "
                f"({torch.finfo(torch.float32).max:.3g}); training runs in float32, so rescale the data"
            )
    data = data.detach().to("cpu", torch.float32)
    digest = "tensor:" + tensor_digest_sample(data)
    return TrainingData(BatchSource(data, event_shape, False), data.shape[0], digest, "tensor")


def tensor_digest_sample(x: Tensor, entries: int = DIGEST_ENTRIES) -> str:
    """SHA-256 of a tensor's dtype, shape and at most ``entries`` evenly strided entries of its flattened values.

    Cheap for any size (it reads ``entries`` values); every entry is covered when ``x.numel() <= entries``.
    """
    flat = x.detach().cpu().reshape(-1)
    stride = max(1, -(-flat.numel() // entries))
    h = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}{stride}".encode())
    h.update(flat[::stride].contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _item(dataset: Dataset, index: int, event_shape: tuple[int, ...] | None) -> Tensor:
    item = dataset[index]
    if isinstance(item, np.ndarray):
        item = torch.from_numpy(item)
    if not torch.is_tensor(item):
        raise TypeError(
            f"dataset items must be tensors of one sample's shape; item {index} of {type(dataset).__name__} is a "
            f"{type(item).__name__} (wrap the dataset so that it returns only the features)"
        )
    if event_shape is not None and tuple(item.shape) != event_shape:
        raise ValueError(
            f"item {index} of {type(dataset).__name__} has shape {tuple(item.shape)}, the model expects {event_shape}"
        )
    return item
