"""GDAL's block cache as s5geo sets it: megabytes, not bytes."""

from __future__ import annotations

import rasterio
from rasterio.env import get_gdal_config

from s5geo.io.raster import GDAL_CACHE_BYTES
from s5geo.vector.polygonize import GDAL_CACHE_BYTES as POLYGONIZE_CACHE_BYTES


def test_block_caches_hold_megabytes_inside_their_environments() -> None:
    # rasterio hands an integer GDAL_CACHEMAX to GDALSetCacheMax64 in bytes: a value meant as MB
    # (16) left GDAL with a 16-byte cache, and every overlapping window decoded its blocks again.
    for cache in (GDAL_CACHE_BYTES, POLYGONIZE_CACHE_BYTES):
        with rasterio.Env(GDAL_CACHEMAX=cache):
            assert int(get_gdal_config("GDAL_CACHEMAX")) >= 8 << 20
