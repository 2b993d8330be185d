"""Ground measures in a raster's CRS: polygon areas in m², pixel areas, metres in CRS units.

Projected CRSs measure planar area in the CRS's linear unit, converted to metres with the unit's
factor (US survey feet and the like). Geographic CRSs measure geodesic area on the CRS's
ellipsoid (pyproj.Geod), the only meaningful area for coordinates in degrees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError

from s5geo.errors import UserError

if TYPE_CHECKING:  # pyproj is imported only for geographic CRSs: importing it costs memory
    import pyproj


@dataclass(frozen=True)
class GroundMetrics:
    """Areas and lengths on the ground for rasters with this CRS and transform.

    ``geod`` is the ellipsoid of a geographic CRS (None for projected ones); ``unit_m`` the length
    of the projected CRS's linear unit in metres.
    """

    transform: Affine
    geod: pyproj.Geod | None
    unit_m: float

    @classmethod
    def of(cls, crs: CRS | None, transform: Affine) -> GroundMetrics:
        """Metrics of a raster's CRS; a raster without a CRS is refused (areas need one)."""
        if crs is None or not crs.to_wkt():
            raise UserError("the raster has no CRS: polygon areas in m² need one")
        if crs.is_geographic:
            import pyproj

            return cls(transform, pyproj.CRS.from_wkt(crs.to_wkt()).get_geod(), 1.0)
        try:
            _, factor = crs.linear_units_factor
        except CRSError as error:
            raise UserError(f"the raster's CRS has no linear unit: {error}") from error
        return cls(transform, None, float(factor))

    def areas_m2(self, polygons: np.ndarray) -> np.ndarray:
        """Area of each polygon (world coordinates) in square metres."""
        if self.geod is None:
            return shapely.area(polygons) * self.unit_m**2
        geod = self.geod
        # pyproj adds the ring areas with their signs: counter-clockwise shells, clockwise holes.
        oriented = shapely.orient_polygons(polygons, exterior_cw=False)
        return np.fromiter(
            (abs(geod.geometry_area_perimeter(p)[0]) for p in oriented),
            dtype=np.float64,
            count=len(oriented),
        )

    def large_area_m2(
        self, pixel_area: float, world_rings: Iterable[tuple[np.ndarray, np.ndarray]]
    ) -> float:
        """Area in m² of a polygon too large to hold: ``pixel_area`` is its area in pixels.

        Projected CRSs need nothing more (the transform scales every area alike).
        Geographic ones read its rings, streamed as parts of (counts of the rings starting
        there, CRS coordinates), as ``arcs.RingPart`` describes; ``world_rings`` is not read
        otherwise.
        """
        if self.geod is None:
            return pixel_area * abs(self.transform.determinant) * self.unit_m**2
        return _streamed_geodesic_area(self.geod, world_rings)

    def pixel_area_m2(self, row: float, col: float) -> float:
        """Ground area of the pixel whose top-left corner is at (``row``, ``col``)."""
        if self.geod is None:
            return abs(self.transform.determinant) * self.unit_m**2
        corners = [
            self.transform * (col + dx, row + dy) for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1))
        ]
        lons, lats = zip(*corners, strict=True)
        return abs(self.geod.polygon_area_perimeter(lons, lats)[0])

    def metres_to_crs(self, metres: float, row: float, col: float) -> float:
        """``metres`` as a length in CRS units around pixel (``row``, ``col``).

        For geographic CRSs degrees of longitude and latitude differ in length; this returns the
        geometric mean of the two there, which suits a tolerance (simplification).
        """
        if self.geod is None:
            return metres / self.unit_m
        lon, lat = self.transform * (col, row)
        east_lon, _, _ = self.geod.fwd(lon, lat, 90.0, metres)
        _, north_lat, _ = self.geod.fwd(lon, lat, 0.0, metres)
        return float(np.sqrt(abs(east_lon - lon) * abs(north_lat - lat)))


# Points per pyproj call when summing a streamed polygon's geodesic area.
GEODESIC_POINTS = 1 << 16


def _streamed_geodesic_area(
    geod: pyproj.Geod, parts: Iterable[tuple[np.ndarray, np.ndarray]]
) -> float:
    """Geodesic area of a polygon whose closed rings come in parts (lon, lat), a part at a time.

    pyproj measures one ring (or polygon) per call and has no incremental interface, so the
    rings are chained with an anchor point A between them (A, ring 1, A, ring 2, ...) and the
    chain is cut into windows that share their end points; each window W is measured as the
    polygon (A, W). A geodesic polygon's signed area is a sum over its edges, so the windows'
    areas add up to the chain's: every edge from or to A is walked once each way and cancels,
    leaving the rings' own edges. The shell and the holes turn opposite ways, so the sum is the
    shell's area minus the holes', up to its sign.
    """
    total = 0.0
    anchor: np.ndarray | None = None
    previous: np.ndarray | None = None  # last point of the chain so far
    for counts, coords in parts:
        if not len(coords):
            continue
        if anchor is None:
            anchor = coords[0].copy()
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)[: len(counts)]
        chain = np.insert(coords, starts, anchor, axis=0)
        if previous is not None:
            chain = np.concatenate((previous, chain))
        for a in range(0, len(chain) - 1, GEODESIC_POINTS):
            window = chain[a : a + GEODESIC_POINTS + 1]
            lons = np.concatenate(([anchor[0]], window[:, 0]))
            lats = np.concatenate(([anchor[1]], window[:, 1]))
            total += geod.polygon_area_perimeter(lons, lats)[0]
        previous = chain[-1:]
    return abs(total)
