"""Class-raster strips to polygons with rasterio.features.shapes, and pixel to world coordinates.

Polygons are built in pixel coordinates: x is the column, y the row of a pixel corner, offset by
the strip's first row. Corners are small integers, exact in floating point, so polygons of
adjacent strips meet on exactly the same coordinates and merge exactly; world coordinates come
last (``to_world``), once per finished polygon.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import rasterio.features
import shapely
from affine import Affine


def strip_polygons(
    classes: np.ndarray, nodata: int, row_offset: int, chunk: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Polygons (pixel coordinates) and class ids of the 4-connected regions of one strip.

    ``classes`` is the strip (rows x full width, uint8); pixels equal to ``nodata`` make no
    polygon. Each region is one polygon, holes included. They come ``chunk`` at a time, so only
    GDAL's compact copy of the strip's polygons and one chunk of shapely polygons are in memory.
    """
    valid = classes != nodata
    if not valid.any():
        return
    features = rasterio.features.shapes(
        classes, mask=valid, connectivity=4, transform=Affine.translation(0, row_offset)
    )
    while True:
        with _cyclic_gc_paused():
            items = list(itertools.islice(features, chunk))
            if not items:
                return
            converted = _to_shapely(items)
            del items
        yield converted


def to_world(polygons: np.ndarray, transform: Affine) -> np.ndarray:
    """Polygons moved from pixel (column, row) coordinates to the raster's CRS.

    Through one flat coordinate array transformed in place, which holds a large region's vertices
    once (16 bytes each) next to the two geometries (``shapely.transform`` holds them twice).
    """
    if not len(polygons):
        return polygons
    kind, coords, offsets = shapely.to_ragged_array(polygons)
    affine_in_place(coords, transform)
    return shapely.from_ragged_array(kind, coords, offsets)


def affine_in_place(coords: np.ndarray, transform: Affine) -> None:
    """Move (n, 2) float64 pixel coordinates to the CRS in place.

    The same operations in the same order wherever coordinates are moved (``to_world`` and the
    streamed rings of large regions), so a vertex gets the same world coordinates either way.
    """
    a, b, c, d, e, f = transform[:6]
    x, y = coords[:, 0], coords[:, 1]
    world_y = d * x
    world_y += e * y
    world_y += f
    x *= a  # x' = a x + b y + c, summed in that order
    x += b * y
    x += c
    y[:] = world_y


def _to_shapely(features: list[tuple[dict[str, Any], float]]) -> tuple[np.ndarray, np.ndarray]:
    """GeoJSON-like polygons to shapely in one vectorized call (``from_ragged_array``).

    Building each polygon with ``shapely.geometry.shape`` costs several times more; here the rings'
    coordinates are flattened into one array with their offsets.
    """
    rings = [ring for geom, _ in features for ring in geom["coordinates"]]
    ring_counts = np.fromiter((len(geom["coordinates"]) for geom, _ in features), dtype=np.int64)
    ring_sizes = np.fromiter(map(len, rings), dtype=np.int64, count=len(rings))
    n_values = 2 * int(ring_sizes.sum())
    flat = itertools.chain.from_iterable(itertools.chain.from_iterable(rings))
    coords = np.fromiter(flat, dtype=np.float64, count=n_values).reshape(-1, 2)
    ring_offsets = np.concatenate(([0], np.cumsum(ring_sizes)))
    polygon_offsets = np.concatenate(([0], np.cumsum(ring_counts)))
    geoms = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, coords, (ring_offsets, polygon_offsets)
    )
    values = np.fromiter((value for _, value in features), dtype=np.float64, count=len(features))
    return geoms, values.astype(np.int64)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the GeoJSON-like features are converted.

    rasterio builds a dict, lists and a tuple per vertex; they hold no reference cycles, so the
    collector frees nothing here, but the allocations trigger it again and again and each pass
    walks every live object: measured, it doubles the polygonizing time. Reference counting still
    frees everything at once; the collector's previous state is restored on exit.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
