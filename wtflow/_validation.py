"""Argument checks shared by the engine, ``theory/`` and the detectors.

Every error names the argument, what was expected and what was received, so a
student can fix a call without reading the source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

__all__ = [
    "as_event_shape",
    "check_choice",
    "check_finite",
    "check_positive_int",
    "check_same_shape",
    "check_time",
    "check_unit_interval_open_right",
]


def as_event_shape(event_shape: int | Sequence[int], name: str = "event_shape") -> tuple[int, ...]:
    """Normalise an int or a tuple of ints to a tuple of positive ints (the shape of one sample)."""
    if isinstance(event_shape, bool):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {event_shape!r}")
    if isinstance(event_shape, int):
        shape: tuple[int, ...] = (event_shape,)
    elif isinstance(event_shape, torch.Size | tuple | list):
        shape = tuple(int(s) for s in event_shape)
    else:
        raise TypeError(f"{name} must be an int or a tuple of ints, got {type(event_shape).__name__}")
    if len(shape) == 0 or any(s < 1 for s in shape):
        raise ValueError(f"{name} must contain positive sizes, got {shape}")
    return shape


def check_choice(name: str, value: str, choices: Iterable[str]) -> str:
    """Raise ``ValueError`` if ``value`` is not one of ``choices``; return it otherwise."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def check_finite(name: str, tensor: Tensor) -> Tensor:
    """Raise ``ValueError`` if ``tensor`` holds NaN or inf."""
    if torch.is_tensor(tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
        n_nan = int(torch.isnan(tensor).sum())
        n_inf = int(torch.isinf(tensor).sum())
        raise ValueError(
            f"{name} must be finite, got {n_nan} NaN and {n_inf} inf entries (shape {tuple(tensor.shape)})"
        )
    return tensor


def check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    """Raise ``ValueError`` unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise ``ValueError`` if the two tensors differ in shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_time(name: str, t: float | Tensor, *, low: float = 0.0, high: float = 1.0, low_open: bool = False) -> None:
    """Raise ``ValueError`` unless every entry of ``t`` lies in [low, high] (or (low, high] if ``low_open``)."""
    values = torch.as_tensor(t, dtype=torch.float64)
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} must be finite, got {t!r}")
    lo_bad = (values <= low) if low_open else (values < low)
    if lo_bad.any() or (values > high).any():
        bracket = "(" if low_open else "["
        bad = values[lo_bad | (values > high)].flatten()[:3].tolist()
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got value(s) {bad}")


def check_unit_interval_open_right(name: str, value: float) -> float:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (e.g. the start time ``t0`` of a solver)."""
    if not (0.0 <= float(value) < 1.0):
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)
