"""Data-parallel training on 2 CPU processes (gloo) equals its single-process reference.

Noise arrangement: process r draws x_1 and t of step s in epoch e from (seed, r, e, s) and takes part r
of each global batch (wtflow.training.sampler). The reference below is one process that draws exactly
those per-part samples and minimises the global batch's mean loss (each part's mean loss weighted by its
share of the batch); "equal" means the same weights and losses up to float32 reduction order. For the
batchnorm WT map the reference normalises the whole global batch at once (SyncBatchNorm semantics).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wtflow.checkpoint import load_checkpoint
from wtflow.training import TRAIN_KIND
from wtflow.training.sampler import EpochBatches, step_generator
from wtflow.wt import IdentityWT

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402

WORLD = 2


def _reference(wt: str) -> tuple[dict, list[float]]:
    model, x = ddp_worker.fresh_model(wt), ddp_worker.data()
    cfg = ddp_worker.CONFIG
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=round(0.25 * cfg["epochs"]) or 1, gamma=0.1)
    ranks = [EpochBatches(len(x), cfg["batch_size"], cfg["seed"], r, WORLD) for r in range(WORLD)]
    losses = []
    model.train()
    for epoch in range(cfg["epochs"]):
        for step, parts in enumerate(zip(*(r.local_batches(epoch) for r in ranks), strict=True)):
            size = sum(len(p) for p in parts)
            x_0 = model.wt_map(x[torch.cat(parts)])  # the WT map sees the global batch
            wt_map, model.wt_map = model.wt_map, IdentityWT()
            loss = sum(
                model.loss(part, step_generator(cfg["seed"], r, epoch, step)) * len(part) / size
                for r, part in enumerate(torch.split(x_0, [len(p) for p in parts]))
            )
            model.wt_map = wt_map
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        sched.step()
    return model.state_dict(), losses


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}"]
    proc = subprocess.run(
        [*cmd, str(ROOT / "tests" / "ddp_worker.py"), str(out)], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("wt", ["layernorm", "batchnorm"])
def test_two_process_run_equals_the_single_process_reference(ddp_run, wt):
    ranks = [load_checkpoint(ddp_run / f"{wt}_rank{r}.pt", "ddp-test") for r in range(WORLD)]
    for name, value in ranks[0]["state"].items():  # the processes hold the same model...
        torch.testing.assert_close(ranks[1]["state"][name], value, rtol=0, atol=0, msg=name)
    reference, losses = _reference(wt)
    # ...which is the single-process model. Adam divides by the gradient's running RMS, so float32 rounding
    # in a near-zero gradient can move a weight by ~1e-6; a wrong batch or noise split moves weights by ~lr = 1e-2.
    for name, value in reference.items():
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-4, atol=2e-5, msg=name)
    torch.testing.assert_close(torch.tensor(ranks[0]["loss"]), torch.tensor(losses), rtol=1e-5, atol=1e-6)
    assert len(losses) == 2 * 3  # 22 samples, batch 8: batches of 8, 7, 7 split 4+4, 4+3, 4+3


def test_only_rank_0_writes_the_checkpoint(ddp_run):
    state = load_checkpoint(ddp_run / "layernorm" / "last.pt", TRAIN_KIND)
    assert state["world_size"] == WORLD and state["epoch"] == 2 and state["data"]["count"] == ddp_worker.N
    assert sorted(p.name for p in (ddp_run / "layernorm").iterdir()) == ["last.pt"]
