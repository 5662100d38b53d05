"""Tables and figures of an image run: ``summary.csv`` / ``summary.md`` and the per-category pictures."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .evaluate import EXAMPLE_NAMES, load_examples
from .runfolder import RunFolder

__all__ = ["SUMMARY_COLUMNS", "category_figures", "summarise", "write_summary"]

METRICS = ("image_auroc", "pixel_auroc", "aupro", "image_f1_max", "pixel_f1_max")
SUMMARY_COLUMNS = (
    "category",
    "method",
    *METRICS,
    *(f"{m}_seed_std" for m in ("image_auroc", "pixel_auroc", "aupro")),
    *(f"{m}_last" for m in ("image_auroc", "pixel_auroc", "aupro")),
    "n_seeds",
)


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (category, method): the mean over seeds of each cell's reported value, the std over seeds,
    and the mean of the plain last-epoch values."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["category"], row["method"]), []).append(row)
    out = []
    for (category, method), cells in groups.items():
        summary: dict[str, Any] = {"category": category, "method": method, "n_seeds": len(cells)}
        for metric in METRICS:
            values = [c[metric] for c in cells if c.get(metric) is not None]
            summary[metric] = statistics.fmean(values) if values else None
            if metric in ("image_auroc", "pixel_auroc", "aupro"):
                summary[f"{metric}_seed_std"] = statistics.pstdev(values) if len(values) > 1 else 0.0
                last = [c[f"{metric}_last"] for c in cells if c.get(f"{metric}_last") is not None]
                summary[f"{metric}_last"] = statistics.fmean(last) if last else None
        out.append(summary)
    return out


def write_summary(folder: RunFolder, cfg, categories: Sequence[str], specs) -> Path:
    """Write ``summary.csv`` (every finished cell, averaged over seeds) and ``summary.md`` (with the mean over
    categories per method); returns the CSV path."""
    from wtflow.checkpoint import write_text_atomic

    methods = [s.name for s in specs]
    rows = summarise(folder.results(categories, methods, cfg.seeds))
    order = {m: i for i, m in enumerate(methods)}
    rows.sort(key=lambda r: (list(categories).index(r["category"]), order[r["method"]]))
    path = folder.write_table(folder.root / "summary.csv", rows, SUMMARY_COLUMNS)
    write_text_atomic(folder.root / "summary.md", _markdown(rows, methods, cfg))
    return path


def _markdown(rows: list[dict], methods: Sequence[str], cfg) -> str:
    lines = [
        f"# {cfg.dataset}: {len({r['category'] for r in rows})} categories, seeds {', '.join(map(str, cfg.seeds))}",
        "",
        f"Profile `{cfg.profile}`: backbone {cfg.backbone} ({cfg.layer}), {cfg.resolution} px, NC {cfg.nc}, "
        f"{cfg.epochs} epochs, K = {cfg.steps_det} (image) / {cfg.steps_loc} (pixel); values are the mean over "
        f"the last {cfg.eval_last} evaluations, then over seeds.",
        "",
        "## Mean over categories",
        "",
        "| method | image AUROC | pixel AUROC | AUPRO@" + f"{cfg.fpr_limit:g}" + " | categories |",
        "|---|---|---|---|---|",
    ]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        cells = [_mean_cell([r[m] for r in mine]) for m in ("image_auroc", "pixel_auroc", "aupro")]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {len(mine)} |")
    lines += [
        "",
        "## Per category",
        "",
        "| category | method | image AUROC | pixel AUROC | AUPRO |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [_fmt(r[m], r.get(f"{m}_seed_std")) for m in ("image_auroc", "pixel_auroc", "aupro")]
        lines.append(f"| {r['category']} | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_cell(values: list) -> str:
    values = [v for v in values if v is not None]
    return f"{statistics.fmean(values):.3f}" if values else "–"


def _fmt(value, std) -> str:
    if value is None:
        return "–"
    return f"{value:.3f} ± {std:.3f}" if std else f"{value:.3f}"


def category_figures(folder: RunFolder, cfg, data, specs) -> list[Path]:
    """``<category>/figures/examples_<method>.png`` (image | ground truth | overlay, best / median / worst
    anomalous test image by image score) and ``bars.png`` (image AUROC, pixel AUROC, AUPRO per method)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .data import read_image

    out = folder.root / data.name / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    seed = cfg.seeds[0]
    for spec in specs:
        cell = folder.cell(data.name, spec.name, seed)
        if not (cell / "examples.pt").exists():
            continue
        examples = load_examples(cell)
        fig, axes = plt.subplots(3, 3, figsize=(7.5, 7.5), constrained_layout=True)
        for row, (name, index, amap) in enumerate(zip(EXAMPLE_NAMES, examples["indices"], examples["maps"])):
            sample = data.test_samples[int(index)]
            image = read_image(sample.image, cfg.resolution).permute(1, 2, 0).numpy()
            score = float(examples["image_scores"][int(index)])
            axes[row, 0].imshow(image)
            axes[row, 0].set_ylabel(f"{name}\nscore {score:.3g}")
            axes[row, 1].imshow(data.masks[int(index)].numpy(), cmap="gray", vmin=0, vmax=1)
            axes[row, 2].imshow(image)
            axes[row, 2].imshow(amap.float().numpy(), cmap="inferno", alpha=0.5)
            for ax in axes[row]:
                ax.set_xticks([])
                ax.set_yticks([])
        for ax, title in zip(axes[0], ("image", "ground truth", "anomaly map")):
            ax.set_title(title)
        fig.suptitle(f"{data.name}: {spec.name} (seed {seed})")
        path = out / f"examples_{spec.name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    written.append(_bar_chart(folder, cfg, data.name, specs, out, plt))
    return written


def _bar_chart(folder: RunFolder, cfg, category: str, specs, out: Path, plt) -> Path:
    import numpy as np

    rows = summarise(folder.results([category], [s.name for s in specs], cfg.seeds))
    metrics = ("image_auroc", "pixel_auroc", "aupro")
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * max(1, len(rows)), 3.6), constrained_layout=True)
    width = 0.8 / len(metrics)
    x = np.arange(len(rows))
    for k, metric in enumerate(metrics):
        values = [r[metric] if r[metric] is not None else 0.0 for r in rows]
        errors = [r.get(f"{metric}_seed_std") or 0.0 for r in rows]
        ax.bar(x + (k - 1) * width, values, width, yerr=errors, label=metric.replace("_", " "), capsize=2)
    ax.set_xticks(x, [r["method"] for r in rows], rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title(category)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    path = out / "bars.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
