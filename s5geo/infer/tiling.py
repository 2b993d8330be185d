"""The window plan over a scene and the smooth weights that blend overlapping windows.

Windows are square, ``size`` scene pixels on a side, overlapping by at least ``overlap`` (evenly
spaced, see ``axis_starts``). The first and last row and column of windows are aligned to the scene
edges (not padded past them), so every pixel is covered by a full window whenever the scene is at
least one window large; smaller scenes get one window that the predictor pads.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from rasterio.windows import Window


def axis_starts(length: int, size: int, stride: int) -> list[int]:
    """Window offsets along one axis: from 0 to the edge, evenly spaced, at most ``stride`` apart.

    As many windows as a regular grid of step ``stride`` with its last window moved to the edge,
    but with the slack spread over every step, so each overlap is within one pixel of the others
    and at least ``size - stride``. The regular grid's last overlap can be almost a whole window,
    and the blender holds one overlap band of the scene's width, whose memory grows with the
    overlap: spreading the slack keeps every band as narrow as the others.
    """
    if stride <= 0:
        raise ValueError("stride must be positive (overlap smaller than the tile)")
    if length <= size:
        return [0]
    span = length - size
    steps = -(-span // stride)  # ceil: no step longer than the stride
    return [(i * span + steps // 2) // steps for i in range(steps + 1)]


@dataclass(frozen=True)
class WindowPlan:
    """All windows over a ``height`` x ``width`` region, in row-major order.

    ``row_off``/``col_off`` place the region inside the scene (a processing extent); window
    coordinates given by :meth:`windows` are scene pixel coordinates.
    """

    height: int
    width: int
    size: int
    overlap: int
    row_off: int = 0
    col_off: int = 0

    @property
    def ys(self) -> list[int]:
        return axis_starts(self.height, self.size, self.size - self.overlap)

    @property
    def xs(self) -> list[int]:
        return axis_starts(self.width, self.size, self.size - self.overlap)

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def windows(self, rows: range | None = None) -> Iterator[tuple[int, int, Window]]:
        """(row index, column index, scene window) for every window, row-major; with ``rows``,
        only the windows of those window rows (a :class:`RowBlock`'s)."""
        xs = self.xs
        ys = self.ys
        for r in rows if rows is not None else range(len(ys)):
            y = ys[r]
            h = min(self.size, self.height - y)
            for c, x in enumerate(xs):
                w = min(self.size, self.width - x)
                yield r, c, Window(self.col_off + x, self.row_off + y, w, h)


@dataclass(frozen=True)
class RowBlock:
    """A block of a plan's window rows, ``first`` to ``last`` inclusive, and the region rows
    ``row0`` to ``row1`` (end excluded) that it finishes: every window that covers those rows
    is in the block, so blending them gives the rows that the whole plan gives. Its windows
    read the region rows ``read0`` to ``read1``."""

    index: int
    first: int
    last: int
    row0: int
    row1: int
    read0: int
    read1: int

    @property
    def window_rows(self) -> range:
        return range(self.first, self.last + 1)


def row_blocks(plan: WindowPlan, max_pixels: int) -> list[RowBlock]:
    """``plan`` cut into blocks of window rows that each finish about ``max_pixels`` pixels.

    The blocks' rows tile the region, cut only where the set of covering windows changes (so
    a cut is a boundary of the blender's cells): neighbouring blocks share the window rows that
    cover a cut, which each runs. A region of at most ``max_pixels`` is one block.
    """
    if max_pixels < 1:
        raise ValueError("max_pixels must be positive")
    ys = plan.ys
    ends = [min(y + plan.size, plan.height) for y in ys]
    bounds = sorted({0, plan.height, *ys, *ends})
    n = max(1, -(-plan.height * plan.width // max_pixels))  # ceil
    cuts = [0]
    for k in range(1, n):
        want = k * plan.height / n
        i = bisect_left(bounds, want)
        near = min(bounds[max(i - 1, 0) : i + 1], key=lambda b: abs(b - want))
        if cuts[-1] < near < plan.height:
            cuts.append(near)
    cuts.append(plan.height)
    blocks = []
    for i, (row0, row1) in enumerate(pairwise(cuts)):
        # Windows covering rows row0..row1: those ending after row0 and starting before row1.
        first, last = bisect_right(ends, row0), bisect_left(ys, row1) - 1
        blocks.append(RowBlock(i, first, last, row0, row1, ys[first], ends[last]))
    return blocks


def blend_weights(size: int, floor: float = 0.05) -> np.ndarray:
    """A separable Hann window with a floor: high in the middle, small but positive at the edges.

    Predictions near a window's edge see less context and are down-weighted; the floor keeps the
    weight positive so pixels covered by a single window (at the scene edge) are still predicted.
    """
    hann = np.hanning(size + 2)[1:-1]  # drop the two zero end points
    w1 = np.maximum(hann, floor).astype(np.float32)
    return np.outer(w1, w1)
