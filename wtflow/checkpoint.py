"""Atomic, pickle-free checkpoints.

Files are written to a temporary sibling and moved into place with
``os.replace`` so an interruption never leaves a half-written file. They are
read with ``torch.load(..., weights_only=True)``, which refuses pickled
objects, and carry a SHA-256 checksum over their tensors and metadata so a
tampered or truncated file is reported by name instead of loading silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint", "write_atomic", "write_text_atomic"]

FORMAT = "wtflow"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be trusted: missing, truncated, tampered, or of the wrong kind."""


def write_atomic(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically; returns ``path``.

    The file gets the usual permissions (0o666 minus the umask), not mkstemp's owner-only 0o600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    return write_atomic(path, write)


def _digest(obj: Any, h: hashlib._Hash) -> None:
    if torch.is_tensor(obj):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for key in sorted(obj, key=str):
            h.update(repr(key).encode())
            _digest(obj[key], h)
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[")
        for item in obj:
            _digest(item, h)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())


def _checksum(kind: str, payload: Mapping[str, Any]) -> str:
    h = hashlib.sha256(kind.encode())
    _digest(payload, h)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, kind: str, payload: Mapping[str, Any]) -> Path:
    """Atomically save ``payload`` (tensors, numbers, strings, lists, dicts; no objects) as a ``kind`` checkpoint."""
    record = {"format": FORMAT, "version": VERSION, "kind": kind, "payload": dict(payload)}
    record["checksum"] = _checksum(kind, record["payload"])
    return write_atomic(path, lambda tmp: torch.save(record, tmp))


def load_checkpoint(path: str | os.PathLike, kind: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a ``kind`` checkpoint with ``weights_only=True`` and verify its checksum; returns its payload.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: truncated, corrupt, tampered, pickled objects inside, or not a ``kind`` checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    record = _read_record(path, map_location)
    if not isinstance(record, dict) or record.get("format") != FORMAT or "payload" not in record:
        raise CheckpointError(f"{path} is not a wtflow checkpoint (missing format/payload fields)")
    if record.get("kind") != kind:
        raise CheckpointError(f"{path} is a {record.get('kind')!r} checkpoint, expected {kind!r}")
    if record.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {record.get('version')!r}, this wtflow reads {VERSION}")
    if _checksum(kind, record["payload"]) != record.get("checksum"):
        raise CheckpointError(f"checksum mismatch in {path}: the file was modified after it was written")
    return record["payload"]


def _read_record(path: Path, map_location) -> Any:
    """``torch.load(weights_only=True)``, with every failure reported as corrupt or as a refused pickled object."""
    # torch.save writes a zip archive; anything else (random bytes, a .npy, a raw pickle) is not a checkpoint.
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated or corrupt (not a torch.save archive)"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message advises loading with weights_only=False; only the refused item is passed on.
        refused = re.search(r"WeightsUnpickler error:\s*(Unsupported (?:global: GLOBAL \S+|\w+ \S+))", str(err))
        if refused is None:
            raise CheckpointError(f"cannot read checkpoint {path}: the file is truncated or corrupt") from None
        raise CheckpointError(
            f"refusing to load {path}: it contains pickled objects that weights_only loading does not accept "
            f"({refused.group(1)}); wtflow checkpoints hold only tensors, numbers, strings, lists and dicts, so "
            "this file was not written by wtflow or was tampered with"
        ) from None
    except Exception as err:  # noqa: BLE001 - a damaged archive surfaces as many exception types
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated or corrupt ({_first_words(err)})"
        ) from err


def _first_words(err: BaseException, limit: int = 160) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:limit]


def dumps_config(config: Mapping[str, Any]) -> str:
    """Serialise a configuration dict to canonical JSON (stored as a string inside checkpoints)."""
    return json.dumps(config, sort_keys=True)
