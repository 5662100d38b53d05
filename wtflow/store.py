"""On-disk feature store: one memory-mapped array (N, *event_shape) plus a ``meta.json``.

Feature maps of a whole category (e.g. 2 000 maps of (1024, 32, 32) in float16, about 4 GB)
do not fit comfortably in memory; the store keeps them in ``features.npy`` (numpy's ``.npy``
format, opened with ``np.lib.format.open_memmap``) so a training batch reads only its rows.

Layout of a store directory::

    features.npy   the (count, *event_shape) array, float16 or float32
    meta.json      shape, dtype, count, SHA-256 digest of the array bytes, free-form ``meta``
                   and ``complete: true`` (written last, atomically, by ``finalize``)

A store is written once (``create`` -> ``write`` ... -> ``finalize``) and read many times
(``open``); ``open`` refuses an unfinished, truncated or inconsistent store and names the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ._validation import as_event_shape
from .checkpoint import write_text_atomic

__all__ = ["ARRAY_FILE", "META_FILE", "STORE_DTYPES", "FeatureStore", "StoreError"]

ARRAY_FILE = "features.npy"
META_FILE = "meta.json"
STORE_DTYPES = ("float16", "float32")
FORMAT = "wtflow-feature-store"
VERSION = 1
_DIGEST_CHUNK_BYTES = 64 * 2**20


class StoreError(ValueError):
    """A feature store that cannot be used: missing, unfinished, truncated or inconsistent files."""


class FeatureStore(Dataset):
    """A memory-mapped (N, *event_shape) array of float16/float32 features; a torch ``Dataset``.

    ``store[i]`` is a float32 tensor of shape ``event_shape``; ``store[index_tensor]`` (a 1-D
    integer tensor, list or array) is a float32 tensor (len(index), *event_shape). Build one with
    ``FeatureStore.create`` (writable) or ``FeatureStore.open`` (read-only); do not call the
    constructor directly.
    """

    def __init__(self, path: Path, array: np.memmap, meta_record: dict[str, Any], writable: bool):
        self.path = Path(path)
        self._array: np.memmap | None = array
        self._record = meta_record
        self.writable = writable

    # -- creation -------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        count: int,
        event_shape: int | Sequence[int],
        dtype: str = "float16",
        meta: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> FeatureStore:
        """Create an empty writable store of ``count`` samples of ``event_shape`` in ``dtype``.

        Args:
            path: store directory (created; must be empty or absent unless ``overwrite``).
            count: number of samples N (>= 1).
            event_shape: shape of one sample, e.g. (1024, 32, 32).
            dtype: ``"float16"`` (half the disk and page cache) or ``"float32"``.
            meta: free-form JSON-able description (backbone, layer, resolution, source files...).
            overwrite: replace an existing store at ``path``.
        """
        path = Path(path)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an integer >= 1, got {count!r}")
        shape = as_event_shape(event_shape)
        if dtype not in STORE_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(map(repr, STORE_DTYPES))}, got {dtype!r}")
        meta = dict(meta or {})
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as err:
            raise ValueError(f"meta must be JSON-serialisable (numbers, strings, lists, dicts): {err}") from err
        if path.exists():
            if not path.is_dir():
                raise FileExistsError(f"{path} exists and is a file, not a feature-store directory")
            if any(path.iterdir()):
                if not overwrite:
                    raise FileExistsError(f"{path} already exists; pass overwrite=True to replace the store there")
                if not ((path / META_FILE).exists() or (path / ARRAY_FILE).exists()):
                    raise FileExistsError(f"{path} is not empty and is not a feature store; refusing to delete it")
                shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        array = np.lib.format.open_memmap(path / ARRAY_FILE, mode="w+", dtype=np.dtype(dtype), shape=(count, *shape))
        record = {
            "format": FORMAT,
            "version": VERSION,
            "shape": [count, *shape],
            "dtype": dtype,
            "count": count,
            "digest": None,
            "meta": meta,
            "complete": False,
        }
        # An unfinished store is marked as such on disk, so a crash mid-extraction is recognised by ``open``.
        write_text_atomic(path / META_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")
        return cls(path, array, record, writable=True)

    def write(self, start: int, values: Tensor | np.ndarray) -> None:
        """Write ``values`` (k, *event_shape) into rows ``start .. start + k - 1`` (cast to the store's dtype)."""
        self._require_writable("write")
        if torch.is_tensor(values):
            values = values.detach().cpu().float().numpy()
        values = np.asarray(values)
        if values.ndim == len(self.event_shape):
            values = values[None]
        if tuple(values.shape[1:]) != self.event_shape:
            raise ValueError(
                f"values for {self.path / ARRAY_FILE} must have shape (k, {', '.join(map(str, self.event_shape))}), "
                f"got {tuple(values.shape)}"
            )
        start = int(start)
        if start < 0 or start + values.shape[0] > len(self):
            raise IndexError(f"rows {start}..{start + values.shape[0] - 1} lie outside the store's {len(self)} rows")
        if not np.isfinite(values).all():
            raise ValueError(f"values written to {self.path} must be finite (rows from {start})")
        limit = np.finfo(self._array.dtype).max
        if values.size and np.abs(values).max() > limit:
            raise ValueError(
                f"values written to {self.path} reach {float(np.abs(values).max()):.3g}, beyond the largest "
                f"{self.dtype} ({limit:.3g}); rescale them or create the store with dtype='float32'"
            )
        self._array[start : start + values.shape[0]] = values

    def finalize(self) -> FeatureStore:
        """Flush the array, compute its digest and write ``meta.json`` with ``complete: true`` (last)."""
        self._require_writable("finalize")
        self._array.flush()
        self._record["digest"] = array_digest(self._array)
        self._record["complete"] = True
        write_text_atomic(self.path / META_FILE, json.dumps(self._record, indent=2, sort_keys=True) + "\n")
        self.writable = False
        self._array = _open_array(self.path / ARRAY_FILE)
        return self

    # -- reading --------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> FeatureStore:
        """Open a finished store read-only; raises ``StoreError`` (naming the file) if it cannot be trusted."""
        path = Path(path)
        if not path.is_dir():
            raise StoreError(f"no feature store at {path}: the directory does not exist")
        record = _read_meta(path / META_FILE)
        array_path = path / ARRAY_FILE
        if not array_path.is_file():
            raise StoreError(f"feature store {path} has no array file {array_path}")
        expected = (
            tuple(record["shape"]),
            record["dtype"],
        )
        try:
            with open(array_path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(handle)
                offset = handle.tell()
        except (ValueError, OSError, EOFError) as err:
            raise StoreError(f"{array_path} is not a readable .npy array (corrupt header): {err}") from err
        if (tuple(shape), dtype.name) != expected or fortran:
            raise StoreError(
                f"{array_path} holds a {dtype.name} array of shape {tuple(shape)}, but {path / META_FILE} "
                f"describes {expected[1]} {expected[0]}"
            )
        needed = offset + math.prod(shape) * dtype.itemsize
        size = array_path.stat().st_size
        if size != needed:
            raise StoreError(
                f"{array_path} is {size} bytes but a {dtype.name} array of shape {tuple(shape)} needs {needed}: "
                "the file is truncated or was modified"
            )
        return cls(path, _open_array(array_path), record, writable=False)

    def __len__(self) -> int:
        return int(self._record["count"])

    def __getitem__(self, index: int | Tensor | Sequence[int] | np.ndarray) -> Tensor:
        array = self._require_array()
        if isinstance(index, int | np.integer) or (torch.is_tensor(index) and index.ndim == 0):
            i = int(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"index {i} out of range for a store of {len(self)} samples ({self.path})")
            return torch.from_numpy(np.array(array[i], dtype=np.float32))
        idx = index.detach().cpu().numpy() if torch.is_tensor(index) else np.asarray(index)
        if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
            raise TypeError(f"store index must be an int or a 1-D integer sequence, got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"indices out of range for a store of {len(self)} samples ({self.path})")
        # Reading the rows in file order keeps the disk access sequential; the result keeps the caller's order.
        order = np.argsort(idx % len(self), kind="stable")
        rows = np.empty((idx.size, *self.event_shape), dtype=np.float32)
        rows[order] = array[idx[order]]
        return torch.from_numpy(rows)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self._record["shape"][1:])

    @property
    def dtype(self) -> str:
        return self._record["dtype"]

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._record["meta"])

    @property
    def digest(self) -> str | None:
        """SHA-256 of the array's bytes (set by ``finalize``; None while the store is being written)."""
        return self._record["digest"]

    def verify(self) -> None:
        """Re-read the whole array and check it against the stored digest (one full pass over the file)."""
        if array_digest(self._require_array()) != self.digest:
            raise StoreError(f"{self.path / ARRAY_FILE} does not match the digest in {self.path / META_FILE}")

    def __repr__(self) -> str:
        state = "writable" if self.writable else "read-only"
        shape = f"count={len(self)}, event_shape={self.event_shape}"
        return f"FeatureStore({str(self.path)!r}, {shape}, {self.dtype}, {state})"

    # DataLoader workers receive a pickled copy: send the path, reopen the memory map there.
    def __getstate__(self) -> dict[str, Any]:
        if self.writable:
            raise RuntimeError(f"a writable store ({self.path}) cannot be sent to another process; finalize it first")
        return {"path": str(self.path), "record": self._record}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self._record, self.writable = Path(state["path"]), state["record"], False
        self._array = _open_array(self.path / ARRAY_FILE)

    def _require_writable(self, action: str) -> None:
        if not self.writable:
            raise RuntimeError(f"cannot {action}: {self.path} is open read-only (finished stores are immutable)")

    def _require_array(self) -> np.memmap:
        if self._array is None:
            raise RuntimeError(f"feature store {self.path} is closed")
        return self._array


def array_digest(array: np.ndarray) -> str:
    """SHA-256 (hex) of an array's dtype, shape and bytes, read in chunks of rows (bounded memory)."""
    h = hashlib.sha256(f"{array.dtype.name}{tuple(array.shape)}".encode())
    row_bytes = max(1, array[0].nbytes if len(array) else 1)
    rows = max(1, _DIGEST_CHUNK_BYTES // row_bytes)
    for start in range(0, len(array), rows):
        h.update(np.ascontiguousarray(array[start : start + rows]).tobytes())
    return h.hexdigest()


def _open_array(path: Path) -> np.memmap:
    return np.lib.format.open_memmap(path, mode="r")


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StoreError(f"feature store {path.parent} has no {META_FILE} ({path} is missing)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise StoreError(f"{path} is not valid JSON (corrupt store metadata): {err}") from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise StoreError(f"{path} is not a wtflow feature-store description (format field missing or different)")
    if record.get("version") != VERSION:
        raise StoreError(f"{path} has store version {record.get('version')!r}, this wtflow reads {VERSION}")
    if record.get("complete") is not True:
        raise StoreError(
            f"feature store {path.parent} is incomplete ({path} has complete != true): its writer stopped before "
            "finalize(); extract the features again"
        )
    missing = [k for k in ("shape", "dtype", "count", "digest", "meta") if k not in record]
    if missing:
        raise StoreError(f"{path} lacks the field(s) {', '.join(missing)}")
    if record["dtype"] not in STORE_DTYPES or record["shape"][0] != record["count"]:
        raise StoreError(f"{path} describes an unsupported dtype {record['dtype']!r} or a count that is not shape[0]")
    return record
