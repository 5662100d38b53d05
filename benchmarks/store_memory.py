"""Memory and throughput of training from an on-disk feature store (``wtflow.store.FeatureStore``).

Prints two figures about the data path of ``wtflow.train``:

* the peak resident memory (RSS) of a process that trains one epoch on a memory-mapped store of
  ``--n`` maps of (``--channels``, ``--size``, ``--size``) float16 (default 2 000 x (1024, 32, 32),
  about 4 GB on disk) with batch ``--batch`` on the CPU (target: under 2 GiB);
* the epoch throughput (maps/s) from a store vs from an in-memory float32 tensor holding the same
  ``--small-n`` maps (target ratio >= 0.8), measured in one process, alternating the two sources.

A tiny velocity network (an MLP with ``--hidden`` units) keeps the run to a few minutes: the figures
are about reading data, not about the network. Each measurement runs in a fresh Python process so
that its peak RSS is its own. The store is written under ``--dir`` and deleted afterwards; free disk
is checked first.

Usage: ``python -m benchmarks.store_memory --dir /tmp [--n 2000] [--small-n 128] [--workers 0]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

GIB = 2**30


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="parent folder for the temporary store (needs ~4.3 GB free)")
    parser.add_argument("--n", type=int, default=2000, help="maps in the large store (default 2000)")
    parser.add_argument("--small-n", type=int, default=128, help="maps for the store-vs-tensor throughput (128)")
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=2, help="hidden units of the tiny MLP velocity net (2)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (0)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per source in the throughput comparison (2)")
    parser.add_argument("--phase", choices=["write", "memory", "throughput"], help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    return parser


def _shape(args) -> tuple[int, int, int]:
    return (args.channels, args.size, args.size)


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _model(args):
    from wtflow import FlowModel

    torch.manual_seed(0)
    return FlowModel(
        _shape(args), net="mlp", net_kwargs={"hidden": args.hidden, "depth": 1, "time_dim": 2}, wt="layernorm"
    )


def _config(args, epochs: int):
    from wtflow import TrainConfig

    return TrainConfig(
        epochs=epochs, batch_size=args.batch, lr=1e-4, device="cpu", progress=False, num_workers=args.workers, amp=False
    )


def _phase_write(args) -> dict:
    from wtflow.store import FeatureStore

    start = time.perf_counter()
    store = FeatureStore.create(args.store, args.n, _shape(args), dtype="float16", meta={"benchmark": "store_memory"})
    gen = torch.Generator().manual_seed(0)
    chunk = 25
    for first in range(0, args.n, chunk):
        k = min(chunk, args.n - first)
        store.write(first, torch.randn((k, *_shape(args)), generator=gen).abs_())
    store.finalize()
    size = (Path(args.store) / "features.npy").stat().st_size
    return {"seconds": time.perf_counter() - start, "bytes": size, "peak_rss": _peak_rss_bytes()}


def _phase_memory(args) -> dict:
    from wtflow import train
    from wtflow.store import FeatureStore

    store = FeatureStore.open(args.store)
    model = _model(args)
    before = _peak_rss_bytes()
    start = time.perf_counter()
    train(model, store, _config(args, epochs=1))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "maps_per_s": len(store) / seconds, "peak_rss": _peak_rss_bytes(), "rss_before": before}


def _phase_throughput(args) -> dict:
    from wtflow import train
    from wtflow.store import FeatureStore

    store = FeatureStore.open(args.store)
    tensor = store[torch.arange(len(store))]  # the same maps, in memory as float32
    timings: dict[str, list[float]] = {"tensor": [], "store": []}
    for _ in range(args.epochs):  # alternate, so both sources see the same machine load
        for name, data in (("tensor", tensor), ("store", store)):
            model = _model(args)
            start = time.perf_counter()
            train(model, data, _config(args, epochs=1))
            timings[name].append(time.perf_counter() - start)
    rates = {name: len(store) / min(times) for name, times in timings.items()}
    return {"maps_per_s": rates, "ratio": rates["store"] / rates["tensor"], "epochs_each": args.epochs}


def _run_phase(args, phase: str, store: Path, n: int) -> dict:
    argv = [sys.executable, "-m", "benchmarks.store_memory", "--phase", phase, "--store", str(store), "--dir", args.dir]
    for opt in ("channels", "size", "batch", "hidden", "workers", "epochs"):
        argv += [f"--{opt}", str(getattr(args, opt))]
    argv += ["--n", str(n)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"phase {phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.phase:
        result = {"write": _phase_write, "memory": _phase_memory, "throughput": _phase_throughput}[args.phase](args)
        print(json.dumps(result))
        return
    row_bytes = 2 * args.channels * args.size * args.size
    needed = (args.n + args.small_n) * row_bytes
    free = shutil.disk_usage(args.dir).free
    if free < 1.05 * needed:
        sys.exit(
            f"not enough free disk under {args.dir}: the stores need {needed / 1e9:.2f} GB, {free / 1e9:.2f} GB are "
            f"free; pass a smaller --n (each map takes {row_bytes / 1e6:.2f} MB) or another --dir"
        )
    workdir = Path(tempfile.mkdtemp(prefix="wtflow-store-bench-", dir=args.dir))
    shape = "x".join(map(str, _shape(args)))
    try:
        print(f"writing a float16 store of {args.n} maps of {shape} under {workdir} ...", flush=True)
        written = _run_phase(args, "write", workdir / "large", args.n)
        print(f"  {written['bytes'] / 1e9:.2f} GB in {written['seconds']:.0f} s", flush=True)
        memory = _run_phase(args, "memory", workdir / "large", args.n)
        print(
            f"peak RSS training 1 epoch on the store (batch {args.batch}, {args.workers} workers, CPU): "
            f"{memory['peak_rss'] / GIB:.2f} GiB (before training: {memory['rss_before'] / GIB:.2f} GiB; "
            f"target < 2 GiB); {memory['maps_per_s']:.1f} maps/s",
            flush=True,
        )
        _run_phase(args, "write", workdir / "small", args.small_n)
        speed = _run_phase(args, "throughput", workdir / "small", args.small_n)
        rates = speed["maps_per_s"]
        print(
            f"epoch throughput on {args.small_n} maps (best of {speed['epochs_each']} epochs each): store "
            f"{rates['store']:.1f} maps/s, in-memory tensor {rates['tensor']:.1f} maps/s, ratio {speed['ratio']:.2f} "
            "(target >= 0.8)"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
