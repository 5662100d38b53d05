"""``python -m benchmarks.realset --out DIR``: build the real-image set (see ``benchmarks/realset/README.md``)."""

from __future__ import annotations

import argparse
import json

from .build import RealSetConfig, build_realset
from .photos import PHOTOS


def main(argv: list[str] | None = None) -> dict:
    defaults = RealSetConfig()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.realset", description=__doc__)
    parser.add_argument("--out", required=True, help="output folder (MVTec AD layout)")
    parser.add_argument("--categories", nargs="+", default=list(PHOTOS), choices=list(PHOTOS))
    parser.add_argument("--crop", type=int, default=defaults.crop, help="crop side in pixels (default %(default)s)")
    parser.add_argument("--n-train", type=int, default=defaults.n_train)
    parser.add_argument("--n-test-good", type=int, default=defaults.n_test_good)
    parser.add_argument("--n-test-bad", type=int, default=defaults.n_test_bad)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    config = RealSetConfig(
        categories=tuple(args.categories),
        crop=args.crop,
        n_train=args.n_train,
        n_test_good=args.n_test_good,
        n_test_bad=args.n_test_bad,
        seed=args.seed,
    )
    summary = build_realset(args.out, config, progress=not args.quiet)
    print(json.dumps({k: summary[k] for k in ("images", "per_category", "build_seconds_this_run")}))
    return summary


if __name__ == "__main__":
    main()
