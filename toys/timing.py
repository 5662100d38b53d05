"""Measure the toys' run times (cold cache) and the thread setting they use; prints the figures.

``python -m toys.timing [--full] [--warm] [--names ring mixture ...]``: simulate + plot each toy in one process
with an empty temporary model cache (cold: every model is trained), optionally a second pass on the filled cache.

``python -m toys.timing --threads``: training time per step of the toys' MLPs with 1 and 2 torch threads,
interleaved in the same run so that a busy machine affects both alike.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import torch

from wtflow.utils import ensure_writable_dir, save_figure, torch_threads

from . import CACHE_ENV, SIMULATORS, run_all


def time_simulators(names, quick: bool, warm: bool, out: str | None = None) -> list[tuple[str, str, float]]:
    """[(name, "cold" | "warm", seconds)] for simulate + plot of each toy with a fresh temporary cache; with
    ``out`` the cold pass also writes its figures and tables there (not timed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    previous = os.environ.get(CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="wtflow-cache-") as cache:
        os.environ[CACHE_ENV] = cache
        try:
            for label in ("cold", "warm") if warm else ("cold",):
                for name in names:
                    results = run_all([name], quick=quick, progress=False)
                    result, figs = results[name]
                    rows.append((name, label, result.info["wall_seconds"]))
                    if out is not None and label == "cold":
                        result.write(out)
                        for fig_name, fig in figs.items():
                            save_figure(fig, out, fig_name)
                    for fig in figs.values():
                        plt.close(fig)
        finally:
            if previous is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = previous
    return rows


def time_threads(repeats: int = 3) -> list[tuple[str, int, float]]:
    """[(model, threads, ms per full-batch training step)] for the toys' MLP sizes, best of ``repeats``."""
    from wtflow import FlowModel, TrainConfig, train

    cases = {
        "2-D MLP 64x3, n = 256": (2, 64, 256, 300),
        "D = 256 MLP 256x3, n = 256": (256, 256, 256, 40),
        "D = 1024 MLP 256x3, n = 256": (1024, 256, 256, 20),
    }
    best: dict[tuple[str, int], float] = {}
    for _ in range(repeats):
        for label, (dim, hidden, n, epochs) in cases.items():
            for threads in (1, 2):
                with torch_threads(threads):
                    model = FlowModel(dim, net_kwargs={"hidden": hidden, "depth": 3, "time_dim": 32})
                    data = torch.randn(n, dim)
                    cfg = TrainConfig(epochs=epochs, batch_size=n, lr=1e-3, device="cpu", progress=False, amp=False)
                    start = time.perf_counter()
                    train(model, data, cfg)
                    ms = (time.perf_counter() - start) / epochs * 1e3
                best[(label, threads)] = min(ms, best.get((label, threads), float("inf")))
    return [(label, threads, ms) for (label, threads), ms in best.items()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m toys.timing", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full scale instead of --quick")
    parser.add_argument("--warm", action="store_true", help="also time a second pass on the filled cache")
    parser.add_argument("--threads", action="store_true", help="compare 1 and 2 torch threads instead")
    parser.add_argument("--names", nargs="+", default=list(SIMULATORS), choices=SIMULATORS)
    parser.add_argument("--out", default=None, help="also write the cold pass's figures and tables here")
    args = parser.parse_args(argv)
    if args.out is not None:
        try:
            ensure_writable_dir(args.out, "--out")
        except OSError as err:
            parser.error(str(err))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, default torch threads {torch.get_num_threads()}")
    if args.threads:
        for label, threads, ms in time_threads():
            print(f"{label:32s} threads={threads}: {ms:8.2f} ms/step")
        return
    start = time.perf_counter()
    rows = time_simulators(args.names, quick=not args.full, warm=args.warm, out=args.out)
    for name, label, seconds in rows:
        print(f"{name:12s} {label:5s} {seconds:7.1f} s")
    total = {label: sum(s for _, lab, s in rows if lab == label) for label in ("cold", "warm")}
    print(f"total cold {total['cold']:.1f} s" + (f", warm {total['warm']:.1f} s" if args.warm else ""))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"scale: {'full' if args.full else 'quick'}; wall {time.perf_counter() - start:.1f} s; peak RSS {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
