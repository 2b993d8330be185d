"""Overviews of a class raster by mode, built while its rows stream in.

GDAL's COG driver builds overviews when it copies the finished staging raster, after inference:
by mode on a 25 MP map that was 0.4 s of the 0.8 s copy, all of it after the last window
(docs/BENCHMARKS.md). Built here from each batch of finished rows instead, the work overlaps
inference, and the copy takes these overviews as they are (``write_class_cog`` with
``overviews``). Hand-written because GDAL only builds overviews of a whole dataset.

Each level halves the one before (2 x 2 blocks; the last row or column of an odd size covers what
is left), as many levels as GDAL's COG driver would make. A block's
value is its most frequent class, nodata excluded (nodata only where the whole block is), the
first in row-major order on ties.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from affine import Affine

from s5geo.io.raster import BLOCK, BlockRowWriter, GridSpec
from s5geo.modelfile import NODATA

# Output rows per step of ``mode_2x2`` (temporaries: about 12 bytes per output pixel).
MODE_ROWS = 32
# Tile side of the level files: each level buffers this many rows (the COG copy re-tiles them).
LEVEL_BLOCK = 128


def mode_2x2(rows: np.ndarray) -> np.ndarray:
    """The most frequent non-nodata value of each 2 x 2 block of ``rows`` (even sides)."""
    out = np.empty((rows.shape[0] // 2, rows.shape[1] // 2), np.uint8)
    # A few output rows at a time: the comparisons' temporaries stay small on wide scenes.
    for i in range(0, len(out), MODE_ROWS):
        out[i : i + MODE_ROWS] = _mode_2x2(rows[2 * i : 2 * (i + MODE_ROWS)])
    return out


def _mode_2x2(rows: np.ndarray) -> np.ndarray:
    a, b = rows[0::2, 0::2], rows[0::2, 1::2]
    c, d = rows[1::2, 0::2], rows[1::2, 1::2]
    ab, ac, ad = a == b, a == c, a == d
    bc, bd, cd = b == c, b == d, c == d
    # Votes for each of the four values (itself and its equals); a nodata value gets none.
    votes = []
    for value, equals in (
        (a, (ab, ac, ad)),
        (b, (ab, bc, bd)),
        (c, (ac, bc, cd)),
        (d, (ad, bd, cd)),
    ):
        v = np.add(equals[0], equals[1], dtype=np.uint8)
        v += equals[2]
        v += 1
        v *= value != NODATA
        votes.append(v)
    votes_a, votes_b, votes_c, votes_d = votes
    out = d.copy()  # d wins when it has the most votes, and where all four are nodata
    _take(out, c, votes_c >= votes_d)
    best = np.maximum(votes_c, votes_d)
    _take(out, b, votes_b >= best)
    np.maximum(best, votes_b, out=best)
    _take(out, a, votes_a >= best)
    return out


def _take(out: np.ndarray, new: np.ndarray, wins: np.ndarray) -> None:
    """``out = new`` where ``wins``, in place and without branches: the bits in which they differ,
    kept where ``wins`` (0xFF) and dropped elsewhere (0), flipped in ``out``. A masked assignment
    (``out[wins] = new[wins]``) gathers and scatters by index: the first level of a 25 MP map
    took 1.3x as long on a student's real map and 3.6x on random classes (docs/BENCHMARKS.md,
    "Overviews by mode without masked assignments")."""
    diff = np.bitwise_xor(out, new)
    diff &= np.negative(wins.view(np.uint8))  # True (1) -> 0xFF, False -> 0
    out ^= diff


def overview_grids(grid: GridSpec) -> list[GridSpec]:
    """The levels, largest first, as GDAL's COG driver counts them: factors 2, 4, ... until the
    size divided by the factor (rounded down) fits in one tile; each level's side is the full
    side divided by its factor, rounded up."""
    levels = []
    factor = 1
    while grid.width // factor > BLOCK or grid.height // factor > BLOCK:
        factor *= 2
        width, height = math.ceil(grid.width / factor), math.ceil(grid.height / factor)
        scale = Affine.scale(grid.width / width, grid.height / height)
        levels.append(GridSpec(width, height, grid.crs, grid.transform * scale))
    return levels


class _Level:
    """One overview level: takes the rows of the level below in order, writes its own."""

    def __init__(self, path: Path, grid: GridSpec, below_width: int) -> None:
        self.path = path
        self.writer = BlockRowWriter(path, grid, "land-cover class", block=LEVEL_BLOCK)
        self.below_width = below_width
        self.row = 0
        self.carry: np.ndarray | None = None  # an odd row of the level below, awaiting its pair

    def take(self, rows: np.ndarray) -> np.ndarray | None:
        """Add rows of the level below; return this level's rows that they finished."""
        if self.carry is not None:
            rows = np.concatenate([self.carry, rows])
            self.carry = None
        if len(rows) % 2:
            self.carry, rows = rows[-1:].copy(), rows[:-1]
        return self._write(rows) if len(rows) else None

    def last(self) -> np.ndarray | None:
        """The final row when the level below has an odd height (paired with nodata)."""
        if self.carry is None:
            return None
        rows = np.concatenate([self.carry, np.full_like(self.carry, NODATA)])
        self.carry = None
        return self._write(rows)

    def _write(self, rows: np.ndarray) -> np.ndarray:
        if self.below_width % 2:
            rows = np.pad(rows, ((0, 0), (0, 1)), constant_values=NODATA)
        out = mode_2x2(rows)
        self.writer.write(self.row, out)
        self.row += len(out)
        return out


class StreamingOverviews:
    """Mode overviews of a single-band uint8 class raster whose rows arrive in order.

    ``add`` each batch of finished rows of the full-resolution raster (``grid``), then ``close``;
    ``paths`` are then the level files, largest first (tiled GeoTIFFs named after ``base``), to
    pass to ``write_class_cog``. Memory: one pending row per level, besides the levels' writers.
    """

    def __init__(self, base: Path, grid: GridSpec) -> None:
        self._levels: list[_Level] = []
        below = grid.width
        for i, level_grid in enumerate(overview_grids(grid)):
            path = base.with_name(f"{base.name}.ovr{i + 1}.tif")
            self._levels.append(_Level(path, level_grid, below))
            below = level_grid.width

    @property
    def paths(self) -> list[Path]:
        return [level.path for level in self._levels]

    def add(self, rows: np.ndarray) -> None:
        out: np.ndarray | None = rows
        for level in self._levels:
            if out is None:
                return
            out = level.take(out)

    def close(self) -> None:
        """Write what is left (odd last rows) and close every level's file."""
        for i, level in enumerate(self._levels):
            out = level.last()
            if out is not None:
                for above in self._levels[i + 1 :]:
                    out = above.take(out)
                    if out is None:
                        break
            level.writer.close()

    def discard(self) -> None:
        """Remove the level files, closing any still open (after the COG copy, or an error)."""
        for level in self._levels:
            if not level.writer.dataset.closed:
                level.writer.dataset.close()
            level.path.unlink(missing_ok=True)
