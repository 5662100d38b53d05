"""``wtflow-detect``: fit a vector detector on your own feature vectors and score new ones, from the shell.

    wtflow-detect fit train.npy --detector WTFlow --out detector.pt --param ode_steps=1 --param seed=0
    wtflow-detect score detector.pt test.npy --out scores.csv

Inputs are 2-D arrays (n_samples, n_features): ``.npy``, ``.npz`` (the array named by ``--key``, default ``X``) or
``.csv`` (comma-separated numbers, no header). ``fit`` saves the fitted detector with ``BaseDetector.save``;
``score`` writes one CSV row per sample: ``index,score,label,confidence`` (``decision_function``, ``predict``,
``predict_confidence``; higher score = more anomalous, label 1 = anomaly).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import CheckpointError, write_text_atomic
from .detectors import RFM, TCCM, FlowMismatch, WTFlow, load_detector

__all__ = ["DETECTORS", "main", "read_vectors"]

DETECTORS = {"RFM": RFM, "WTFlow": WTFlow, "TCCM": TCCM, "FlowMismatch": FlowMismatch}


def read_vectors(path: str | Path, key: str = "X") -> np.ndarray:
    """A 2-D array from ``.npy``, ``.npz`` (array ``key``) or ``.csv``; ``ValueError`` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if key not in archive:
                    raise ValueError(f"{path} holds no array {key!r} (it has {', '.join(archive.files)}); use --key")
                return archive[key]
        if suffix == ".csv":
            return np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable {suffix} file ({err})") from err
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz or .csv")


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--param {pair!r}: expected name=value, e.g. --param ode_steps=20")
        try:
            params[name] = json.loads(text)
        except json.JSONDecodeError:
            params[name] = text  # a bare string such as preprocessing=whiten
    return params


def _fit(args: argparse.Namespace) -> str:
    params = _parse_params(args.param)
    if args.verbose:
        params["verbose"] = True  # RFM and WTFlow; the others refuse it by name
    detector = DETECTORS[args.detector](**params)
    detector.fit(read_vectors(args.train, args.key))
    path = detector.save(args.out)
    summary = f"{detector.n_features_in_} features, threshold_ {detector.threshold_:.6g}"
    return f"fitted {type(detector).__name__} ({summary}); saved {path}"


def _score(args: argparse.Namespace) -> str:
    detector = load_detector(args.detector_file)
    X = read_vectors(args.vectors, args.key)
    scores = detector.decision_function(X)
    labels, confidence = detector.predict(X, return_confidence=True)
    lines = ["index,score,label,confidence"]
    lines += [f"{i},{s:.9g},{label},{c:.6f}" for i, (s, label, c) in enumerate(zip(scores, labels, confidence))]
    text = "\n".join(lines) + "\n"
    if args.out is None:
        return text.rstrip("\n")
    write_text_atomic(args.out, text)
    return f"scored {len(scores)} vectors ({int(labels.sum())} flagged); wrote {args.out}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wtflow-detect", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit a detector on training vectors (normal samples) and save it")
    fit.add_argument("train", help="training vectors: .npy, .npz or .csv, shape (n_samples, n_features)")
    fit.add_argument("--detector", choices=sorted(DETECTORS), default="WTFlow")
    fit.add_argument("--out", required=True, help="where to save the fitted detector (.pt)")
    fit.add_argument("--param", action="append", default=[], help="constructor argument name=value (repeatable)")
    fit.add_argument("--key", default="X", help="array name inside a .npz (default X)")
    fit.add_argument("--verbose", action="store_true", help="progress bar while training")
    score = commands.add_parser("score", help="score vectors with a saved detector (CSV to --out or stdout)")
    score.add_argument("detector_file", help="a file written by `wtflow-detect fit` or BaseDetector.save")
    score.add_argument("vectors", help="vectors to score: .npy, .npz or .csv")
    score.add_argument("--out", default=None, help="CSV file to write (default: print)")
    score.add_argument("--key", default="X", help="array name inside a .npz (default X)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``wtflow-detect``; returns the exit status (2 for bad input, with a message on stderr)."""
    args = parse_args(argv)
    try:
        print(_fit(args) if args.command == "fit" else _score(args))
    except (ValueError, TypeError, CheckpointError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
