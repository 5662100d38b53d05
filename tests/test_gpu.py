"""CUDA checks of the engine (skipped automatically without a GPU; see conftest.py)."""

import pytest
import torch

from wtflow import FlowModel, TrainConfig, train

pytestmark = pytest.mark.gpu


def _maps(n=16, shape=(128, 16, 16), seed=0):
    return torch.relu(torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed)))


def test_unet_wtflow_trains_on_cuda_with_bf16_and_reloads_on_cpu(tmp_path):
    torch.manual_seed(0)
    model = FlowModel((128, 16, 16), net="unet", net_kwargs={"base_channels": 64, "pos_encoding": True}, wt="layernorm")
    result = train(
        model,
        _maps(),
        TrainConfig(epochs=3, batch_size=8, device="cuda", amp=True, progress=False, checkpoint_dir=str(tmp_path)),
    )
    assert next(model.parameters()).device.type == "cuda"
    assert all(torch.isfinite(torch.tensor(result.epoch_loss)))
    x = _maps(4, seed=1)
    phi_gpu = model.transport(x.cuda(), steps=20).x_end.cpu()
    back = FlowModel.load(model.save(tmp_path / "m.pt"), map_location="cpu")
    phi_cpu = back.transport(x, steps=20).x_end
    torch.testing.assert_close(phi_gpu, phi_cpu, rtol=1e-3, atol=1e-3)


def test_cuda_run_draws_the_same_noise_as_a_cpu_run():
    # The trainer's generator lives on the CPU, so a CUDA run without autocast follows the CPU run closely:
    # float round-off differs, but different noise would move every weight by ~lr = 1e-3.
    weights = []
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = FlowModel(64, net="mlp", net_kwargs={"hidden": 64, "depth": 2}, wt="batchnorm")
        train(
            model,
            _maps(32, (64,)),
            TrainConfig(epochs=2, batch_size=8, lr=1e-3, device=device, amp=False, progress=False),
        )
        weights.append(torch.cat([p.detach().cpu().flatten() for p in model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=1e-4)
