"""Tidy tables: a *table* is a dict of equally long 1-D numpy arrays (column name -> values), one row per
observation, written as CSV next to every figure."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .io import write_text_atomic

__all__ = [
    "Table",
    "concat_tables",
    "format_value",
    "make_table",
    "n_rows",
    "select",
    "table_to_csv",
    "unique",
    "write_csv",
]

Table = dict[str, np.ndarray]


def _column(values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        return np.full(n, arr.item(), dtype=object if arr.dtype.kind in "UO" else arr.dtype)
    if arr.shape != (n,):
        raise ValueError(f"table column has shape {arr.shape}, expected ({n},)")
    return arr


def make_table(n: int, **columns: Any) -> Table:
    """A table of ``n`` rows; scalar columns are repeated."""
    return {name: _column(values, n) for name, values in columns.items()}


def _is_text(arr: np.ndarray) -> bool:
    return np.asarray(arr).dtype.kind in "UO"


def concat_tables(tables: Sequence[Table]) -> Table:
    """Stack tables with the same columns (in the order of the first); empty tables are skipped."""
    tables = [t for t in tables if t]
    if not tables:
        return {}
    names = list(tables[0])
    for t in tables[1:]:
        if list(t) != names:
            raise ValueError(f"cannot concatenate tables with columns {names} and {list(t)}")
    return {
        name: np.concatenate([np.asarray(t[name], dtype=object if _is_text(t[name]) else None) for t in tables])
        for name in names
    }


def n_rows(table: Table) -> int:
    """Number of rows (0 for an empty table)."""
    return len(next(iter(table.values()))) if table else 0


def select(table: Table, **where: Any) -> Table:
    """Rows whose columns equal the given values (a list/tuple/set value means "any of these")."""
    mask = np.ones(n_rows(table), dtype=bool)
    for name, value in where.items():
        if name not in table:
            raise KeyError(f"table has no column {name!r}; columns: {', '.join(table)}")
        col = table[name]
        if isinstance(value, list | tuple | set):
            mask &= np.isin(col, list(value))
        else:
            mask &= col == value
    return {name: col[mask] for name, col in table.items()}


def unique(table: Table, column: str) -> list:
    """Distinct values of ``column`` in order of first appearance."""
    return list(dict.fromkeys(table[column].tolist()))


def format_value(value: Any) -> str:
    """A cell as CSV text: booleans ``true``/``false``, floats with 7 significant digits."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return f"{float(value):.7g}"
    return str(value)


def table_to_csv(table: Table) -> str:
    """The table as CSV text (header row, then one line per row)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(table))
    for row in zip(*table.values()):
        writer.writerow([format_value(v) for v in row])
    return buf.getvalue()


def write_csv(table: Table, path: str | os.PathLike) -> Path:
    """Write ``table`` as CSV atomically."""
    return write_text_atomic(path, table_to_csv(table))
