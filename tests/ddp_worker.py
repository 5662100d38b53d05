"""Worker launched by tests/test_ddp.py under torchrun: trains the same tiny models as the test's reference.

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py OUT_DIR
Every rank writes its final weights and step losses to OUT_DIR/<wt>_rank<r>.pt; rank 0 alone writes
the training checkpoint OUT_DIR/<wt>/last.pt.
"""

import os
import sys

import torch

from wtflow import FlowModel, TrainConfig, train
from wtflow.checkpoint import save_checkpoint

N, SHAPE, SEED = 22, (6,), 4
CONFIG = dict(epochs=2, batch_size=8, lr=1e-2, weight_decay=0.0, seed=SEED, device="cpu", amp=False, progress=False)


def data() -> torch.Tensor:
    return torch.randn((N, *SHAPE), generator=torch.Generator().manual_seed(11)).abs() * 3 + 1


def fresh_model(wt: str) -> FlowModel:
    torch.manual_seed(0)
    return FlowModel(SHAPE, net="mlp", net_kwargs={"hidden": 16, "depth": 2}, wt=wt)


def main(out: str) -> None:
    rank = int(os.environ["RANK"])
    for wt in ("layernorm", "batchnorm"):
        model = fresh_model(wt)
        result = train(model, data(), TrainConfig(**CONFIG, checkpoint_dir=os.path.join(out, wt)))
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        save_checkpoint(
            os.path.join(out, f"{wt}_rank{rank}.pt"), "ddp-test", {"state": state, "loss": result.step_loss}
        )


if __name__ == "__main__":
    main(sys.argv[1])
