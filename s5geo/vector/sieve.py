"""Minimum mapping unit: rasterio's sieve (GDALSieveFilter) strip by strip, with a halo of rows.

A region is *below the unit* when it has fewer than ``T`` pixels (``sieve_threshold``). Each strip
is sieved inside a window made of the strip plus ``h = T - 1`` rows above and below it (fewer at
the raster's top and bottom), and only the strip's own rows are kept. Why that halo suffices:

1. A region below the unit that has a pixel in the strip lies wholly inside the window. A
   4-connected region of ``n`` pixels spans at most ``n`` rows; with ``n <= T - 1`` it reaches at
   most ``T - 2`` rows beyond the strip. The sieve sees it whole, at its true size, and merges
   it into a neighbour.
2. A region at or above the unit is never taken for a small one. Its part inside the window that
   holds its pixels of the strip either stays clear of the window's first and last rows (then it
   is the whole region: the window spans the full width, so a region leaves it only through those
   rows) or reaches one of them, spanning at least ``h + 1 = T`` rows and so at least ``T``
   pixels. Either way the sieve counts ``T`` or more and leaves it alone.

So in every strip exactly the pixels of regions below the unit change class, and they take a
neighbour's class as in gdal_sieve (the largest neighbour, following a chain of small neighbours
to a large one). Limits, stated plainly:

- The absorbing neighbour is the largest *as seen in the window*: sizes of large neighbours are
  cut at the window's edges, so the choice can differ from a whole-raster gdal_sieve, and for a
  small region that crosses a strip border the two strips can choose differently. The layer
  still tiles the valid area exactly; the two parts then join different neighbours, and a part
  can stay below the unit when its chosen neighbour touches only the other part (it takes a
  small region on a strip border between two large regions whose cut sizes rank differently).
- As in gdal_sieve, a small region with no valid neighbour (enclosed by nodata), or whose chain of
  small neighbours loops back, is kept.
- Memory: a window holds at most ``WINDOW_PIXELS`` pixels (about 5 bytes each while sieving), so
  the halo is capped at ``(WINDOW_PIXELS / width - strip rows) / 2`` rows. When ``T - 1`` exceeds
  the cap (large units in small pixels on wide rasters) point 2 no longer holds for narrow
  regions: a large region whose part inside the window has fewer than ``T`` pixels although it
  spans the whole halo (a road or river a few pixels wide running across the strips) is merged
  away in that strip. A warning says so when it applies.
- Geographic CRSs: ``T`` comes from the geodesic area of a pixel at the strip's middle row.
"""

from __future__ import annotations

import math
import warnings
from typing import Protocol

import numpy as np
import rasterio.features
from rasterio.io import DatasetReader
from rasterio.windows import Window

WINDOW_PIXELS = 32 * 2**20


def sieve_threshold(min_area_m2: float, pixel_area_m2: float) -> int:
    """``T``: regions with fewer pixels than this are below ``min_area_m2`` (0: no sieve)."""
    if min_area_m2 <= 0:
        return 0
    return math.ceil(min_area_m2 / pixel_area_m2)


def halo_rows(threshold: int, strip_rows: int, width: int) -> int:
    """Rows read above and below a strip so the sieve sees small regions whole (module doc)."""
    if threshold <= 1:
        return 0
    cap = max(0, (WINDOW_PIXELS // width - strip_rows) // 2)
    if threshold - 1 > cap:
        warnings.warn(
            f"minimum mapping unit of {threshold} pixels needs a sieve halo of {threshold - 1}"
            f" rows, capped at {cap} to bound memory: narrow regions crossing strips can be"
            " merged away although they are larger than the unit",
            stacklevel=3,
        )
    return min(threshold - 1, cap)


class RowSource(Protocol):
    """Full-width class rows of a raster, by row range: a raster on disk or rows being produced."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start``..``stop`` (uint8, ``stop - start`` x ``width``)."""
        ...


class DatasetRows:
    """Band 1 of an open raster as a ``RowSource``."""

    def __init__(self, dataset: DatasetReader) -> None:
        self.dataset = dataset
        self.width, self.height = dataset.width, dataset.height

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self.dataset.read(1, window=Window(0, start, self.width, stop - start))


def read_strip(source: RowSource, top: int, bottom: int, nodata: int, threshold: int) -> np.ndarray:
    """Class rows ``top``..``bottom`` of ``source``, sieved to ``threshold`` pixels if it is > 1."""
    halo = halo_rows(threshold, bottom - top, source.width)
    start, stop = max(0, top - halo), min(source.height, bottom + halo)
    classes = source.rows(start, stop)
    if threshold > 1:
        classes = rasterio.features.sieve(classes, threshold, mask=classes != nodata)
    return classes[top - start : bottom - start]
