"""``python -m benchmarks.images run|bench``: the image pipeline's command line.

    python -m benchmarks.images run --dataset mvtec --root DIR --categories A B \\
        --methods wtflow-ln rfm gaussian patchcore --out OUT

writes ``OUT/summary.csv`` (one row per category and method, mean over seeds) and the run folder described in
``benchmarks.images.runfolder``. Re-running the same command resumes. ``--dry-run`` prints the resolved
configuration and exits. ``bench`` is the Table IX analogue (``benchmarks.images.bench``).
"""

from __future__ import annotations

import argparse
import json
import sys

from .config import PROFILES, resolve_config
from .methods import METHODS

DATASETS = ("mvtec", "visa", "loco", "mpdd", "mvtec3d", "folder")


def _run_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="extract features, train and evaluate every method per category")
    p.add_argument("--dataset", required=True, choices=DATASETS, help="layout of --root")
    p.add_argument("--root", required=True, help="dataset root (the folder holding the category folders)")
    p.add_argument("--categories", nargs="+", default=None, help="categories to run (default: all found)")
    p.add_argument(
        "--methods",
        nargs="+",
        default=["wtflow-ln", "rfm", "gaussian", "patchcore"],
        help=f"methods (default: %(default)s); known: {', '.join(METHODS)}",
    )
    p.add_argument("--out", required=True, help="run folder (created; a re-run with the same options resumes)")
    p.add_argument(
        "--profile",
        choices=["auto", *PROFILES],
        default="auto",
        help="size defaults: 'paper' (Sec. V-A, for a GPU) or 'cpu'; auto = paper when CUDA is available",
    )
    p.add_argument("--backbone", default=None, help="timm backbone name (profile default)")
    p.add_argument("--layer", default=None, help="backbone stage by module name, e.g. layer3 (profile default)")
    p.add_argument("--weights", default=None, help="local weights file for the backbone (no download)")
    p.add_argument(
        "--random-init",
        dest="pretrained",
        action="store_false",
        help="randomly initialised backbone (smoke tests only: its features mean nothing)",
    )
    for name, kind, text in (
        ("--resolution", int, "square input size in pixels"),
        ("--nc", int, "U-Net width NC"),
        ("--epochs", int, "training epochs"),
        ("--eval-every", int, "evaluate every N epochs"),
        ("--eval-last", int, "also evaluate each of the last N epochs; report their mean and std"),
    ):
        p.add_argument(name, type=kind, default=None, help=f"{text} (profile default)")
    p.add_argument("--pos-encoding", action="store_true", help="2-D positional encoding in the U-Net")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--lr-step-fraction", type=float, default=0.25, help="StepLR period / epochs (0.2: Suppl. XI-D)")
    p.add_argument("--lr-gamma", type=float, default=0.1)
    p.add_argument("--t-min", type=float, default=0.0, help="time truncation T of Theorem 2")
    p.add_argument("--steps-det", type=int, default=20, help="Euler steps K for the image score")
    p.add_argument("--steps-loc", type=int, default=1, help="Euler steps K for the anomaly maps")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast on CUDA")
    p.add_argument("--smoothing-sigma", type=float, default=None, help="Gaussian smoothing of the maps (e.g. 4)")
    p.add_argument("--top-fraction", type=float, default=0.03, help="image score: mean of this top fraction")
    p.add_argument("--fpr-limit", type=float, default=0.3, help="AUPRO integration limit")
    p.add_argument("--coreset-ratio", type=float, default=0.1, help="PatchCore-style coreset fraction")
    p.add_argument("--gaussian-channels", type=int, default=100, help="channels kept by the Gaussian baseline")
    p.add_argument("--max-train", type=int, default=None, help="at most this many training images per category")
    p.add_argument("--max-test", type=int, default=None, help="at most this many test images per category")
    p.add_argument("--feature-dir", default=None, help="where feature stores are kept (default OUT/features)")
    p.add_argument("--num-workers", type=int, default=0, help="data-loader workers for training")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.images", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    sub.add_parser(
        "bench", help="the Table IX analogue; options: python -m benchmarks.images bench --help", add_help=False
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    options = dict(vars(args))
    for key in ("command", "dry_run", "no_progress"):
        options.pop(key)
    if options["profile"] == "auto":
        import torch

        options["profile"] = "paper" if torch.cuda.is_available() else "cpu"
    try:
        cfg = resolve_config(**options)
    except ValueError as err:
        parser.error(str(err))
    if args.dry_run:
        print(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
        return 0
    from .run import run

    path = run(cfg, progress=not args.no_progress)
    print(f"summary: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
