"""``python -m theory.claims [--quick] [--only ID ...] [--out-dir DIR]``: run the claim registry, print the
table and write CLAIMS.md and ERRATA.md (default: into theory/; ``--quick`` writes nothing unless --out-dir is given).
"""

from __future__ import annotations

import argparse
import sys
import time

from . import REGISTRY, THEORY_DIR, render_reports, run_claims, write_reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theory.claims", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="quick sizes (the ones the tests use)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these claim ids")
    parser.add_argument("--out-dir", default=None, help="where to write CLAIMS.md and ERRATA.md (default: theory/)")
    args = parser.parse_args(argv)
    known = {c.claim_id for c in REGISTRY}
    if args.only:
        unknown = sorted(set(args.only) - known)
        if unknown:
            parser.error(f"unknown claim id(s) {', '.join(unknown)}; expected from {', '.join(sorted(known))}")
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
    table = claims_md.split("## Rules, corrections and notes")[0]
    print(table)
    for claim in REGISTRY:
        if claim.claim_id in results:
            print(f"{claim.claim_id:>18}: {results[claim.claim_id].verdict_text}  ({seconds[claim.claim_id]:.1f} s)")
    print(f"\n{len(results)} checks at {size} size in {elapsed:.1f} s; skipped: {skipped or 'none'}")
    write_full = args.only is None and (not args.quick or args.out_dir is not None)
    if write_full:
        paths = write_reports(results, skipped, size, args.out_dir or THEORY_DIR)
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
