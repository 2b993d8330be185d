"""Weak and strong views and CutMix, as docs/methods.md specifies (UniMatch/FixMatch recipe).

- Weak view (per sample, geometric): random rescale by a factor in ``scale_range`` (0.5-2.0),
  random crop of ``crop_size`` (image padded with 0, label with the ignore index, validity mask
  with 0), horizontal and vertical flips with p=0.5, optional random 90-degree rotation. The same
  geometric parameters are applied to image, label and validity mask (torchvision v2 functional
  ops, bilinear for the image, nearest for label and mask).
- Strong view (per batch, photometric, kornia): colour jitter (0.5, 0.5, 0.5, 0.25) p=0.8,
  grayscale p=0.2, Gaussian blur sigma 0.1-2.0 p=0.5. Geometry is untouched, so the weak view's
  pseudo-labels stay aligned.
- CutMix (per sample, p=0.5): a box of 2-40 % of the area with aspect 0.3-3.3, pasted from a second
  unlabeled batch; pseudo-labels, confidences and validity are mixed with the same box.
"""

from __future__ import annotations

import math
import random

import torch
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF


def to_unit_range(image: torch.Tensor, input_scale: float) -> torch.Tensor:
    """A sample's image as float in 0..1: raw uint8 images (image folders) are divided by
    ``input_scale``; float images (raster windows) are scaled by their reader already."""
    if image.dtype == torch.uint8:
        return image.float() / input_scale
    return image.float()


def weak_view(
    image: torch.Tensor,
    mask: torch.Tensor | None,
    crop_size: int,
    scale_range: tuple[float, float] = (0.5, 2.0),
    rotation: bool = False,
    ignore_index: int = 255,
    rng: random.Random | None = None,
    valid: torch.Tensor | None = None,
    input_scale: float = 255.0,
    extra: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One weak view of a sample: ``image`` float [C, S, S] in 0..1 (uint8 input / input_scale),
    ``mask`` int64 [S, S] (all ignore when unlabeled), ``valid`` bool [S, S] (False on padding and
    where the input ``valid`` is False, e.g. scene nodata). ``extra`` [E, H, W] (e.g. a teacher's
    soft labels) follows the image's geometry (bilinear, padded with 0) and comes back as float
    ``extra`` [E, S, S].
    """
    rng = rng or random.Random()
    h, w = image.shape[-2:]

    # Rescale-then-crop, computed as crop-then-rescale: only the source region of the crop is
    # resized (same result up to rounding, far cheaper on large scenes).
    factor = rng.uniform(*scale_range)
    scaled_h, scaled_w = max(1, round(h * factor)), max(1, round(w * factor))
    top = rng.randint(0, max(scaled_h - crop_size, 0))
    left = rng.randint(0, max(scaled_w - crop_size, 0))
    src_top, src_left = int(top / factor), int(left / factor)
    src_h = min(h - src_top, max(1, round(crop_size / factor)))
    src_w = min(w - src_left, max(1, round(crop_size / factor)))
    out_size = [
        min(crop_size, max(1, round(src_h * factor))),
        min(crop_size, max(1, round(src_w * factor))),
    ]
    region = (src_top, src_left, src_h, src_w)
    # Crop first, then convert: converting (and stacking) whole images was 85 % of a distillation
    # batch's loading time on the Dubai tiles.
    img = to_unit_range(TF.crop(image, *region), input_scale)
    bands = img.shape[0]
    if extra is not None:
        img = torch.cat([img, TF.crop(extra, *region).float()])
    if mask is None:
        lbl = torch.full((1, src_h, src_w), ignore_index, dtype=torch.int64)
    else:
        lbl = TF.crop(mask.unsqueeze(0), *region)
    if valid is None:
        valid = torch.ones((1, src_h, src_w), dtype=torch.uint8)
    else:
        valid = TF.crop(valid.to(torch.uint8).reshape(1, h, w), *region)
    img = TF.resize(img, out_size, InterpolationMode.BILINEAR, antialias=True)
    lbl = TF.resize(lbl, out_size, InterpolationMode.NEAREST)
    valid = TF.resize(valid, out_size, InterpolationMode.NEAREST)

    pad_h, pad_w = crop_size - out_size[0], crop_size - out_size[1]
    if pad_h or pad_w:
        padding = [0, 0, pad_w, pad_h]  # left, top, right, bottom
        img = TF.pad(img, padding, fill=0.0)
        lbl = TF.pad(lbl, padding, fill=ignore_index)
        valid = TF.pad(valid, padding, fill=0)

    if rng.random() < 0.5:
        img, lbl, valid = (TF.horizontal_flip(t) for t in (img, lbl, valid))
    if rng.random() < 0.5:
        img, lbl, valid = (TF.vertical_flip(t) for t in (img, lbl, valid))
    if rotation:
        k = rng.randint(0, 3)
        img, lbl, valid = (torch.rot90(t, k, dims=(-2, -1)) for t in (img, lbl, valid))
    out = {
        "image": img[:bands].contiguous(),
        "mask": lbl[0].contiguous(),
        "valid": valid[0].bool().contiguous(),
    }
    if extra is not None:
        out["extra"] = img[bands:].contiguous()
    return out


def strong_photometric() -> nn.Module:
    """Kornia pipeline for the strong view's photometric part (batched, runs on any device)."""
    import kornia.augmentation as K

    return K.AugmentationSequential(
        K.ColorJitter(0.5, 0.5, 0.5, 0.25, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.RandomGaussianBlur((23, 23), sigma=(0.1, 2.0), p=0.5),
        data_keys=["input"],
    )


def cutmix_boxes(
    batch: int,
    height: int,
    width: int,
    p: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
    aspect: tuple[float, float] = (0.3, 1 / 0.3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean [B, H, W]: True inside each sample's box (empty with probability 1 - p)."""
    boxes = torch.zeros((batch, height, width), dtype=torch.bool)
    for b in range(batch):
        if torch.rand((), generator=generator) >= p:
            continue
        while True:
            u = torch.rand(4, generator=generator).tolist()
            size = (area[0] + u[0] * (area[1] - area[0])) * height * width
            ratio = math.exp(
                math.log(aspect[0]) + u[1] * (math.log(aspect[1]) - math.log(aspect[0]))
            )
            bw, bh = int(math.sqrt(size * ratio)), int(math.sqrt(size / ratio))
            if 0 < bw <= width and 0 < bh <= height:
                break
        x = int(u[2] * (width - bw + 1))
        y = int(u[3] * (height - bh + 1))
        boxes[b, y : y + bh, x : x + bw] = True
    return boxes


def apply_cutmix(boxes: torch.Tensor, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``target`` with ``source`` pasted inside ``boxes`` (images [B,C,H,W] or maps [B,H,W])."""
    m = boxes.unsqueeze(1) if target.dim() == 4 else boxes
    return torch.where(m.to(target.device), source, target)
