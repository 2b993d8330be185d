"""Ground measures in a raster's CRS: polygon areas in m², pixel areas, metres in CRS units.

Projected CRSs measure planar area in the CRS's linear unit, converted to metres with the unit's
factor (US survey feet and the like). Geographic CRSs measure geodesic area on the CRS's
ellipsoid (pyproj.Geod), the only meaningful area for coordinates in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyproj
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError

from s5geo.errors import UserError


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
