"""Helpers for the ``s5geo fit`` tests: label files in every format, scene crops, a toy scene."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import rasterio
import shapely
from helpers import ROOT, write_scene
from pyproj import CRS, Transformer
from rasterio.windows import Window

NAIP_2020 = Path("naip") / "m_4709963_se_14_1_20200831.tif"
DEMO_LABELS = ROOT / "demo" / "naip_2020_labels.gpkg"
DEMO_CLASSES = ("water", "cropland", "grassland", "bare soil", "road")
# A window of the NAIP 2020 scene (col, row, width, height) holding every demo class twice (so the
# spatial cross-validation runs) while 15 of the 28 demo polygons lie outside it.
NAIP_CROP = (280, 400, 654, 323)
# One tile's worth of the scene: every class once, no cross-validation, the fastest real fit.
NAIP_SMALL = (460, 423, 300, 300)

# The toy scene: 1 m pixels in UTM 33N, dark "water" on the left half, bright "field" on the right.
TOY_CRS = "EPSG:32633"
TOY_ORIGIN = (500_000.0, 5_000_000.0)
TOY_SIZE = 128


def write_crop(src: Path, dst: Path, window: Sequence[int]) -> Path:
    """Write ``window`` (col, row, width, height) of ``src`` as a GeoTIFF, bands as they are."""
    col, row, w, h = window
    with rasterio.open(src) as ds:
        win = Window(col, row, w, h)
        profile = ds.profile
        data = ds.read(window=win)
        interp = ds.colorinterp
        profile.update(width=w, height=h, transform=ds.window_transform(win), blockxsize=256,
                       blockysize=256, photometric="MINISBLACK")  # fmt: skip
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
        out.colorinterp = interp
    return dst


def write_labels(
    path: Path,
    geometries: Sequence[shapely.Geometry],
    fields: Mapping[str, Sequence[Any]],
    crs: str | None = TOY_CRS,
    layer: str | None = None,
    geometry_type: str | None = None,
    driver: str | None = None,
) -> Path:
    """Write features with ``pyogrio.raw.write`` (driver from the suffix unless named)."""
    geoms = np.asarray(geometries, dtype=object)
    if geometry_type is None:
        kinds = set(shapely.get_type_id(geoms).tolist())
        geometry_type = "Unknown" if len(kinds) > 1 else geoms[0].geom_type
    data = [_column(values) for values in fields.values()]
    pyogrio.raw.write(
        path,
        shapely.to_wkb(geoms),
        data,
        list(fields),
        layer=layer,
        driver=driver,
        geometry_type=geometry_type,
        crs=crs,
        append=layer is not None and path.exists(),
    )
    return path


def _column(values: Sequence[object]) -> np.ndarray:
    if all(isinstance(v, (int, np.integer)) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, float) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.asarray(values, dtype=object)


def write_geoparquet(
    path: Path,
    geometries: Sequence[shapely.Geometry],
    fields: Mapping[str, Sequence[Any]],
    crs: str | None = TOY_CRS,
) -> Path:
    """A GeoParquet 1.0 file: WKB geometry column and the 'geo' metadata with a PROJJSON CRS."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: pa.array(list(values)) for name, values in fields.items()}
    columns["geometry"] = pa.array(shapely.to_wkb(np.asarray(geometries, dtype=object)).tolist())
    table = pa.table(columns)
    kinds = sorted({g.geom_type for g in geometries if g is not None})
    meta: dict[str, Any] = {"encoding": "WKB", "geometry_types": kinds}
    if crs is not None:
        meta["crs"] = CRS.from_user_input(crs).to_json_dict()
    geo = {"version": "1.0.0", "primary_column": "geometry", "columns": {"geometry": meta}}
    table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    pq.write_table(table, path)
    return path


def toy_box(col: float, row: float, w: float, h: float) -> shapely.Polygon:
    """A rectangle of pixels (col, row, width, height) of the toy scene in map coordinates."""
    x0, y0 = TOY_ORIGIN
    return shapely.box(x0 + col, y0 - row - h, x0 + col + w, y0 - row)


def to_lonlat(geometries: Sequence[shapely.Geometry], crs: str = TOY_CRS) -> list[shapely.Geometry]:
    """``geometries`` reprojected from ``crs`` to EPSG:4326 (longitude, latitude)."""
    t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return list(
        shapely.transform(
            np.asarray(geometries, dtype=object),
            lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])),
        )
    )


def write_toy_scene(path: Path, seed: int = 0, nodata_rows: int = 0, east: float = 0.0) -> Path:
    """A 3-band uint8 scene, water (dark) in columns < 64 and field (bright) from 64, with noise.

    ``nodata_rows``: that many top rows are 0 with nodata 0 (the scene's own no-data area);
    ``east``: metres the scene lies east of the toy origin (another scene beside the first).
    """
    rng = np.random.default_rng(seed)
    n = TOY_SIZE
    data = np.empty((3, n, n), np.float64)
    data[:, :, : n // 2] = np.array([30.0, 50.0, 90.0])[:, None, None]
    data[:, :, n // 2 :] = np.array([140.0, 170.0, 70.0])[:, None, None]
    data += rng.normal(0, 8, data.shape)
    img = np.clip(data, 1, 255).astype(np.uint8)
    img[:, :nodata_rows] = 0
    origin = (TOY_ORIGIN[0] + east, TOY_ORIGIN[1])
    return write_scene(path, img, crs=TOY_CRS, origin=origin, nodata=0 if nodata_rows else None)


# Two 16x16-px squares per toy class, well inside their halves.
TOY_GEOMETRIES = [toy_box(10, 10, 16, 16), toy_box(20, 90, 16, 16),
                  toy_box(80, 20, 16, 16), toy_box(100, 96, 16, 16)]  # fmt: skip
TOY_CLASSES = ["water", "water", "field", "field"]
