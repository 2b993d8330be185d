"""Is a scene like what its model knows? Its mean confidence against the model's own reference.

A model file may record ``s5geo.reference_confidence``: the mean highest class probability it
gives on imagery of its own kind (the bundled model: the Dubai validation tile; a model made by
``s5geo fit``: windows of the scenes it was fitted on). On a scene unlike that imagery a model is
usually less sure, so a scene whose mean confidence lies more than ``MARGIN`` below the reference
gets one warning suggesting ``s5geo fit``.

It is a weak test, and says so in its warning only when it fires: a model can be confidently wrong
on unfamiliar imagery (docs/FIT.md gives the scenes it separates and those it does not). The mean
is taken over every 4th pixel and row of each window's probabilities before blending: a few
milliseconds per batch, unlike a confidence raster of the whole scene.
"""

from __future__ import annotations

import numpy as np

# Two standard deviations of the per-image mean confidence of the bundled model on Dubai's
# validation tile (0.048): a Dubai image rarely falls that far below the tile's mean.
MARGIN = 0.10
STRIDE = 4


class ConfidenceMeter:
    """Running mean of the highest class probability over the valid pixels of windows."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, probs: np.ndarray, valid: np.ndarray | None = None) -> None:
        """``probs`` [K, H, W] of one window; ``valid`` [H, W] bool (None: all pixels)."""
        top = probs[:, ::STRIDE, ::STRIDE].max(axis=0)
        if valid is not None:
            top = top[valid[::STRIDE, ::STRIDE]]
        self.total += float(top.sum(dtype=np.float64))
        self.count += int(top.size)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


def familiarity_warning(mean: float | None, reference: float | None, name: str) -> str | None:
    """The warning for a scene whose mean confidence is far below the model's reference."""
    if mean is None or reference is None or mean >= reference - MARGIN:
        return None
    return (
        f"the model is much less sure on {name} than on imagery of its own kind (mean confidence "
        f"{mean:.0%} against {reference:.0%}): the scene may be unlike what it was trained on; "
        "for a model of your own area, draw a few polygons and run s5geo fit"
    )
