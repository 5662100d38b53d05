"""``FlowModel``: WT map + velocity network + target + loss, the unit that is trained, saved and reloaded.

Default objective (``loss="rfm"``, eq. 4 with Algorithm 1): x_0 = WT(x), x_1 ~ target,
t ~ U(T, 1), x_t = (1 - t) x_0 + t x_1, loss = mean ||v(x_t, t) - (x_1 - x_0)||^2
over all entries. Inference (Algorithm 1, "Sampling"): phi = ODE(WT(x), v) from
t0 = T to 1 with Euler (K steps) or an adaptive solver, through ``wtflow.solvers.solve``.

The same class carries the other objectives of ``wtflow.losses`` (``"forward-fm"`` for Flow
Mismatching, ``"contraction"`` for TCCM), so every detector's model is rebuilt from its config alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ._validation import as_event_shape, check_choice, check_finite
from .checkpoint import CheckpointError, dumps_config, load_checkpoint, save_checkpoint
from .distributions import TARGETS, Distribution, make_target
from .losses import LOSSES, FlowLoss, flow_matching_loss, make_loss
from .networks import make_velocity_net
from .solvers import ADAPTIVE_METHODS, FIXED_STEP_METHODS, ODESolution, solve
from .wt import WT_MAPS, make_wt_map

__all__ = ["FlowModel", "flow_matching_loss"]

MODEL_KIND = "flow-model"
SOLVERS = FIXED_STEP_METHODS + ADAPTIVE_METHODS


class FlowModel(nn.Module):
    """An rFM / WT-Flow model for samples of shape ``event_shape``.

    Args:
        event_shape: shape of one sample: ``2`` for a toy, ``512`` for a vector, ``(C, H, W)`` for a feature map.
        net: ``"mlp"``, ``"unet"`` or ``"tccm-mlp"``; ``net_kwargs`` go to its constructor (e.g.
            ``input_norm=True``, Table XI "std").
        wt: WT map ``"none"`` (rFM), ``"batchnorm"`` or ``"layernorm"`` (WT-Flow); ``wt_eps`` its eps.
        target: ``"gaussian"``, ``"sphere"`` or ``"point"`` (Table VIII); the noise source for "forward-fm".
        t_min: truncation T of Theorem 2: training times t ~ U(T, 1) and inference starts at T.
        loss: training objective, ``"rfm"`` (default), ``"forward-fm"`` or ``"contraction"`` (``wtflow.losses``).
    """

    def __init__(
        self,
        event_shape: int | Sequence[int],
        net: str = "mlp",
        net_kwargs: dict[str, Any] | None = None,
        wt: str = "none",
        wt_eps: float = 1e-5,
        target: str = "gaussian",
        t_min: float = 0.0,
        loss: str = "rfm",
    ):
        super().__init__()
        self.event_shape = as_event_shape(event_shape)
        check_choice("wt", wt, WT_MAPS)
        check_choice("target", target, TARGETS)
        check_choice("loss", loss, LOSSES)
        if not (0.0 <= t_min < 1.0):
            raise ValueError(f"t_min must lie in [0, 1), got {t_min!r}")
        self.wt_map = make_wt_map(wt, self.event_shape, eps=wt_eps)
        self.velocity = make_velocity_net(net, self.event_shape, **(net_kwargs or {}))
        self.target: Distribution = make_target(target, self.event_shape)
        self.objective: FlowLoss = make_loss(loss, self.target, t_min)
        self.config = {
            "event_shape": list(self.event_shape),
            "net": net,
            "net_kwargs": dict(self.velocity.config),
            "wt": wt,
            "wt_eps": float(wt_eps),
            "target": target,
            "t_min": float(t_min),
            "loss": loss,
        }
        self.config["net_kwargs"].pop("event_shape", None)

    @property
    def t_min(self) -> float:
        return self.config["t_min"]

    def forward(self, x_t: Tensor, t: float | Tensor) -> Tensor:
        """The learned velocity v_theta(x_t, t); (N, *event_shape) -> (N, *event_shape)."""
        return self.velocity(x_t, t)

    def _check_input(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, self.event_shape))}), got {tuple(x.shape)}")
        return check_finite("x", x)

    def map_data(self, x: Tensor) -> Tensor:
        """x_0 = WT(x) (Algorithm 1, step 2); BatchNorm uses batch statistics in training mode."""
        return self.wt_map(self._check_input(x))

    def loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Training loss of the data batch ``x`` (N, *event_shape): ``objective.loss(velocity, WT(x), generator)``.

        Randomness (target samples, times) comes from ``generator`` on its own device, so a run does not
        depend on the hardware. Only the shape is checked here: ``train`` checks the training set for NaN/inf.
        """
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, self.event_shape))}), got {tuple(x.shape)}")
        return self.objective.loss(self.velocity, self.wt_map(x), generator)

    @torch.no_grad()
    def transport(
        self,
        x: Tensor,
        steps: int = 1,
        solver: str = "euler",
        record: str = "none",
        batch_size: int | None = None,
    ) -> ODESolution:
        """Push data to phi: WT map in eval mode, then integrate along the objective's ``inference_times``.

        For "rfm" that is from t0 = T to 1 (phi = x_1-hat, Algorithm 1); for "forward-fm" from 1 back to T
        (data to noise). The "contraction" objective has no ODE and raises ``ValueError``.

        Args:
            x: (N, *event_shape) data.
            steps: Euler steps K (1 = one-step inference).
            solver: any ``wtflow.solvers.solve`` method: ``"euler"`` (default), ``"midpoint"``, ``"rk4"``,
                ``"adaptive"`` (torchdiffeq dopri5), ...
            record: ``"none"``, ``"trajectory"`` or ``"norms"`` (see ``wtflow.solvers``).
            batch_size: process in chunks of this many samples (None: all at once).

        Inputs are moved to the model's device; results come back on the device of ``x``.
        """
        check_choice("solver", solver, SOLVERS)
        times = self.objective.inference_times
        if times is None:
            raise ValueError(
                f"the {self.config['loss']!r} objective has no ODE to integrate; use the velocity directly "
                "(TCCM's endpoint is x + f(x, 1))"
            )
        was_training = self.training
        out_device = x.device
        model_device = next(self.parameters()).device
        self.eval()
        try:
            chunks = [x] if batch_size is None else list(torch.split(x, batch_size))
            sols = []
            for chunk in chunks:
                x_0 = self.map_data(chunk.to(model_device))
                sols.append(solve(self.velocity, x_0, solver, steps, t_start=times[0], t_end=times[1], record=record))
        finally:
            self.train(was_training)

        def gather(field: str, dim: int) -> Tensor | None:
            parts = [getattr(s, field) for s in sols]
            return None if parts[0] is None else torch.cat(parts, dim=dim).to(out_device)

        return ODESolution(
            x_end=gather("x_end", 0), times=sols[0].times, trajectory=gather("trajectory", 1), norms=gather("norms", 1)
        )

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Save configuration + weights atomically (loadable with ``FlowModel.load``, ``weights_only=True``)."""
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        payload = {"config": dumps_config(self.config), "state_dict": state, "extra": dumps_config(extra or {})}
        return save_checkpoint(path, MODEL_KIND, payload)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FlowModel:
        """Build an untrained model from a ``.config`` dict."""
        return cls(**config)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> FlowModel:
        """Load a model written by ``save``; the file is read with ``weights_only=True``."""
        payload = load_checkpoint(path, MODEL_KIND, map_location=map_location)
        try:
            model = cls.from_config(json.loads(payload["config"]))
            model.load_state_dict(payload["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{path} does not describe a valid FlowModel: {err}") from err
        return model
