"""The machinery behind ``python -m paper_figs``: figure specs, the per-figure context that writes outputs
atomically, isolated execution (a failing figure is reported, the others still run), process-parallel groups
and the MANIFEST.

A *figure entry* (``FigureSpec``) is one reproduced figure or table of the paper; its builder writes one or
more outputs (PNG + PDF figures, CSV tables, Markdown tables, JSON configs) through a ``Context`` and records
key numbers, a verdict (reproduced / reproduced with differences / not reproduced) and the differences from the
paper, derived from the numbers it computed.
"""

from __future__ import annotations

import datetime
import importlib
import json
import multiprocessing
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wtflow.utils import git_state

__all__ = [
    "DEFAULT_OUT",
    "REPRODUCED",
    "REPRODUCED_WITH_DIFFERENCES",
    "NOT_REPRODUCED",
    "Context",
    "FigureReport",
    "FigureSpec",
    "NotAvailable",
    "Output",
    "Settings",
    "run_figures",
]

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
REPO_ROOT = Path(__file__).resolve().parent.parent

REPRODUCED = "reproduced"
REPRODUCED_WITH_DIFFERENCES = "reproduced with differences"
NOT_REPRODUCED = "not reproduced"
VERDICTS = (REPRODUCED, REPRODUCED_WITH_DIFFERENCES, NOT_REPRODUCED)

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_NOT_AVAILABLE = "not available"


class NotAvailable(Exception):
    """Raised by a builder whose input does not exist yet (e.g. uncommitted benchmark results): reported in the
    MANIFEST, not counted as a failure."""


@dataclass(frozen=True)
class FigureSpec:
    """One reproduced figure or table of the paper.

    Attributes:
        name: id used by ``--only`` and as the MANIFEST section (e.g. ``"fig1_ring"``).
        title: one line describing the output.
        paper: the paper's figure / table / statement it reproduces (e.g. ``"Fig. 1"``).
        claim: the claim of the paper it supports or tests.
        builder: ``"module:function"``; the function takes a ``Context`` and writes the outputs.
        group: entries of one group run in one process, in registry order (they share in-memory caches).
        cost: rough relative cost at full scale (seconds on a 2-core CPU), used to schedule groups.
        library_command: the library command that computes the same numbers (``{quick}`` -> `` --quick``).
    """

    name: str
    title: str
    paper: str
    claim: str
    builder: str
    group: str
    cost: float
    library_command: str = ""

    def command(self, quick: bool) -> str:
        """The command that regenerates this entry alone."""
        return f"python -m paper_figs{' --quick' if quick else ''} --only {self.name}"

    def library(self, quick: bool) -> str:
        return self.library_command.format(quick=" --quick" if quick else "")


@dataclass
class Output:
    """One written file: ``path`` relative to the output folder, ``kind`` (e.g. ``"figure (PNG)"``) and ``what``."""

    path: str
    kind: str
    what: str


@dataclass
class FigureReport:
    """What building one entry produced (picklable, JSON-able)."""

    name: str
    status: str = STATUS_OK
    verdict: str = ""
    outputs: list[Output] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    scale: str = ""
    generated: str = ""

    def set_verdict(self, verdict: str) -> None:
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        self.verdict = verdict


@dataclass(frozen=True)
class Settings:
    """Run-wide settings: output folder, scale, base seed, whether benchmarks are re-run, parallel jobs."""

    out: Path
    quick: bool = False
    seed: int = 0
    rerun_bench: bool = False
    jobs: int = 1

    @property
    def scale(self) -> str:
        return "quick" if self.quick else "full"


class Context:
    """What a builder gets: the settings and atomic writers that record every output in the report."""

    def __init__(self, spec: FigureSpec, settings: Settings, report: FigureReport):
        self.spec = spec
        self.settings = settings
        self.report = report

    @property
    def out(self) -> Path:
        return self.settings.out

    @property
    def quick(self) -> bool:
        return self.settings.quick

    @property
    def seed(self) -> int:
        return self.settings.seed

    def _add(self, path: Path, kind: str, what: str) -> None:
        self.report.outputs.append(Output(path.relative_to(self.out).as_posix(), kind, what))

    def save_figure(self, fig, stem: str, what: str) -> None:
        """Write ``fig`` as ``<stem>.png`` and ``<stem>.pdf`` (atomic) and close it."""
        import matplotlib.pyplot as plt

        from wtflow.utils import figure_style, save_figure

        with figure_style():  # the style's savefig settings (200 dpi, tight bounding box) apply to every figure
            paths = save_figure(fig, self.out, stem)
        for path in paths:
            self._add(path, f"figure ({path.suffix[1:].upper()})", what)
        plt.close(fig)

    def save_table(self, table: dict, stem: str, what: str) -> None:
        """Write a tidy table (column -> 1-D array) as ``<stem>.csv`` (atomic)."""
        from wtflow.utils import write_csv

        self._add(write_csv(table, self.out / f"{stem}.csv"), "table (CSV)", what)

    def save_text(self, text: str, filename: str, kind: str, what: str) -> None:
        """Write text (Markdown, JSON...) atomically."""
        from wtflow.utils import write_text_atomic

        self._add(write_text_atomic(self.out / filename, text), kind, what)

    def save_json(self, obj: Any, filename: str, what: str) -> None:
        from wtflow.utils import jsonable

        self.save_text(json.dumps(jsonable(obj), indent=2) + "\n", filename, "config (JSON)", what)

    def number(self, line: str) -> None:
        self.report.numbers.append(line)

    def differs(self, line: str) -> None:
        self.report.differs.append(line)

    def note(self, line: str) -> None:
        self.report.notes.append(line)

    def verdict(self, verdict: str) -> None:
        self.report.set_verdict(verdict)


def _resolve(builder: str) -> Callable[[Context], None]:
    module, _, func = builder.partition(":")
    return getattr(importlib.import_module(module), func)


def _log(message: str) -> None:
    print(f"[paper_figs] {message}", flush=True)


def run_figure(spec: FigureSpec, settings: Settings) -> FigureReport:
    """Build one entry; any exception is caught and recorded (status ``failed``) so the others still run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = FigureReport(spec.name, scale=settings.scale)
    start = time.perf_counter()
    _log(f"{spec.name}: start ({spec.paper})")
    try:
        settings.out.mkdir(parents=True, exist_ok=True)
        _resolve(spec.builder)(Context(spec, settings, report))
        if not report.verdict:
            raise RuntimeError(f"builder {spec.builder} set no verdict")
    except NotAvailable as err:
        report.status = STATUS_NOT_AVAILABLE
        report.notes.append(str(err))
    except Exception as err:  # noqa: BLE001 - one figure's failure must not stop the others
        report.status = STATUS_FAILED
        report.error = f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
    finally:
        plt.close("all")
    report.seconds = time.perf_counter() - start
    report.generated = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    line = f"{spec.name}: {report.status} in {report.seconds:.1f} s"
    if report.status == STATUS_OK:
        line += f" - {report.verdict}; {len(report.outputs)} files"
    elif report.status == STATUS_FAILED:
        line += f" - {report.error.splitlines()[0]}"
    else:
        line += f" - {report.notes[-1]}"
    _log(line)
    for number in report.numbers[:4] if report.status == STATUS_OK else []:
        print(f"             {number}", flush=True)
    return report


def run_group(
    specs: Sequence[FigureSpec], settings: Settings, on_done: Callable[[FigureReport], None] | None = None
) -> list[FigureReport]:
    """Build the entries of one group in order, in this process (one torch thread: toys and claims use one
    thread anyway, and groups run side by side); ``on_done`` sees each report as soon as it exists."""
    from wtflow.utils import torch_threads

    reports = []
    with torch_threads(1):
        for spec in specs:
            reports.append(run_figure(spec, settings))
            if on_done is not None:
                on_done(reports[-1])
    return reports


def _groups(specs: Sequence[FigureSpec]) -> list[list[FigureSpec]]:
    groups: dict[str, list[FigureSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.group, []).append(spec)
    # Longest first keeps two workers balanced.
    return sorted(groups.values(), key=lambda g: -sum(s.cost for s in g))


def run_figures(
    specs: Sequence[FigureSpec], settings: Settings, on_done: Callable[[FigureReport], None] | None = None
) -> list[FigureReport]:
    """Build ``specs`` (grouped; ``settings.jobs`` worker processes, 1 = in this process) and return the reports
    in registry order; ``on_done(report)`` is called as each entry (in parallel: each group) finishes."""
    order = {spec.name: i for i, spec in enumerate(specs)}
    groups = _groups(specs)
    reports: list[FigureReport] = []
    if settings.jobs <= 1 or len(groups) <= 1:
        for group in groups:
            reports += run_group(group, settings, on_done)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(settings.jobs, len(groups)), mp_context=ctx) as pool:
            futures = {pool.submit(run_group, group, settings): group for group in groups}
            for future in as_completed(futures):
                try:
                    done = future.result()
                    reports += done
                    for report in done if on_done is not None else []:
                        on_done(report)
                except Exception as err:  # noqa: BLE001 - a crashed worker fails its group only
                    for spec in futures[future]:
                        reports.append(
                            FigureReport(
                                spec.name,
                                status=STATUS_FAILED,
                                error=f"worker process failed: {type(err).__name__}: {err}",
                                scale=settings.scale,
                            )
                        )
                        _log(f"{spec.name}: failed - worker process failed: {err}")
    return sorted(reports, key=lambda r: order[r.name])


# --------------------------------------------------------------------------------------------------
# MANIFEST
# --------------------------------------------------------------------------------------------------


def report_from_json(obj: dict) -> FigureReport:
    outputs = [Output(**o) for o in obj.get("outputs", [])]
    return FigureReport(**{**obj, "outputs": outputs})


def merge_previous(out: Path, reports: list[FigureReport], registry: Sequence[FigureSpec]) -> list[FigureReport]:
    """Keep entries of an earlier run in ``out`` (manifest.json) that this run did not rebuild (``--only``)."""
    path = out / "manifest.json"
    if not path.exists():
        return reports
    try:
        previous = {e["name"]: report_from_json(e) for e in json.loads(path.read_text())["entries"]}
    except (OSError, ValueError, KeyError, TypeError):
        return reports
    built = {r.name for r in reports}
    merged = {r.name: r for r in reports}
    for name, report in previous.items():
        if name not in built and any(s.name == name for s in registry):
            merged[name] = report
    order = {s.name: i for i, s in enumerate(registry)}
    return sorted(merged.values(), key=lambda r: order[r.name])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_manifest(
    reports: Sequence[FigureReport], registry: Sequence[FigureSpec], settings: Settings, wall_s: float, argv: str
) -> str:
    """MANIFEST.md: every output mapped to the paper's figure/table, the claim, the command and the differences."""
    specs = {s.name: s for s in registry}
    failed = [r.name for r in reports if r.status == STATUS_FAILED]
    missing = [r.name for r in reports if r.status == STATUS_NOT_AVAILABLE]
    scales = sorted({r.scale for r in reports})
    lines = [
        "# paper_figs MANIFEST",
        "",
        f"Generated by `{argv}` on {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"scale: {', '.join(scales)} (this run: {settings.scale}), base seed {settings.seed}, git {git_state()}, "
        f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()} with "
        f"{os.cpu_count()} CPU(s); this run took {wall_s:.1f} s with {settings.jobs} worker process(es).",
        "",
        f"Entries: {len(reports)}; failed: {', '.join(failed) or 'none'}; "
        f"not available: {', '.join(missing) or 'none'}.",
        "",
        "## Entries",
        "",
        "| Entry | Paper | Claim it supports | Status | Verdict | Seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in reports:
        s = specs[r.name]
        lines.append(
            f"| [{r.name}](#{r.name.replace('_', '-')}) | {_cell(s.paper)} | {_cell(s.claim)} | {r.status} | "
            f"{r.verdict or '-'} | {r.seconds:.1f} |"
        )
    lines += [
        "",
        "## Outputs",
        "",
        "| File | Paper | Entry | Kind | What |",
        "|---|---|---|---|---|",
    ]
    for r in reports:
        s = specs[r.name]
        for o in r.outputs:
            lines.append(f"| `{o.path}` | {_cell(s.paper)} | {r.name} | {o.kind} | {_cell(o.what)} |")
    lines.append("")
    for r in reports:
        s = specs[r.name]
        lines += [
            f"## {r.name}",
            "",
            f"**{s.title}**",
            "",
            f"- Paper: {s.paper}",
            f"- Claim: {s.claim}",
            f"- Command: `{s.command(r.scale == 'quick')}`"
            + (f" (the numbers alone: `{s.library(r.scale == 'quick')}`)" if s.library_command else ""),
            f"- Status: {r.status}; scale {r.scale or '-'}; built {r.generated or '-'} in {r.seconds:.1f} s",
            f"- Verdict: {r.verdict or '-'}",
        ]
        if r.outputs:
            lines.append("- Outputs: " + ", ".join(f"`{o.path}`" for o in r.outputs))
        if r.numbers:
            lines += ["", "Measured:", ""] + [f"- {n}" for n in r.numbers]
        if r.differs:
            lines += ["", "Differs from the paper:", ""] + [f"- {d}" for d in r.differs]
        elif r.status == STATUS_OK:
            lines += ["", "Differs from the paper: no difference found in the numbers above."]
        if r.notes:
            lines += ["", "Notes:", ""] + [f"- {n}" for n in r.notes]
        if r.error:
            lines += ["", "Error:", "", "```", r.error.rstrip(), "```"]
        lines.append("")
    return "\n".join(lines)


def write_manifest(
    reports: Sequence[FigureReport], registry: Sequence[FigureSpec], settings: Settings, wall_s: float, argv: str
) -> tuple[Path, Path]:
    """Write MANIFEST.md and manifest.json (atomic) into ``settings.out``."""
    from wtflow.utils import write_text_atomic

    md = write_text_atomic(settings.out / "MANIFEST.md", render_manifest(reports, registry, settings, wall_s, argv))
    payload = {
        "argv": argv,
        "scale": settings.scale,
        "seed": settings.seed,
        "wall_s": wall_s,
        "git": git_state(),
        "python": sys.version.split()[0],
        "entries": [asdict(r) for r in reports],
    }
    js = write_text_atomic(settings.out / "manifest.json", json.dumps(payload, indent=2) + "\n")
    return md, js
