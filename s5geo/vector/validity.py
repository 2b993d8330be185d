"""Every output geometry a valid polygon: by construction where it can be shown, else checked.

Polygons straight from GDAL's polygonizer are valid with 4-connectivity since GDAL 3.7 (its
two-arm chains edge tracer; GDAL issue 7369 notes that only 8-connectivity can produce invalid
rings); older GDALs, as bundled with older rasterio wheels, could emit self-touching rings. The
seam merge keeps validity: ``merge._merge_pieces`` checks its overlay and adds only holes that
were valid before, and ``arcs`` links rings that are valid by construction (its tests compare
them with shapely's union on many random rasters). All these polygons are rectilinear, and an
axis-aligned transform moves each coordinate by a strictly monotonic map, which keeps every
order relation between axis-parallel segments, hence validity. So polygons need checking only
after coverage simplification, with a rotated or sheared transform, or with an old GDAL; then
invalid ones are repaired. Large regions (``merge.LargeRegion``) are never in memory and cannot
be checked: they are not simplified, not assembled out of core with an old GDAL, and a rotated
or sheared transform maps them by the same affine arithmetic as the others, which keeps their
rings apart unless two of their vertices are closer than the rounding of their coordinates.
"""

from __future__ import annotations

import numpy as np
import rasterio
import shapely
from affine import Affine

_GDAL_VERSION = tuple(int(part) for part in rasterio.__gdal_version__.split(".")[:2])
GDAL_POLYGONS_VALID = _GDAL_VERSION >= (3, 7)


def needs_check(transform: Affine, simplified: bool) -> bool:
    """Whether polygons made with ``transform`` (and simplified or not) must be checked."""
    axis_aligned = transform.b == 0 and transform.d == 0
    return simplified or not axis_aligned or not GDAL_POLYGONS_VALID


def valid_polygons(polygons: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valid, non-empty Polygons with their classes: invalid ones repaired, multi-parts split.

    Repair uses ``make_valid`` (structure method, collapsed parts dropped); a multi-part result
    becomes one feature per part with the same class.
    """
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():
        polygons = polygons.copy()
        polygons[invalid] = shapely.make_valid(
            polygons[invalid], method="structure", keep_collapsed=False
        )
    parts, index = shapely.get_parts(polygons, return_index=True)
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(parts)
    return parts[keep], classes[index[keep]]
