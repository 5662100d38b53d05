"""What a toy simulator returns (``ToyResult``), how it is written, and the colours and names of its fields."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from wtflow.utils import OKABE_ITO, Table, jsonable, select, write_csv, write_json

__all__ = ["FIELD_COLORS", "FIELD_LABELS", "ToyResult", "config_dict"]

FIELD_COLORS = {
    "learned": OKABE_ITO["blue"],
    "exact_population": OKABE_ITO["vermillion"],
    "exact_empirical": OKABE_ITO["green"],
}
FIELD_LABELS = {
    "learned": "learned (MLP)",
    "exact_population": "exact, population source",
    "exact_empirical": "exact, n-point training set",
}


@dataclass
class ToyResult:
    """What a simulator returns.

    Attributes:
        name: simulator name (``"ring"``, ``"mixture"``...).
        config: the full configuration (JSON-able), including the seed and every solver setting.
        tables: tidy tables, name -> {column: (rows,) array}.
        figures: figure name -> the table names behind it (written as CSV next to the figure).
        info: run facts that are not configuration: wall times, cache hits, cache keys.
    """

    name: str
    config: dict[str, Any]
    tables: dict[str, Table]
    figures: dict[str, list[str]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str, **where: Any) -> Table:
        """Table ``name``, optionally filtered by column values (``select``)."""
        if name not in self.tables:
            raise KeyError(f"{self.name} has no table {name!r}; tables: {', '.join(self.tables)}")
        return select(self.tables[name], **where) if where else self.tables[name]

    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write every table as ``<name>_<table>.csv`` and ``<name>_config.json`` (config + info) to ``out_dir``."""
        out = Path(out_dir)
        paths = [write_csv(t, out / f"{self.name}_{tname}.csv") for tname, t in self.tables.items()]
        meta = {"simulator": self.name, "config": self.config, "figures": self.figures, "info": self.info}
        paths.append(write_json(meta, out / f"{self.name}_config.json"))
        return paths


def config_dict(cfg: Any) -> dict[str, Any]:
    """A simulator config dataclass as a JSON-able dict."""
    return jsonable({f.name: getattr(cfg, f.name) for f in fields(cfg)})
