"""``python -m theory.claims [--quick] [--only ID ...] [--out DIR | --update]``: run the claim registry, print the
table and write CLAIMS.md and ERRATA.md.

By default the two files go to a fresh run folder (``runs/claims/<size>-<UTC time>/``) and the committed
theory/CLAIMS.md and theory/ERRATA.md are left alone; ``--out DIR`` picks the folder, ``--update`` rewrites the
committed files (full size only, the whole registry).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import REGISTRY, THEORY_DIR, render_reports, run_claims, write_reports

DEFAULT_RUNS_DIR = THEORY_DIR.parent / "runs" / "claims"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m theory.claims", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="quick sizes (the ones the tests use)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these claim ids")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", default=None, help="folder for CLAIMS.md and ERRATA.md (default: a new run folder)")
    where.add_argument("--update", action="store_true", help="rewrite the committed theory/CLAIMS.md and ERRATA.md")
    args = parser.parse_args(argv)
    known = {c.claim_id for c in REGISTRY}
    if args.only:
        unknown = sorted(set(args.only) - known)
        if unknown:
            parser.error(f"unknown claim id(s) {', '.join(unknown)}; expected from {', '.join(sorted(known))}")
    if args.update and (args.quick or args.only):
        parser.error("--update rewrites the committed files: it needs the full size and the whole registry")
    return args


def output_dir(args: argparse.Namespace, size: str) -> Path:
    """Where the reports go: theory/ for --update, --out, else runs/claims/<size>-<UTC time>/."""
    if args.update:
        return THEORY_DIR
    if args.out:
        return Path(args.out)
    return DEFAULT_RUNS_DIR / f"{size}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    size = "quick" if args.quick else "full"
    start = time.perf_counter()
    results, skipped, seconds = {}, {}, {}
    for claim in REGISTRY:
        if args.only and claim.claim_id not in args.only:
            continue
        tick = time.perf_counter()
        done, skip = run_claims(size, ids={claim.claim_id})
        results |= done
        skipped |= skip
        seconds[claim.claim_id] = time.perf_counter() - tick
    elapsed = time.perf_counter() - start
    claims_md, _ = render_reports(results, skipped, size)
    print(claims_md.split("## Rules, corrections and notes")[0])
    for claim in REGISTRY:
        if claim.claim_id in results:
            print(f"{claim.claim_id:>18}: {results[claim.claim_id].verdict_text}  ({seconds[claim.claim_id]:.1f} s)")
    print(f"\n{len(results)} checks at {size} size in {elapsed:.1f} s; skipped: {skipped or 'none'}")
    out = output_dir(args, size)
    out.mkdir(parents=True, exist_ok=True)
    paths = write_reports(results, skipped, size, out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
