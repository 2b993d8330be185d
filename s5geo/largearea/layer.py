"""One polygon layer for a whole run (GeoPackage or GeoParquet), seam-free across scene borders.

The finished class COGs of one CRS are polygonized as one raster, a VRT mosaic of them, by
:func:`s5geo.vector.polygonize_raster`: its strip loop links regions across strip borders
(``s5geo.vector.merge``), so a region that crosses the border of two abutting scenes comes out as
one feature, exactly as if the scenes had been one raster, and memory stays bounded by a strip of
the mosaic's width and the open regions' border state, never by the run. Gaps between scenes are
nodata in the mosaic and make no polygons.

Scenes in other CRSs are mosaicked and polygonized per CRS the same way, and their polygons moved
to the layer's CRS (``crs``, or the first scene's) a batch at a time; regions are not merged
across two CRSs (their pixel grids do not meet edge to edge). ``area_m2`` is the ground area
measured in the scene's CRS before the move.

GeoParquet is written with pyarrow from the polygonized GeoPackage in batches (GDAL's Parquet
driver is not in every GDAL build): WKB geometry column ``geometry`` with the GeoParquet 1.1
``geo`` metadata (CRS as PROJJSON), readable by geopandas, DuckDB and GDAL.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS

from s5geo.errors import UserError
from s5geo.largearea.outputs import write_mosaic

LAYER = "landcover"
LAYER_SUFFIXES = (".gpkg", ".parquet")
# Features read, moved and written at a time when a layer is converted or reprojected.
BATCH_FEATURES = 20_000
GEOPARQUET_VERSION = "1.1.0"


@dataclass(frozen=True)
class LayerResult:
    """What :func:`write_run_layer` wrote: the file, its CRS and its features."""

    path: Path
    crs: str
    n_polygons: int
    groups: int  # mosaics polygonized (one per CRS)


def check_layer_name(path: str | Path) -> Path:
    """``path`` as the run layer's name; its suffix picks the format (.gpkg or .parquet)."""
    out = Path(path)
    if out.suffix.lower() not in LAYER_SUFFIXES:
        raise UserError(
            f"the run's polygon layer {out.name} is written as GeoPackage or GeoParquet: "
            "give it a name ending in .gpkg or .parquet"
        )
    return out


def write_run_layer(
    rasters: Sequence[str | Path],
    out: str | Path,
    *,
    crs: str | None = None,
    min_area_m2: float = 0.0,
    simplify_m: float = 0.0,
    layer: str = LAYER,
) -> LayerResult:
    """Polygons of the class rasters ``rasters`` (s5geo class COGs) as one layer in ``out``.

    Regions crossing the border of abutting scenes of one CRS are single features (module doc).
    ``crs``: the layer's CRS (default: the first raster's); rasters in another CRS are
    polygonized in theirs and moved to it. ``min_area_m2`` and ``simplify_m`` are those of
    :func:`s5geo.vector.polygonize_raster`, applied to the mosaic. ``out`` is replaced
    atomically (written under a temporary name in its folder, then renamed).
    """
    from s5geo.vector import polygonize_raster

    out = check_layer_name(out)
    if not rasters:
        raise UserError("no class raster to polygonize: no scene finished")
    groups = _by_crs([Path(r) for r in rasters])
    target = CRS.from_user_input(crs) if crs else groups[0][0]
    names, colors = _classes(Path(rasters[0]))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".s5geo-layer-", dir=out.parent) as tmp:
        work = Path(tmp)
        parts: list[tuple[Path, CRS]] = []
        for i, (group_crs, members) in enumerate(groups):
            vrt = work / f"mosaic_{i}.vrt"
            note = write_mosaic(vrt, members)
            if note is not None:  # not expected: the group shares one CRS
                raise RuntimeError(f"internal error: mosaic of one CRS refused ({note})")
            gpkg = work / f"part_{i}.gpkg"
            polygonize_raster(
                vrt, gpkg, class_names=names, class_colors=colors,
                min_area_m2=min_area_m2, simplify_m=simplify_m, layer=layer,
            )  # fmt: skip
            parts.append((gpkg, group_crs))
        count = _feature_count(parts, layer)
        staged = work / f"layer{out.suffix.lower()}"
        if out.suffix.lower() == ".gpkg" and len(parts) == 1 and parts[0][1] == target:
            os.replace(parts[0][0], staged)  # polygonize_raster's own, styled layer
        elif out.suffix.lower() == ".gpkg":
            _merge_gpkg(parts, staged, target, layer, names, colors)
        else:
            _write_geoparquet(parts, staged, target, layer)
        os.replace(staged, out)
    return LayerResult(out, target.to_string(), count, len(groups))


def _by_crs(rasters: list[Path]) -> list[tuple[CRS, list[Path]]]:
    """The rasters grouped by CRS, groups in the order of their first raster."""
    groups: list[tuple[CRS, list[Path]]] = []
    for path in rasters:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise UserError(f"{path.name} has no CRS: its polygons cannot join a run layer")
            crs = ds.crs
        for group_crs, members in groups:
            if group_crs == crs:
                members.append(path)
                break
        else:
            groups.append((crs, [path]))
    return groups


def _classes(raster: Path) -> tuple[dict[int, str], dict[int, str]]:
    """Class names and colours from the tags s5geo writes into every class COG."""
    with rasterio.open(raster) as ds:
        tags = ds.tags()
    try:
        names = {int(k): v for k, v in json.loads(tags["S5GEO_CLASS_NAMES"]).items()}
        colors = {int(k): v for k, v in json.loads(tags["S5GEO_CLASS_COLORS"]).items()}
    except (KeyError, ValueError):
        raise UserError(f"{raster.name} is not an s5geo class raster (no class names)") from None
    return names, colors


def _feature_count(parts: list[tuple[Path, CRS]], layer: str) -> int:
    import pyogrio

    return sum(int(pyogrio.read_info(path, layer=layer)["features"]) for path, _ in parts)


def _batches(
    parts: list[tuple[Path, CRS]], target: CRS, layer: str
) -> Iterator[tuple[Any, np.ndarray]]:
    """(attribute table, WKB geometries in ``target``) of every part, ``BATCH_FEATURES`` at a
    time; the parts' polygons moved to ``target`` where their CRS differs."""
    import pyarrow as pa
    from pyogrio.raw import open_arrow

    for path, crs in parts:
        mover = None if crs == target else _mover(crs, target)
        stream = open_arrow(path, layer=layer, batch_size=BATCH_FEATURES, use_pyarrow=True)
        with stream as (meta, reader):
            geometry_name = meta["geometry_name"] or "wkb_geometry"
            for batch in reader:
                table = pa.Table.from_batches([batch])
                wkb = np.asarray(table.column(geometry_name).to_pylist(), dtype=object)
                attributes = table.drop_columns([geometry_name])
                if mover is not None:
                    wkb = mover(wkb)
                yield attributes, wkb


def _mover(source: CRS, target: CRS) -> Any:
    """A function moving WKB polygons from ``source`` to ``target`` (valid ones stay valid:
    a polygon made invalid by a strongly curved projection is repaired)."""
    import shapely
    from pyproj import Transformer

    transformer = Transformer.from_crs(source.to_wkt(), target.to_wkt(), always_xy=True)

    def move(wkb: np.ndarray) -> np.ndarray:
        geoms = shapely.from_wkb(wkb)
        moved = shapely.transform(
            geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
        )
        bad = ~shapely.is_valid(moved)
        if bad.any():
            moved[bad] = shapely.make_valid(moved[bad], method="structure")
        return np.asarray(shapely.to_wkb(moved), dtype=object)

    return move


def _merge_gpkg(
    parts: list[tuple[Path, CRS]],
    out: Path,
    target: CRS,
    layer: str,
    names: dict[int, str],
    colors: dict[int, str],
) -> None:
    """The parts as one GeoPackage layer in ``target``, with the QGIS style of the run."""
    import pyogrio.raw

    from s5geo.io.gpkg import write_default_style
    from s5geo.io.qgis_style import vector_qml

    first = True
    for attributes, wkb in _batches(parts, target, layer):
        pyogrio.raw.write(
            out, wkb, [np.asarray(c.to_numpy(zero_copy_only=False)) for c in attributes.columns],
            attributes.column_names, layer=layer, driver="GPKG", geometry_type="Polygon",
            crs=target.to_wkt(), append=not first, promote_to_multi=False,
        )  # fmt: skip
        first = False
    if first:  # no polygon at all (every scene nodata): an empty layer
        pyogrio.raw.write(
            out, np.empty(0, dtype=object), [], [], layer=layer, driver="GPKG",
            geometry_type="Polygon", crs=target.to_wkt(),
        )  # fmt: skip
    write_default_style(out, layer, vector_qml(names, colors), description="s5geo land cover")


def _write_geoparquet(parts: list[tuple[Path, CRS]], out: Path, target: CRS, layer: str) -> None:
    """The parts as one GeoParquet file in ``target`` (module doc), a batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    reprojected = any(crs != target for _, crs in parts)
    geo = {
        "version": GEOPARQUET_VERSION,
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                # Polygons, unless a repaired reprojected one became a MultiPolygon.
                "geometry_types": [] if reprojected else ["Polygon"],
                "crs": _projjson(target),
            }
        },
    }
    writer: pq.ParquetWriter | None = None
    try:
        for attributes, wkb in _batches(parts, target, layer):
            table = attributes.append_column("geometry", pa.array(wkb.tolist(), pa.binary()))
            if writer is None:
                schema = table.schema.with_metadata({b"geo": json.dumps(geo).encode()})
                writer = pq.ParquetWriter(out, schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
        if writer is None:  # no polygon at all: an empty file with the layer's columns
            schema = pa.schema(
                [("class_id", pa.int32()), ("class_name", pa.string()),
                 ("area_m2", pa.float64()), ("geometry", pa.binary())],
                metadata={b"geo": json.dumps(geo).encode()},
            )  # fmt: skip
            writer = pq.ParquetWriter(out, schema, compression="zstd")
    finally:
        if writer is not None:
            writer.close()


def _projjson(crs: CRS) -> dict[str, Any]:
    from pyproj import CRS as ProjCRS

    return dict(ProjCRS.from_wkt(crs.to_wkt()).to_json_dict())
