"""Atomic file output and JSON-able conversion.

The atomic writers live in ``wtflow.checkpoint`` (temporary file in the target folder, then ``os.replace``);
they are re-exported here so that scripts need one import for every kind of output.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import write_atomic, write_text_atomic

__all__ = ["ensure_writable_dir", "jsonable", "write_atomic", "write_json", "write_text_atomic"]


def jsonable(obj: Any) -> Any:
    """``obj`` with dataclasses, mappings, tuples, numpy arrays and numpy scalars turned into JSON types;
    non-finite floats become their ``repr`` (``"nan"``, ``"inf"``) so the JSON stays standard."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    return obj


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``jsonable(obj)`` as indented JSON (trailing newline) atomically."""
    return write_text_atomic(path, json.dumps(jsonable(obj), indent=2) + "\n")


def ensure_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create the folder ``path`` (with parents) and check that a file can be written there, before any compute.

    Raises:
        NotADirectoryError: ``path`` or a parent is a file.
        OSError (``PermissionError``, ...): the folder cannot be created or written; the message names it.
    """
    import tempfile

    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:
        raise NotADirectoryError(f"{what} {str(out)!r} exists and is not a folder") from err
    except NotADirectoryError as err:
        raise NotADirectoryError(f"{what} {str(out)!r}: a parent of it is a file") from err
    except OSError as err:
        raise type(err)(f"{what} {str(out)!r} cannot be created: {err.strerror or err}") from err
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as err:
        raise type(err)(f"{what} {str(out)!r} is not writable: {err.strerror or err}") from err
    return out
