"""Topology-preserving simplification of polygons that tile part of the raster (a coverage).

``shapely.coverage_simplify`` (GEOS CoverageSimplifier, Visvalingam-Whyatt) simplifies each edge
shared by two polygons once, so both neighbours keep the same simplified edge: no gaps, no
overlaps. It needs a valid coverage, where shared edges have the same vertices. Polygons from
GDAL's polygonizer and from the seam merge meet along pixel edges but not always at the same
vertices (a long edge facing two neighbours has no vertex where they meet), so edges are first
split at every pixel corner (``split_at_pixel_corners``, in pixel coordinates, where corners are
exact integers); then vertices match.

Batches are simplified one at a time with ``simplify_boundary=False``: the batch's outer boundary
stays as it is. Edges against nodata, the raster's border and polygons written in another batch
are therefore not simplified, and that is what keeps neighbours in different batches without gaps
or overlaps.
"""

from __future__ import annotations

import numpy as np
import shapely


def split_at_pixel_corners(polygons: np.ndarray) -> np.ndarray:
    """Polygons in pixel coordinates with a vertex at every pixel corner along their edges."""
    return shapely.segmentize(polygons, 1.0)


def simplify_coverage(polygons: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify a valid coverage, keeping its outer boundary; ``tolerance`` in CRS units.

    The tolerance is roughly the square root of the area of the triangles removed. Vertices left
    collinear (the pixel corners on the outer boundary) are dropped afterwards, which moves no
    edge.
    """
    simplified = shapely.coverage_simplify(polygons, tolerance, simplify_boundary=False)
    return shapely.simplify(simplified, 0.0)
