"""The run folder of an image run: what is written where, atomically, so a re-run resumes.

Layout of ``OUT``::

    config.json                     resolved RunConfig (a re-run with another configuration is refused)
    provenance.json                 git state, package versions, device, command line
    features/<key>/{train,test}/    feature stores (one per backbone, layer, resolution and dataset files)
    <category>/<method>/seed<k>/    checkpoints/last.pt, metrics.jsonl (one line per evaluation), result.json
    <category>/results.csv          one row per method and seed (rewritten whenever a cell finishes)
    <category>/figures/             best / median / worst test images per method, bar chart
    summary.csv, summary.md         one row per category and method, mean (and std) over seeds

A (category, method, seed) cell is finished when its ``result.json`` exists; a re-run skips it. An interrupted
cell continues from ``checkpoints/last.pt``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from wtflow.checkpoint import write_text_atomic

__all__ = ["RunFolder", "RunFolderError"]

RESULT_COLUMNS = ("category", "method", "seed", "image_auroc", "pixel_auroc", "aupro")


class RunFolderError(RuntimeError):
    """The output folder cannot be used: not writable, or it holds a run of another configuration."""


class RunFolder:
    """Paths and atomic writers of one run folder (see the module docstring)."""

    def __init__(self, out: str | os.PathLike):
        self.root = Path(out)

    def prepare(self, config: dict[str, Any]) -> None:
        """Create ``OUT``, check it is writable and that it holds no run of another configuration.

        Called before any compute, so a bad ``--out`` fails in a second, not after an hour.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-"):
                pass
        except OSError as err:
            raise RunFolderError(f"cannot write to the output folder {self.root}: {err}") from err
        path = self.root / "config.json"
        if path.exists():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise RunFolderError(f"{path} is unreadable ({err}); remove it or choose another --out") from err
            differing = _differing_keys(old, config, ignore=("categories", "methods", "seeds", "out"))
            if differing:
                raise RunFolderError(
                    f"{self.root} holds a run with another configuration (differing: {', '.join(differing)}); "
                    "choose another --out, or repeat the original options to resume it"
                )
        write_text_atomic(path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def cell(self, category: str, method: str, seed: int) -> Path:
        return self.root / category / method / f"seed{seed}"

    def finished(self, category: str, method: str, seed: int) -> dict[str, Any] | None:
        """The stored result of a finished cell, or None."""
        path = self.cell(category, method, seed) / "result.json"
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def write_result(self, category: str, method: str, seed: int, result: dict[str, Any]) -> Path:
        return write_text_atomic(
            self.cell(category, method, seed) / "result.json", json.dumps(result, indent=2, sort_keys=True) + "\n"
        )

    def append_metrics(self, category: str, method: str, seed: int, record: dict[str, Any]) -> None:
        """Append one evaluation to ``metrics.jsonl`` (one JSON line, flushed and fsynced)."""
        path = self.cell(category, method, seed) / "metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read_metrics(self, category: str, method: str, seed: int) -> list[dict[str, Any]]:
        """The evaluations recorded so far; a torn last line (killed mid-write) is dropped."""
        path = self.cell(category, method, seed) / "metrics.jsonl"
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                break
        return records

    def write_table(self, path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
        return write_text_atomic(path, table_to_csv(rows, columns))

    def results(self, categories: Iterable[str], methods: Iterable[str], seeds: Iterable[int]) -> list[dict]:
        """Rows of every finished cell among the given ones."""
        rows = []
        for category in categories:
            for method in methods:
                for seed in seeds:
                    result = self.finished(category, method, seed)
                    if result is not None:
                        rows.append(result)
        return rows


def table_to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _format(row.get(k)) for k in columns})
    return buffer.getvalue()


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6f}"
    return "" if value is None else value


def _differing_keys(old: dict[str, Any], new: dict[str, Any], ignore: Sequence[str]) -> list[str]:
    keys = (set(old) | set(new)) - set(ignore)
    return sorted(k for k in keys if old.get(k) != new.get(k))
