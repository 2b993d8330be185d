"""Writing class rasters: streamed rows into a staging GeoTIFF, then a Cloud-Optimized GeoTIFF.

A COG keeps its overviews before the full-resolution data, which cannot be produced while rows are
still arriving; so rows go into a tiled staging GeoTIFF in whole 512-row block rows (each tile is
written once), and GDAL's COG driver then copies it with overviews by mode (ready-made ones from
``s5geo.io.overviews`` when given). Memory stays at one block row of the scene, whatever its
height.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from s5geo.modelfile import NODATA

BLOCK = 512
# GDAL's block cache wherever s5geo reads or copies rasters (prediction, the COG copy, polygons),
# in bytes: rasterio.Env hands an integer GDAL_CACHEMAX to GDALSetCacheMax64, which takes bytes
# (GDAL's own config option reads small numbers as MB). GDAL's default is 5 % of RAM, which a
# large scene fills with decoded blocks (reads of VRT mosaics, then the copy): a fixed, small cache
# keeps peak memory independent of the scene size. Its size holds a row of 512-px blocks of a
# one-byte raster up to 65,536 px wide (one strip the polygonizer reads), and so the blocks that
# neighbouring prediction windows share, each decoded once.
GDAL_CACHE_BYTES = 32 << 20
_GDAL_ENV = {"GDAL_CACHEMAX": GDAL_CACHE_BYTES, "GDAL_NUM_THREADS": "ALL_CPUS"}


# What rasterio raises for GDAL's errors: its own exceptions, and GDAL's CPLE_* classes, which
# rasterio does not export publicly.
GDAL_ERRORS = (RasterioError, CPLE_BaseError)


@functools.cache
def quiet_libtiff() -> None:
    """Stop libtiff from printing errors that GDAL does not see to stderr.

    GDAL (3.7 and later, with libtiff 4.5 and later) gives each TIFF it opens its own error
    handler, which raises through rasterio; but an I/O error raised where libtiff has no handle
    at hand (``_tiffWriteProc: No space left on device.`` on a full disk) goes to libtiff's
    process-wide handler, whose default prints it: stray lines around the one ``error:`` line
    of the command line. Such failures are caught by ``check_complete``, so the process-wide
    handler is unset (libtiff then stays silent). Only where GDAL is known to use per-file
    handlers: older GDALs set the process-wide one themselves. Linux only (the libtiff that GDAL
    loaded is found in /proc/self/maps); elsewhere the lines still print, harmlessly.
    """
    version = tuple(int(v) for v in rasterio.__gdal_version__.split(".")[:2])
    maps = Path("/proc/self/maps")
    if version < (3, 7) or not maps.exists():
        return
    libs = {line.split()[-1] for line in maps.read_text().splitlines() if "/libtiff" in line}
    for lib in libs:
        try:
            tiff = ctypes.CDLL(lib)
        except OSError:
            continue
        if hasattr(tiff, "TIFFOpenOptionsSetErrorHandlerExtR"):  # libtiff 4.5 or later
            tiff.TIFFSetErrorHandler.restype = ctypes.c_void_p
            tiff.TIFFSetErrorHandler.argtypes = [ctypes.c_void_p]
            tiff.TIFFSetErrorHandler(None)


@contextmanager
def gdal_writing(path: Path) -> Iterator[None]:
    """Turn GDAL's errors while writing ``path`` into an ``OSError`` naming ``path``.

    GDAL's messages seldom name the file ("TIFFAppendToStrip:Write error at scanline 256"), and
    ``s5geo.io.atomic`` finds the output a write error concerns by the file it names.
    """
    quiet_libtiff()
    try:
        yield
    except GDAL_ERRORS as exc:
        text = str(exc.__cause__ or exc).strip() or type(exc).__name__
        code = errno.ENOSPC if "No space left" in text else errno.EIO
        raise OSError(code, text.splitlines()[0], str(path)) from exc


def check_complete(path: Path, *, read: bool) -> None:
    """Refuse a GeoTIFF that GDAL left incomplete, before it can be committed.

    GDAL does not always report a failed write: on a full disk, libtiff's "No space left on
    device" during the final flush of a copy is printed and the copy returns as if it had
    succeeded, leaving a truncated file; a tile whose write failed keeps offset 0, which readers
    take as an empty (nodata) tile. So every tile of every level must have an offset and a size
    that lie within the file, and with ``read`` every tile is decoded (one tile in memory at a
    time; 0.01 s for a 25 MP class map). Raises ``OSError`` naming ``path``.
    """
    size = path.stat().st_size
    with gdal_writing(path), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            levels: list[int | None] = [None, *range(len(ds.overviews(1)))]
        for level in levels:
            with rasterio.open(path, overview_level=level) as ds:
                for bidx in ds.indexes:
                    _check_tiles(ds, bidx, size, path, read)


def _check_tiles(ds: rasterio.DatasetReader, bidx: int, size: int, path: Path, read: bool) -> None:
    for (row, col), window in ds.block_windows(bidx):
        offset = ds.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=bidx)
        nbytes = ds.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=bidx)
        if not offset or not nbytes or int(offset) + int(nbytes) > size:
            raise OSError(
                errno.EIO, f"it is incomplete (tile {col},{row} of band {bidx} missing)", str(path)
            )
        if read:
            ds.read(bidx, window=window)


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
        with gdal_writing(path), warnings.catch_warnings():
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
            with gdal_writing(self.path):
                self._ds.write(self._buf[: self._fill], 1, window=window)
            self._row0 += self._fill
            self._fill = 0

    def close(self) -> None:
        """Write the last rows, close the file and check that every tile reached the disk."""
        self._flush()
        with gdal_writing(self.path):
            self._ds.close()
        check_complete(self.path, read=False)  # the COG copy decodes every tile anyway

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
        with gdal_writing(staging), rasterio.open(staging, "r+") as ds:
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
            with gdal_writing(source):
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
    """GDAL's COG copy with s5geo's layout (DEFLATE, 512-px tiles) and ``options``, checked
    complete by reading it back (``check_complete``: GDAL can fail silently on a full disk)."""
    with gdal_writing(out):
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
    check_complete(out, read=True)


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
