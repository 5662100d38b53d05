"""Speed and memory of the exact marginal field ``theory.marginal_velocity`` at scale (issue 3).

M queries x_t against an empirical source of K point masses in D dimensions, Gaussian target, one t:
u(x, t) = (x - E[X_0 | X_t = x]) / t with softmax responsibilities over all K training points.

* streamed evaluator: ``theory.marginal_velocity`` (chunks of queries x chunks of components with an
  online log-sum-exp), run in a fresh subprocess so that its peak memory can be read from
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (tracemalloc does not see torch's allocations);
* baseline: a Python loop over queries, each query vectorised over all K components with plain numpy,
  timed on the first ``--baseline-queries`` queries and scaled to M; both are checked to agree there.

Usage:
    python benchmarks/field_speed.py                      # M = 10 000, K = 100 000, D = 128, t = 0.5
    python benchmarks/field_speed.py --queries 2000 --components 20000 --no-save   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wtflow.checkpoint import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "field_speed.txt"
ROOT = Path(__file__).resolve().parents[1]


def make_data(n_queries: int, n_components: int, dim: int, t: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training points m_k ~ N(0, I) and queries drawn from the path, x = (1 - t) m_j + t z."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_components, dim))
    picks = rng.integers(0, n_components, n_queries)
    queries = (1 - t) * means[picks] + t * rng.standard_normal((n_queries, dim))
    return means, queries


def baseline_velocity(x: np.ndarray, t: float, means: np.ndarray) -> np.ndarray:
    """The straightforward evaluator: one query at a time, numpy over all components."""
    diff = x - (1 - t) * means
    logits = -(diff * diff).sum(1) / (2 * t * t)
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    mean_x0 = weights @ means
    return (x - mean_x0) / t


def max_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child(args: argparse.Namespace) -> None:
    """Run the streamed evaluator in this (fresh) process and report time and peak memory as JSON."""
    import torch

    import theory
    from wtflow.distributions import GaussianMixture, StandardGaussian

    if args.threads:
        torch.set_num_threads(args.threads)
    means, queries = make_data(args.queries, args.components, args.dim, args.t, args.seed)
    source = GaussianMixture.empirical(torch.from_numpy(means))
    target = StandardGaussian(args.dim)
    x = torch.from_numpy(queries)
    del means
    rss_before = max_rss_bytes()
    start = time.perf_counter()
    u = theory.marginal_velocity(x, args.t, source, target)
    wall = time.perf_counter() - start
    rss_after = max_rss_bytes()
    np.save(args.child_out, u[: args.baseline_queries].numpy())
    print(
        json.dumps(
            {
                "wall_s": wall,
                "rss_before": rss_before,
                "rss_peak": rss_after,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
        )
    )


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=10_000, help="M, number of query points")
    parser.add_argument("--components", type=int, default=100_000, help="K, number of point masses")
    parser.add_argument("--dim", type=int, default=128, help="D")
    parser.add_argument("--t", type=float, default=0.5, help="time t in (0, 1]")
    parser.add_argument("--baseline-queries", type=int, default=100, help="queries timed with the baseline")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for the streamed evaluator (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-save", action="store_true", help="print only, write no file")
    parser.add_argument("--output", default=str(RESULTS), help="where to save the printed report")
    parser.add_argument("--append", action="store_true", help="append to --output instead of replacing it")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    import torch

    command = "python " + " ".join([str(Path(sys.argv[0]).as_posix())] + sys.argv[1:])
    say(f"command: {command}")
    say(
        f"machine: {cpu_name()}, os.cpu_count() = {os.cpu_count()}, "
        f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}"
    )
    say(
        f"problem: M = {args.queries} queries, K = {args.components} point masses (empirical source), "
        f"D = {args.dim}, Gaussian target, t = {args.t}, float64"
    )
    say()

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "u.npy")
        cmd = [sys.executable, __file__, "--child", "--child-out", out]
        cmd += ["--queries", str(args.queries), "--components", str(args.components), "--dim", str(args.dim)]
        cmd += ["--t", str(args.t), "--baseline-queries", str(args.baseline_queries), "--seed", str(args.seed)]
        cmd += ["--threads", str(args.threads)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        result = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        report = json.loads(result.stdout.strip().splitlines()[-1])
        streamed_u = np.load(out)

    data_bytes = 8 * (args.components + args.queries) * args.dim
    mib = 1024.0**2
    say("streamed evaluator theory.marginal_velocity (fresh subprocess):")
    say(f"  wall time                 {report['wall_s']:.2f} s  ({report['threads']} torch threads)")
    pairs_per_s = args.queries * args.components / report["wall_s"]
    say(f"  throughput                {pairs_per_s / 1e6:.0f} M query-component pairs/s")
    say(
        f"  peak RSS of the process   {report['rss_peak'] / mib:.0f} MiB "
        f"(ru_maxrss; includes the Python/torch runtime and the float64 data, {data_bytes / mib:.0f} MiB)"
    )
    say(
        f"  peak RSS growth during the call  {(report['rss_peak'] - report['rss_before']) / mib:.0f} MiB "
        "(ru_maxrss after the call minus ru_maxrss before it)"
    )
    under = report["rss_peak"] < 1024**3
    say(f"  under 1 GiB               {'yes' if under else 'NO'}")
    say()

    means, queries = make_data(args.queries, args.components, args.dim, args.t, args.seed)
    n_base = min(args.baseline_queries, args.queries)
    baseline_velocity(queries[0], args.t, means)  # warm-up
    start = time.perf_counter()
    baseline_u = np.stack([baseline_velocity(queries[i], args.t, means) for i in range(n_base)])
    base_wall = time.perf_counter() - start
    per_query = base_wall / n_base
    scaled = per_query * args.queries
    say("baseline (Python loop over queries, numpy over all components per query):")
    say(f"  {n_base} queries            {base_wall:.2f} s  ({1e3 * per_query:.1f} ms per query)")
    say(f"  scaled to M = {args.queries}     {scaled:.0f} s")
    say()

    diff = np.abs(baseline_u - streamed_u)
    scale = np.abs(baseline_u).max()
    speedup = scaled / report["wall_s"]
    say(f"agreement on the {n_base} baseline queries: max |u_stream - u_baseline| = {diff.max():.2e}")
    say(f"  (max |u| = {scale:.2f})")
    say(f"speed-up over the baseline: {speedup:.0f}x  (target >= 50x: {'met' if speedup >= 50 else 'MISSED'})")

    if not args.no_save:
        output = Path(args.output)
        previous = output.read_text() + "\n" if args.append and output.exists() else ""
        write_text_atomic(output, previous + "\n".join(lines) + "\n")
        print(f"saved {output}")


if __name__ == "__main__":
    main()
