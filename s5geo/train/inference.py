"""Sliding-window prediction of a whole image with a torch model (the checkpoint evaluation path).

Windows of ``tile`` pixels overlap by a quarter; the last row/column is aligned to the image edge;
class probabilities are averaged where windows overlap. Images smaller than a tile are padded (with
zeros, after normalisation) to a multiple of ``multiple`` and run once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from s5geo.infer.tiling import axis_starts


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    image: torch.Tensor,
    num_classes: int,
    tile: int = 512,
    multiple: int = 32,
    channels_last: bool = False,
) -> torch.Tensor:
    """Probabilities ``[K, H, W]`` for one normalised image ``[C, H, W]``.

    ``channels_last``: windows go in channels-last, for a ``model`` converted to it (a
    channels-last window into a default-layout model is slower than none).
    """
    h, w = image.shape[-2:]
    ph, pw = (
        max(h, min(tile, -(-h // multiple) * multiple)),
        max(w, min(tile, -(-w // multiple) * multiple)),
    )
    x = F.pad(image, (0, pw - w, 0, ph - h))
    out = torch.zeros((num_classes, ph, pw), device=image.device)
    count = torch.zeros((1, ph, pw), device=image.device)
    th, tw = min(tile, ph), min(tile, pw)
    for top in axis_starts(ph, th, th * 3 // 4):
        for left in axis_starts(pw, tw, tw * 3 // 4):
            window = x[:, top : top + th, left : left + tw].unsqueeze(0)
            if channels_last:
                window = window.contiguous(memory_format=torch.channels_last)
            out[:, top : top + th, left : left + tw] += model(window).softmax(1)[0]
            count[:, top : top + th, left : left + tw] += 1
    return (out / count)[:, :h, :w]
