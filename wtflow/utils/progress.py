"""Progress bars (tqdm) that stay silent where nobody watches them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

__all__ = ["progress_bar", "progress_enabled"]


def progress_enabled(progress: bool | None) -> bool:
    """``None`` means: show bars on an interactive terminal, never under pytest."""
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty() and "PYTEST_CURRENT_TEST" not in os.environ


def progress_bar(iterable: Iterable, desc: str, enabled: bool, total: int | None = None):
    """``iterable`` wrapped in a tqdm bar when ``enabled``, else unchanged."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)
