"""Suppl. XI-B eq. 48: "R = sqrt(CHW) = 512" for WideResNet-50 third-stage features at 512 x 512 inputs.

The shapes are measured with timm's ``wide_resnet50_2`` (``features_only=True, out_indices=(3,)``, the
output of layer3, stride 16) built with ``pretrained=False``: no weights are downloaded, the shapes do not
depend on them. The quick size runs the 512 x 512 pass on the meta device (shapes only) and a real pass
at 256 x 256; the full size runs real passes on zeros at both sizes.
"""

from __future__ import annotations

import functools
import math

import torch

from ._base import HOLDS, REFUTED, ClaimResult, check_size, printed_form

__all__ = ["check_wrn50_radius", "layer3_shape"]

PAPER_RADIUS = {512: 512.0, 256: 256.0}  # eq. 48 and the "transistor" remark (256 x 256 inputs, radius 256)
PAPER_MAP_SHAPE = (1024, 16, 16)  # "(8, 1024, 16, 16)", Suppl. XI-B / XI-E


@functools.lru_cache(maxsize=8)
def layer3_shape(side: int, device: str = "cpu") -> tuple[int, int, int]:
    """(C, H, W) of WideResNet-50-2's third residual stage for a (1, 3, side, side) input of zeros (cached: the
    architecture fixes it; ``device="meta"`` gets the shapes without computing)."""
    import timm

    model = timm.create_model("wide_resnet50_2", pretrained=False, features_only=True, out_indices=(3,)).eval()
    model = model.to(device)
    with torch.no_grad():
        (out,) = model(torch.zeros(1, 3, side, side, device=device))
    return tuple(int(s) for s in out.shape[1:])


def check_wrn50_radius(size: str = "quick", printed: dict | None = None) -> ClaimResult:
    """Measured layer3 shapes at 512^2 and 256^2 inputs against the paper's R = 512 (and 256 for transistor).

    ``printed``: {"radius_512": R at 512^2 inputs, "radius_256": R at 256^2} (printed 512 and 256)."""
    check_size(size)
    form = printed_form("wrn50_radius", {"radius_512": PAPER_RADIUS[512], "radius_256": PAPER_RADIUS[256]}, printed)
    paper_radius = {512: float(form["radius_512"]), 256: float(form["radius_256"])}
    shapes = {
        512: layer3_shape(512, device="meta" if size == "quick" else "cpu"),
        256: layer3_shape(256, device="meta" if size == "quick" else "cpu"),
    }
    radius = {side: math.sqrt(math.prod(s)) for side, s in shapes.items()}
    mismatch = {side: radius[side] / paper_radius[side] for side in shapes}
    stated_map_radius = math.sqrt(math.prod(PAPER_MAP_SHAPE))
    input_for_stated_map = [side for side, s in shapes.items() if s == PAPER_MAP_SHAPE]
    ok = all(abs(m - 1) < 1e-12 for m in mismatch.values())
    return ClaimResult(
        claim_id="wrn50_radius",
        verdict=HOLDS if ok else REFUTED,
        measured={
            "layer3 (C, H, W) at 512^2": str(shapes[512]),
            "layer3 (C, H, W) at 256^2": str(shapes[256]),
            "sqrt(CHW) at 512^2 | paper": f"{radius[512]:g} | {paper_radius[512]:g}",
            "sqrt(CHW) at 256^2 | paper (transistor)": f"{radius[256]:g} | {paper_radius[256]:g}",
            "input size giving the stated (1024, 16, 16) maps": ", ".join(f"{s}^2" for s in input_for_stated_map)
            or "none",
            "sqrt(CHW) of the stated (1024, 16, 16) maps": f"{stated_map_radius:g}",
        },
        rule=(
            "'holds' if sqrt(C H W) of the measured layer3 maps equals the paper's radius at both input sizes; "
            "else 'refuted'."
        ),
        correction=(
            "At 512 x 512 inputs the third-stage maps are 1024 x 32 x 32 and R = sqrt(CHW) = 1024; R = 512 belongs "
            "to the "
            "stated (1024, 16, 16) maps, i.e. 256 x 256 inputs, and the transistor class at 256 x 256 has R = 512, "
            "not 256. "
            "Either the inputs were 256 x 256 (and 128 x 128 for transistor) or the radii are off by a factor 2."
            if not ok
            else ""
        ),
        notes=[
            "Tables XIII-XIV (step-0 norms ~508 for LN) agree with D = 1024 x 16 x 16, i.e. with 16 x 16 maps.",
        ],
        data={"shapes": shapes, "radius": radius},
    )
