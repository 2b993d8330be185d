"""Opening scenes and describing them: checks that turn bad input into one readable message.

A scene is any raster GDAL reads (GeoTIFF, COG, VRT, JPEG2000, ...). Its nodata is whatever GDAL's
mask says: a nodata value, an internal mask band, or an alpha band.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from s5geo.errors import UserError

# Metres per degree of latitude (mean) and of longitude at the equator, for the nominal pixel size
# of scenes in a geographic CRS. Used only to compare resolutions, never for areas.
_M_PER_DEG = 111_320.0


def is_dataset_name(name: str | Path) -> bool:
    """Whether ``name`` is a GDAL dataset name rather than a file path: a virtual file system
    (``/vsizip//abs/path.zip/file.tif``, ``/vsicurl/...``) or a URL (``https://...``).

    Such names are handed to GDAL as given: ``Path()`` would collapse the double slash that
    ``/vsizip//`` needs for an absolute archive path, and the ``//`` of a URL.
    """
    text = str(name)
    return text.startswith("/vsi") or "://" in text


@contextmanager
def open_scene(path: str | Path) -> Iterator[rasterio.DatasetReader]:
    """Open a raster for reading, or raise :class:`UserError` saying why it cannot be read.

    ``path`` is a file path or a GDAL dataset name (:func:`is_dataset_name`); only file paths are
    checked for existence first, and neither is normalised.
    """
    name = path if isinstance(path, str) else str(path)
    if not is_dataset_name(name):
        p = Path(name)
        if not p.exists():
            raise UserError(f"{name}: no such file")
        if p.is_dir():
            raise UserError(f"{name} is a folder, not a raster")
    try:
        with warnings.catch_warnings():
            # A scene without georeferencing is fine (it is used on its pixel grid); the caller
            # says so in its own words (``is_georeferenced``) instead of rasterio's warning.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(name)
    except RasterioIOError as exc:
        layers = _vector_layers(name)
        if layers:
            raise UserError(_vector_message(name, layers)) from None
        raise UserError(f"{name} is not a raster GDAL can read ({_first_line(exc)})") from None
    try:
        if ds.count == 0 or ds.width == 0 or ds.height == 0:
            layers = _vector_layers(name)
            if layers:
                raise UserError(_vector_message(name, layers))
            raise UserError(f"{name} has no raster bands (is it a vector file?)")
        yield ds
    finally:
        ds.close()


def _vector_layers(name: str) -> list[str]:
    """The vector layers GDAL finds in ``name`` (none for a raster or an unreadable file).

    Asked only after the raster open failed, to tell a vector file from a broken raster:
    rasterio opens rasters only, so GDAL calls a GeoPackage of polygons "not recognized".
    """
    import pyogrio  # a dependency of the vector outputs; imported only on this error path

    try:
        return [str(layer) for layer, _ in pyogrio.list_layers(name)]
    except Exception:  # pyogrio's DataSourceError and GDAL's own errors: not a vector file
        return []


def _vector_message(name: str, layers: list[str]) -> str:
    shown = ", ".join(layers[:3]) + (", ..." if len(layers) > 3 else "")
    return (
        f"{name} is a vector file (layers: {shown}), not a raster: give the imagery to segment "
        "(GeoTIFF, COG, VRT, ...)"
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def refuse_gcp_only(ds: rasterio.DatasetReader, name: str) -> None:
    """Refuse a scene georeferenced only by ground control points (no geotransform, no CRS).

    s5geo writes its outputs on the scene's own grid, which for such a scene is only an image
    grid: the map would carry no position, and polygons no areas. Warping it (which GDAL does
    from the GCPs) gives a regular grid that every GIS reads, so the user is told to do that.
    """
    gcps, _ = ds.gcps
    if gcps and ds.transform.is_identity:
        raise UserError(
            f"{name} is georeferenced only by {len(gcps)} ground control points (GCPs), which "
            "s5geo does not use: warp it to a map grid first, e.g. gdalwarp -r bilinear "
            f"{name} warped.tif, and segment warped.tif"
        )


def check_readable(ds: rasterio.DatasetReader, name: str) -> None:
    """Refuse a scene whose files are missing or whose pixels cannot be read, before any work.

    GDAL opens a VRT without its sources and a truncated GeoTIFF from its header alone, and
    fails only when pixels are read (printing its own ``ERROR`` line if nothing catches it).
    So every source file GDAL lists must exist, and the first and last pixel of every band are
    read: a truncated file lacks its last blocks. Costs a few block reads.
    """
    for source in ds.files[1:]:
        if not is_dataset_name(source) and not Path(source).exists():
            raise UserError(
                f"{name} reads {source}, which does not exist (a moved or deleted file?)"
            )
    corners = (Window(0, 0, 1, 1), Window(ds.width - 1, ds.height - 1, 1, 1))
    try:
        for window in corners:
            ds.read(window=window)
    except RasterioIOError as exc:
        # rasterio's own message is "Read failed. See previous exception": GDAL's is the cause.
        cause = _first_line(exc.__cause__ or exc)
        raise UserError(
            f"{name}: its pixels cannot be read ({cause}); the file may be truncated or corrupt"
        ) from None


@dataclass(frozen=True)
class SceneProfile:
    """What ``s5geo info`` reports about a scene, and what prediction needs to know."""

    path: str
    driver: str
    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]
    crs: str | None
    epsg: int | None
    is_geographic: bool
    transform: tuple[float, ...]
    res: tuple[float, float]
    bounds: tuple[float, float, float, float]
    nodata: float | None
    mask: str
    block_shapes: tuple[tuple[int, int], ...]
    overviews: tuple[int, ...]
    gsd_m: float | None
    gcps: int = 0  # ground control points (a scene with only these must be warped first)

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "driver": self.driver,
            "width": self.width,
            "height": self.height,
            "bands": self.count,
            "dtypes": list(self.dtypes),
            "crs": self.crs,
            "epsg": self.epsg,
            "geographic": self.is_geographic,
            "transform": list(self.transform),
            "resolution": list(self.res),
            "gsd_m": self.gsd_m,
            "bounds": list(self.bounds),
            "nodata": self.nodata,
            "mask": self.mask,
            "block_shapes": [list(b) for b in self.block_shapes],
            "overviews": list(self.overviews),
            "gcps": self.gcps,
        }


def is_georeferenced(ds: rasterio.DatasetReader) -> bool:
    """Whether the scene has a CRS or at least a geotransform other than GDAL's identity."""
    return ds.crs is not None or not ds.transform.is_identity


def mask_kind(ds: rasterio.DatasetReader) -> str:
    """How the scene marks invalid pixels: 'nodata', 'alpha', 'mask band' or 'none'."""
    flags = ds.mask_flag_enums[0]
    if MaskFlags.alpha in flags:
        return "alpha"
    if MaskFlags.per_dataset in flags:
        return "mask band"
    if MaskFlags.nodata in flags:
        return "nodata"
    return "none"


def ground_sample_distance_m(ds: rasterio.DatasetReader) -> float | None:
    """Mean pixel size in metres (approximate for geographic CRSs), or None without a CRS."""
    if ds.crs is None:
        return None
    xres, yres = ds.res
    if ds.crs.is_geographic:
        lat = math.radians((ds.bounds.top + ds.bounds.bottom) / 2.0)
        return float((xres * _M_PER_DEG * math.cos(lat) + yres * _M_PER_DEG) / 2.0)
    factor = ds.crs.linear_units_factor[1] if ds.crs.is_projected else 1.0
    return float((xres + yres) / 2.0 * factor)


def scene_profile(path: str | Path) -> SceneProfile:
    """Read a scene's profile; of its pixels only the few :func:`check_readable` reads."""
    with open_scene(path) as ds:
        check_readable(ds, str(path))
        epsg = ds.crs.to_epsg() if ds.crs else None
        return SceneProfile(
            path=str(path),
            driver=ds.driver,
            width=ds.width,
            height=ds.height,
            count=ds.count,
            dtypes=tuple(ds.dtypes),
            crs=ds.crs.to_string() if ds.crs else None,
            epsg=epsg,
            is_geographic=bool(ds.crs and ds.crs.is_geographic),
            transform=tuple(ds.transform)[:6],
            res=(float(ds.res[0]), float(ds.res[1])),
            bounds=tuple(ds.bounds),
            nodata=ds.nodata,
            mask=mask_kind(ds),
            block_shapes=tuple(tuple(b) for b in ds.block_shapes),
            overviews=tuple(ds.overviews(1)),
            gsd_m=ground_sample_distance_m(ds),
            gcps=len(ds.gcps[0]),
        )


def read_window(
    ds: rasterio.DatasetReader,
    window: Window,
    bands: tuple[int, ...],
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read ``bands`` of ``window`` as float32 [C, h, w].

    With ``out_shape`` the window is resampled (bilinear) to that (h, w), for models trained at
    another ground sample distance.
    """
    if out_shape is None:
        return ds.read(bands, window=window, out_dtype="float32")
    return ds.read(
        bands,
        window=window,
        out_shape=(len(bands), *out_shape),
        out_dtype="float32",
        resampling=Resampling.bilinear,
    )


def window_reader(
    ds: rasterio.DatasetReader, bands: tuple[int, ...]
) -> Callable[[Window], tuple[np.ndarray, np.ndarray]]:
    """A function ``window -> (pixels, valid)``: ``bands`` as float32 [C, h, w] and GDAL's dataset
    mask (rasterio's ``dataset_mask() > 0``) as bool [h, w], in one read of the window.

    Asking GDAL for the mask reads every band of the window again: on the 4-band NAIP scene read
    by an RGB model that second read cost three times the pixel read itself (docs/BENCHMARKS.md).
    So the mask comes from the same read wherever GDAL's rule allows:

    - no mask: every pixel is valid;
    - nodata values: a pixel is invalid when every band holds its own nodata value (a band without
      one is always valid); bands the model does not read are read along in the same call;
    - alpha band: read along, valid where alpha > 0 (GDAL's alpha mask is non-zero exactly there);
    - internal mask band: GDAL's mask, which reads only that band;
    - in float scenes, a pixel with NaN or +-inf in a band the model reads is invalid too (and
      zeroed).
    """
    read = _mask_reader(ds, bands)
    if not any(np.dtype(d).kind == "f" for d in ds.dtypes):
        return read

    def finite_only(window: Window) -> tuple[np.ndarray, np.ndarray]:
        # NaN and infinities are never values a model can use: they count as nodata even where
        # the scene does not declare them (float rasters often mark gaps only with NaN), and
        # zeroing them keeps them out of normalisation and statistics (no numpy warnings).
        data, valid = read(window)
        bad = ~np.isfinite(data).all(axis=0)
        if bad.any():
            valid = valid & ~bad
            data[:, bad] = 0.0
        return data, valid

    return finite_only


def _mask_reader(
    ds: rasterio.DatasetReader, bands: tuple[int, ...]
) -> Callable[[Window], tuple[np.ndarray, np.ndarray]]:
    """:func:`window_reader` before its non-finite rule: GDAL's mask as the docstring there says."""
    kind = mask_kind(ds)
    if kind == "none":
        return lambda window: (read_window(ds, window, bands), _all_valid(window))
    if kind == "mask band":
        return lambda window: (read_window(ds, window, bands), ds.dataset_mask(window=window) > 0)
    if kind == "alpha":
        alpha = 1 + list(ds.colorinterp).index(ColorInterp.alpha)

        def with_alpha(window: Window) -> tuple[np.ndarray, np.ndarray]:
            data = read_window(ds, window, (*bands, alpha))
            return data[:-1], data[-1] > 0

        return with_alpha
    every = tuple(range(1, ds.count + 1))
    nodata = ds.nodatavals
    if any(v is None for v in nodata):  # a band without nodata: that band keeps every pixel
        return lambda window: (read_window(ds, window, bands), _all_valid(window))
    pick = None if bands == every else [b - 1 for b in bands]

    def with_nodata(window: Window) -> tuple[np.ndarray, np.ndarray]:
        data = read_window(ds, window, every)
        invalid = np.ones(data.shape[1:], bool)
        for band, value in zip(data, nodata, strict=True):
            invalid &= np.isnan(band) if np.isnan(value) else band == value
        return (data if pick is None else data[pick]), ~invalid

    return with_nodata


def _all_valid(window: Window) -> np.ndarray:
    return np.ones((int(window.height), int(window.width)), bool)
