"""What every dataset reader shares: the ``Sample`` record, image and mask decoding, stem pairing, directory listing.

Decoding rules (one place, so that every layout behaves the same):

- Images are forced to RGB. 8-bit grey (``L``, ``1``) is repeated over the three channels; palette (``P``) and
  ``CMYK`` images are converted by PIL; 16-bit grey (PIL modes ``I;16*`` and ``I`` with values in [0, 65535]) is
  divided by 65535 and repeated over channels; 16-bit colour PNGs are decoded by PIL to 8 bits per channel. An
  alpha channel (``RGBA``, ``LA``, ``PA``) is dropped only when it is fully opaque; a transparent pixel raises
  ``ImageDataError`` because compositing needs a background colour the user must choose. Float images (mode ``F``)
  raise.
- Masks: any non-zero pixel is anomalous (0/255, 0/1 and VisA's class-valued masks behave the same). A mask whose
  size differs from its image's raises; resizing uses nearest neighbour so masks stay exact.
- Every error names the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "IMAGE_EXTENSIONS",
    "DefectSpec",
    "ImageDataError",
    "Sample",
    "image_size",
    "list_images",
    "pair_masks_by_stem",
    "read_image",
    "read_mask",
    "require_dir",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_MAX_LISTED = 5


class ImageDataError(ValueError):
    """A dataset file or folder that cannot be used as it is; the message names the path."""


@dataclass(frozen=True)
class DefectSpec:
    """One entry of MVTec LOCO's ``defects_config.json``: the mask pixel value of a defect type and its sPRO
    saturation threshold (pixels, or a fraction of the defect's area when ``relative_saturation``)."""

    name: str
    pixel_value: int
    saturation_threshold: float
    relative_saturation: bool


@dataclass(frozen=True)
class Sample:
    """One image of a split: ``masks`` is empty for normal images; ``label`` 1 = anomalous; ``defects`` holds the
    category's LOCO defect table (empty for the other datasets)."""

    image: Path
    masks: tuple[Path, ...]
    label: int
    defect: str
    category: str
    split: str
    defects: tuple[DefectSpec, ...] = ()


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a directory, else an ``ImageDataError`` saying which ``what`` is missing."""
    if not path.is_dir():
        raise ImageDataError(f"missing {what}: {path} is not a directory")
    return path


def list_images(folder: Path, what: str) -> list[Path]:
    """Sorted image files (``IMAGE_EXTENSIONS``, any case) directly inside ``folder``; hidden files and non-image
    files (e.g. ``.txt``) are ignored, but an image in a format outside ``IMAGE_EXTENSIONS`` (e.g. ``.webp``)
    raises rather than being skipped. ``ImageDataError`` also if the folder is missing or holds no image."""
    from PIL import Image

    require_dir(folder, what)
    visible = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    known = Image.registered_extensions()
    other_images = sorted(p for p in visible if p.suffix.lower() in known and not _is_image_name(p.name))
    if other_images:
        raise ImageDataError(
            f"{what}: unsupported image format in {folder} (supported: {', '.join(IMAGE_EXTENSIONS)}), "
            f"first: {_first(other_images)}"
        )
    files = sorted(p for p in visible if _is_image_name(p.name))
    if not files:
        raise ImageDataError(f"empty {what}: no image ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return files


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _mask_key(mask: Path) -> str:
    stem = mask.stem
    return stem[: -len("_mask")] if stem.endswith("_mask") else stem


def pair_masks_by_stem(images: Sequence[Path], masks: Sequence[Path], what: str) -> list[Path]:
    """The mask of each image, matched by stem (``000.png`` <-> ``000.png`` or ``000_mask.png``).

    Raises ``ImageDataError`` listing the first unmatched images and masks when the two sets differ.
    """
    by_key: dict[str, Path] = {}
    for mask in masks:
        key = _mask_key(mask)
        if key in by_key:
            raise ImageDataError(f"{what}: two masks for image stem {key!r}: {by_key[key]} and {mask}")
        by_key[key] = mask
    lonely_images = [p for p in images if p.stem not in by_key]
    image_stems = {p.stem for p in images}
    lonely_masks = [m for k, m in by_key.items() if k not in image_stems]
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(f"{len(lonely_images)} image(s) without a mask, first: {_first(lonely_images)}")
        if lonely_masks:
            parts.append(f"{len(lonely_masks)} mask(s) without an image, first: {_first(lonely_masks)}")
        raise ImageDataError(f"{what}: images and masks do not pair by stem; " + "; ".join(parts))
    return [by_key[p.stem] for p in images]


def _first(paths: Iterable[Path]) -> str:
    return ", ".join(str(p) for p in list(paths)[:_MAX_LISTED])


def _open(path: Path):
    from PIL import Image

    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise ImageDataError(f"missing file: {path}") from None
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
        raise ImageDataError(f"cannot decode {path}: {type(err).__name__}: {err}") from err
    return img


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image or mask file, from its header."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
    except FileNotFoundError:
        raise ImageDataError(f"missing file: {path}") from None
    except Exception as err:
        raise ImageDataError(f"cannot decode {path}: {type(err).__name__}: {err}") from err
    return height, width


def _rgb_array(path: Path) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] under the module's decoding rules."""
    img = _open(path)
    mode = img.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA") if mode in ("PA", "P") else img
        alpha = np.asarray(img.getchannel("A"))
        if alpha.min() < 255:
            raise ImageDataError(
                f"{path} has a transparent alpha channel (mode {mode}, min alpha {int(alpha.min())}); "
                "flatten it onto a background first"
            )
        img = img.convert("RGB")
        mode = "RGB"
    if mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(img, dtype=np.float64)
        if grey.min() < 0 or grey.max() > 65535:
            raise ImageDataError(f"{path}: integer image (mode {mode}) with values outside [0, 65535]")
        return np.repeat((grey / 65535.0)[..., None], 3, axis=2).astype(np.float32)
    if mode == "F":
        raise ImageDataError(f"{path}: float image (mode F) is not an RGB photo; convert it to 8 or 16 bit")
    if mode != "RGB":
        img = img.convert("RGB")  # L, 1, P, CMYK, YCbCr: PIL's documented conversions
    return np.asarray(img, dtype=np.float32) / 255.0


def read_image(path: str | Path, resolution: int | tuple[int, int] | None = None) -> torch.Tensor:
    """The image at ``path`` as a (3, R, R) float32 tensor in [0, 1] (original size if ``resolution`` is None).

    Resizing is bilinear with antialiasing. Grey, 16-bit and opaque-alpha images are converted as the module
    docstring says; anything else that is not an RGB photo raises ``ImageDataError`` naming ``path``.
    """
    array = _rgb_array(Path(path))
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    if resolution is None:
        return tensor
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if tuple(tensor.shape[1:]) == size:
        return tensor
    out = torch.nn.functional.interpolate(tensor[None], size=size, mode="bilinear", antialias=True)[0]
    return out.clamp_(0.0, 1.0)


def _mask_array(path: Path) -> np.ndarray:
    """Raw mask values (H, W); colour masks are reduced to "any channel non-zero" (alpha ignored), so that a
    faint colour is not rounded to zero as a grey conversion would."""
    img = _open(path)
    array = np.asarray(img)
    if img.mode == "LA":
        array = array[..., 0]
    elif img.mode == "RGBA":
        array = array[..., :3]
    return array.any(axis=2) if array.ndim == 3 else array


def read_mask(
    paths: Sequence[str | Path],
    size: int | tuple[int, int] | None = None,
    expected_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """The union of the masks in ``paths`` as an (H, W) bool tensor: any non-zero pixel is anomalous.

    ``expected_size``: the (height, width) of the image the masks belong to; a mask of another size raises.
    ``size``: output size (int R or (H, W)), resized by nearest neighbour. With no paths (a normal image) the
    result is all False, of ``size`` or else ``expected_size``.
    """
    out_size = (size, size) if isinstance(size, int) else (tuple(size) if size is not None else None)
    union = None
    for path in map(Path, paths):
        mask = _mask_array(path) != 0
        if expected_size is not None and mask.shape != tuple(expected_size):
            raise ImageDataError(
                f"mask {path} is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image is "
                f"{expected_size[0]}x{expected_size[1]}"
            )
        if union is not None and mask.shape != union.shape:
            raise ImageDataError(f"mask {path} is {mask.shape} but the other masks of its image are {union.shape}")
        union = mask if union is None else (union | mask)
    if union is None:
        shape = out_size or expected_size
        if shape is None:
            raise ValueError("read_mask: no mask paths and neither size nor expected_size to shape the empty mask")
        return torch.zeros(tuple(shape), dtype=torch.bool)
    tensor = torch.from_numpy(union)
    if out_size is None or tuple(tensor.shape) == out_size:
        return tensor
    resized = torch.nn.functional.interpolate(tensor[None, None].float(), size=out_size, mode="nearest")
    return resized[0, 0] > 0.5
