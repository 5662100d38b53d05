"""The Table IX analogue: size, latency and memory of WT-Flow's mini U-Net for NC in {128, 256, 512, 768}.

For each base width NC on a (C, h, w) feature map:

* parameters of ``wtflow.MiniUNet`` (counted on the meta device, so NC = 768 costs nothing);
* flow latency at K = 1 and K = 20 Euler steps: ``FlowModel.transport`` (WT map, solver) plus the
  anomaly map and image score, batch ``--batch`` (1 as in Table IX); the median of ``--repeats`` timed runs
  after ``--warmup`` untimed ones, with CUDA events on CUDA and ``time.perf_counter`` on the CPU;
* the ratio of K = 1 scoring to one bare U-Net forward on the same batch (ideally <= 1.15: one step is one
  forward plus element-wise work) and of K = 20 to K = 1 (about 20);
* end-to-end images per second at batch 1: backbone (randomly initialised: weights do not change the
  speed, and nothing is downloaded) plus flow at K = 1 and K = 20;
* peak memory of one AdamW training step at batch ``--train-batch`` (8, the paper's training batch) and of
  K = 1 scoring, each measured in a fresh subprocess: ``torch.cuda.max_memory_allocated`` on CUDA, the
  process's peak resident set (``ru_maxrss``) on the CPU, printed with the RSS of the process before the
  model was built (torch and the data alone).

Defaults: on the CPU the map of the offline default backbone (EfficientNet-Lite0 ``blocks.4``) at 256^2,
(112, 16, 16); on CUDA WideResNet-50 ``layer3`` and the paper's stated map (1024, 16, 16)
(``--map-shape 1024 32 32`` for 512^2 inputs at stride 16, see ``benchmarks.images.features``).

Usage: ``python -m benchmarks.images.bench [--nc 128 256 512 768] [--device auto] [--out DIR]``; prints a
markdown table and writes ``bench.csv`` and ``bench.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from benchmarks.field_speed import cpu_name
from wtflow import FlowModel, TrainConfig, count_parameters
from wtflow.checkpoint import write_text_atomic
from wtflow.networks import make_velocity_net
from wtflow.scores import anomaly_map, image_score

__all__ = ["NC_VALUES", "default_setting", "flow_latency", "measure_memory", "run_bench", "timed_median"]

NC_VALUES = (128, 256, 512, 768)
CPU_DEFAULT = {"backbone": "efficientnet_lite0", "layer": "blocks.4", "resolution": 256}
CUDA_DEFAULT = {"backbone": "wide_resnet50_2", "layer": "layer3", "resolution": 256, "map_shape": (1024, 16, 16)}
PAPER = {512: "0.34B, K=20 170.3 ms, K=1 6.4 ms, FPS 5.7/77.5", 768: "0.76B, K=20 330.5 ms, K=1 6.7 ms, FPS 3.0/75.6"}


def default_setting(device: torch.device) -> dict:
    """Backbone, stage and resolution of the benchmark's default on ``device``."""
    return dict(CUDA_DEFAULT if device.type == "cuda" else CPU_DEFAULT)


def timed_median(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in milliseconds after ``warmup`` untimed calls (CUDA events on CUDA)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - begin))
    return statistics.median(times)


def _flow_model(nc: int, map_shape: Sequence[int], device: torch.device) -> FlowModel:
    torch.manual_seed(0)
    return FlowModel(tuple(map_shape), net="unet", net_kwargs={"base_channels": nc}, wt="layernorm").to(device).eval()


def _score(model: FlowModel, x: torch.Tensor, steps: int) -> torch.Tensor:
    phi = model.transport(x, steps=steps).x_end
    return image_score(anomaly_map(phi))


def count_unet_parameters(nc: int, map_shape: Sequence[int]) -> int:
    """Parameters of the mini U-Net of width ``nc`` for maps of ``map_shape``, built on the meta device."""
    with torch.device("meta"):
        return count_parameters(make_velocity_net("unet", tuple(map_shape), base_channels=nc))


@torch.no_grad()
def flow_latency(
    model: FlowModel, x: torch.Tensor, device: torch.device, repeats: int, warmup: int, steps: Sequence[int] = (1, 20)
) -> dict:
    """Median milliseconds of one bare U-Net forward and of K-step scoring on batch ``x``, and their ratios."""
    t = torch.full((x.shape[0],), model.t_min, device=device)
    x_0 = model.map_data(x)
    row = {"bare_ms": timed_median(lambda: model.velocity(x_0, t), device, repeats, warmup)}
    for k in steps:
        # K = 20 costs about 20 forwards: fewer repeats keep the run short without changing the median much.
        reps = repeats if k == 1 else max(3, repeats // 4)
        row[f"k{k}_ms"] = timed_median(lambda k=k: _score(model, x, k), device, reps, min(warmup, 2))
    row["k1_over_bare"] = row["k1_ms"] / row["bare_ms"]
    if 20 in steps:
        row["k20_over_k1"] = row["k20_ms"] / row["k1_ms"]
    return row


def _child(kind: str, nc: int, map_shape: Sequence[int], device: torch.device, batch: int) -> dict:
    """Run in a fresh process: one training step (kind "train") or K = 1 scoring ("test"); peak memory."""
    torch.manual_seed(0)
    x = torch.relu(torch.randn(batch, *map_shape)).to(device)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = _flow_model(nc, map_shape, device)
    if kind == "train":
        model.train()
        config = TrainConfig()
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        for _ in range(2):  # the second step has AdamW's moments allocated
            loss = model.loss(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    else:
        with torch.no_grad():
            _score(model, x, 1)
    out = {"rss_before_gib": before / 2**30, "rss_peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        out["cuda_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def measure_memory(kind: str, nc: int, map_shape: Sequence[int], device: torch.device, batch: int) -> dict:
    """Peak memory of ``_child(kind, ...)`` in a fresh Python process (so earlier allocations do not count)."""
    cmd = [sys.executable, "-m", "benchmarks.images.bench", "--child", kind, "--nc", str(nc), "--device", str(device)]
    cmd += ["--map-shape", *map(str, map_shape), "--batch", str(batch)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _end_to_end(extractor, model: FlowModel, resolution: int, device, repeats: int, warmup: int) -> dict:
    image = torch.rand(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    out = {"backbone_ms": timed_median(lambda: extractor.extract(image), device, repeats, warmup)}
    for k in (1, 20):
        reps = repeats if k == 1 else max(3, repeats // 4)
        ms = timed_median(lambda k=k: _score(model, extractor.extract(image, to_cpu=False), k), device, reps, 1)
        out[f"fps_k{k}"] = 1e3 / ms
    return out


def run_bench(
    nc_values: Sequence[int] = NC_VALUES,
    map_shape: Sequence[int] | None = None,
    device: str = "auto",
    backbone: str | None = None,
    layer: str | None = None,
    resolution: int | None = None,
    batch: int = 1,
    train_batch: int = 8,
    repeats: int = 10,
    warmup: int = 2,
    memory: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """One row of figures per NC (see the module docstring); ``map_shape`` None: the backbone's map."""
    from benchmarks.images.features import FeatureExtractor

    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    setting = default_setting(dev)
    backbone = backbone or setting["backbone"]
    layer = layer or (setting["layer"] if backbone == setting["backbone"] else None)
    resolution = resolution or setting["resolution"]
    extractor = FeatureExtractor(backbone, layer=layer, pretrained=False, device=dev)
    backbone_shape = extractor.event_shape(resolution)
    map_shape = tuple(map_shape or setting.get("map_shape") or backbone_shape)
    rows = []
    for nc in nc_values:
        row = {"nc": nc, "map_shape": "x".join(map(str, map_shape)), "device": dev.type, "batch": batch}
        wall, cpu = time.perf_counter(), time.process_time()
        row["params"] = count_unet_parameters(nc, map_shape)
        model = _flow_model(nc, map_shape, dev)
        x = torch.relu(torch.randn(batch, *map_shape, generator=torch.Generator().manual_seed(1))).to(dev)
        row.update(flow_latency(model, x, dev, repeats, warmup))
        if tuple(map_shape) == tuple(backbone_shape):
            row.update(_end_to_end(extractor, model, resolution, dev, repeats, warmup))
        # Process CPU time over wall time of the timed work: about the thread count when the machine is
        # otherwise idle, lower when other processes compete for the cores (then the latencies are inflated).
        row["cpu_share"] = (time.process_time() - cpu) / (time.perf_counter() - wall)
        del model
        if memory:
            for kind, b in (("train", train_batch), ("test", batch)):
                mem = measure_memory(kind, nc, map_shape, dev, b)
                row[f"{kind}_peak_gib"] = mem.get("cuda_peak_gib", mem["rss_peak_gib"])
                row[f"{kind}_rss_before_gib"] = mem["rss_before_gib"]
        rows.append(row)
        if progress:
            progress(format_row(row))
    return rows


COLUMNS = [
    ("nc", "NC", "{}"),
    ("params", "params", "{:.4g}"),
    ("bare_ms", "U-Net fwd ms", "{:.2f}"),
    ("k1_ms", "K=1 ms", "{:.2f}"),
    ("k20_ms", "K=20 ms", "{:.1f}"),
    ("k1_over_bare", "K=1/fwd", "{:.3f}"),
    ("k20_over_k1", "K=20/K=1", "{:.2f}"),
    ("backbone_ms", "backbone ms", "{:.2f}"),
    ("fps_k1", "img/s K=1", "{:.2f}"),
    ("fps_k20", "img/s K=20", "{:.2f}"),
    ("train_peak_gib", "train peak GiB", "{:.2f}"),
    ("test_peak_gib", "test peak GiB", "{:.2f}"),
    ("train_rss_before_gib", "RSS before model GiB", "{:.2f}"),
    ("cpu_share", "CPU time / wall", "{:.2f}"),
]


def format_row(row: dict) -> str:
    """One markdown table row of ``row`` in the order of ``COLUMNS`` ("-" for figures not measured)."""
    cells = [fmt.format(row[key]) if key in row else "-" for key, _, fmt in COLUMNS]
    return "| " + " | ".join(cells) + " |"


def format_table(rows: Sequence[dict]) -> str:
    """Markdown table of the rows."""
    header = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    return "\n".join([header, "|" + "---|" * len(COLUMNS), *map(format_row, rows)])


def _csv(rows: Sequence[dict]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _environment(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return (
        f"device: {device.type} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nc", type=int, nargs="+", default=list(NC_VALUES), help="U-Net base widths")
    parser.add_argument("--map-shape", type=int, nargs=3, metavar=("C", "H", "W"), default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backbone", default=None, help="for the end-to-end figure (random weights)")
    parser.add_argument("--layer", default=None)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--batch", type=int, default=1, help="latency and test batch (Table IX: 1)")
    parser.add_argument("--train-batch", type=int, default=8, help="batch of the training-step memory figure")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true", help="skip the two memory subprocesses")
    parser.add_argument("--out", default=None, help="directory for bench.csv and bench.md")
    parser.add_argument("--child", choices=("train", "test"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        device = torch.device(args.device)
        print(json.dumps(_child(args.child, args.nc[0], args.map_shape, device, args.batch)))
        return 0
    command = "python -m benchmarks.images.bench " + " ".join(sys.argv[1:] if argv is None else argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    head = [f"command: {command}", _environment(device), ""]
    print("\n".join(head + [format_table([])]), flush=True)
    rows = run_bench(
        args.nc,
        args.map_shape,
        str(device),
        args.backbone,
        args.layer,
        args.resolution,
        args.batch,
        args.train_batch,
        args.repeats,
        args.warmup,
        not args.no_memory,
        progress=lambda line: print(line, flush=True),
    )
    notes = [f"paper Table IX (RTX 3090, (1024, 16, 16)?): NC {nc}: {text}" for nc, text in PAPER.items()]
    report = "\n".join(head + [format_table(rows), "", *notes]) + "\n"
    if args.out:
        out = Path(args.out)
        write_text_atomic(out / "bench.md", report)
        write_text_atomic(out / "bench.csv", _csv(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
