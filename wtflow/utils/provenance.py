"""Run provenance: the code's git state, package versions, and stable hashes of configurations, data and seeds."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .io import jsonable

__all__ = ["config_hash", "derive_seed", "git_state", "package_versions", "tensor_digest"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def _git(args: list[str], root: Path) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def git_state(root: str | os.PathLike | None = None, paths: Sequence[str] | None = None) -> str:
    """Short commit of the checkout at ``root`` (default: this repository) and whether tracked files differ.

    With ``paths``, only changes under those paths count and are listed: ``"abc1234 with uncommitted changes in
    wtflow/model.py"``; without, ``"abc1234 with uncommitted changes"``. ``"unknown (not a git checkout)"`` when
    git or the repository is missing.
    """
    root = Path(root) if root is not None else REPO_ROOT
    try:
        commit = _git(["rev-parse", "--short", "HEAD"], root).strip()
        status = ["status", "--porcelain", "--untracked-files=no"] + (["--", *paths] if paths else [])
        changed = [line[3:] for line in _git(status, root).splitlines() if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if not changed:
        return commit
    return commit + (f" with uncommitted changes in {', '.join(changed)}" if paths else " with uncommitted changes")


def package_versions(packages: Sequence[str] = ("torch", "numpy", "scipy", "scikit-learn")) -> dict[str, str]:
    """``{"python": ..., "wtflow": ..., package: version or "not installed"}``."""
    from importlib import metadata

    from .. import __version__

    out = {"python": platform.python_version(), "wtflow": __version__}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def config_hash(config: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` (dicts, lists, dataclasses, numbers, strings; key order
    does not matter)."""
    text = json.dumps(jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def tensor_digest(x: Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (identifies a training set exactly)."""
    t = x.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def derive_seed(seed: int, *labels: Any) -> int:
    """A reproducible 31-bit seed for the part of a run named by ``labels`` (independent streams per part)."""
    text = json.dumps([int(seed), *[str(label) for label in labels]])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF
