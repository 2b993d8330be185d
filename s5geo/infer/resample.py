"""Resizing class-probability maps back to the scene grid (models run at their own resolution)."""

from __future__ import annotations

import numpy as np


def interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """[n_out, n_in] linear-interpolation weights, pixel centres aligned (align_corners=False)."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    lo = np.floor(centres).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (centres - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), lo] += 1.0 - frac
    m[np.arange(n_out), hi] += frac
    return m


def resize_probs(probs: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of [K, h, w] probabilities to [K, height, width].

    Written as two small matrix products because numpy has no resize and the deployment install
    carries no image library; rows of the weights sum to one, so probabilities stay normalised.
    """
    _, h, w = probs.shape
    ry = interp_matrix(height, h)
    rx = interp_matrix(width, w)
    return np.einsum("yh,khw,xw->kyx", ry, probs, rx, optimize=True).astype(np.float32)
