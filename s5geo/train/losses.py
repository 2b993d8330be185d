"""Losses of S4P (docs/methods.md): supervised CE and the confidence-masked unsupervised CE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def unsupervised_loss(
    logits: torch.Tensor,
    pseudo: torch.Tensor,
    confidence: torch.Tensor,
    valid: torch.Tensor,
    tau: float,
) -> torch.Tensor:
    """Per-pixel CE against ``pseudo`` where ``confidence >= tau`` and ``valid``.

    Normalised by the number of valid pixels (not by the confident ones), as in the published
    code: a batch with few confident pixels contributes a small loss instead of a noisy one.
    """
    per_pixel = F.cross_entropy(logits, pseudo, reduction="none")
    keep = (confidence >= tau) & valid
    return (per_pixel * keep).sum() / valid.sum().clamp(min=1)
