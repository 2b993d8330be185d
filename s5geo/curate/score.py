"""Seed-model scores of windows (docs/methods.md, Curation: step 1 and the embedding of step 2).

For each window: the mean per-pixel softmax entropy H = -(1/HW) sum_pixels sum_k p_k log p_k over
its valid pixels (``background`` given: the sum runs over the other classes, as the paper does),
and the global-average-pooled last backbone map as its embedding. Windows are read, scored and
dropped in batches, so memory holds one batch of pixels plus one embedding per window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from s5geo.curate.pool import WindowRef, read_window
from s5geo.models.segmentor import Segmentor


@dataclass(frozen=True)
class Scored:
    """Windows with their entropies [N] and embeddings [N, D] (all-nodata windows left out)."""

    refs: list[WindowRef]
    entropy: npt.NDArray[np.float64]
    embedding: npt.NDArray[np.float32]


@torch.no_grad()
def entropy_and_embedding(
    net: Segmentor, x: torch.Tensor, valid: torch.Tensor, background: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean entropy over valid pixels [B] and pooled backbone embedding [B, D] of a normalised
    batch ``x`` [B, C, H, W] (one forward: the backbone maps feed both)."""
    feats = net.backbone(x)
    logits = net.head(net.neck(feats))
    logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
    logp = logits.float().log_softmax(1)
    terms = -(logp.exp() * logp)
    if background is not None:
        terms = torch.cat([terms[:, :background], terms[:, background + 1 :]], dim=1)
    per_pixel = terms.sum(1)
    v = valid.to(per_pixel.dtype)
    entropy = (per_pixel * v).sum((1, 2)) / v.sum((1, 2)).clamp(min=1)
    embedding = feats[-1].float().mean((2, 3))
    return entropy, embedding


def _batches(
    refs: Iterable[WindowRef],
    batch: int,
    read: Callable[[WindowRef], tuple[np.ndarray, np.ndarray]],
) -> Iterator[tuple[list[WindowRef], np.ndarray, np.ndarray]]:
    group: list[WindowRef] = []
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for ref in refs:
        image, valid = read(ref)
        if not valid.any():
            continue  # wholly nodata: nothing to score
        group.append(ref)
        images.append(image)
        masks.append(valid)
        if len(group) == batch:
            yield group, np.stack(images), np.stack(masks)
            group, images, masks = [], [], []
    if group:
        yield group, np.stack(images), np.stack(masks)


def score_windows(
    net: Segmentor,
    refs: Iterable[WindowRef],
    *,
    bands: list[int],
    input_scale: float,
    mean: list[float],
    std: list[float],
    size: int,
    batch: int = 8,
    background: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Scored:
    """Entropy and embedding of every window that has valid pixels, streamed in batches."""
    net = net.eval()
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    kept: list[WindowRef] = []
    entropies: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    for group, images, valid in _batches(
        refs, batch, lambda r: read_window(r, bands, input_scale, size)
    ):
        x = (torch.from_numpy(images) - m) / s
        x = torch.where(torch.from_numpy(valid)[:, None], x, torch.zeros(()))
        h, e = entropy_and_embedding(net, x, torch.from_numpy(valid), background)
        kept += group
        entropies.append(h.numpy().astype(np.float64))
        embeddings.append(e.numpy())
        if progress is not None:
            progress(len(kept))
    if not kept:
        return Scored([], np.zeros(0), np.zeros((0, 0), np.float32))
    return Scored(kept, np.concatenate(entropies), np.concatenate(embeddings))
