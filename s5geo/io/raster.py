"""Writing class rasters: streamed rows into a staging GeoTIFF, then a Cloud-Optimized GeoTIFF.

A COG keeps its overviews before the full-resolution data, which cannot be produced while rows are
still arriving; so rows go into a tiled staging GeoTIFF in whole 512-row block rows (each tile is
written once), and GDAL's COG driver then copies it with overviews by mode (ready-made ones from
``s5geo.io.overviews`` when given). Memory stays at one block row of the scene, whatever its
height.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

NODATA = 255
BLOCK = 512
# GDAL's block cache during prediction and the COG copy, in bytes: rasterio.Env hands an integer
# GDAL_CACHEMAX to GDALSetCacheMax64, which takes bytes (GDAL's own config option reads small
# numbers as MB). GDAL's default is 5 % of RAM, which a large scene fills with decoded blocks
# (reads of VRT mosaics, then the copy): a fixed, small cache keeps peak memory independent of the
# scene size (docs/BENCHMARKS.md). Until 2026-12-06 this was 16 *bytes*, no cache at all: every
# overlapping window decoded its blocks again (1.39 s against 0.04 s for the windows of 25 MP).
GDAL_CACHE_BYTES = 16 << 20
_GDAL_ENV = {"GDAL_CACHEMAX": GDAL_CACHE_BYTES, "GDAL_NUM_THREADS": "ALL_CPUS"}


@dataclass(frozen=True)
class GridSpec:
    """Where an output raster lies: size, CRS and transform (those of the scene or its extent)."""

    width: int
    height: int
    crs: CRS | None
    transform: Affine


def hex_to_rgba(color: str) -> tuple[int, int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255


class BlockRowWriter:
    """Buffers rows of a single-band uint8 raster and writes them in whole block rows.

    ``block``: the file's tile side, and the rows buffered (a staging file that is copied to a
    COG anyway can use smaller tiles, and so less memory, than the COG's 512).
    """

    def __init__(self, path: Path, grid: GridSpec, description: str, block: int = BLOCK) -> None:
        self.path = path
        self.grid = grid
        self.block = block
        self._buf = np.full((block, grid.width), NODATA, dtype=np.uint8)
        self._row0 = 0  # scene row of the buffer's first row
        self._fill = 0  # rows held in the buffer
        profile = {
            "driver": "GTiff",
            "width": grid.width,
            "height": grid.height,
            "count": 1,
            "dtype": "uint8",
            "crs": grid.crs,
            "transform": grid.transform,
            "nodata": NODATA,
            "tiled": True,
            "blockxsize": block,
            "blockysize": block,
            "compress": "ZSTD",
            "zstd_level": 1,
            "bigtiff": "IF_SAFER",
        }
        with warnings.catch_warnings():
            # A scene without georeferencing gives an output on its pixel grid, as the predictor
            # tells the user once; rasterio's warning about the identity transform is noise here.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._ds = rasterio.open(path, "w", **profile)
        self._ds.set_band_description(1, description)

    def write(self, row: int, rows: np.ndarray) -> None:
        """Append ``rows`` (h x width), which must start where the previous ones ended."""
        if row != self._row0 + self._fill:
            raise ValueError(
                f"rows arrive out of order: got {row}, expected {self._row0 + self._fill}"
            )
        i = 0
        while i < len(rows):
            n = min(self.block - self._fill, len(rows) - i)
            self._buf[self._fill : self._fill + n] = rows[i : i + n]
            self._fill += n
            i += n
            if self._fill == self.block:
                self._flush()

    def _flush(self) -> None:
        if self._fill:
            window = rasterio.windows.Window(0, self._row0, self.grid.width, self._fill)
            self._ds.write(self._buf[: self._fill], 1, window=window)
            self._row0 += self._fill
            self._fill = 0

    def close(self) -> None:
        self._flush()
        self._ds.close()

    @property
    def dataset(self) -> rasterio.io.DatasetWriter:
        return self._ds


def write_class_cog(
    staging: Path,
    out: Path,
    class_names: dict[int, str],
    class_colors: dict[int, str],
    tags: dict[str, str],
    overviews: list[Path] | None = None,
) -> None:
    """Copy the staging raster to ``out`` as a COG with colour table, class names and tags.

    The colour table and category names make GDAL and QGIS show named, coloured classes; the class
    names are also stored as JSON in the ``S5GEO_CLASS_NAMES`` tag so the file is self-describing.
    Category names live in a ``.aux.xml`` sidecar (GeoTIFF has no tag for them); the caller
    reserves ``out.aux.xml`` as an output. ``overviews``: files of ready-made overview levels,
    largest first (``s5geo.io.overviews``); without them GDAL computes overviews by mode.
    """
    with rasterio.Env(**_GDAL_ENV), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # as in BlockRowWriter
        with rasterio.open(staging, "r+") as ds:
            cmap = {i: (0, 0, 0, 0) for i in range(256)}
            for k in class_names:
                cmap[k] = hex_to_rgba(class_colors[k])
            ds.write_colormap(1, cmap)
            ds.update_tags(
                S5GEO_CLASS_NAMES=json.dumps({str(k): v for k, v in sorted(class_names.items())}),
                S5GEO_CLASS_COLORS=json.dumps(
                    {str(k): class_colors[k] for k in sorted(class_names)}
                ),
                **tags,
            )
        source, ready = staging, {}
        if overviews:
            source = staging.with_name(staging.name + ".vrt")
            _vrt_with_overviews(staging, overviews, source)
            ready = {"OVERVIEWS": "FORCE_USE_EXISTING"}
        try:
            _copy_cog(source, out, OVERVIEW_RESAMPLING="MODE", **ready)
        finally:
            if source != staging:
                source.unlink(missing_ok=True)


def _vrt_with_overviews(staging: Path, overviews: list[Path], vrt: Path) -> None:
    """A VRT of ``staging`` (colour table, tags and all, as GDAL writes it) listing ``overviews``
    as the band's overviews, which GDAL's COG driver then copies instead of computing."""
    rasterio.shutil.copy(staging, vrt, driver="VRT")
    listed = "".join(
        f'<Overview><SourceFilename relativeToVRT="0">{escape(str(p.resolve()))}'
        "</SourceFilename><SourceBand>1</SourceBand></Overview>"
        for p in overviews
    )
    xml = vrt.read_text(encoding="utf-8")
    if xml.count("</VRTRasterBand>") != 1:
        raise RuntimeError(f"internal error: unexpected VRT of {staging.name}")
    vrt.write_text(xml.replace("</VRTRasterBand>", listed + "</VRTRasterBand>"), encoding="utf-8")


def write_confidence_cog(staging: Path, out: Path) -> None:
    """Copy the staging confidence raster (0-100 %, nodata 255) to ``out`` as a COG."""
    with rasterio.Env(**_GDAL_ENV):
        _copy_cog(staging, out, PREDICTOR="2", OVERVIEW_RESAMPLING="AVERAGE")


def _copy_cog(source: Path, out: Path, **options: str) -> None:
    """GDAL's COG copy with s5geo's layout (DEFLATE, 512-px tiles) and ``options``."""
    rasterio.shutil.copy(
        source,
        out,
        driver="COG",
        COMPRESS="DEFLATE",
        BLOCKSIZE=BLOCK,
        BIGTIFF="IF_SAFER",
        NUM_THREADS="ALL_CPUS",
        **options,
    )


def category_names_aux_xml(class_names: dict[int, str]) -> str:
    """GDAL PAM sidecar text holding the band's category names (index = class id)."""
    n = max(class_names) + 1
    cats = "".join(
        f"      <Category>{escape(class_names.get(i, ''))}</Category>\n" for i in range(n)
    )
    return (
        "<PAMDataset>\n"
        '  <PAMRasterBand band="1">\n'
        f"    <CategoryNames>\n{cats}    </CategoryNames>\n"
        "  </PAMRasterBand>\n"
        "</PAMDataset>\n"
    )
