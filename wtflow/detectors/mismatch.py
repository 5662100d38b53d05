"""Flow Mismatching for feature vectors: velocity discrepancy along noise-to-test-point paths.

Training: forward (generative) flow matching on normal data -- noise eps ~ N(0, I) at t = 0,
data x at t = 1, x_t = (1 - t) eps + t x (``wtflow.paths.fm_path``), loss ||v(x_t, t) - (x - eps)||^2
(``wtflow.losses.ForwardFMLoss``) -- through ``wtflow.FlowModel(loss="forward-fm")`` and ``wtflow.train``.

Scoring a test point x: along the affine path from a noise probe eps to x, compare the learned
velocity v(x_t, t), which follows the normal generative dynamics, with the geometric velocity
x - eps toward the test point:

    m(x; eps, t) = ||v(x_t, t) - (x - eps)||^2 / d,      x_t = (1 - t) eps + t x.

For a normal x the learned field points (on average) at x, so m reduces to the irreducible
denoising term; for an anomalous x it points toward the normal data instead and m grows.

Choices (fixed, so scores are deterministic functions of x):

* probes: ``n_probes`` noise vectors eps_1..eps_M drawn once from a generator seeded by ``seed``
  and shared by every test point -- a sample's score does not depend on the rest of its batch,
  and comparing samples against the same probes removes the probe noise from their ranking;
* times: ``n_times`` equally spaced t in [t_low, t_high]; the mean over t pools the coarse
  (small t: where x sits relative to the whole normal distribution) and fine (large t: local
  denoising) scales;
* weighting: m is multiplied by (1 - t)^2 when ``time_weighting="denoise"``, which turns it into the
  squared error of the one-step estimate x_t + (1 - t) v(x_t, t) of x; ``"none"`` keeps the raw
  velocity mismatch, which is dominated by t close to 1 where 1 / (1 - t) amplifies the network's error;
* training defaults: raw inputs, 400 AdamW steps at a constant lr 3e-3, as for ``WTFlow``;
* aggregate: the median over the probes of the per-probe mean over t. The median is robust to
  the occasional probe whose path passes through a poorly learned region (a heavy tail of m),
  which a mean would let dominate the score.

The discrepancy and its aggregation are ``wtflow.scores.velocity_mismatch`` / ``aggregate_mismatch``,
shared with the map-level scorer ``wtflow.FeatureMapDetector.score_mismatch``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._validation import check_choice
from ..model import FlowModel
from ..scores import MISMATCH_WEIGHTINGS, aggregate_mismatch, mismatch_times, velocity_mismatch
from ._torch import SCORE_CHUNK, TorchFlowDetector
from .base import check_float, check_int

__all__ = ["PROBE_SEED_OFFSET", "FlowMismatch"]

TIME_WEIGHTINGS = MISMATCH_WEIGHTINGS

# Offset that separates the probe generator's stream from the training generator's (same seed).
PROBE_SEED_OFFSET = 7919


class FlowMismatch(TorchFlowDetector):
    """Flow-Mismatching detector (velocity discrepancy of a forward flow-matching model).

    Args:
        n_probes: noise probes eps per test point (M).
        n_times: times per probe path (J), equally spaced in [t_low, t_high].
        t_low, t_high: the time range probed, 0 <= t_low <= t_high < 1.
        time_weighting: ``"denoise"`` ((1 - t)^2 m) or ``"none"`` (see the module docstring).
        hidden, depth, time_dim: the velocity MLP (``wtflow.VelocityMLP``).
        train_steps, batch_size, lr, weight_decay: training budget and AdamW (constant lr).
        preprocessing: ``"raw"``, ``"standardize"`` or ``"whiten"`` (see ``wtflow.RFM``).
        seed: seeds initialisation, training noise and the probes.
        contamination: expected anomaly fraction in (0, 0.5].
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """

    def __init__(
        self,
        n_probes: int = 8,
        n_times: int = 5,
        t_low: float = 0.5,
        t_high: float = 0.9,
        time_weighting: str = "denoise",
        hidden: int = 256,
        depth: int = 3,
        time_dim: int = 64,
        train_steps: int = 400,
        batch_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        preprocessing: str = "raw",
        seed: int = 0,
        contamination: float = 0.1,
        device: str = "cpu",
    ):
        self.n_probes = n_probes
        self.n_times = n_times
        self.t_low = t_low
        self.t_high = t_high
        self.time_weighting = time_weighting
        self.hidden = hidden
        self.depth = depth
        self.time_dim = time_dim
        self.train_steps = train_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.preprocessing = preprocessing
        self.seed = seed
        self.contamination = contamination
        self.device = device
        self._check_params()

    def _check_params(self) -> None:
        super()._check_params()
        check_int("n_probes", self.n_probes)
        check_int("n_times", self.n_times)
        check_float("t_low", self.t_low, 0.0, 0.999)
        check_float("t_high", self.t_high, 0.0, 0.999)
        if self.t_high < self.t_low:
            raise ValueError(f"t_high must be >= t_low, got t_low={self.t_low!r}, t_high={self.t_high!r}")
        check_choice("time_weighting", self.time_weighting, TIME_WEIGHTINGS)
        check_int("hidden", self.hidden)
        check_int("depth", self.depth)
        check_int("time_dim", self.time_dim, minimum=2)
        check_int("train_steps", self.train_steps)
        check_float("weight_decay", self.weight_decay, 0.0)

    def _build_model(self, d: int) -> FlowModel:
        net_kwargs = {"hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim}
        return FlowModel(d, net="mlp", net_kwargs=net_kwargs, wt="none", target="gaussian", loss="forward-fm")

    def probes(self, d: int) -> Tensor:
        """The fixed noise probes eps, shape (n_probes, d), float32 (a function of ``seed`` and d only)."""
        gen = torch.Generator().manual_seed(int(self.seed) + PROBE_SEED_OFFSET)
        return torch.randn(self.n_probes, d, generator=gen, dtype=torch.float32)

    def times(self) -> Tensor:
        """The probed times, shape (n_times,)."""
        return mismatch_times(self.t_low, self.t_high, self.n_times)

    @torch.no_grad()
    def mismatch(self, Z: Tensor) -> Tensor:
        """Per-probe, per-time mismatch m(x; eps_m, t_j) of preprocessed points Z (n, d) -> (n, M, J)."""
        self.model_.eval()
        device = self._device
        eps = self.probes(Z.shape[1]).to(device)
        times = self.times().to(device)
        rows = max(1, SCORE_CHUNK // (self.n_probes * self.n_times))
        out = []
        for chunk in torch.split(Z.to(device), rows):
            out.append(velocity_mismatch(self.model_.velocity, chunk, eps, times, 1.0, self.time_weighting))
        return torch.cat(out)

    def _score_model(self, Z: Tensor) -> np.ndarray:
        return aggregate_mismatch(self.mismatch(Z)).double().cpu().numpy()
