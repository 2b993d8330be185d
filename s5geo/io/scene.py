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


@contextmanager
def open_scene(path: str | Path) -> Iterator[rasterio.DatasetReader]:
    """Open a raster for reading, or raise :class:`UserError` saying why it cannot be read."""
    p = Path(path)
    if not p.exists() and not str(path).startswith("/vsi"):
        raise UserError(f"{path}: no such file")
    if p.is_dir():
        raise UserError(f"{path} is a folder, not a raster")
    try:
        with warnings.catch_warnings():
            # A scene without georeferencing is fine (it is used on its pixel grid); the caller
            # says so in its own words (``is_georeferenced``) instead of rasterio's warning.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path)
    except RasterioIOError as exc:
        raise UserError(f"{path} is not a raster GDAL can read ({_first_line(exc)})") from None
    try:
        if ds.count == 0 or ds.width == 0 or ds.height == 0:
            raise UserError(f"{path} has no raster bands (is it a vector file?)")
        yield ds
    finally:
        ds.close()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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
    """Read a scene's profile without reading its pixels."""
    with open_scene(path) as ds:
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
    - in float scenes, a pixel with NaN in a band the model reads is invalid too (and zeroed).
    """
    read = _mask_reader(ds, bands)
    if not any(np.dtype(d).kind == "f" for d in ds.dtypes):
        return read

    def without_nan(window: Window) -> tuple[np.ndarray, np.ndarray]:
        # NaN is never a value a model can use: it counts as nodata even where the scene does
        # not declare it (float rasters often mark gaps only with NaN).
        data, valid = read(window)
        nan = np.isnan(data).any(axis=0)
        if nan.any():
            valid = valid & ~nan
            data[:, nan] = 0.0
        return data, valid

    return without_nan


def _mask_reader(
    ds: rasterio.DatasetReader, bands: tuple[int, ...]
) -> Callable[[Window], tuple[np.ndarray, np.ndarray]]:
    """:func:`window_reader` before its NaN rule: GDAL's mask as the docstring there says."""
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
