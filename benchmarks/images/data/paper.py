"""The paper's input settings per category (WT-Flow, arXiv 2508.05461v2, Sec. V-B "Settings" and Suppl. XI-D).

512 x 512 inputs and WideResNet-50 layer 3 everywhere, except MVTec AD "transistor" (256 x 256, "consistent with
the experimental settings of other comparative methods") and VisA "macaroni2" (feature maps of the second stage).
The supplement names no other exception; the main text's "fine-tuned the input resolution and model feature
size" for "a limited subset" refers to these two.
"""

from __future__ import annotations

__all__ = ["PAPER_EXCEPTIONS", "PAPER_LAYER", "PAPER_RESOLUTION", "paper_settings"]

PAPER_RESOLUTION = 512
PAPER_LAYER = "layer3"
PAPER_EXCEPTIONS: dict[tuple[str, str], dict[str, object]] = {
    ("mvtec", "transistor"): {"resolution": 256},
    ("visa", "macaroni2"): {"layer": "layer2"},
}


def paper_settings(dataset: str, category: str) -> dict[str, object]:
    """{"resolution": int, "layer": str} the paper used for ``category`` of ``dataset``."""
    settings: dict[str, object] = {"resolution": PAPER_RESOLUTION, "layer": PAPER_LAYER}
    settings.update(PAPER_EXCEPTIONS.get((dataset, category), {}))
    return settings
