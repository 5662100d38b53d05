"""Flow-module latency and training memory of WT-Flow's mini U-Net on a GPU (paper Table IX).

Measures, for base channels NC in {512, 768} on a (1024, 16, 16) feature map
(WideResNet-50 layer 3 at 256^2, the paper's stated map size):

* inference latency of the flow module at batch 1 for K = 1 and K = 20 Euler
  steps (median of timed repeats with CUDA events, after warm-up), in fp32 and
  under bf16 autocast;
* peak GPU memory of one AdamW training step at batch 8 (bf16 autocast).

Usage: ``python -m benchmarks.gpu_latency [--nc 512 768] [--repeats 30] [--out FILE]``.
Needs CUDA; prints the figures next to the paper's and optionally writes them.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import sys

import torch

from wtflow import FlowModel, TrainConfig, count_parameters
from wtflow.checkpoint import write_text_atomic

PAPER = {  # Table IX: params, flow latency K=20, K=1, train/test VRAM
    512: ("0.34B", "170.3 ms", "6.4 ms", "7.9/2.9 GB"),
    768: ("0.76B", "330.5 ms", "6.7 ms", "15.2/6.8 GB"),
}


def _timed(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def measure(nc: int, repeats: int, channels: int = 1024, size: int = 16) -> dict:
    """Latency (ms) and memory (GiB) figures for one base-channel width ``nc``."""
    torch.manual_seed(0)
    model = FlowModel((channels, size, size), net="unet", net_kwargs={"base_channels": nc}, wt="layernorm").cuda()
    x = torch.relu(torch.randn(1, channels, size, size, device="cuda"))
    row = {"nc": nc, "params": count_parameters(model)}
    for precision in ("fp32", "bf16"):
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        for steps in (1, 20):

            def run(steps=steps, ctx=ctx):
                with ctx:
                    model.transport(x, steps=steps)

            row[f"{precision}_k{steps}_ms"] = _timed(run, repeats)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    opt = torch.optim.AdamW(model.parameters(), lr=TrainConfig().lr, weight_decay=TrainConfig().weight_decay)
    batch = torch.relu(torch.randn(8, channels, size, size, device="cuda"))
    model.train()
    for _ in range(2):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    row["train_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nc", type=int, nargs="+", default=[512, 768])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks.gpu_latency needs CUDA (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    lines = [
        f"command: python -m benchmarks.gpu_latency {' '.join(argv if argv is not None else sys.argv[1:])}",
        f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, python {platform.python_version()}",
        "input: one (1024, 16, 16) feature map, batch 1 for latency, batch 8 for the training step",
        "",
        "| NC | params | K=1 fp32 | K=1 bf16 | K=20 fp32 | K=20 bf16 | train peak (bf16, AdamW, batch 8) "
        "| paper: params, K=20, K=1, VRAM train/test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for nc in args.nc:
        r = measure(nc, args.repeats)
        torch.cuda.empty_cache()
        paper = PAPER.get(nc, ("-",) * 4)
        lines.append(
            f"| {nc} | {r['params'] / 1e9:.3f}B | {r['fp32_k1_ms']:.2f} ms | {r['bf16_k1_ms']:.2f} ms "
            f"| {r['fp32_k20_ms']:.1f} ms | {r['bf16_k20_ms']:.1f} ms | {r['train_peak_gib']:.1f} GiB "
            f"| {', '.join(paper)} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        write_text_atomic(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
