"""The methods the image harness compares, on the same features, splits and metrics.

Each method is a ``MethodSpec``: a flow trained on the feature maps (``kind="flow"``, with its WT map, target and
the input placement of Table XI) or a baseline fitted on the same maps (``"gaussian"``, ``"patchcore"``). A
*scorer* may reuse another method's trained field (``field``): ``flowmismatch`` scores with the Flow-Mismatching
rule on the field trained for ``wtflow-ln``, so one trained field serves several scorers.

Table XI's placements map to: ``rfm`` (w/o), ``rfm-std`` (+std: LayerNorm on the U-Net input only),
``wtflow-ln`` (+WT), ``wtflow-ln-std`` (+WT&std). Table IV's WT choice: ``wtflow-ln`` vs ``wtflow-bn``; Table
VIII's targets: ``wtflow-ln`` (Gaussian), ``wtflow-ln-sphere``, ``wtflow-ln-point``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["METHODS", "MethodSpec", "resolve_methods"]


@dataclass(frozen=True)
class MethodSpec:
    """One row of the comparison.

    Attributes:
        name: the name used on the command line and in result tables.
        kind: ``"flow"``, ``"gaussian"``, ``"patchcore"`` or ``"anomalib"`` (anomalib's model of that name, run on
            the images by ``benchmarks.images.anomalib_models``; needs the ``anomalib`` extra).
        wt, target, input_norm: the flow's WT map, target and Table XI "std" input LayerNorm.
        scorer: ``"density"`` (eq. 2 maps, top-3 % image score) or ``"mismatch"`` (Flow Mismatching).
        field: name of the method whose trained field this scorer reuses (None: trains its own).
        summary: one line for ``--help`` and the README.
    """

    name: str
    kind: str
    summary: str
    wt: str = "none"
    target: str = "gaussian"
    input_norm: bool = False
    scorer: str = "density"
    field: str | None = None

    @property
    def trains(self) -> str:
        """The name under which this method's field is trained and checkpointed."""
        return self.field or self.name


_SPECS = (
    MethodSpec("wtflow-ln", "flow", "WT-Flow, LayerNorm WT map (the paper's default)", wt="layernorm"),
    MethodSpec("wtflow-bn", "flow", "WT-Flow, BatchNorm WT map (Table IV)", wt="batchnorm"),
    MethodSpec("rfm", "flow", "plain time-reversed flow matching, no WT map (Table XI w/o)"),
    MethodSpec("rfm-std", "flow", "rFM with LayerNorm on the U-Net input only (Table XI +std)", input_norm=True),
    MethodSpec(
        "wtflow-ln-std",
        "flow",
        "LayerNorm WT map and input LayerNorm (Table XI +WT&std)",
        wt="layernorm",
        input_norm=True,
    ),
    MethodSpec(
        "wtflow-ln-sphere",
        "flow",
        "WT-Flow with the uniform-sphere target (Table VIII)",
        wt="layernorm",
        target="sphere",
    ),
    MethodSpec(
        "wtflow-ln-point", "flow", "WT-Flow with the single-point target (Table VIII)", wt="layernorm", target="point"
    ),
    MethodSpec(
        "flowmismatch",
        "flow",
        "Flow-Mismatching scorer on the wtflow-ln field",
        wt="layernorm",
        scorer="mismatch",
        field="wtflow-ln",
    ),
    MethodSpec("gaussian", "gaussian", "per-position Gaussian of the patch features, Mahalanobis (PaDiM-style)"),
    MethodSpec("patchcore", "patchcore", "nearest-neighbour patch memory bank with greedy coreset (PatchCore-style)"),
    MethodSpec("anomalib-patchcore", "anomalib", "anomalib's PatchCore on the same images and metrics"),
    MethodSpec("anomalib-padim", "anomalib", "anomalib's PaDiM on the same images and metrics"),
    MethodSpec("anomalib-cflow", "anomalib", "anomalib's CFlow on the same images and metrics"),
    MethodSpec("anomalib-fastflow", "anomalib", "anomalib's FastFlow (needs a ResNet backbone: --weights PATH)"),
)
METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in _SPECS}


def resolve_methods(names: Sequence[str]) -> list[MethodSpec]:
    """Specs for ``names`` in order; unknown or repeated names raise ``ValueError`` listing the known ones.

    A scorer that reuses another method's field (``flowmismatch``) brings no training of its own: its field is
    trained once under the owner's name, whether or not the owner is listed.
    """
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(map(repr, unknown))}; known: {', '.join(METHODS)}")
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        raise ValueError(f"method(s) listed more than once: {', '.join(repeated)}")
    if not names:
        raise ValueError(f"no method given; known: {', '.join(METHODS)}")
    return [METHODS[name] for name in names]
