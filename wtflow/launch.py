"""Command-line training, data-parallel under torchrun: ``torchrun --nproc_per_node N -m wtflow.launch ...``.

Examples::

    torchrun --standalone --nproc_per_node 2 -m wtflow.launch --synthetic 64 --shape 8 --epochs 2
    torchrun --standalone --nproc_per_node 4 -m wtflow.launch --store feats/bottle --net unet \\
        --checkpoint-dir runs/bottle --save runs/bottle/model.pt

Without torchrun the same command trains in one process.
"""

from __future__ import annotations

import argparse
import os

import torch

from .model import FlowModel
from .store import FeatureStore
from .training import TrainConfig, train

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wtflow.launch",
        description="Train a FlowModel with wtflow.train, data-parallel when launched by torchrun.",
    )
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--store", help="a wtflow.store.FeatureStore directory to train on")
    data.add_argument("--synthetic", type=int, metavar="N", help="train on N seeded |Gaussian| samples (a smoke test)")
    parser.add_argument("--shape", type=int, nargs="+", default=[8], help="sample shape for --synthetic (default 8)")
    parser.add_argument("--net", default="mlp", help="velocity network: mlp or unet (default mlp)")
    parser.add_argument("--wt", default="layernorm", help="WT map: none, layernorm or batchnorm (default layernorm)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="global batch over all processes (default 8)")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers per process (default 0)")
    parser.add_argument("--checkpoint-dir", help="where rank 0 writes last.pt")
    parser.add_argument("--resume", help="continue from this last.pt")
    parser.add_argument("--save", help="rank 0 saves the trained model here (FlowModel.save)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``torchrun --nproc_per_node N -m wtflow.distributed ...`` (see ``--help``)."""
    args = _parser().parse_args(argv)
    if args.store:
        data = FeatureStore.open(args.store)
        shape = data.event_shape
    else:
        shape = tuple(args.shape)
        data = torch.randn((args.synthetic, *shape), generator=torch.Generator().manual_seed(args.seed)).abs()
    torch.manual_seed(args.seed)
    model = FlowModel(shape, net=args.net, wt=args.wt)
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        checkpoint_dir=args.checkpoint_dir,
        num_workers=args.workers,
        progress=int(os.environ.get("RANK", "0")) == 0,
    )
    result = train(model, data, cfg, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"epoch losses: {', '.join(f'{v:.5f}' for v in result.epoch_loss)}")
        if args.save:
            print(f"saved {model.save(args.save)}")


if __name__ == "__main__":
    main()
