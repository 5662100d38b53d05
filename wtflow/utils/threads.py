"""Thread limits for small CPU workloads.

Small networks on a CPU often run faster on one thread than on several, and oversubscribed BLAS pools are slow
on a shared machine; both limiters restore the previous settings on exit.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["limit_threads", "torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` (None: leave it), restoring the previous value."""
    previous = torch.get_num_threads()
    if n is not None:
        if int(n) < 1:
            raise ValueError(f"threads must be >= 1 or None, got {n!r}")
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def limit_threads(n: int):
    """torch and the BLAS / OpenMP pools of numpy and scikit-learn (``threadpoolctl``) limited to ``n`` threads;
    without threadpoolctl only torch is limited."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    with torch_threads(n):
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(n):
                yield
