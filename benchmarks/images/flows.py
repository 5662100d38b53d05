"""Training and evaluating one flow cell (category, method, seed) of an image run.

The field is a ``wtflow.FeatureMapDetector`` trained on the category's training feature store with checkpoints
in ``<cell>/checkpoints``; a killed run resumes from there bit for bit on the CPU. It is evaluated from inside
training (the trainer's epoch callback) every ``eval_every`` epochs and at each of the last ``eval_last`` epochs;
each evaluation is one line of ``<cell>/metrics.jsonl``. An interruption inside an evaluation loses that one
evaluation unless it was the last epoch's (``n_evaluations`` in ``result.json`` says how many were averaged).
A scorer that reuses another method's field (``flowmismatch``) loads that field (training it first if needed)
and is evaluated once, on the final field.
"""

from __future__ import annotations

from pathlib import Path

from .evaluate import evaluate_maps, save_examples
from .methods import METHODS, MethodSpec

__all__ = ["build_detector", "evaluation_epochs", "run_flow_cell"]


def evaluation_epochs(epochs: int, every: int, last: int) -> list[int]:
    """Epochs after which the field is evaluated: every ``every`` epochs and each of the last ``last``."""
    chosen = set(range(every, epochs + 1, every)) | set(range(max(1, epochs - last + 1), epochs + 1))
    return sorted(chosen)


def build_detector(cfg, spec: MethodSpec, seed: int, device, checkpoint_dir: Path | None, progress: bool):
    """The untrained ``FeatureMapDetector`` of a flow method with the run's settings."""
    from wtflow import FeatureMapDetector

    return FeatureMapDetector(
        wt=spec.wt,
        target=spec.target,
        input_norm=spec.input_norm,
        base_channels=cfg.nc,
        pos_encoding=cfg.pos_encoding,
        t_min=cfg.t_min,
        steps=cfg.steps_loc,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        lr_step_fraction=cfg.lr_step_fraction,
        lr_gamma=cfg.lr_gamma,
        seed=seed,
        device=str(device),
        amp=cfg.amp,
        checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
        progress=progress,
    )


def run_flow_cell(cfg, folder, data, spec: MethodSpec, seed: int, device, progress: bool) -> list[dict]:
    """Train (or resume, or load) the cell's field, record its evaluations and return those that are reported."""
    if spec.field is not None:
        detector = _trained_field(cfg, folder, data, METHODS[spec.field], seed, device, progress, evaluate=False)
        evaluation = _evaluate(cfg, data, detector, spec)
        record = {"epoch": cfg.epochs, **evaluation.metrics}
        folder.append_metrics(data.name, spec.name, seed, record)
        save_examples(folder.cell(data.name, spec.name, seed), evaluation, data.labels)
        return [record]
    detector = _trained_field(cfg, folder, data, spec, seed, device, progress, evaluate=True)
    save_examples(folder.cell(data.name, spec.name, seed), _evaluate(cfg, data, detector, spec), data.labels)
    reported = set(range(max(1, cfg.epochs - cfg.eval_last + 1), cfg.epochs + 1))
    return [r for r in folder.read_metrics(data.name, spec.name, seed) if r.get("epoch") in reported]


def _trained_field(cfg, folder, data, spec: MethodSpec, seed: int, device, progress: bool, evaluate: bool):
    from wtflow import FeatureMapDetector

    cell = folder.cell(data.name, spec.name, seed)
    model_path = cell / "model.pt"
    if model_path.exists():
        return FeatureMapDetector.load(model_path, device=str(device))
    checkpoint_dir = cell / "checkpoints"
    detector = build_detector(cfg, spec, seed, device, checkpoint_dir, progress)
    callback = None
    if evaluate:
        wanted = set(evaluation_epochs(cfg.epochs, cfg.eval_every, cfg.eval_last))
        done = {r.get("epoch") for r in folder.read_metrics(data.name, spec.name, seed)}

        def callback(epoch: int, loss: float | None) -> None:
            if epoch in wanted and epoch not in done:
                evaluation = _evaluate(cfg, data, detector, spec)
                folder.append_metrics(data.name, spec.name, seed, {"epoch": epoch, "loss": loss, **evaluation.metrics})
                done.add(epoch)

    last = checkpoint_dir / "last.pt"
    detector.fit(data.train, callback=callback, resume=str(last) if last.exists() else None)
    if callback is not None:
        # An interruption inside the last epoch's evaluation leaves the trained state checkpointed but not
        # evaluated; the final field is evaluated here then.
        callback(cfg.epochs, None)
    detector.save(model_path)
    return detector


def _evaluate(cfg, data, detector, spec: MethodSpec):
    if spec.scorer == "mismatch":

        def mismatch_maps(x):
            return detector.score_mismatch(x)[0]

        return evaluate_maps(cfg, data, mismatch_maps)

    def loc_maps(x):
        return detector.anomaly_maps(x, steps=cfg.steps_loc)

    def det_maps(x):
        return detector.anomaly_maps(x, steps=cfg.steps_det)

    return evaluate_maps(cfg, data, loc_maps, None if cfg.steps_det == cfg.steps_loc else det_maps)
