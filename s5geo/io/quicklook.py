"""Quicklook PNGs of class rasters: the map at a glance, in the model's class colours."""

from __future__ import annotations

import warnings
from pathlib import Path

import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile


def write_quicklook(class_raster: Path, out_png: Path, max_side: int = 1024) -> None:
    """Write a paletted PNG of ``class_raster`` at most ``max_side`` pixels on its longer side.

    The raster's colour table is kept (nodata is transparent); reading at reduced size uses the
    COG's mode overviews, so this costs little even for huge scenes.
    """
    with rasterio.open(class_raster) as src:
        scale = max(1.0, max(src.width, src.height) / max_side)
        h, w = max(1, round(src.height / scale)), max(1, round(src.width / scale))
        data = src.read(1, out_shape=(h, w), resampling=Resampling.mode)
        cmap = src.colormap(1)
    # PNG is a copy-only GDAL driver: build the image in memory, then copy it out. PAM is off so no
    # .aux.xml sidecar appears next to the PNG.
    with warnings.catch_warnings():
        # A picture, not a map. The filter is set before the in-memory raster is opened, since
        # rasterio warns while opening (and again while copying it out).
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with (
            rasterio.Env(GDAL_PAM_ENABLED="NO"),
            MemoryFile() as mem,
            mem.open(driver="GTiff", width=w, height=h, count=1, dtype="uint8") as tmp,
        ):
            tmp.write(data, 1)
            tmp.write_colormap(1, cmap)
            rasterio.shutil.copy(tmp, out_png, driver="PNG")
